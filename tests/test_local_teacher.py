import torch

from specbook import jsonl, tokens
from specbook.engines import Generation, Sampling, TransformersEngine, chat_prompt
from specbook.problems import Problem
from specbook.teachers import LocalModelTeacher


class ScriptedEngine:
    """An engine that answers from a script, counting its calls."""

    def __init__(self, tokenizer, script):
        self.tokenizer, self.script, self.calls = tokenizer, script, 0

    def generate(self, prompts, sampling):
        self.calls += 1
        text = next(v for k, v in self.script.items() if k in prompts[0])
        return [Generation(text=text, token_ids=[], finish_reason="stop", latency_s=0.0)]


def _tokenizer():
    return tokens.train_tokenizer(["Answer: 13 eggs", "What is 2+2?"] * 20, vocab_size=300, split_digits=True)


def test_local_teacher_two_passes_and_resumes(tmp_path):
    tok = _tokenizer()
    script = {"Step-by-step solution": "16-3=13\nAnswer: 13", "eggs": "She has 16 - 3 = 13 eggs.\nAnswer: 13"}
    problems = [Problem("e", "easy", "16 eggs, 3 eaten: how many eggs?", "13", "", "x")]
    engine = ScriptedEngine(tok, script)
    written = LocalModelTeacher(engine, tmp_path, max_new_tokens=64).write(problems)
    assert (written["e"].cot, written["e"].cod) == ("She has 16 - 3 = 13 eggs.\nAnswer: 13", "16-3=13\nAnswer: 13")
    assert engine.calls == 2
    assert [r["key"] for r in jsonl.read(tmp_path / "cot" / "results.jsonl")] == ["e"]
    again = ScriptedEngine(tok, script)
    LocalModelTeacher(again, tmp_path, max_new_tokens=64).write(problems)
    assert again.calls == 0  # everything came from the results files


def test_trained_tokenizer_has_qwen_special_tokens_and_chat_template():
    tok = _tokenizer()
    prompt = chat_prompt(tok, "Solve it.", "What is 2+2?")
    assert prompt == "<|im_start|>system\nSolve it.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert [tok.decode([i]) for i in tok("1234", add_special_tokens=False)["input_ids"]] == ["1", "2", "3", "4"]


def test_transformers_engine_runs_a_real_qwen3_model(tmp_path):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tok = _tokenizer()
    torch.manual_seed(0)
    config = Qwen3Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=16, eos_token_id=tok.eos_token_id)
    engine = TransformersEngine(Qwen3ForCausalLM(config), tok)
    prompt = chat_prompt(tok, "Solve it.", "What is 2+2?")
    first, second = (engine.generate([prompt], Sampling(max_new_tokens=8))[0] for _ in range(2))
    assert first.token_ids == second.token_ids  # greedy is deterministic
    assert len(first.token_ids) <= 8 and first.finish_reason in ("stop", "length")
    assert first.text == tok.decode(first.token_ids, skip_special_tokens=True)
