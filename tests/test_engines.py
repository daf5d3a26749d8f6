"""Every engine passes the same interface test; vLLM's pure parts are tested on recorded metrics."""

import json
import subprocess
import sys
import weakref
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch._dynamo.utils

from specbook import engines, jsonl, metrics, models, profiles, specdec, tokens
from specbook.engines import Generation, NativeEngine, Sampling, Speculative, TransformersEngine, vllm_engine
from specbook.prompts import chat_prompt

DATA = Path(__file__).parent / "data"
MAX_NEW = 24


@pytest.fixture(scope="module")
def tok():
    texts = ["Answer: 13 eggs", "What is 2+2? 4 legs and 6 legs", "3 ducks have 3 * 2 = 6 legs."] * 20
    return tokens.train_tokenizer(texts, vocab_size=300, split_digits=True)


@pytest.fixture(scope="module")
def target(tok, tiny_model):
    return tiny_model(len(tok), 0, layers=2, eos_token_id=tok.eos_token_id)


@pytest.fixture(scope="module")
def draft(target):
    return models.early_exit_draft(target, 1)


@pytest.fixture(scope="module")
def prompts(tok):
    return [chat_prompt(tok, "Count the legs.", q) for q in ("3 ducks?", "2 dogs and 1 duck?", "What is 2+2?")]


SETTINGS = [
    ("native", None),
    ("native", "draft"),
    ("native", "ngram"),
    ("native_compiled", None),
    ("native_compiled", "draft"),
    ("transformers", None),
    ("transformers", "draft"),
    ("transformers", "ngram"),
]


def speculative_for(kind, draft):
    if kind == "draft":
        return Speculative("draft_model", k=3, draft=draft)
    if kind == "ngram":
        return Speculative("ngram", k=3, ngram_max=2)
    return None


def make_engine(name, target, tok):
    if name == "native_compiled":
        return NativeEngine(target, tok, compile=True)
    return {"native": NativeEngine, "transformers": TransformersEngine}[name](target, tok)


@pytest.fixture(scope="module")
def greedy_reference(target, tok, prompts):
    return [r.token_ids for r in NativeEngine(target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW))]


@pytest.mark.parametrize("name,kind", SETTINGS)
def test_engine_interface(name, kind, target, draft, tok, prompts, greedy_reference):
    engine = make_engine(name, target, tok)
    speculative = speculative_for(kind, draft)
    out = engine.generate(prompts, Sampling(max_new_tokens=MAX_NEW), speculative)
    assert len(out) == len(prompts) and all(isinstance(g, Generation) for g in out)
    # greedy speculation is lossless: every engine and setting writes the target's own tokens
    assert [g.token_ids for g in out] == greedy_reference
    for g in out:
        assert g.finish_reason == ("stop" if g.token_ids[-1] == tok.eos_token_id else "length")
        assert g.finish_reason == "stop" or len(g.token_ids) == MAX_NEW
        assert g.text == tok.decode(g.token_ids, skip_special_tokens=True)
        assert 0 < g.ttft_s <= g.latency_s
        if speculative is None:
            assert (g.steps, g.proposed, g.accepted) == (len(g.token_ids), 0, 0)
        else:
            assert len(g.accepted_at) == 3 and sum(g.accepted_at) == g.accepted <= g.proposed <= 3 * g.steps
            assert len(g.token_ids) == g.accepted + g.steps  # one target token per step, plus what it accepted
            assert len(g.step_accepts) == g.steps and sum(g.step_accepts) == g.accepted
            for position, drafted, wrote in g.rejections:  # the target's token stands where the draft's was refused
                assert drafted != wrote and (position >= len(g.token_ids) or g.token_ids[position] == wrote)
    if kind == "draft":
        assert metrics.summarize(out)["accepted"] > 0


@pytest.mark.parametrize("name", ["native", "native_compiled", "transformers"])
@pytest.mark.parametrize("batch_size", [2, 3])
def test_greedy_batches_write_what_one_request_at_a_time_writes(name, batch_size, target, tok, prompts, greedy_reference):
    out = make_engine(name, target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW), batch_size=batch_size)
    assert [g.token_ids for g in out] == greedy_reference  # left padding changes nothing (float64 models)
    assert all(g.finish_reason == "length" and len(g.token_ids) == MAX_NEW for g in out)


