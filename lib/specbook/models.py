"""Models: Qwen3-architecture models built from a profile's shape (the offline profiles cannot
download Qwen3; they make their own, with the same architecture and the same loading code),
loading a saved model or a Hub id, and drafts cut from a target's first layers."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedModel, Qwen3Config, Qwen3ForCausalLM

    from specbook.profiles import ModelShape


def qwen3_config(shape: ModelShape, vocab_size: int, **extra) -> Qwen3Config:
    """A `Qwen3Config` for a profiles.ModelShape. head_dim is set explicitly: Qwen3Config's default
    (128) would not match a small hidden size."""
    from transformers import Qwen3Config

    return Qwen3Config(
        vocab_size=vocab_size,
        hidden_size=shape.hidden,
        intermediate_size=shape.mlp,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        head_dim=shape.head_dim,
        **extra,
    )


def untrained(shape: ModelShape, vocab_size: int, seed: int, logit_scale: float = 1.0) -> Qwen3ForCausalLM:
    """A randomly initialised Qwen3 model in eval mode. logit_scale > 1 multiplies the output head,
    sharpening next-token distributions that random init leaves almost uniform."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(qwen3_config(shape, vocab_size, tie_word_embeddings=False)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(logit_scale)
    return model


def load_causal_lm(name_or_path: str) -> PreTrainedModel:
    """A causal LM by path or Hub id, in its saved dtype and eval mode, on the GPU when there is one."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype="auto").eval()
    return model.to("cuda") if torch.cuda.is_available() else model


def early_exit_draft(target: PreTrainedModel, layers: int) -> PreTrainedModel:
    """A draft made of the target's first `layers` decoder layers, its final norm and its head
    (self-speculation, as in Draft & Verify and LayerSkip): same vocabulary, a fraction of the cost."""
    import copy

    draft = copy.deepcopy(target)
    draft.model.layers = draft.model.layers[:layers]
    draft.config.num_hidden_layers = layers
    if getattr(draft.config, "layer_types", None) is not None:
        draft.config.layer_types = draft.config.layer_types[:layers]
    return draft.eval()


def free_memory() -> None:
    """Hand back the GPU memory of models no longer referenced, before the next one loads: collected
    now rather than when the collector gets to them, and PyTorch's cache of freed blocks emptied
    (vLLM sizes its KV cache from the memory it finds free, and counts that cache as used)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
