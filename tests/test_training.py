"""Chapter 02's lib: the SFT format (loss on the assistant's tokens only), LoRA fine-tuning with
TRL + peft, adapters reused on re-run, merging."""

import dataclasses
import os

import pytest
import torch

from specbook import models, profiles, tokens, training
from specbook.prompts import STUDENT_SYSTEM, chat_prompt

ROWS = [
    {"question": f"How many legs are there in total if you have {n} ducks?", "rationale": f"duck {n}*2={2 * n}\nAnswer: {2 * n}"}
    for n in range(1, 11)
]


@pytest.fixture(scope="module")
def tok():
    texts = [r["question"] + " " + r["rationale"] for r in ROWS] * 5 + list(STUDENT_SYSTEM.values())
    return tokens.train_tokenizer(texts, vocab_size=300, split_digits=True)


@pytest.fixture(scope="module")
def sft_cfg():
    sft = profiles.load("smoke").sft
    return dataclasses.replace(
        sft, args=dataclasses.replace(sft.args, per_device_train_batch_size=4, num_train_epochs=2, max_length=256, learning_rate=5e-3)
    )


def test_encode_masks_the_prompt(tok):
    row = ROWS[2]
    enc = training.encode(tok, row["question"], row["rationale"], "cod", max_length=512)
    prompt = chat_prompt(tok, STUDENT_SYSTEM["cod"], row["question"])
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert enc["completion_mask"] == [0] * n_prompt + [1] * (len(enc["input_ids"]) - n_prompt)
    assert tok.decode(enc["input_ids"][:n_prompt]) == prompt  # the inference prompt, exactly
    assert tok.decode(enc["input_ids"][n_prompt:]) == "duck 3*2=6\nAnswer: 6<|im_end|>"
    assert not enc["truncated"]
    short = training.encode(tok, row["question"], row["rationale"], "cod", max_length=10)
    assert len(short["input_ids"]) == 10 and short["truncated"]