@pytest.mark.parametrize("name", ["native", "transformers"])
def test_each_row_of_a_batch_ends_on_its_own(name, target, tok, prompts, greedy_reference):
    # an end-of-sequence token that row 1 writes early and row 0 never writes, and a stop string only row 2 writes
    eos = next(t for t in greedy_reference[1][2:] if t not in greedy_reference[0])
    others = tok.decode(greedy_reference[0]) + tok.decode(greedy_reference[1])
    windows = (tok.decode(greedy_reference[2][i : i + n]) for n in (2, 1) for i in range(1, MAX_NEW - 2))
    stop = next(s for s in windows if s.strip() and "\ufffd" not in s and s not in others)  # whole characters
    engine = make_engine(name, target, tok)
    engine.eos = engine.eos | {eos}
    sampling = Sampling(max_new_tokens=MAX_NEW, stop=(stop,))
    one_at_a_time = engine.generate(prompts, sampling)
    batched = engine.generate(prompts, sampling, batch_size=3)
    assert [g.token_ids for g in batched] == [g.token_ids for g in one_at_a_time]
    assert [g.text for g in batched] == [g.text for g in one_at_a_time]
    assert [g.finish_reason for g in batched] == ["length", "stop", "stop"]
    assert batched[1].token_ids[-1] == eos and len(batched[1].token_ids) < MAX_NEW
    assert stop not in batched[2].text and len(batched[2].token_ids) < MAX_NEW


def test_batches_refuse_speculation_and_bad_sizes(target, draft, tok, prompts):
    engine = NativeEngine(target, tok)
    with pytest.raises(ValueError, match="speculates one request at a time"):
        engine.generate(prompts, Sampling(max_new_tokens=4), Speculative("draft_model", 3, draft=draft), batch_size=2)
    with pytest.raises(ValueError, match="batch_size is 0; it must be a whole number >= 1"):
        engine.generate(prompts, Sampling(max_new_tokens=4), batch_size=0)


def test_native_and_assisted_agree_on_counters(target, draft, tok, prompts):
    """Greedy: both engines run the same algorithm, so they propose and accept the same tokens."""
    spec = Speculative("draft_model", k=3, draft=draft)
    native = NativeEngine(target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW), spec)
    assisted = TransformersEngine(target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW), spec)
    counters = lambda g: (g.steps, g.accepted, g.accepted_at, g.tested_at, g.step_accepts, g.rejections)  # noqa: E731
    assert [counters(g) for g in native] == [counters(g) for g in assisted]
    assert sum(len(g.rejections) for g in native) > 0


def test_native_and_transformers_prompt_lookup_agree_on_counters(target, tok, prompts):
    """Both look up the first earlier occurrence of the longest recurring n-gram, so they accept the
    same tokens (near the length cap transformers proposes tokens that could not be emitted)."""
    spec = Speculative("ngram", k=3, ngram_max=2)
    native = NativeEngine(target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW), spec)
    lookup = TransformersEngine(target, tok).generate(prompts, Sampling(max_new_tokens=MAX_NEW), spec)
    counters = lambda g: (g.steps, g.accepted, g.accepted_at)  # noqa: E731
    assert [counters(g) for g in native] == [counters(g) for g in lookup]
    assert sum(g.proposed for g in native) > 0


def test_draft_that_always_agrees(target, tok, prompts):
    out = NativeEngine(target, tok).generate(prompts[:1], Sampling(max_new_tokens=8), Speculative("draft_model", 3, draft=target))
    # 8 tokens = (3 accepted + 1) twice
    assert (out[0].steps, out[0].proposed, out[0].accepted, out[0].accepted_at) == (2, 6, 6, [2, 2, 2])


@pytest.mark.parametrize("name,kind", SETTINGS)
def test_stop_strings(name, kind, target, draft, tok, prompts, greedy_reference):
    full = greedy_reference[0]
    stop = tok.decode(full[10:12], skip_special_tokens=True).strip()
    assert stop, "the reference output should hold text to stop at"
    keep = engines.stop_string_cut(tok, full, (stop,))
    engine = make_engine(name, target, tok)
    (g,) = engine.generate(prompts[:1], Sampling(max_new_tokens=MAX_NEW, stop=(stop,)), speculative_for(kind, draft))
    assert keep <= 12 and g.token_ids == full[:keep] and g.finish_reason == "stop"
    text = tok.decode(full[:keep], skip_special_tokens=True)
    assert stop in text and g.text == text[: text.index(stop)]


