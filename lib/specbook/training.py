"""LoRA supervised fine-tuning of a target on one style's rationales (chapter 02).

One chat format for training and inference: the style's system prompt, the question as the user
turn, the rationale as the assistant turn ending with <|im_end|>. The prompt is rendered by
`prompts.chat_prompt`, the function every engine's caller uses, with Qwen3's thinking switched
off (`enable_thinking=False`: Qwen3's template then puts an empty <think></think> block in the
prompt, at training and at inference alike). Loss falls on the assistant tokens only.

Two backends, one data path (pre-tokenized rows with a completion mask, trained by TRL's
SFTTrainer): Unsloth (`FastLanguageModel`) when a CUDA GPU and unsloth are present, else
transformers + peft. The choice is returned and shown, never silent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from specbook import models
from specbook.prompts import STUDENT_SYSTEM, chat_prompt
from specbook.stages import Stage, checked_hash

TRAINING_LOG = "log.jsonl"  # in a fine-tune's checkpoints folder: every log dict the Trainer wrote

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def encode(tokenizer, question: str, rationale: str, style: str, max_length: int) -> dict:
    """Token ids of one training example and its completion mask (1 on the assistant's tokens)."""
    prompt_ids = tokenizer(chat_prompt(tokenizer, STUDENT_SYSTEM[style], question), add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(rationale + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = prompt_ids + completion_ids
    mask = [0] * len(prompt_ids) + [1] * len(completion_ids)
    return {"input_ids": ids[:max_length], "completion_mask": mask[:max_length], "truncated": len(ids) > max_length}


def peft_lora_layer(layer, A, B, r: int, alpha: float):
    """peft's LoRA around a copy of one linear `layer`, holding the given A and B: the reference
    chapter 02 checks its written-out layer against."""
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    holder = torch.nn.Module()
    holder.proj = copy.deepcopy(layer)
    model = get_peft_model(holder, LoraConfig(r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0))
    with torch.no_grad():
        model.base_model.model.proj.lora_A["default"].weight.copy_(A)
        model.base_model.model.proj.lora_B["default"].weight.copy_(B)
    return model.base_model.model.proj


def backend() -> str:
    """'unsloth' when a CUDA GPU and unsloth are present, else 'peft'. Choosing Unsloth imports it at
    once: it patches transformers, trl and peft as it loads, and only those imported after it (the
    chapters that train ask for the backend before anything imports transformers)."""
    import importlib.util

    import torch

    if torch.cuda.is_available() and importlib.util.find_spec("unsloth"):
        import unsloth  # noqa: F401

        return "unsloth"
    return "peft"


def lora_kwargs(cfg) -> dict:
    """peft's LoraConfig (and Unsloth's get_peft_model) arguments from the profile's `sft.lora`."""
    return {**dataclasses.asdict(cfg), "modules_to_save": list(cfg.modules_to_save) or None, "bias": "none"}


def sft_kwargs(cfg, output_dir: Path, seed: int, checkpointing: bool, logging_steps: int = 10) -> dict:
    """TRL SFTConfig arguments: the profile's `sft.args` as they are, and what every run shares. The
    rows arrive tokenized with a completion mask, so `completion_only_loss` puts the loss on the
    rationale alone. `checkpointing`: activation checkpointing by transformers (on a GPU without
    Unsloth, which brings its own), under the installed transformers' name for it: 5.23 renamed
    `gradient_checkpointing` to `activation_checkpointing`, and the GPU environment is held below
    that by unsloth and vllm."""
    from transformers import TrainingArguments

    renamed = "activation_checkpointing" in {f.name for f in dataclasses.fields(TrainingArguments)}
    return {
        **dataclasses.asdict(cfg.args),
        "output_dir": str(output_dir),
        # Random batches. Grouping them by length saves some padding but left the tiny CoT target
        # at a held-out loss several times higher after the same 3 epochs (batches of one length are of one kind).
        "per_device_eval_batch_size": cfg.args.per_device_train_batch_size,
        "completion_only_loss": True,
        "activation_checkpointing" if renamed else "gradient_checkpointing": checkpointing,
        "eval_strategy": "epoch",
        "logging_steps": logging_steps,
        "save_strategy": "steps",
        "save_steps": 200,
        "save_total_limit": 1,
        "report_to": "none",
        "seed": seed,
        "data_seed": seed,
        "disable_tqdm": False,
    }


def split_held_out(rows: list[dict], n: int) -> tuple[list[dict], list[dict]]:
    """The rows to train on and the last `n`, held out for the evaluation loss."""
    if not 0 < n < len(rows):
        raise ValueError(
            f"sft.eval_rows is {n} but the level has {len(rows)} training rows: hold out at least one and keep at least one to train on"
        )
    return rows[:-n], rows[-n:]


def target_rows(rows: list[dict], cfg, level: str) -> tuple[list[dict], list[dict]]:
    """A level's rows for tuning its targets (profile `sft`): the last `eval_rows` held out, and of
    the rest the first `train_rows[level]` (all where the profile sets none). The held-out rows are
    the same whatever the budget, so that evaluation losses compare."""
    train, held_out = split_held_out(rows, cfg.eval_rows)
    return (train if cfg.train_rows is None else train[: cfg.train_rows[level]]), held_out


def finetune(
    base: str,
    tokenizer,
    train_rows: list[dict],
    eval_rows: list[dict],
    style: str,
    cfg,
    out_dir: Path,
    seed: int,
    teacher: str | None = None,
    start_from: str | Path | None = None,
) -> dict:
    """Train a LoRA adapter of `base` on rows (question, rationale) and save it to out_dir.
    Skipped when out_dir holds an adapter made from the same base, data and settings; an
    interrupted run resumes from its last checkpoint when that was made with the same ones.
    `cfg.lora` None: every weight is trained and out_dir holds a plain model.
    `teacher` (a model path, or a LoRA adapter folder: merged in memory): white-box distillation, the
    loss is the forward KL divergence from the teacher's next-token distribution (its
    `TEACHER_TOP_K` most likely tokens) to the model's over the rationale's tokens
    (`distillation_loss`), instead of the cross-entropy on the rationale's tokens alone.
    `start_from` (a LoRA adapter folder of `base`): that adapter is trained further instead of a new
    one (the profile's `sft.curriculum`: a level's target starts where the level below ended)."""
    out_dir = Path(out_dir)
    stage = Stage(
        out_dir,
        params={
            "base": base,
            "style": style,
            "sft": dataclasses.asdict(cfg),
            "seed": seed,
            "rows": _rows_digest(train_rows, eval_rows),
            "base_weights": _weights(base),
            **({"start_from": str(start_from), "start_weights": _weights(start_from)} if start_from else {}),
            **({"teacher": teacher, "teacher_weights": _weights(teacher), "teacher_top_k": TEACHER_TOP_K} if teacher else {}),
        },
    )
    if stage.done():
        return {**stage.summary(), "built_at": stage.manifest()["commit"]}
    models.free_memory()  # what an engine before it left on the GPU
    which = backend()
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = cfg.args
    train = [encode(tokenizer, r["question"], r["rationale"], style, args.max_length) for r in train_rows]
    held_out = [encode(tokenizer, r["question"], r["rationale"], style, args.max_length) for r in eval_rows]
    truncated = sum(e.pop("truncated") for e in train + held_out)
    checkpoints = stage.work_folder("checkpoints")  # another run's checkpoints are cleared, never resumed
    total_steps = math.ceil(len(train) / (args.per_device_train_batch_size * args.gradient_accumulation_steps)) * args.num_train_epochs
    checkpointing = which == "peft" and torch.cuda.is_available()
    sft_config = SFTConfig(**sft_kwargs(cfg, checkpoints, seed, checkpointing, max(1, int(total_steps // 40))))
    full = cfg.lora is None  # every weight trained: the saved folder is a plain model, not an adapter
    peft_config = None
    if which == "unsloth":
        from unsloth import FastLanguageModel

        # an adapter folder loads its base with the adapter trainable (Unsloth's loader: PeftModel, is_trainable=True)
        model, _ = FastLanguageModel.from_pretrained(
            model_name=str(start_from or base),
            max_seq_length=args.max_length,
            dtype=None,
            load_in_4bit=False,
            full_finetuning=full,
            use_exact_model_name=True,  # else Qwen/Qwen3-14B is swapped for unsloth/Qwen3-14B: a second download, another base
        )
        if not full and not start_from:
            lora = lora_kwargs(cfg.lora)
            model = FastLanguageModel.get_peft_model(model, **lora, use_gradient_checkpointing="unsloth", random_state=seed)
    else:
        from peft import LoraConfig
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16 if args.bf16 else torch.float32)
        if start_from:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(start_from), is_trainable=True)
        elif not full:
            peft_config = LoraConfig(task_type="CAUSAL_LM", **lora_kwargs(cfg.lora))
    trainer_class = SFTTrainer if teacher is None else _distillation_trainer(SFTTrainer, _load(teacher), TEACHER_TOP_K)
    trainer = trainer_class(
        model=model,
        args=sft_config,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(held_out),
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    # tqdm's bar in every front end (transformers picks an HTML table inside any kernel, which a
    # headless run cannot show): `make run-all` forwards it to the terminal, JupyterLab draws it
    from transformers.trainer_callback import ProgressCallback
    from transformers.utils.notebook import NotebookProgressCallback

    class TrainingBar(ProgressCallback):
        def on_prediction_step(self, *args, **kwargs):
            pass  # no evaluation bar nested under the training bar: its cursor moves leave escape codes in a notebook

        def on_log(self, args, state, control, logs=None, **kwargs):
            # the Trainer's log dicts go to the run's log file, not into the chapter (its loss curves show them)
            if state.is_world_process_zero and logs:
                with open(checkpoints / TRAINING_LOG, "a") as f:
                    f.write(json.dumps({"step": state.global_step, **logs}) + "\n")

    for shown in (NotebookProgressCallback, ProgressCallback):
        trainer.remove_callback(shown)
    trainer.add_callback(TrainingBar)
    resumed_from = max((int(p.name.removeprefix("checkpoint-")) for p in checkpoints.glob("checkpoint-*")), default=0)
    with _library_bars_off():  # the training bar is the one bar while it trains and saves
        start = time.perf_counter()
        trainer.train(resume_from_checkpoint=resumed_from > 0)
        history = trainer.state.log_history
        if not any(h.get("step") == trainer.state.global_step and "eval_loss" in h for h in history):
            trainer.evaluate()  # resumed from a checkpoint saved before the last epoch's evaluation
        seconds = time.perf_counter() - start
        trainer.save_model(str(out_dir))
        tokenizer.save_pretrained(out_dir)
    summary = {
        "backend": which,
        "seconds": seconds,  # of this run: a resumed one counts from its checkpoint
        "resumed_from_step": resumed_from,
        "train_rows": len(train),
        "eval_rows": len(held_out),
        "truncated": truncated,
        "train_tokens": sum(sum(e["completion_mask"]) for e in train),
        "trainable_parameters": sum(p.numel() for p in trainer.model.parameters() if p.requires_grad),
        "curve": [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h],
        "eval_curve": [{"step": h["step"], "eval_loss": h["eval_loss"]} for h in history if "eval_loss" in h],
    }
    stage.finish(summary)
    del trainer, model
    models.free_memory()  # the next engine or fine-tune needs the GPU
    return {**summary, "built_at": stage.manifest()["commit"]}


@contextlib.contextmanager
def _library_bars_off():
    """transformers' own bars off, then as they were: a model trained in full writes its
    checkpoints with a bar of its own, which nests in the training bar and leaves terminal escape
    codes in an executed notebook. Only around training: a download's bar stays visible."""
    from transformers.utils import logging as transformers_logging

    shown = transformers_logging.is_progress_bar_enabled()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        if shown:
            transformers_logging.enable_progress_bar()


def _load(model: str) -> PreTrainedModel:
    """A model path or Hub id, or a LoRA adapter folder (its base with the adapter merged in memory)."""
    return merged(model) if (Path(model) / "adapter_config.json").exists() else models.load_causal_lm(model)


def _weights(model: str) -> dict[str, str]:
    """The hashes of a local model's weight files (a Hub id: none, it is named by its id)."""
    return {p.name: checked_hash(p) for p in sorted(Path(model).glob("*.safetensors"))} if Path(model).is_dir() else {}


# The teacher's distribution at each rationale token, kept as its most likely tokens: the tail
# holds almost no mass, and k log-probabilities per token can be kept for every row at any scale,
# so the teacher runs once per row, not once per row and epoch.
TEACHER_TOP_K = 32


def teacher_top_k(teacher_logits, labels, k: int):
    """The teacher's k largest log-probabilities and their token ids at the positions that predict a
    rationale token (label not -100), in row-major order: ([n, k], [n, k])."""
    import torch.nn.functional as F

    mask = labels[:, 1:] != -100
    logprobs = F.log_softmax(teacher_logits[:, :-1][mask].float(), dim=-1)
    return logprobs.topk(min(k, logprobs.shape[-1]), dim=-1)


def distillation_loss(student_logits, teacher_logprobs, teacher_ids, labels, num_items: int | None = None):
    """Forward KL(teacher || student) per rationale token (label not -100), averaged over them: the
    student learns the teacher's whole next-token distribution, not only the token the teacher
    wrote (DistillSpec; GKD with beta 0 on the teacher's own outputs). The teacher's distribution
    is its top k (`teacher_top_k`), renormalised; with k the whole vocabulary it is the exact KL.
    student_logits [batch, length, vocab] predict the next token; labels [batch, length] as the model takes them.
    `num_items`: divide the summed KL by this many tokens instead (the Trainer's `num_items_in_batch`:
    every rationale token of the batches accumulated into one optimizer step, so that their losses add
    up to the mean over all of them, as cross-entropy's do)."""
    import torch.nn.functional as F

    mask = labels[:, 1:] != -100
    student = F.log_softmax(student_logits[:, :-1][mask].float(), dim=-1).gather(-1, teacher_ids)
    teacher = teacher_logprobs - teacher_logprobs.logsumexp(-1, keepdim=True)
    per_token = (teacher.exp() * (teacher - student)).sum(-1)
    return per_token.mean() if num_items is None else per_token.sum() / num_items


def sequences(inputs) -> list[tuple[int, int, int]]:
    """(row, start, end) of each training sequence in a batch. Padded batches hold one per row;
    padding-free ones (TRL's, and Unsloth's default on recent GPUs) are flattened into one row whose
    `position_ids` start again at 0 with each sequence."""
    ids = inputs["input_ids"]
    if "attention_mask" in inputs or "position_ids" not in inputs:
        return [(b, 0, ids.shape[1]) for b in range(ids.shape[0])]
    spans = []
    for b, positions in enumerate(inputs["position_ids"]):
        starts = [*(positions == 0).nonzero().flatten().tolist(), len(positions)]
        spans += [(b, s, e) for s, e in zip(starts, starts[1:], strict=False)]
    return spans


def _distillation_trainer(base_class, teacher, k: int):
    """`base_class` (TRL's SFTTrainer) with `distillation_loss` against `teacher` (a loaded model,
    frozen). The teacher's top k at each sequence's rationale tokens are kept by sequence (its token
    ids, whatever batch it comes in, padded or flattened), so the teacher runs in the first epoch only."""
    import torch

    teacher.eval().requires_grad_(False)
    kept: dict[bytes, tuple] = {}

    class DistillationTrainer(base_class):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            forward = {name: value for name, value in inputs.items() if name != "labels"}
            ids, labels = inputs["input_ids"], inputs["labels"]
            mask = inputs.get("attention_mask", torch.ones_like(ids)).bool()
            spans = sequences(inputs)
            keys = [ids[b, s:e][mask[b, s:e]].cpu().numpy().tobytes() for b, s, e in spans]
            if any(key not in kept for key in keys):
                teacher.to(ids.device)
                with torch.no_grad():
                    logits = teacher(**forward, use_cache=False).logits
                for b in range(ids.shape[0]):
                    mine = [(key, s, e) for key, (row, s, e) in zip(keys, spans, strict=True) if row == b]
                    # a rationale token at position j is predicted from j - 1: counted with the sequence holding j
                    counts = [int((labels[b, max(s, 1) : e] != -100).sum()) for _, s, e in mine]
                    top = teacher_top_k(logits[b : b + 1], labels[b : b + 1], k)
                    for (key, _, _), logprobs, token_ids in zip(mine, *(t.split(counts) for t in top), strict=True):
                        kept[key] = (logprobs.cpu(), token_ids.cpu())
            logprobs, token_ids = (torch.cat([kept[key][i] for key in keys]).to(ids.device) for i in (0, 1))
            outputs = model(**forward, use_cache=False)
            items = None if num_items_in_batch is None else int(num_items_in_batch)
            loss = distillation_loss(outputs.logits, logprobs, token_ids, labels, items)
            return (loss, outputs) if return_outputs else loss

    return DistillationTrainer


def _rows_digest(*row_lists) -> str:
    import hashlib

    h = hashlib.sha256()
    for rows in row_lists:
        for r in rows:
            h.update(f"{r['question']}\x00{r['rationale']}\x01".encode())
        h.update(b"\x02")
    return h.hexdigest()


def merged(adapter_dir: str | Path) -> PreTrainedModel:
    """The base model with the LoRA adapter folded into its weights (in memory), for engines that
    take a plain model."""
    from peft import AutoPeftModelForCausalLM

    return AutoPeftModelForCausalLM.from_pretrained(str(adapter_dir), dtype="auto").merge_and_unload().eval()


def merge(adapter_dir: str | Path, out_dir: str | Path) -> Path:
    """Save the merged model and its tokenizer to out_dir (vLLM and other engines load it by path);
    reused while the adapter is unchanged. A folder without an adapter (a model trained in full) is
    a plain model already: it is returned as it is."""
    from transformers import AutoTokenizer

    if not (Path(adapter_dir) / "adapter_config.json").exists():
        return Path(adapter_dir)
    out_dir = Path(out_dir)
    stage = Stage(out_dir, params={"adapter": checked_hash(Path(adapter_dir) / "adapter_model.safetensors")})
    if not stage.done():
        merged(adapter_dir).save_pretrained(out_dir)
        AutoTokenizer.from_pretrained(str(adapter_dir)).save_pretrained(out_dir)
        stage.finish()
    return out_dir
