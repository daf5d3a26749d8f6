"""Tokenizers: the profile's own (Qwen3's at full scale) or one trained here for the offline
profiles, a byte-level BPE with Qwen's special tokens and a Qwen-style chat template."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from specbook.stages import Stage

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

    from specbook import profiles

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_ROLES = ("system", "user", "assistant")
# Qwen's ChatML layout, without Qwen3's tool-calling branches.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: list[str], vocab_size: int, split_digits: bool) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on `texts`; with split_digits every digit is its own token."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level]) if split_digits else byte_level
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    roles = "\n".join(CHAT_ROLES)  # in every chat prompt: one token each rather than a byte each
    tok.train_from_iterator([*texts, roles], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    fast.chat_template = CHAT_TEMPLATE
    return fast


def for_profile(cfg: profiles.Tokenizer, texts: list[str], directory: Path) -> PreTrainedTokenizerBase:
    """The profile's tokenizer (profiles.Tokenizer). A trained one is cached in `directory` and
    retrained only when its settings or its texts change."""
    from transformers import AutoTokenizer

    if cfg.kind == "pretrained":
        return AutoTokenizer.from_pretrained(cfg.name)
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    stage = Stage(directory, params={"vocab_size": cfg.vocab_size, "split_digits": cfg.split_digits, "texts": digest})
    if not stage.done():
        tokenizer = train_tokenizer(texts, cfg.vocab_size, cfg.split_digits)
        tokenizer.save_pretrained(directory)
        stage.finish({"vocab_size": len(tokenizer), "texts": len(texts)})
    return AutoTokenizer.from_pretrained(directory)


def count(tokenizer, texts: list[str]) -> list[int]:
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