def test_sampling_is_seeded(target, draft, tok, prompts):
    engine = NativeEngine(target, tok)
    spec = Speculative("draft_model", k=3, draft=draft)
    sampling = Sampling(max_new_tokens=12, temperature=1.0, seed=5)
    first, second = (engine.generate(prompts, sampling, spec) for _ in range(2))
    assert [g.token_ids for g in first] == [g.token_ids for g in second]
    for g in first:  # a sampled rejection: the residual's draw stands where the draft's token was refused
        assert len(g.rejections) <= g.steps and all(
            g.token_ids[position] == wrote for position, _, wrote in g.rejections if position < len(g.token_ids)
        )
    assert any(g.rejections for g in first)
    other = engine.generate(prompts, Sampling(max_new_tokens=12, temperature=1.0, seed=6), spec)
    assert [g.token_ids for g in other] != [g.token_ids for g in first]


def test_compiled_engine_samples_what_the_eager_one_samples(target, draft, tok, prompts):
    spec = Speculative("draft_model", k=3, draft=draft)
    sampling = Sampling(max_new_tokens=12, temperature=1.0, seed=5)
    eager = NativeEngine(target, tok).generate(prompts, sampling, spec)
    compiled = NativeEngine(target, tok, compile=True)
    compiled.draft_model(spec)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    fast = compiled.generate(prompts, sampling, spec)
    same = lambda g: (g.token_ids, g.steps, g.accepted_at)  # noqa: E731
    assert [same(g) for g in fast] == [same(g) for g in eager]
    assert sum(g.proposed - g.accepted for g in fast) > 0  # rejections: both caches were rolled back
    # every graph was compiled before the first request: none in the middle of a timed one
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs
    assert target.forward.__func__ is type(target).forward  # compiling wrapped the models, it did not change them


