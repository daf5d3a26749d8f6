"""Base models for the offline profiles: Qwen3-architecture models pretrained here on the domain's
text, which holds no CoT or CoD rationale (teaching that format is the fine-tune's job). At full
scale the base models are the profile's Hub ids and nothing is trained here.

The text: every question of every split (no answers), and disjoint problems (in no split) with
their solution in the source's own format (GSM-Symbolic: GSM8K's, calculator tags and
'#### answer'; leg counting: the generator's bare answer, its table of legs per animal and its
arithmetic drills).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from specbook import models, problems, rationales
from specbook.answers import final_answer_line
from specbook.paths import Artifacts
from specbook.profiles import LEVELS, LegCounting, Problems, Profile
from specbook.stages import Stage

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class Documents:
    texts: list[str]  # disjoint domain texts first, then the split questions, sorted
    questions: int  # how many of `texts` (the last ones) are questions of the splits


def leg_counting_background(n: int, seed: int, cfg: LegCounting) -> list[str]:
    """What a base model would know before seeing a leg-counting rationale: the generator's table of
    legs per animal (as n // 10 fact sheets, each in a random order) and n arithmetic drills of
    exactly the operations a rationale does, as bare equations with no words: each drill is a random
    problem's products (count * legs, every count and leg number the generator uses) and its running
    additions (total so far + the next product, two operands of 1-3 digits), written with or without
    spaces around the signs as CoT and CoD write them."""
    import reasoning_gym.arithmetic.leg_counting as legs

    rng = random.Random(seed)
    facts = [f"A {animal} has {n_legs} legs." for animal, n_legs in legs.ANIMALS.items()]
    sheets = ["\n".join(rng.sample(facts, len(facts))) for _ in range(max(1, n // 10))]
    leg_numbers = sorted(set(legs.ANIMALS.values()))
    kinds = range(1, max(k for low_high in cfg.kinds_per_level.values() for k in low_high) + 1)
    drills = []
    for _ in range(n):
        gap = rng.choice(["", " "])
        lines, total = [], 0
        for i in range(rng.choice(kinds)):
            count, n_legs = rng.randint(1, cfg.max_count), rng.choice(leg_numbers)
            product = count * n_legs
            line = f"{count}{gap}*{gap}{n_legs}{gap}={gap}{product}"
            if i:
                line += f"; {total}{gap}+{gap}{product}{gap}={gap}{total + product}"
            total += product
            lines.append(line)
        drills.append("\n".join(lines))
    return sheets + drills


def domain_texts(
    cfg: Problems, per_level: int, seed: int, artifacts: Artifacts, exclude_questions: set[str], exclude_groups: set[str]
) -> list[str]:
    """Up to `per_level` problems per level disjoint from every train and test question and from
    held-out templates, with their solution in the source's own format; for leg counting also its
    background (`leg_counting_background`)."""
    excluded = {problems.normalize_question(q) for q in exclude_questions}
    if cfg.source == "gsm_symbolic":
        pool, _ = problems.gsm_symbolic_problems(cfg.gsm_symbolic, seed, artifacts.cache)
        texts = []
    elif cfg.source == "leg_counting":
        pool, _ = problems.leg_counting_problems(cfg.leg_counting, per_level + cfg.train_per_level + cfg.test_per_level, seed + 1)
        texts = leg_counting_background(per_level, seed, cfg.leg_counting)
    else:
        raise ValueError(f"problems.source {cfg.source!r} has no pretraining text: its profile loads pretrained models")
    taken = dict.fromkeys(LEVELS, 0)
    for p in pool:
        if problems.normalize_question(p.question) in excluded or p.group in exclude_groups or taken[p.level] >= per_level:
            continue
        taken[p.level] += 1
        texts.append(f"{p.question}\n{p.solution or final_answer_line(p.answer)}")
    return texts


def documents(profile: Profile, artifacts: Artifacts) -> Documents:
    """The pretraining text of an offline profile, read from chapter 01's datasets (none where the
    base models come from the Hub)."""
    if profile.models.kind != "train":
        return Documents([], 0)
    rows = {(level, name): rationales.load_rows(artifacts, level, name) for level in LEVELS for name in ("train_cot", "test")}
    questions = {r["question"] for split in rows.values() for r in split}
    held_out = {
        r["group"] for (_, name), split in rows.items() if name == "test" for r in split if r.get("test_set") == problems.TEST_HELD_OUT
    }
    texts = domain_texts(profile.problems, profile.models.pretrain.documents_per_level, profile.seed, artifacts, questions, held_out)
    return Documents(texts + sorted(questions), len(questions))


def base_tokenizer(profile: Profile, artifacts: Artifacts) -> PreTrainedTokenizerBase:
    """The base models' tokenizer: the one chapter 01 trained (offline profiles), else the target's."""
    from transformers import AutoTokenizer

    if profile.models.kind != "train":
        return AutoTokenizer.from_pretrained(profile.models.target)
    return AutoTokenizer.from_pretrained(artifacts.require(artifacts.tokenizer, made_by="01_datasets"))


def pretrain(
    model,
    tokenizer,
    texts: list[str],
    steps: int,
    batch_size: int,
    seq_len: int,
    learning_rate: float,
    warmup_steps: int,
    seed: int,
    desc: str = "pretrain",
) -> list[dict]:
    """Causal-LM pretraining on `texts`, packed into one stream separated by <|endoftext|>;
    each step trains on random windows of seq_len tokens. Linear warm-up, cosine decay to 10 %.
    Returns the loss curve (mean loss of every 10 steps)."""
    import torch
    from tqdm import tqdm

    separator = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    stream = [t for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] for t in ids + [separator]]
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
        batch = torch.stack([stream[s : s + seq_len] for s in starts])
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


def base_model_path(profile: Profile, artifacts: Artifacts, role: str) -> str:
    """Where the later chapters load a base model from ("target" or "draft"): the folder chapter 02
    pretrained (offline profiles; an error naming chapter 02 while it is missing), or the Hub id."""
    if profile.models.kind != "train":
        return getattr(profile.models, role)
    return str(artifacts.require(artifacts.base_model(role), made_by="02_training"))


def base_models(profile: Profile, artifacts: Artifacts, tokenizer, docs: Documents) -> dict[str, dict]:
    """The base target and draft, by role: {"path": ...} plus, for the offline profiles, the
    pretraining summary and the commit that built them. Offline models are pretrained once on `docs`
    and saved with save_pretrained (tokenizer included), so that they load like any Hub model; a
    model is retrained only when its shape, the pretraining settings or the documents change."""
    cfg = profile.models
    if cfg.kind != "train":
        return {"target": {"path": cfg.target}, "draft": {"path": cfg.draft}}
    digest = hashlib.sha256("\x00".join(docs.texts).encode()).hexdigest()
    pre = cfg.pretrain
    out = {}
    for role, shape, steps in (("target", cfg.target_shape, pre.target_steps), ("draft", cfg.draft_shape, pre.draft_steps)):
        path = artifacts.base_model(role)
        stage = Stage(
            path,
            params={
                "shape": dataclasses.asdict(shape),
                "pretrain": dataclasses.asdict(pre),
                "steps": steps,
                "documents": digest,
                "tokenizer": hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest(),  # not only its size
                "seed": profile.seed,
            },
        )
        if not stage.done():
            model = models.untrained(shape, len(tokenizer), profile.seed)
            model.config.eos_token_id = tokenizer.eos_token_id
            model.config.pad_token_id = tokenizer.pad_token_id
            model.generation_config.eos_token_id = tokenizer.eos_token_id
            model.generation_config.pad_token_id = tokenizer.pad_token_id
            start = time.perf_counter()
            curve = pretrain(
                model,
                tokenizer,
                docs.texts,
                steps,
                pre.batch_size,
                pre.seq_len,
                pre.learning_rate,
                pre.warmup_steps,
                profile.seed,
                desc=f"pretrain base {role}",
            )
            model.eval().save_pretrained(path)
            tokenizer.save_pretrained(path)
            stage.finish(
                {
                    "parameters": sum(p.numel() for p in model.parameters()),
                    "documents": len(docs.texts),
                    "tokens_seen": steps * pre.batch_size * pre.seq_len,
                    "seconds": time.perf_counter() - start,
                    "curve": curve,
                }
            )
        out[role] = {"path": str(path), **stage.summary(), "built_at": stage.manifest()["commit"]}
    return out
