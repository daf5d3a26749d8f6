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


def pretrain(model, tokenizer, documents: list[str], steps: int, batch_size: int, seq_len: int, learning_rate: float,
             warmup_steps: int, seed: int, desc: str = "pretrain") -> list[dict]:
    """Causal-LM pretraining on `documents`, packed into one stream separated by <|endoftext|>;
    each step trains on random windows of seq_len tokens. Linear warm-up, cosine decay to 10 %.
    Returns the loss curve (mean loss of every 10 steps)."""
    import math

    import torch
    from tqdm import tqdm

    separator = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    stream = [t for ids in tokenizer(documents, add_special_tokens=False)["input_ids"] for t in ids + [separator]]
    stream = torch.tensor(stream)
    if len(stream) <= seq_len:
        raise ValueError(f"pretraining text has {len(stream)} tokens, fewer than one sequence of {seq_len}: add documents")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1)

    def lr_at(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, steps - warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    curve, window = [], []
    for step in tqdm(range(steps), desc=desc, leave=False):
        starts = torch.randint(0, len(stream) - seq_len, (batch_size,), generator=gen)
        batch = torch.stack([stream[s: s + seq_len] for s in starts])
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if len(window) == 10 or step == steps - 1:
            curve.append({"step": step + 1, "loss": sum(window) / len(window)})
            window = []
    return curve


def base_models(cfg, tokenizer, documents: list[str], directory, seed: int) -> dict:
    """The offline profiles' base target and draft (profiles.Models with kind 'train'), pretrained
    once on `documents` and saved with save_pretrained (tokenizer included) under
    directory/base_target and directory/base_draft, so that they load like any Hub model. A model
    is retrained only when its shape, the pretraining settings or the documents change."""
    import dataclasses
    import hashlib
    import time
    from pathlib import Path

    from specbook.stages import Stage

    digest = hashlib.sha256("\x00".join(documents).encode()).hexdigest()
    pre = cfg.pretrain
    out = {}
    for role, shape, steps in (("target", cfg.target_shape, pre.target_steps), ("draft", cfg.draft_shape, pre.draft_steps)):
        path = Path(directory) / f"base_{role}"
        stage = Stage(path, params={"shape": dataclasses.asdict(shape), "pretrain": dataclasses.asdict(pre),
                                    "steps": steps, "documents": digest, "vocab": len(tokenizer), "seed": seed})
        if not stage.done():
            model = untrained(shape, len(tokenizer), seed)
            model.config.eos_token_id = tokenizer.eos_token_id
            model.config.pad_token_id = tokenizer.pad_token_id
            model.generation_config.eos_token_id = tokenizer.eos_token_id
            model.generation_config.pad_token_id = tokenizer.pad_token_id
            start = time.perf_counter()
            curve = pretrain(model, tokenizer, documents, steps, pre.batch_size, pre.seq_len, pre.learning_rate,
                             pre.warmup_steps, seed, desc=f"pretrain base {role}")
            model.eval().save_pretrained(path)
            tokenizer.save_pretrained(path)
            stage.finish({"parameters": sum(p.numel() for p in model.parameters()), "documents": len(documents),
                          "tokens_seen": steps * pre.batch_size * pre.seq_len, "seconds": time.perf_counter() - start,
                          "curve": curve})
        out[role] = {"path": str(path), **stage.summary(), "built_at": stage.manifest()["commit"]}
    return out
