"""Chapter 02's lib: base-model pretraining, the SFT format (loss on the assistant's tokens only),
LoRA fine-tuning with TRL + peft, adapters reused on re-run, merging."""
import dataclasses
import os

import pytest
import torch

from specbook import engines, models, profiles, tokens, training
from specbook.profiles import ModelShape
from specbook.prompts import STUDENT_SYSTEM

SHAPE = ModelShape(layers=1, hidden=32, mlp=64, heads=2, kv_heads=1, head_dim=16)
ROWS = [{"question": f"How many legs are there in total if you have {n} ducks?", "rationale": f"duck {n}*2={2 * n}\nAnswer: {2 * n}"}
        for n in range(1, 11)]


@pytest.fixture(scope="module")
def tok():
    texts = [r["question"] + " " + r["rationale"] for r in ROWS] * 5 + list(STUDENT_SYSTEM.values())
    return tokens.train_tokenizer(texts, vocab_size=300, split_digits=True)


@pytest.fixture(scope="module")
def sft_cfg():
    return dataclasses.replace(profiles.load("smoke").sft, batch_size=4, epochs=2, max_length=256, learning_rate=5e-3)


def test_encode_masks_the_prompt(tok):
    row = ROWS[2]
    enc = training.encode(tok, row["question"], row["rationale"], "cod", max_length=512)
    prompt = engines.chat_prompt(tok, STUDENT_SYSTEM["cod"], row["question"])
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert enc["completion_mask"] == [0] * n_prompt + [1] * (len(enc["input_ids"]) - n_prompt)
    assert tok.decode(enc["input_ids"][:n_prompt]) == prompt  # the inference prompt, exactly
    assert tok.decode(enc["input_ids"][n_prompt:]) == "duck 3*2=6\nAnswer: 6<|im_end|>"
    assert not enc["truncated"]
    short = training.encode(tok, row["question"], row["rationale"], "cod", max_length=10)
    assert len(short["input_ids"]) == 10 and short["truncated"]


def test_prompt_tokens_carry_no_loss_in_the_trainer(tok, sft_cfg, tmp_path):
    """What SFTTrainer actually feeds the model: labels are -100 wherever the mask is 0."""
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    model = models.untrained(SHAPE, len(tok), seed=0)
    encoded = [training.encode(tok, r["question"], r["rationale"], "cot", 256) for r in ROWS[:2]]
    for e in encoded:
        e.pop("truncated")
    trainer = SFTTrainer(model=model, args=SFTConfig(**training.sft_kwargs(sft_cfg, tmp_path, 0, checkpointing=False)),
                         train_dataset=Dataset.from_list(encoded), eval_dataset=Dataset.from_list(encoded), processing_class=tok,
                         peft_config=LoraConfig(task_type="CAUSAL_LM", **training.lora_kwargs(sft_cfg)))
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for i, e in enumerate(encoded):
        n = len(e["input_ids"])
        labels = batch["labels"][i].tolist()
        assert labels[:n] == [t if m else -100 for t, m in zip(e["input_ids"], e["completion_mask"])]
        assert set(labels[n:]) <= {-100}  # padding carries no loss either


def test_full_profile_mirrors_the_reference_run():
    cfg = profiles.load("full").sft
    assert training.lora_kwargs(cfg) == {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "bias": "none", "modules_to_save": None, "target_modules": [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]}
    kw = training.sft_kwargs(cfg, "out", seed=0, checkpointing=True)
    assert (kw["learning_rate"], kw["lr_scheduler_type"], kw["warmup_steps"], kw["num_train_epochs"], kw["max_length"], kw["bf16"]) == (
        2e-4, "cosine", 0.03, 3, 2048, True)
    assert kw["completion_only_loss"] and kw["activation_checkpointing"]


def test_backend_here_is_peft():
    assert training.backend() == "peft"  # no CUDA on this machine: the choice is made, and reported


def test_pretraining_lowers_the_loss_and_base_models_are_reused(tok, tmp_path):
    cfg = dataclasses.replace(profiles.load("smoke").models, target_shape=SHAPE, draft_shape=SHAPE)
    cfg = dataclasses.replace(cfg, pretrain=dataclasses.replace(cfg.pretrain, seq_len=32, target_steps=40, draft_steps=20))
    documents = [r["question"] + "\n" + r["rationale"].split("Answer: ")[1] for r in ROWS]
    built = models.base_models(cfg, tok, documents, tmp_path, seed=0)
    curve = built["target"]["curve"]
    assert curve[-1]["loss"] < curve[0]["loss"] - 0.5
    assert [c["step"] for c in built["draft"]["curve"]] == [10, 20]
    loaded = engines.NativeEngine.load(built["target"]["path"])  # loads like any Hub model, tokenizer included
    assert loaded.model.config.num_hidden_layers == 1 and loaded.eos == {tok.eos_token_id}
    mtime = os.path.getmtime(tmp_path / "base_target" / "model.safetensors")
    again = models.base_models(cfg, tok, documents, tmp_path, seed=0)
    assert again["target"]["curve"] == curve and os.path.getmtime(tmp_path / "base_target" / "model.safetensors") == mtime


def test_finetune_learns_saves_an_adapter_and_is_skipped_on_rerun(tok, sft_cfg, tmp_path):
    base = tmp_path / "base"
    model = models.untrained(SHAPE, len(tok), seed=0)
    model.config.eos_token_id = tok.eos_token_id
    model.save_pretrained(base)
    tok.save_pretrained(base)
    out = tmp_path / "target_cod_easy"
    report = training.finetune(str(base), tok, ROWS[:8], ROWS[8:], "cod", sft_cfg, out, seed=0)
    assert report["backend"] == "peft" and report["train_rows"] == 8 and report["eval_rows"] == 2
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
