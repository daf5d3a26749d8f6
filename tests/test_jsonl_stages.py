import json
import shutil

import pytest

from specbook import jsonl, stages
from specbook.stages import Stage


def test_corrupt_line_names_the_file_the_line_and_the_fix(tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n{"a": 2\n{"a": 3}\n')
    with pytest.raises(jsonl.JsonlError, match=r"rows.jsonl:2: not valid JSON .*delete the file to regenerate it"):
        jsonl.read(path)


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"a": 1}\n[1, 2]\n', r"rows.jsonl:2: a JSON list, not an object"),
        (b'{"a": 1}\n"text"\n', r"rows.jsonl:2: a JSON str, not an object"),
        (b'{"a": 1}\n{"a": "caf\xe9"}\n', r"rows.jsonl:2: not UTF-8 \(byte 11 of the line\)"),
    ],
)
def test_lines_that_are_not_utf8_json_objects_are_refused(tmp_path, content, message):
    path = tmp_path / "rows.jsonl"
    path.write_bytes(content)
    with pytest.raises(jsonl.JsonlError, match=message + ".*delete the file to regenerate it"):
        jsonl.read(path)


def test_a_missing_data_file_is_an_error_and_a_missing_log_is_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="rows.jsonl does not exist: the stage that writes it has not run"):
        jsonl.read(tmp_path / "rows.jsonl")
    assert jsonl.read_log(tmp_path / "log.jsonl") == []


def test_a_torn_last_line_is_cut_off_in_append_logs(tmp_path):
    path = tmp_path / "log.jsonl"
    jsonl.append(path, [{"key": "a"}, {"key": "b"}])
    with open(path, "a") as f:
        f.write('{"key": "c", "te')  # a crash in the middle of a write
    assert [r["key"] for r in jsonl.read_log(path)] == ["a", "b"]
    jsonl.append(path, [{"key": "c"}])
    assert [r["key"] for r in jsonl.read(path)] == ["a", "b", "c"]


def test_a_whole_last_row_that_lost_its_newline_is_kept_and_the_next_append_starts_a_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"key": "a"}\n{"key": "b"}')  # stopped between the row and its newline
    assert [r["key"] for r in jsonl.read_log(path)] == ["a", "b"]
    jsonl.append(path, [{"key": "c"}])
    assert [r["key"] for r in jsonl.read(path)] == ["a", "b", "c"]


def test_a_torn_multibyte_character_is_cut_off_too(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"key": "a"}\n' + '{"key": "\u00e9"}'.encode()[:-3])  # cut inside the two bytes of é
    assert jsonl.read_log(path) == [{"key": "a"}]
    assert path.read_bytes() == b'{"key": "a"}\n'


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
    (tmp_path / "stage").mkdir()
    (tmp_path / "stage" / "out.txt").write_text("result")
    stage.finish({"rows": 3})
    assert Stage(tmp_path / "stage", {"n": 1}, [source]).done()
    assert Stage(tmp_path / "stage", {"n": 1}, [source]).summary() == {"rows": 3}
    assert not Stage(tmp_path / "stage", {"n": 2}, [source]).done()
    source.write_text("v2")
    assert not Stage(tmp_path / "stage", {"n": 1}, [source]).done()


def test_a_stage_copied_with_its_run_to_another_output_root_is_still_done(tmp_path, monkeypatch):
    def stage_under(root):
        monkeypatch.setenv("SPECBOOK_OUTPUT", str(root))
        base = root / "data" / "smoke" / "models" / "base"  # params and inputs that name paths under the root
        return Stage(root / "data" / "smoke" / "stage", {"base": str(base), "models": [base]}, [base / "w.bin"])

    first = tmp_path / "a"
    (first / "data" / "smoke" / "models" / "base").mkdir(parents=True)
    (first / "data" / "smoke" / "models" / "base" / "w.bin").write_text("w")
    stage = stage_under(first)
    assert not stage.done()
    (first / "data" / "smoke" / "stage").mkdir()
    (first / "data" / "smoke" / "stage" / "out.txt").write_text("result")
    stage.finish()
    shutil.copytree(first, tmp_path / "b")
    assert stage_under(tmp_path / "b").done()
    # where it is, a stage finished by older code (its fingerprint hashed the paths as given) is reused too
    manifest = first / "data" / "smoke" / "stage" / stages.MANIFEST
    older = {**json.loads(manifest.read_text()), "fingerprint": stages.fingerprint({"params": stage.params, "inputs": stage.inputs}, True)}
    manifest.write_text(json.dumps(older))
    assert stage_under(first).done()
    (tmp_path / "b" / "data" / "smoke" / "models" / "base" / "w.bin").write_text("v")  # its inputs' contents still count
    assert not stage_under(tmp_path / "b").done()


@pytest.mark.parametrize(
    "damage, reason",
    [
        (lambda p: p.unlink(), "its output level/rows.jsonl is missing"),
        (lambda p: p.write_bytes(p.read_bytes()[:-5]), "its output level/rows.jsonl changed"),  # truncated
        (lambda p: p.write_text('{"a": 2}\n'), "its output level/rows.jsonl changed"),  # same size, other bytes
    ],
)
def test_a_finished_stage_reruns_when_an_output_is_missing_or_changed(tmp_path, capsys, damage, reason):
    out = jsonl.write(tmp_path / "stage" / "level" / "rows.jsonl", [{"a": 1}])
    Stage(tmp_path / "stage", {"n": 1}).finish({}, outputs=[out])
    assert Stage(tmp_path / "stage", {"n": 1}).stale() is None
    damage(out)
    assert Stage(tmp_path / "stage", {"n": 1}).stale() == reason
    assert not Stage(tmp_path / "stage", {"n": 1}).done()
    assert f"rebuilding, {reason}" in capsys.readouterr().out