def test_bad_speculation_settings_are_refused(target, tok, prompts, tiny_model):
    with pytest.raises(ValueError, match="unknown speculative method 'eagle'"):
        Speculative("eagle", k=3)
    with pytest.raises(ValueError, match="needs `draft`"):
        Speculative("draft_model", k=3)
    for k in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=rf"speculative k is {k!r}; it must be a whole number >= 1"):
            Speculative("ngram", k=k)
    with pytest.raises(ValueError, match="ngram_max is 0; it must be a whole number >= 1"):
        Speculative("ngram", k=3, ngram_max=0)
    other = tiny_model(len(tok) + 5, 1)
    for engine in (NativeEngine(target, tok), TransformersEngine(target, tok)):
        with pytest.raises(specdec.VocabularyMismatch, match=f"target has {len(tok)} tokens, draft has {len(tok) + 5}"):
            engine.generate(prompts[:1], Sampling(max_new_tokens=4), Speculative("draft_model", 3, draft=other))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_new_tokens": 0}, r"max_new_tokens is 0; it must be a whole number >= 1"),
        ({"max_new_tokens": 8.0}, r"max_new_tokens is 8.0; it must be a whole number >= 1"),
        ({"temperature": -0.5}, r"temperature is -0.5; it must be a finite number >= 0"),
        ({"temperature": float("nan")}, r"temperature is nan; it must be a finite number >= 0"),
        ({"top_p": 0.0}, r"top_p is 0.0; it must lie in \(0, 1\]"),
        ({"top_p": 1.5}, r"top_p is 1.5; it must lie in \(0, 1\]"),
        ({"stop": "\n\n"}, r"stop is '\\n\\n'; it must be a tuple of non-empty strings"),
        ({"stop": ("Answer", "")}, r"stop is \('Answer', ''\); it must be a tuple of non-empty strings"),
        ({"seed": 1.5}, r"seed is 1.5; it must be a whole number"),
    ],
)
def test_sampling_values_outside_their_range_are_refused_with_the_range(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Sampling(**{"max_new_tokens": 8, **kwargs})


def test_the_decoder_itself_refuses_what_it_cannot_honour(target, draft):
    for kwargs, message in [
        ({"k": -1}, r"k is -1; it must be a whole number >= 0"),
        ({"k": 1.5}, r"k is 1.5; it must be a whole number >= 0"),
        ({"max_new_tokens": 0}, r"max_new_tokens is 0"),
        ({"temperature": -1.0}, r"temperature is -1.0"),
        ({"top_p": 0}, r"top_p is 0; it must lie in \(0, 1\]"),
    ]:
        with pytest.raises(ValueError, match=message):
            specdec.generate(target, draft, [1, 2], **{"k": 2, "max_new_tokens": 4, **kwargs})
    with pytest.raises(ValueError, match="the prompt is empty"):
        specdec.generate(target, draft, [], k=2, max_new_tokens=4)


@pytest.mark.parametrize("name", ["native", "transformers"])
def test_every_engine_refuses_empty_and_over_long_prompts_before_generating(name, target, tok, prompts):
    engine = make_engine(name, target, tok)
    context = target.config.max_position_embeddings
    with pytest.raises(ValueError, match="prompt 1 is empty: a model needs at least one token"):
        engine.generate([prompts[0], ""], Sampling(max_new_tokens=4))
    too_long = (
        rf"prompt 0 has {context - 2} tokens and max_new_tokens is 4: {context + 2} tokens, more than the model's context of {context}"
    )
    with pytest.raises(ValueError, match=too_long):
        engine.generate([[5] * (context - 2)], Sampling(max_new_tokens=4))
    with pytest.raises(ValueError, match="prompts is a string; pass a list of prompts"):
        engine.generate(prompts[0], Sampling(max_new_tokens=4))


def test_engines_load_saved_models_and_drafts_by_path(target, draft, tok, prompts, greedy_reference, tmp_path):
    target.save_pretrained(tmp_path / "target")
    tok.save_pretrained(tmp_path / "target")
    draft.save_pretrained(tmp_path / "draft")
    engine = NativeEngine.load(str(tmp_path / "target"))
    out = engine.generate(prompts, Sampling(max_new_tokens=MAX_NEW), Speculative("draft_model", 3, draft=str(tmp_path / "draft")))
    assert [g.token_ids for g in out] == greedy_reference


def test_a_draft_with_another_tokenizer_is_refused(target, tok, prompts, tmp_path, tiny_model):
    other_tok = tokens.train_tokenizer(["completely different text, other merges"] * 20, vocab_size=len(tok), split_digits=False)
    other = tiny_model(len(other_tok), 2)
    other.config.vocab_size = len(tok)  # even with the same size, the ids mean other tokens
    other.save_pretrained(tmp_path / "draft")
    other_tok.save_pretrained(tmp_path / "draft")
    with pytest.raises(specdec.VocabularyMismatch, match="tokenizers differ"):
        NativeEngine(target, tok).generate(
            prompts[:1], Sampling(max_new_tokens=4), Speculative("draft_model", 3, draft=str(tmp_path / "draft"))
        )


def test_make_builds_the_profiles_engine(target, tok, tmp_path):
    target.save_pretrained(tmp_path / "target")
    tok.save_pretrained(tmp_path / "target")
    native = engines.make(profiles.Engine("native", 1, 0.85), str(tmp_path / "target"))
    assert isinstance(native, NativeEngine) and native.model.config.vocab_size == len(tok) and not native.compile
    assert engines.make(profiles.Engine("native", 1, 0.85, compile=True), str(tmp_path / "target")).compile
    vllm = engines.make(profiles.Engine("vllm", 4, 0.9), str(tmp_path / "target"), seed=3)
    assert isinstance(vllm, vllm_engine.VllmEngine) and (vllm.tensor_parallel_size, vllm.gpu_memory_utilization, vllm.seed) == (4, 0.9, 3)
    assert "vllm" not in sys.modules  # nothing loads until the first generate
    running = vllm._llm = type("RunningLLM", (), {})()
    freed = weakref.ref(running)
    del running
    vllm.close()  # before another engine starts: the running LLM is let go and collected now
    assert vllm._llm is None and freed() is None


# --- vLLM, without vLLM --------------------------------------------------------------------


def test_engines_module_does_not_import_gpu_packages():
    code = "import sys, specbook.engines, specbook.engines.vllm_engine; print(any(m in sys.modules for m in ('vllm', 'unsloth')))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_the_engine_modules_import_one_another_without_a_circle():
    """Each engine module imports `engines.base` (and the package imports the in-process engines);
    nothing imports back: module-level imports among specbook's modules form no cycle."""
    import ast
    from pathlib import Path

    package = Path(engines.__file__).parent
    imports = {}
    for path in package.glob("*.py"):
        name = "specbook.engines" if path.stem == "__init__" else f"specbook.engines.{path.stem}"
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith("specbook.engines")]
        imports[name] = {n.module for n in top}
    assert imports["specbook.engines.base"] == set() and imports["specbook.engines.vllm_engine"] == {"specbook.engines.base"}

    def reaches(start, goal, seen=()):
        return any(m == goal or (m not in seen and reaches(m, goal, (*seen, m))) for m in imports.get(start, ()))

    assert not [m for m in imports if reaches(m, m)]


