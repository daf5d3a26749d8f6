import dataclasses
import shutil

import pytest

from specbook import profiles, training
from specbook.engines import Speculative, vllm_engine
from specbook.paths import PARAMS


@pytest.mark.parametrize("name", ["smoke", "tiny", "full", "gpu-smoke"])
def test_every_profile_loads(name):
    profile = profiles.load(name)
    assert profile.name == name
    assert set(profiles._levels_of(profile.problems)) == set(profiles.LEVELS)


def test_full_profile_is_the_reference_scale():
    full = profiles.load("full")
    assert full.tokenizer.name == "Qwen/Qwen3-14B"
    assert full.teacher.kind == "gemini"
    assert full.problems.source == "hub" and full.problems.train_per_level == 1000
    assert full.problems.hub["easy"].path == "openai/gsm8k"


def test_gpu_smoke_is_the_full_profiles_paths_on_the_smallest_real_models():
    small, full = profiles.load("gpu-smoke"), profiles.load("full")
    assert (small.models.target, small.models.draft, small.tokenizer.name) == ("Qwen/Qwen3-1.7B", "Qwen/Qwen3-0.6B", "Qwen/Qwen3-1.7B")
    assert (small.problems.train_per_level, small.problems.test_per_level, small.teacher.kind) == (20, 20, "local")
    assert small.problems.hub == full.problems.hub and small.engine.kind == full.engine.kind == "vllm"
    assert small.sft.lora == full.sft.lora and small.sft.args.bf16


@pytest.mark.parametrize("name", ["full", "gpu-smoke"])
def test_gpu_profiles_build_arguments_their_libraries_take(name):
    """What the GPU chapters pass on, built here: TRL's SFT arguments (names only: bf16 needs a GPU to
    construct them) and vLLM's engine arguments for a tuned target served as an adapter with a draft."""
    from trl import SFTConfig

    P = profiles.load(name)
    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    for section in (P.sft, P.draft_sft):
        assert set(training.sft_kwargs(section, "out", seed=0, checkpointing=True)) <= fields
    spec = Speculative("draft_model", P.bench.k, f"data/{name}/models/draft_distilled_cod_easy")
    kwargs = vllm_engine.vllm_llm_kwargs(
        P.models.target,
        spec,
        P.engine.tensor_parallel_size,
        P.engine.gpu_memory_utilization,
        P.seed,
        P.sft.lora.r,
        max(P.bench.concurrency),
    )
    assert (kwargs["model"], kwargs["enable_lora"], kwargs["max_lora_rank"], kwargs["max_num_seqs"]) == (
        P.models.target,
        True,
        P.sft.lora.r,
        max(P.bench.concurrency),
    )
    assert kwargs["speculative_config"]["num_speculative_tokens"] == P.bench.k and kwargs["per_request_spec_decode_metrics"] == "summary"
    assert P.tokenizer.name == P.models.target  # one vocabulary for target, draft and data


def test_defaults_fill_what_a_profile_leaves_out():
    smoke, full = profiles.load("smoke"), profiles.load("full")
    assert (smoke.engine.tensor_parallel_size, smoke.engine.compile, smoke.teacher.model) == (1, False, None)
    assert smoke.sft.lora.target_modules == full.sft.lora.target_modules == profiles.ALL_PROJECTIONS
    assert (full.sft.args.warmup_steps, full.sft.args.lr_scheduler_type, full.sft.lora.lora_dropout) == (0.03, "cosine", 0.0)
    assert full.sft.args.gradient_accumulation_steps == 4 and smoke.sft.args.gradient_accumulation_steps == 1
    assert profiles.load("tiny").problems.gsm_symbolic is None  # a section a profile does not use is left out


def test_a_seed_run_is_its_profile_under_another_seed_on_the_same_data():
    main, run = profiles.load("tiny"), profiles.load(profiles.seed_run("tiny", 3))
    assert (run.name, run.seed, run.data_seed) == ("tiny-seed3", 3, main.seed)
    assert dataclasses.replace(run, name="tiny", seed=main.seed) == main  # nothing else differs
    assert profiles.config_hash(run) != profiles.config_hash(main)
    with pytest.raises(profiles.ProfileError, match=r"unknown profile 'huge'"):
        profiles.load("huge-seed1")


def test_unknown_profile_names_the_choices():
    with pytest.raises(profiles.ProfileError, match=r"unknown profile 'huge': choose one of full, gpu-smoke, smoke, tiny"):
        profiles.load("huge")


