import pytest

from specbook import jsonl
from specbook.stages import Stage


def test_corrupt_line_names_the_file_the_line_and_the_fix(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(jsonl.JsonlError, match=r"rows.jsonl:2: not valid JSON .*delete the file to regenerate it"):
        jsonl.read(path)


def test_a_torn_last_line_is_cut_off_in_append_logs(tmp_path):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, [{"key": "a"}, {"key": "b"}])
    with open(path, "a") as f:
        f.write('{"key": "c", "te')  # a crash in the middle of a write
    assert [r["key"] for r in jsonl.read(path, torn_tail_ok=True)] == ["a", "b"]
    jsonl.append(path, [{"key": "c"}])
    assert [r["key"] for r in jsonl.read(path)] == ["a", "b", "c"]


def test_write_replaces_atomically(tmp_path):
    path = jsonl.write(tmp_path / "x" / "rows.jsonl", [{"a": 1}])
    jsonl.write(path, [{"a": 2}, {"a": 3}])
    assert jsonl.read(path) == [{"a": 2}, {"a": 3}]
    assert not list(path.parent.glob("*.tmp"))


def test_stage_reruns_only_when_params_or_inputs_change(tmp_path):
    source = tmp_path / "in.txt"
    source.write_text("v1")
    stage = Stage(tmp_path / "stage", {"n": 1}, [source])
    assert not stage.done()
    stage.finish({"rows": 3})
    assert Stage(tmp_path / "stage", {"n": 1}, [source]).done()
    assert Stage(tmp_path / "stage", {"n": 1}, [source]).summary() == {"rows": 3}
    assert not Stage(tmp_path / "stage", {"n": 2}, [source]).done()
    source.write_text("v2")
    assert not Stage(tmp_path / "stage", {"n": 1}, [source]).done()