def test_the_rank_vllm_is_started_with_is_the_adapters(tmp_path):
    from peft import LoraConfig

    LoraConfig(r=16, lora_alpha=32, rank_pattern={"down_proj": 32}).save_pretrained(tmp_path)
    assert vllm_engine.lora_rank(str(tmp_path)) == 32


def test_vllm_llm_arguments():
    spec = Speculative("draft_model", k=5, draft="data/full/models/draft_cod_easy")
    assert vllm_engine.vllm_llm_kwargs("Qwen/Qwen3-14B", spec, tensor_parallel_size=2, gpu_memory_utilization=0.85, seed=0) == {
        "model": "Qwen/Qwen3-14B",
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.85,
        "seed": 0,
        "speculative_config": {
            "method": "draft_model",
            "model": "data/full/models/draft_cod_easy",
            "num_speculative_tokens": 5,
            "draft_sample_method": "probabilistic",  # else vLLM drafts greedily at any temperature
        },
        "disable_log_stats": False,
        "per_request_spec_decode_metrics": "summary",
    }
    with_adapter = vllm_engine.vllm_llm_kwargs("Qwen/Qwen3-14B", None, 1, 0.85, 0, lora_rank=16)
    assert {k: with_adapter[k] for k in ("enable_lora", "max_lora_rank", "max_loras")} == {
        "enable_lora": True,
        "max_lora_rank": 16,
        "max_loras": 1,
    }
    assert "enable_lora" not in vllm_engine.vllm_llm_kwargs("Qwen/Qwen3-14B", None, 1, 0.85, 0)
    assert "per_request_spec_decode_metrics" not in with_adapter  # vLLM refuses it without speculation
    assert vllm_engine.vllm_llm_kwargs("Qwen/Qwen3-14B", None, 1, 0.85, 0, max_num_seqs=16)["max_num_seqs"] == 16  # a concurrency run
    assert "max_num_seqs" not in vllm_engine.vllm_llm_kwargs("Qwen/Qwen3-14B", None, 1, 0.85, 0)
    assert vllm_engine.vllm_speculative_config(Speculative("ngram", k=4, ngram_max=3)) == {
        "method": "ngram",
        "num_speculative_tokens": 4,
        "prompt_lookup_max": 3,
        "prompt_lookup_min": 1,
    }
    assert vllm_engine.vllm_speculative_config(None) is None
    with pytest.raises(ValueError, match="path or Hub id"):
        vllm_engine.vllm_speculative_config(Speculative("draft_model", k=5, draft=object()))
    assert vllm_engine.vllm_sampling_kwargs(Sampling(256, temperature=0.6, top_p=0.95, seed=3, stop=("\n\n",)), seed=7) == {
        "max_tokens": 256,
        "temperature": 0.6,
        "top_p": 0.95,
        "seed": 7,
        "stop": ["\n\n"],
    }


def _snapshot(records):
    """`LLM.get_metrics()` output rebuilt from its documented JSON form (vllm.v1.metrics.reader)."""
    return [SimpleNamespace(**r) for r in records]


def test_vllm_time_to_first_token_from_recorded_metrics():
    recorded = json.loads((DATA / "vllm_metrics.json").read_text())
    # two data-parallel engines (labels engine 0 and 1), summed, after minus before
    assert vllm_engine.vllm_ttft(_snapshot(recorded["before"]), _snapshot(recorded["after"])) == pytest.approx(0.043)
    assert vllm_engine.vllm_ttft([], _snapshot(recorded["before"])) == pytest.approx(0.7)  # nothing ran before