def test_a_rebuilt_stage_first_removes_what_its_last_build_wrote(tmp_path):
    """Files of other settings never pass for the new build's (an adapter beside a model trained in full)."""
    folder = tmp_path / "draft"
    folder.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        (folder / name).write_text(name)
    (folder / "checkpoints").mkdir()  # work folders are the stage's own business
    Stage(folder, {"lora": {"r": 8}}).finish({})
    assert not Stage(folder, {"lora": None}).done()
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoints"]
    (folder / "model.safetensors").write_text("weights")
    Stage(folder, {"lora": None}).finish({})
    assert Stage(folder, {"lora": None}).done() and (folder / "model.safetensors").exists()


def test_a_stage_must_record_an_output(tmp_path):
    with pytest.raises(ValueError, match="finished without writing any output"):
        Stage(tmp_path / "stage", {"n": 1}).finish({})


def test_work_of_other_settings_is_cleared_and_work_of_the_same_is_kept(tmp_path, capsys):
    first = Stage(tmp_path / "stage", {"lr": 1e-3})
    (first.work_folder("checkpoints") / "checkpoint-10").mkdir()
    assert (Stage(tmp_path / "stage", {"lr": 1e-3}).work_folder("checkpoints") / "checkpoint-10").exists()
    changed = Stage(tmp_path / "stage", {"lr": 2e-3}).work_folder("checkpoints")
    assert not (changed / "checkpoint-10").exists() and "made for other settings; cleared" in capsys.readouterr().out


def test_a_cached_result_is_computed_once_per_params_and_code(tmp_path, capsys):
    from specbook import stages

    code = tmp_path / "code.py"
    code.write_text("v1")
    calls = []

    def compute():
        calls.append(1)
        return {"ms": [1.5, 2.5]}

    assert stages.cached(tmp_path / "m", {"k": 1}, compute, inputs=[code]) == {"ms": [1.5, 2.5]}
    assert stages.cached(tmp_path / "m", {"k": 1}, compute, inputs=[code]) == {"ms": [1.5, 2.5]}
    assert len(calls) == 1 and "(cached: computed at commit" in capsys.readouterr().out
    stages.cached(tmp_path / "m", {"k": 2}, compute, inputs=[code])
    code.write_text("v2")
    stages.cached(tmp_path / "m", {"k": 2}, compute, inputs=[code])
    assert len(calls) == 3


def test_a_damaged_output_of_one_stage_stops_the_stage_that_reads_it(output_root):
    tmp_path = output_root
    made = tmp_path / "data" / "smoke" / "model"
    made.mkdir(parents=True)
    weights = made / "model.safetensors"
    weights.write_bytes(b"\x00" * 64)
    Stage(made, {"n": 1}).finish({})
    assert Stage(tmp_path / "next", {}, [weights]).inputs[str(weights)] == stages.file_hash(weights)  # intact: read as before
    weights.write_bytes(b"\x00" * 32)  # truncated, as a full disk or a killed copy leaves it
    with pytest.raises(stages.DamagedArtifact) as err:
        Stage(tmp_path / "next", {}, [weights])
    said = str(err.value)
    assert str(weights) in said and f"{made} wrote it as 64 bytes" in said and "now 32 bytes" in said
    assert "make run-all PROFILE=smoke" in said
    unlisted = tmp_path / "notes.txt"
    unlisted.write_text("a file no stage wrote")
    assert Stage(tmp_path / "other", {}, [unlisted]).inputs  # no manifest lists it: nothing to check it against


def test_a_folder_written_file_by_file_is_checked_whole_by_its_reader(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    for name in ["a.csv", "b.csv"]:
        (folder / name).write_text(f"{name}\n")
        stages.record_outputs(folder, [folder / name])
    stages.check_outputs(folder)
    (folder / "a.csv").write_text("edited by hand\n")
    with pytest.raises(stages.DamagedArtifact, match=r"a\.csv is damaged: .* now 15 bytes"):
        stages.check_outputs(folder)
    (folder / "a.csv").write_text("a.csv\n")
    (folder / "b.csv").unlink()
    with pytest.raises(stages.DamagedArtifact, match=r"b\.csv is damaged: .* now missing"):
        stages.check_outputs(folder)


def test_a_manifest_cut_short_by_a_stopped_run_rebuilds_its_stage_and_stops_its_readers(tmp_path, capsys):
    out = tmp_path / "stage" / "rows.jsonl"
    jsonl.write(out, [{"a": 1}])
    Stage(tmp_path / "stage", {"n": 1}).finish({})
    manifest = tmp_path / "stage" / stages.MANIFEST
    manifest.write_text(manifest.read_text()[:20])  # what a kill in the middle of a plain write leaves
    assert Stage(tmp_path / "stage", {"n": 1}).stale() == "its manifest cannot be read (a run stopped while writing it)"
    with pytest.raises(stages.DamagedArtifact, match="cannot be read"):
        stages.checked_hash(out)
    assert not Stage(tmp_path / "stage", {"n": 1}).done() and not manifest.exists()  # rebuilt from scratch
    stages.write_atomically(manifest, "{}")
    assert not list(manifest.parent.glob("*.tmp"))


def test_a_file_written_but_not_yet_recorded_is_refused_too(tmp_path):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "a.csv").write_text("a\n")
    stages.record_outputs(folder, [folder / "a.csv"])
    (folder / "b.csv").write_text("b\n")  # a run stopped before it recorded b.csv
    with pytest.raises(stages.DamagedArtifact, match=r"b\.csv is not in .*manifest\.json"):
        stages.check_outputs(folder)