@pytest.fixture
def params(tmp_path):
    shutil.copy(PARAMS / "smoke.yaml", tmp_path / "smoke.yaml")
    return tmp_path


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "  train_per_level: 24",
            "  train_per_level: 24\n  trian_per_level: 3",
            r"problems: unknown key\(s\) trian_per_level; known keys: source, ",
        ),
        ("  test_per_level: 8\n", "", r"problems: missing key 'test_per_level'"),
        ("train_per_level: 24", "train_per_level: many", r"problems.train_per_level: expected int, got 'many'"),
        ("source: gsm_symbolic", "source: mmlu", r"problems.source is 'mmlu'; choose one of gsm_symbolic, leg_counting, hub"),
        ("source: gsm_symbolic", "source: leg_counting", r"section problems.leg_counting is missing"),
        ("name: smoke", "name: other", r"name is 'other'; it must match the file name 'smoke'"),
        ("engine:\n  kind: native", "engine:\n  kind: vllm\n  compile: true", r"engine.compile applies to the native engine only"),
        ("  eval_rows: 4", "  eval_rows: 0", r"sft.eval_rows is 0; it must be above 0 \(with 0 the stage would run on nothing\)"),
        ("  eval_rows: 4", "  eval_rows: 24", r"sft.eval_rows \(24\) holds out every training row of a level"),
        ("num_train_epochs: 1", "num_train_epochs: 0", r"sft.args.num_train_epochs is 0.0; it must be above 0"),
        ("  test_per_level: 8", "  test_per_level: 0", r"problems.test_per_level is 0; it must be above 0"),
        ("num_train_epochs: 1", "epochs: 1", r"sft.args: unknown key\(s\) epochs; known keys: learning_rate, num_train_epochs"),
        ("draft_layers: [1]", "draft_layers: [3]", r"theory.draft_layers must lie between 1 and 2"),
        ("name: smoke", "name: [smoke", r"smoke.yaml: not valid YAML at line 4, column 5: expected ',' or ']'"),
        ("seed: 0", "seed: 0\nseed: 1", r"smoke.yaml: not valid YAML at line 5, column 1: key 'seed' is given twice"),
        ("held_out_templates: 1", "held_out_templates: -1", r"held_out_templates is -1; it must be a number >= 0"),
        ("kind: template", "kind: template\n  temperature: .nan", r"teacher.temperature is nan; it must be a number >= 0"),
        ("kind: template", "kind: template\n  temperature: null", r"teacher.temperature is null, which only a Gemini teacher takes"),
        ("{r: 8,", "{r: 0,", r"sft.lora.r is 0; it must be above 0"),
        ("easy: [1, 2]", "easy: [2, 1]", r"problems.gsm_symbolic.steps_per_level.easy is \[2, 1\]; give it as \[min, max\]"),
        ("easy: [1, 2]", "easy: [1]", r"problems.gsm_symbolic.steps_per_level.easy is \[1\]; give it as \[min, max\]"),
        ("kind: native", "kind: native\n  gpu_memory_utilization: 1.5", r"engine.gpu_memory_utilization is 1.5; it must be at most 1.0"),
        (
            "heads: 2, kv_heads: 1, head_dim: 32}\n  draft",
            "heads: 3, kv_heads: 2, head_dim: 32}\n  draft",
            r"theory.target has 3 heads and 2 kv_heads",
        ),
        ("vocab_size: 512", "vocab_size: 0", r"tokenizer.vocab_size is 0; it must be above 0"),
        ("  test_rows: 4", "  test_rows: 4\n  samples_per_question: 2", r"distill.samples_per_question is 2 at temperature 0"),
        ("  test_rows: 4", "  test_rows: 0", r"distill.test_rows is 0; it must be above 0"),
        ("  max_truncated: 1.0", "  max_truncated: 1.5", r"distill.max_truncated is 1.5; it must be at most 1.0"),
        (
            "  eval_rows: 4\nengine:",
            "  eval_rows: 20\nengine:",
            r"draft_sft.eval_rows \(20\) holds out every distilled row of a target \(20: distill.questions_per_level",
        ),
        ("  ks: [1, 2]", "  ks: []", r"bench.ks and bench.concurrency must each list at least one number above 0"),
        ("  ks: [1, 2]", "  ks: [0, 2]", r"bench.ks and bench.concurrency must each list at least one number above 0; got \[0, 2\]"),
        (
            "  sampled_rows: 2",
            "  sampled_rows: 9",
            r"bench.sampled_rows is 9, more test questions than a level has \(problems.test_per_level is 8\)",
        ),
        ("  k: 2\n", "  k: 0\n", r"bench.k is 0; it must be above 0"),
        (
            "  eval_rows: 4\n  check_rows",
            "  eval_rows: 4\n  train_rows: {easy: 10, hard: 10}\n  check_rows",
            r"sft.train_rows must give every level \(easy, medium, hard\) a number of rows above 0; got \{'easy': 10, 'hard': 10\}",
        ),
        ("control_levels: [medium]", "control_levels: [tough]", r"distill.control_levels names \['tough'\]: levels are easy, medium, hard"),
        ("kind: template", "kind: template\n  thinking: lots", r"teacher.thinking is 'lots'; give a level \(minimal, low, medium, high"),
        ("kind: template", "kind: template\n  thinking: 0.5", r"teacher.thinking: expected str or int, got 0.5"),
        ("kind: template", "kind: template\n  thinking: -1", r"teacher.thinking is -1; it must be a number >= 0"),
    ],
)
def test_bad_profiles_are_rejected_with_the_key_and_the_fix(params, old, new, message):
    path = params / "smoke.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(profiles.ProfileError, match=message):
        profiles.load("smoke", params)


def test_exponents_read_as_numbers(params):
    path = params / "smoke.yaml"
    path.write_text(path.read_text().replace("learning_rate: 0.002,", "learning_rate: 2e-3,"))
    assert profiles.load("smoke", params).sft.args.learning_rate == 0.002


def test_a_stage_depends_on_every_module_of_a_lib_package():
    from specbook.paths import LIB, lib_sources

    files = lib_sources("specdec", "engines")
    assert files[0] == LIB / "specdec.py" and {f.name for f in files[1:]} >= {"__init__.py", "base.py", "native.py", "vllm_engine.py"}
    with pytest.raises(FileNotFoundError, match="no lib source .*nothing.py"):
        lib_sources("nothing")