def test_vllm_counters_from_a_recorded_request():
    recorded = json.loads((DATA / "vllm_spec_decode_metrics.json").read_text())
    c = vllm_engine.vllm_counters(SimpleNamespace(**recorded["spec_decode_metrics"]), recorded["n_tokens"], k=3)
    # 16 accepted (2 steps x 2 + 4 steps x 3); 8 target passes: the prompt's and 7 verify steps
    assert c == {"steps": 8, "proposed": 21, "accepted": 16, "accepted_at": [6, 6, 4]}
    assert metrics.mean_acceptance_length(c["accepted"], c["steps"]) == 3.0  # vLLM's own, over verify steps: 1 + 16 / 7
    assert metrics.acceptance_rate(c["accepted"], c["proposed"]) == pytest.approx(16 / 21)


# --- token-id prompts, resumable generation ----------------------------------------------------


def test_token_id_prompts_without_a_tokenizer(target, draft, tok, prompts, greedy_reference):
    """Chapter 00's models have no tokenizer: engines take token ids and write no text."""
    ids = [tok(p, add_special_tokens=False)["input_ids"] for p in prompts]
    spec = Speculative("draft_model", k=3, draft=draft)
    for engine in (NativeEngine(target), TransformersEngine(target)):
        out = engine.generate(ids, Sampling(max_new_tokens=MAX_NEW), spec)
        assert [g.token_ids for g in out] == greedy_reference and {g.text for g in out} == {""}
        with pytest.raises(ValueError, match="stop strings need the engine's tokenizer"):
            engine.generate(ids, Sampling(max_new_tokens=4, stop=("x",)))


class Interrupted(Exception):
    pass


class FailingAfter:
    """Wraps an engine and raises after `n` calls, as a killed run would stop."""

    def __init__(self, engine, n):
        self.engine, self.n, self.tokenizer, self.calls = engine, n, engine.tokenizer, 0

    def generate(self, prompts, sampling, speculative=None, batch_size=1):
        if self.calls == self.n:
            raise Interrupted
        self.calls += 1
        return self.engine.generate(prompts, sampling, speculative, batch_size)


def test_generate_resumable_resumes_without_losing_or_repeating(target, tok, prompts, tmp_path):
    engine = NativeEngine(target, tok)
    items = [(f"q{i}", p) for i, p in enumerate(prompts)]
    sampling = Sampling(max_new_tokens=12, temperature=1.0, seed=3)
    path = tmp_path / "rows.jsonl"
    with pytest.raises(Interrupted):
        engines.generate_resumable(FailingAfter(engine, 2), items, sampling, path)
    assert [r["key"] for r in jsonl.read(path)] == ["q0", "q1"]
    with open(path, "a") as f:
        f.write('{"key": "q2", "te')  # killed while writing the next row
    resumed = FailingAfter(engine, 99)
    rows = engines.generate_resumable(resumed, items, sampling, path)
    assert resumed.calls == 1 and [r["key"] for r in jsonl.read(path)] == ["q0", "q1", "q2"]
    # item i is seeded seed + i wherever the run stopped: the rows equal one uninterrupted run's
    whole = engines.generate_resumable(engine, items, sampling, tmp_path / "whole.jsonl")
    assert rows == whole and list(rows) == ["q0", "q1", "q2"]
    first = whole["q0"]
    (g,) = engine.generate(prompts[:1], sampling)
    assert first == {"key": "q0", "text": g.text, "tokens": len(g.token_ids), "finish_reason": g.finish_reason}
    with pytest.raises(ValueError, match="1 duplicate keys"):
        engines.generate_resumable(engine, items + items[:1], sampling, tmp_path / "dup.jsonl")


def test_generate_resumable_in_batches_resumes_to_the_one_at_a_time_answers(target, tok, prompts, tmp_path):
    engine = NativeEngine(target, tok)
    items = [(f"q{i}", p) for i, p in enumerate(prompts)]
    greedy = Sampling(max_new_tokens=12)
    path = tmp_path / "rows.jsonl"
    with pytest.raises(Interrupted):
        engines.generate_resumable(FailingAfter(engine, 1), items, greedy, path, batch_size=2)
    assert [r["key"] for r in jsonl.read(path)] == ["q0", "q1"]  # the first batch, whole
    resumed = FailingAfter(engine, 99)
    rows = engines.generate_resumable(resumed, items, greedy, path, batch_size=2)
    assert resumed.calls == 1 and [r["key"] for r in jsonl.read(path)] == ["q0", "q1", "q2"]
    assert rows == engines.generate_resumable(engine, items, greedy, tmp_path / "one_at_a_time.jsonl")
