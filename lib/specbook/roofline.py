"""Why decoding is memory-bound: a roofline estimate of one forward pass of a Qwen3 model.

A pass over n new tokens (with `context` tokens already in the KV cache) reads every weight once
and the cache once, and does about 2 FLOPs per weight per token plus attention. At batch 1 and
small n the bytes dominate: the time is bytes / bandwidth, nearly independent of n, which is why
verifying K draft tokens in one pass costs about as much as generating one.
"""

from __future__ import annotations

from dataclasses import dataclass

from specbook.profiles import ModelShape


@dataclass(frozen=True)
class Architecture:
    name: str
    shape: ModelShape
    vocab: int
    tied_embeddings: bool


# From the models' config.json on the Hugging Face Hub.
QWEN3_14B = Architecture(
    "Qwen3-14B", ModelShape(layers=40, hidden=5120, mlp=17408, heads=40, kv_heads=8, head_dim=128), vocab=151936, tied_embeddings=False
)
QWEN3_0_6B = Architecture(
    "Qwen3-0.6B", ModelShape(layers=28, hidden=1024, mlp=3072, heads=16, kv_heads=8, head_dim=128), vocab=151936, tied_embeddings=True
)


@dataclass(frozen=True)
class Hardware:
    name: str
    flops: float  # peak dense bf16 FLOP/s
    bandwidth: float  # memory bytes/s


# NVIDIA datasheets, dense BF16 and HBM bandwidth: H100 SXM5 989 TFLOP/s, 3.35 TB/s (HBM3); H200
# (the same compute) 4.8 TB/s (HBM3e); H100 PCIe 756 TFLOP/s, 2.0 TB/s.
H100_SXM = Hardware("H100 SXM", flops=989e12, bandwidth=3.35e12)
H200 = Hardware("H200", flops=989e12, bandwidth=4.8e12)
H100_PCIE = Hardware("H100 PCIe", flops=756e12, bandwidth=2.0e12)


def layer_parameters(a: Architecture) -> int:
    s = a.shape
    attention = s.hidden * s.heads * s.head_dim * 2 + s.hidden * s.kv_heads * s.head_dim * 2  # q, o; k, v
    norms = 2 * s.hidden + 2 * s.head_dim  # input and post-attention RMSNorm, q and k norms
    return attention + 3 * s.hidden * s.mlp + norms  # gate, up, down


def parameters(a: Architecture) -> int:
    embeddings = a.vocab * a.shape.hidden * (1 if a.tied_embeddings else 2)
    return a.shape.layers * layer_parameters(a) + embeddings + a.shape.hidden  # + final norm


def forward_cost(a: Architecture, n_tokens: int, context: int, bytes_per_value: int = 2) -> dict:
    """FLOPs and bytes moved by one forward pass over n new tokens after `context` cached ones."""
    s = a.shape
    matmul_weights = s.layers * layer_parameters(a) + a.vocab * s.hidden  # the head is a matmul; the lookup is not
    attention_flops = s.layers * 4 * s.heads * s.head_dim * (context + n_tokens) * n_tokens  # QK^T and AV
    flops = 2 * matmul_weights * n_tokens + attention_flops
    kv_bytes = s.layers * 2 * s.kv_heads * s.head_dim * (context + n_tokens) * bytes_per_value
    weight_bytes = matmul_weights * bytes_per_value  # an untied embedding table is only indexed, not read
    return {"flops": flops, "bytes": weight_bytes + kv_bytes, "intensity": flops / (weight_bytes + kv_bytes)}


def forward_time(a: Architecture, hw: Hardware, n_tokens: int, context: int) -> float:
    """Roofline time of a forward pass: limited by compute or by memory, whichever is slower."""
    cost = forward_cost(a, n_tokens, context)
    return max(cost["flops"] / hw.flops, cost["bytes"] / hw.bandwidth)


def ridge_point(hw: Hardware) -> float:
    """FLOPs per byte above which the hardware is compute-bound."""
    return hw.flops / hw.bandwidth


def step_table(archs: list[Architecture], hw: Hardware, context: int):
    """One row per architecture: its parameters, the bytes a 1-token step reads, FLOPs per byte, the
    step's memory and compute times on `hw`, and the tokens per second that allows at batch 1."""
    import pandas as pd

    rows = []
    for a in archs:
        cost = forward_cost(a, 1, context)
        rows.append(
            {
                "model": a.name,
                "parameters (M)": parameters(a) / 1e6,
                "GB read per step": cost["bytes"] / 1e9,
                "FLOPs per byte": cost["intensity"],
                "memory time (ms)": cost["bytes"] / hw.bandwidth * 1e3,
                "compute time (ms)": cost["flops"] / hw.flops * 1e3,
                "max tokens/s at batch 1": 1 / forward_time(a, hw, 1, context),
            }
        )
    return pd.DataFrame(rows).set_index("model")
