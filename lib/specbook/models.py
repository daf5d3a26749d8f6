"""Qwen3-architecture models built here from a profile's shape (the offline profiles cannot
download Qwen3; they make their own, with the same architecture and the same loading code)."""
from __future__ import annotations


def qwen3_config(shape, vocab_size: int, **extra):
    """A `Qwen3Config` for a profiles.ModelShape. head_dim is set explicitly: Qwen3Config's default
    (128) would not match a small hidden size."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=vocab_size, hidden_size=shape.hidden, intermediate_size=shape.mlp,
                       num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                       num_key_value_heads=shape.kv_heads, head_dim=shape.head_dim, **extra)


def untrained(shape, vocab_size: int, seed: int, logit_scale: float = 1.0):
    """A randomly initialised Qwen3 model in eval mode. logit_scale > 1 multiplies the output head,
    sharpening next-token distributions that random init leaves almost uniform."""
    import torch
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(seed)
    model = Qwen3ForCausalLM(qwen3_config(shape, vocab_size, tie_word_embeddings=False)).eval()
    with torch.no_grad():
        model.lm_head.weight.mul_(logit_scale)
    return model