def test_prompt_tokens_carry_no_loss_in_the_trainer(tok, sft_cfg, tmp_path, tiny_model):
    """What SFTTrainer actually feeds the model: labels are -100 wherever the mask is 0."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model = tiny_model(len(tok), 0).float()
    encoded = [training.encode(tok, r["question"], r["rationale"], "cot", 256) for r in ROWS[:2]]
    for e in encoded:
        e.pop("truncated")
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**training.sft_kwargs(sft_cfg, tmp_path, 0, checkpointing=False)),
        train_dataset=Dataset.from_list(encoded),
        eval_dataset=Dataset.from_list(encoded),
        processing_class=tok,
        peft_config=LoraConfig(task_type="CAUSAL_LM", **training.lora_kwargs(sft_cfg.lora)),
    )
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        labels = batch["labels"][i].tolist()
        assert labels[:n] == [t if m else -100 for t, m in zip(e["input_ids"], e["completion_mask"], strict=True)]
        assert set(labels[n:]) <= {-100}  # padding carries no loss either


def test_full_profile_mirrors_the_reference_run():
    cfg = profiles.load("full").sft
    assert training.lora_kwargs(cfg.lora) == {
        "r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "bias": "none",
        "modules_to_save": None,
        "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    }
    kw = training.sft_kwargs(cfg, "out", seed=0, checkpointing=True)
    assert (kw["learning_rate"], kw["lr_scheduler_type"], kw["warmup_steps"], kw["num_train_epochs"], kw["max_length"], kw["bf16"]) == (
        2e-4,
        "cosine",
        0.03,
        3,
        2048,
        True,
    )
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (4, 4)
    from transformers import TrainingArguments

    renamed = "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
    name = "activation_checkpointing" if renamed else "gradient_checkpointing"
    assert kw["completion_only_loss"] and kw[name]  # the installed transformers' name (5.23 renamed it)


def test_every_sft_arg_is_a_trl_argument():
    """The profile's `sft.args` keys are TRL's own: SFTConfig takes them as they are."""
    from trl import SFTConfig

    for name in ("smoke", "tiny"):
        cfg = profiles.load(name).sft
        config = SFTConfig(**training.sft_kwargs(cfg, "out", seed=0, checkpointing=False))
        for key, value in dataclasses.asdict(cfg.args).items():
            assert getattr(config, key) == value


@pytest.mark.parametrize("cuda, unsloth, expected", [(False, True, "peft"), (True, False, "peft"), (True, True, "unsloth")])
def test_backend_needs_cuda_and_unsloth_and_imports_unsloth_before_transformers(tmp_path, cuda, unsloth, expected):
    """Unsloth patches transformers, trl and peft only if they are imported after it."""
    import subprocess
    import sys

    if unsloth:  # a stand-in that notes whether transformers came first
        (tmp_path / "unsloth.py").write_text("import sys\nFIRST = 'transformers' not in sys.modules\n")
    code = (
        f"import sys, torch; torch.cuda.is_available = lambda: {cuda}\n"
        "from specbook import training\n"
        "print(training.backend(), getattr(sys.modules.get('unsloth'), 'FIRST', None))"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True, check=True)
    assert run.stdout.split() == [expected, "True" if expected == "unsloth" else "None"]


@pytest.mark.parametrize("chapter", ["02_training", "03_distillation"])
def test_the_chapters_that_train_choose_their_backend_before_transformers_is_imported(chapter):
    from specbook.paths import NOTEBOOKS

    source = (NOTEBOOKS / f"{chapter}.py").read_text()
    assert source.index("training.backend()") < source.index("pretraining.base_tokenizer(")  # the chapter's first use of transformers


def test_held_out_rows_are_the_last_and_never_all():
    rows = [{"i": i} for i in range(5)]
    assert training.split_held_out(rows, 2) == (rows[:3], rows[3:])
    for n in (0, 5):
        with pytest.raises(ValueError, match=f"sft.eval_rows is {n} but the level has 5 training rows"):
            training.split_held_out(rows, n)


def test_a_levels_budget_takes_the_first_rows_and_holds_out_the_same_ones(sft_cfg):
    rows = [{"i": i} for i in range(10)]
    budget = dataclasses.replace(sft_cfg, eval_rows=2, train_rows={"easy": 3, "medium": 8, "hard": 20})
    assert training.target_rows(rows, budget, "easy") == (rows[:3], rows[8:])
    assert training.target_rows(rows, budget, "hard") == training.target_rows(rows, dataclasses.replace(budget, train_rows=None), "hard")
    assert training.target_rows(rows, budget, "hard") == (rows[:8], rows[8:])


def test_finetune_learns_saves_an_adapter_and_is_skipped_on_rerun(tok, sft_cfg, tmp_path):
    from conftest import tiny_shape

    base = tmp_path / "base"
    model = models.untrained(tiny_shape(), len(tok), seed=0)
    model.config.eos_token_id = tok.eos_token_id
    model.save_pretrained(base)
    tok.save_pretrained(base)
    out = tmp_path / "target_cod_easy"
    report = training.finetune(str(base), tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    assert report["backend"] == training.backend() and report["train_rows"] == 8 and report["eval_rows"] == 2
    assert report["curve"][-1]["loss"] < report["curve"][0]["loss"]
    assert len(report["eval_curve"]) == 2  # one eval per epoch
    assert (out / "adapter_config.json").exists() and (out / "tokenizer_config.json").exists()
    full = sum(p.numel() for p in model.parameters())
    assert 0 < report["trainable_parameters"] < full / 2  # only the LoRA matrices train
    # merging folds the adapter in: the merged model computes what the adapted one does
    from peft import AutoPeftModelForCausalLM

    adapted = AutoPeftModelForCausalLM.from_pretrained(str(out)).eval()
    ids = torch.tensor([[5, 6, 7, 8]])
    merged_dir = training.merge(out, tmp_path / "merged")
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(merged_dir).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, adapted(input_ids=ids).logits, atol=1e-4, rtol=1e-4)
    mtime = os.path.getmtime(out / "adapter_model.safetensors")
    again = training.finetune(str(base), tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    assert again["curve"] == report["curve"] and os.path.getmtime(out / "adapter_model.safetensors") == mtime


def _base(tok, tmp_path):
    from conftest import tiny_shape

    base = tmp_path / "base"
    model = models.untrained(tiny_shape(), len(tok), seed=0)
    model.config.eos_token_id = tok.eos_token_id
    model.save_pretrained(base)
    tok.save_pretrained(base)
    return str(base)


def _killed_before_the_adapter_was_saved(out):
    """What a run stopped after its last checkpoint leaves: checkpoints, no adapter, no manifest."""
    for path in out.iterdir():
        if path.is_file():
            path.unlink()
    assert any((out / "checkpoints").glob("checkpoint-*"))


def test_a_run_killed_after_its_last_checkpoint_resumes_to_the_same_adapter_and_curves(tok, sft_cfg, tmp_path):
    base = _base(tok, tmp_path)
    out = tmp_path / "target"
    report = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    adapter = (out / "adapter_model.safetensors").read_bytes()
    _killed_before_the_adapter_was_saved(out)
    resumed = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    assert (out / "adapter_model.safetensors").read_bytes() == adapter
    assert report["resumed_from_step"] == 0 and resumed["resumed_from_step"] == report["curve"][-1]["step"]
    assert resumed["curve"] == report["curve"]
    assert [e["step"] for e in resumed["eval_curve"]] == [e["step"] for e in report["eval_curve"]]
    assert resumed["eval_curve"][-1]["eval_loss"] == pytest.approx(report["eval_curve"][-1]["eval_loss"], rel=1e-6)


def test_checkpoints_of_other_settings_are_cleared_not_resumed(tok, sft_cfg, tmp_path):
    base = _base(tok, tmp_path)
    out = tmp_path / "target"
    training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    old_adapter = (out / "adapter_model.safetensors").read_bytes()
    _killed_before_the_adapter_was_saved(out)
    faster = dataclasses.replace(sft_cfg, args=dataclasses.replace(sft_cfg.args, learning_rate=2e-2))
    training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", faster, out, seed=0)
    clean = tmp_path / "clean"
    training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", faster, clean, seed=0)
    adapter = (out / "adapter_model.safetensors").read_bytes()
    assert adapter == (clean / "adapter_model.safetensors").read_bytes() and adapter != old_adapter


def test_without_lora_every_weight_trains_and_the_folder_is_a_plain_model(tok, sft_cfg, tmp_path):
    from transformers import AutoModelForCausalLM

    base = _base(tok, tmp_path)
    out = tmp_path / "draft_distilled_cod_easy"
    report = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", dataclasses.replace(sft_cfg, lora=None), out, seed=0)
    trained = AutoModelForCausalLM.from_pretrained(out)
    assert report["trainable_parameters"] == sum(p.numel() for p in trained.parameters())
    assert report["curve"][-1]["loss"] < report["curve"][0]["loss"] and not (out / "adapter_config.json").exists()
    assert training.merge(out, tmp_path / "merged") == out and not (tmp_path / "merged").exists()  # nothing to merge
    before = AutoModelForCausalLM.from_pretrained(base).state_dict()
    assert all(not torch.equal(before[name], value) for name, value in trained.state_dict().items())


def test_the_white_box_teacher_runs_once_per_row(tok, sft_cfg, tmp_path, monkeypatch):
    """Its top k at each rationale token are kept: later epochs and the evaluations reuse them."""
    teacher_dir = _base(tok, tmp_path)
    calls = []
    original = training.teacher_top_k
    monkeypatch.setattr(training, "teacher_top_k", lambda *a: calls.append(1) or original(*a))
    cfg = dataclasses.replace(sft_cfg, lora=None, args=dataclasses.replace(sft_cfg.args, num_train_epochs=3))
    report = training.finetune(teacher_dir, tok, ROWS[:8], ROWS[8:], "cod", cfg, tmp_path / "white_box", seed=0, teacher=teacher_dir)
    assert len(calls) == 10  # 8 training rows and 2 held out, over 3 epochs and 3 evaluations
    # the student starts as the (untrained, flat) teacher: its loss is the mass outside the teacher's
    # top k (-log of what they hold), which training moves onto them
    assert report["curve"][-1]["loss"] < report["curve"][0]["loss"] and report["eval_curve"][-1]["eval_loss"] >= 0


class Killed(Exception):
    """Stands for a kill: training stops between two checkpoints and nothing after it runs."""


@pytest.mark.parametrize("method", ["distilled", "white_box"])
def test_a_draft_killed_mid_training_resumes_to_the_same_bytes(method, tok, sft_cfg, tmp_path, monkeypatch):
    """Chapter 03's drafts (every weight trained; white box: the target's distribution is the loss)
    stopped after step 5 of 8, with a checkpoint at step 3: the resumed draft is byte for byte the
    draft of an uninterrupted run."""
    from transformers.trainer_callback import ProgressCallback

    base = _base(tok, tmp_path)
    teacher = base if method == "white_box" else None
    cfg = dataclasses.replace(sft_cfg, lora=None, args=dataclasses.replace(sft_cfg.args, per_device_train_batch_size=2))
    every_3_steps = training.sft_kwargs
    monkeypatch.setattr(training, "sft_kwargs", lambda *a, **k: {**every_3_steps(*a, **k), "save_steps": 3})
    whole = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", cfg, tmp_path / "whole", seed=0, teacher=teacher)
    assert whole["curve"][-1]["step"] == 8

    def killed_at_step_5(self, args, state, control, **kwargs):
        if state.global_step == 5:
            raise Killed

    out = tmp_path / "killed"
    with monkeypatch.context() as m:
        m.setattr(ProgressCallback, "on_step_end", killed_at_step_5)
        with pytest.raises(Killed):
            training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", cfg, out, seed=0, teacher=teacher)
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-3"] and not (out / "model.safetensors").exists()
    resumed = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", cfg, out, seed=0, teacher=teacher)
    assert resumed["resumed_from_step"] == 3
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "whole" / "model.safetensors").read_bytes()


def test_a_fine_tune_started_from_an_adapter_trains_that_adapter_on(tok, sft_cfg, tmp_path):
    """sft.curriculum: the level's target goes on from the adapter below. At learning rate 0 what comes
    back is exactly the adapter it started from; a fine-tune without one starts from a new adapter."""
    from safetensors.torch import load_file

    base = _base(tok, tmp_path)
    below = tmp_path / "target_cod_easy"
    training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, below, seed=0)
    still = dataclasses.replace(sft_cfg, args=dataclasses.replace(sft_cfg.args, learning_rate=0.0))
    went_on = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", still, tmp_path / "on", seed=0, start_from=below)
    fresh = training.finetune(base, tok, ROWS[:8], ROWS[8:], "cod", still, tmp_path / "fresh", seed=0)
    trained, kept, new = (load_file(d / "adapter_model.safetensors") for d in (below, tmp_path / "on", tmp_path / "fresh"))
    assert kept.keys() == trained.keys() and all(torch.equal(kept[k], trained[k]) for k in trained)
    lora_b = [k for k in new if "lora_B" in k]
    assert lora_b and all(not new[k].any() for k in lora_b) and all(trained[k].any() for k in lora_b)
    assert went_on["eval_curve"][-1]["eval_loss"] < fresh["eval_curve"][-1]["eval_loss"]


def test_peft_lora_layer_computes_w_x_plus_the_scaled_low_rank_update():
    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 6, bias=False)
    A, B = torch.randn(2, 8), torch.randn(6, 2)
    x = torch.randn(3, 8)
    peft_layer = training.peft_lora_layer(layer, A, B, r=2, alpha=4)
    torch.testing.assert_close(peft_layer(x), layer(x) + (4 / 2) * x @ A.T @ B.T)
