from specbook import jsonl, tokens
from specbook.engines import Generation
from specbook.problems import Problem
from specbook.prompts import chat_prompt
from specbook.teachers import LocalModelTeacher


class ScriptedEngine:
    """An engine that answers from a script, counting its calls."""

    def __init__(self, tokenizer, script):
        self.tokenizer, self.script, self.calls = tokenizer, script, 0

    def generate(self, prompts, sampling, speculative=None, batch_size=1):
        self.calls += 1
        text = next(v for k, v in self.script.items() if k in prompts[0])
        return [Generation(text=text, token_ids=[1, 2], finish_reason="stop", latency_s=0.0)]


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


def test_a_local_teacher_runs_on_the_profiles_engine(tmp_path, tiny_model):
    from specbook import engines, profiles, teachers

    tok = _tokenizer()
    model = tiny_model(len(tok), 0, eos_token_id=tok.eos_token_id)
    model.save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    cfg = profiles.Teacher("local", model=str(tmp_path / "teacher"), max_new_tokens=8)
    teacher = teachers.make(cfg, profiles.Engine("native"), tmp_path / "work", seed=0)
    assert isinstance(teacher.engine, engines.NativeEngine) and teacher.sampling.max_new_tokens == 8
    transformers = teachers.make(cfg, profiles.Engine("transformers"), tmp_path / "work", seed=0)
    assert isinstance(transformers.engine, engines.TransformersEngine)


def test_a_teachers_answers_are_resumed_only_under_the_settings_that_wrote_them(tmp_path, tiny_model):
    import dataclasses

    from specbook import profiles, teachers

    tok = _tokenizer()
    tiny_model(len(tok), 0, eos_token_id=tok.eos_token_id).save_pretrained(tmp_path / "teacher")
    tok.save_pretrained(tmp_path / "teacher")
    cfg = profiles.Teacher("local", model=str(tmp_path / "teacher"), max_new_tokens=8)
    teacher = teachers.make(cfg, profiles.Engine("native"), tmp_path / "work", seed=0)
    jsonl.append(teacher.workdir / "cot" / "results.jsonl", [{"key": "e", "text": "old", "tokens": 1, "finish_reason": "stop"}])
    same = teachers.make(cfg, profiles.Engine("native"), tmp_path / "work", seed=0)
    assert jsonl.read_log(same.workdir / "cot" / "results.jsonl")[0]["text"] == "old"
    longer = teachers.make(dataclasses.replace(cfg, max_new_tokens=16), profiles.Engine("native"), tmp_path / "work", seed=0)
    assert longer.workdir == teacher.workdir and jsonl.read_log(longer.workdir / "cot" / "results.jsonl") == []
