import json
import math
import pathlib
import shutil
import subprocess
import sys

import jupytext
import nbformat
import pytest

from specbook import book, killtest, profiles, rationales, runinfo, training
from specbook.paths import NOTEBOOKS, ROOT, Artifacts
from specbook.profiles import LEVELS
from specbook.runinfo import stamp
from specbook.styles import STYLES

CHAPTERS = book.chapters()


def test_chapters_run_in_number_order(tmp_path):
    for name in ("10_later", "02_b", "01_a", "notes", "1_unnumbered"):
        (tmp_path / f"{name}.ipynb").touch()
    (tmp_path / "03_c.py").touch()
    assert [nb.stem for nb in book.chapters(tmp_path)] == ["01_a", "02_b", "10_later"]
    numbers = [int(nb.stem[:2]) for nb in CHAPTERS]
    assert numbers == list(range(len(CHAPTERS))), "chapters are numbered 00, 01, ... without gaps"


def test_stamp_names_profile_config_and_commit():
    import dataclasses

    line = stamp("smoke")
    assert line.startswith(f"profile smoke · config {profiles.config_hash(profiles.load('smoke'))} · commit ")
    smoke = profiles.load("smoke")
    assert profiles.config_hash(dataclasses.replace(smoke, seed=1)) != profiles.config_hash(smoke)


@pytest.mark.parametrize("notebook", CHAPTERS, ids=lambda p: p.stem)
def test_pairs_are_in_sync_and_sources_hold_no_outputs(notebook):
    ipynb = nbformat.read(notebook, as_version=4)  # a chapter saved in JupyterLab keeps its outputs on disk
    staged = subprocess.run(["git", "-C", str(ROOT), "show", f":notebooks/{notebook.name}"], capture_output=True, text=True)
    if staged.returncode == 0:  # a git checkout: what git stores must hold none
        stored = nbformat.reads(staged.stdout, as_version=4)
        assert not [c for c in stored.cells if c.cell_type == "code" and (c.outputs or c.execution_count)], (
            f"git holds {notebook.name} with outputs: run `make setup` (it sets up the nbstripout filter), then `git add {notebook.name}`"
        )
    paired = notebook.with_suffix(".py")
    assert paired.exists(), f"{paired.name} is missing: run make sync"
    py = jupytext.read(paired)
    assert [(c.cell_type, c.source) for c in ipynb.cells] == [(c.cell_type, c.source) for c in py.cells], (
        f"{notebook.name} and {paired.name} differ: run make sync"
    )
    tagged = [c for c in ipynb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1 and 'profile = "tiny"  # smoke | tiny | full' in tagged[0].source
    assert all(f"#   {name}" in tagged[0].source for name in ("smoke", "tiny", "full"))  # what each is, and its time


def test_papermill_describes_the_parameter():
    shown = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(CHAPTERS[0])], capture_output=True, text=True, check=True
    ).stdout
    assert 'profile: Unknown type (default "tiny")' in shown and "smoke | tiny | full" in shown


def test_a_chapter_saved_with_outputs_leaves_git_and_the_stamp_clean(tmp_path):
    clean_filter = subprocess.run(["git", "-C", str(ROOT), "config", "filter.nbstripout.clean"], capture_output=True, text=True)
    assert clean_filter.returncode == 0, "the nbstripout git filter is not set up: run `make setup`"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "config", "filter.nbstripout.clean", clean_filter.stdout.strip()], check=True)
    notebook = clone / "notebooks" / CHAPTERS[0].name
    executed = nbformat.read(notebook, as_version=4)
    for cell in executed.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [nbformat.v4.new_output("stream", name="stdout", text="a long output\n" * 20)], 1
    nbformat.write(executed, notebook)  # as JupyterLab saves it
    assert not runinfo.commit(clone).endswith("+dirty")
    (clone / "README.md").write_text("edited")
    assert runinfo.commit(clone).endswith("+dirty")


def test_every_py_chapter_has_its_notebook():
    assert sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.py")) == [nb.stem for nb in CHAPTERS]


def test_unknown_profile_and_chapter_are_clear_errors(capsys):
    assert book.run("huge") == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no chapter matches 99"):
        book.select(["99"])


def _notebook(path, *sources):
    cells = [nbformat.v4.new_code_cell("profile = 'smoke'", metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_markdown_cell(s) if s.startswith("#") else nbformat.v4.new_code_cell(s) for s in sources]
    kernelspec = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)
    return path


def test_a_headless_run_shows_each_cell_the_chapters_progress_and_a_summary(tmp_path, monkeypatch, capsys):
    notebook = _notebook(
        tmp_path / "07_demo.ipynb",
        "## 1 · Counting",
        "from tqdm import tqdm\nfor i in tqdm(range(3), desc='counting'): pass",
        "import warnings\nwarnings.warn('a warning of the chapter')",
    )
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setattr(book, "chapters", lambda: [notebook])
    assert book.run("smoke") == 0
    out, err = capsys.readouterr()
    assert "07_demo · cell 3/4 · 1 · Counting" in out and "07_demo · cell 4/4 · 1 · Counting" in out
    assert "The book on smoke: 1 of 1 chapters ran, in" in out and f"executed notebooks: {tmp_path}" in out
    assert "counting: 100%" in err and "a warning of the chapter" in err  # the chapter's own stderr, forwarded
    assert "without encryption" not in out + err and "KeyboardInterrupt" not in out + err  # the kernel's, kept in its log
    assert "without encryption" in (tmp_path / "data" / "smoke" / "notebooks" / "07_demo.kernel.log").read_text()


def test_a_current_chapter_is_not_run_again_until_what_it_saw_changes(tmp_path, monkeypatch, capsys):
    first = _notebook(tmp_path / "07_writes.ipynb", "from specbook.paths import data_dir\n(data_dir('smoke') / 'made.txt').write_text('a')")
    second = _notebook(
        tmp_path / "08_reads.ipynb",
        "from specbook.paths import figures_dir\nfigures_dir('smoke').mkdir(parents=True, exist_ok=True)\n"
        "(figures_dir('smoke') / '08.png').write_text('b')",
    )
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setattr(book, "chapters", lambda: [first, second])
    made = tmp_path / "data" / "smoke" / "made.txt"
    assert book.run("smoke") == 0
    capsys.readouterr()
    assert book.run("smoke") == 0
    out = capsys.readouterr().out
    assert "07_writes on smoke: current (run at commit" in out and "08_reads on smoke: current" in out
    assert "0 of 2 chapters ran" in out
    made.write_text("changed")  # what chapter 07 wrote (and 08 saw) changed: both run again
    assert book.run("smoke") == 0
    out = capsys.readouterr().out
    assert f"07_writes on smoke (runs: {made} changed since)" in out and f"08_reads on smoke (runs: {made} changed since)" in out
    assert book.run("smoke", ["08"], force=True) == 0  # 08 rewrites its figure: 07 never read it, and stays current
    capsys.readouterr()
    assert book.run("smoke") == 0
    assert "0 of 2 chapters ran" in capsys.readouterr().out
    (tmp_path / "data" / "smoke" / "notebooks" / "08_reads.ipynb").unlink()
    assert book.run("smoke") == 0
    out = capsys.readouterr().out
    assert "07_writes on smoke: current" in out and "08_reads on smoke (runs: its executed notebook is missing)" in out
    monkeypatch.setattr(book, "fingerprint", lambda notebook, profile: "another lib")
    assert book.run("smoke", ["07"]) == 0
    assert "(runs: its notebook, the lib, the profile, the installed packages or the processor changed)" in capsys.readouterr().out


def test_a_run_copied_elsewhere_with_its_times_kept_is_current_there(tmp_path, monkeypatch, capsys):
    code = "from specbook.paths import data_dir\n(data_dir('smoke') / 'made.txt').write_text('a')"
    notebook = _notebook(tmp_path / "07_writes.ipynb", code)
    monkeypatch.setattr(book, "chapters", lambda: [notebook])
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path / "a"))
    assert book.run("smoke") == 0
    shutil.copytree(tmp_path / "a", tmp_path / "b")  # copies keep modification times
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path / "b"))
    capsys.readouterr()
    assert book.run("smoke") == 0
    assert "07_writes on smoke: current" in capsys.readouterr().out


def test_a_chapter_run_before_its_inputs_exist_names_the_chapter_that_makes_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    assert book.run("smoke", ["02"]) == 1
    assert "chapter 01_datasets makes it. Run that chapter first (make run-all PROFILE=smoke NB=01)" in capsys.readouterr().err


def test_only_unknown_kernel_log_lines_are_shown(tmp_path):
    log = tmp_path / "k.log"
    log.write_text(
        "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication ...\n"
        "Task was destroyed but it is pending!\n"
        "task: <Task pending name='Task-45' coro=<Kernel.dispatch_control() running at .../kernelbase.py:372> ...>\n"
        "Segmentation fault in libtorch\n"
    )
    assert book.unexpected_kernel_log(log) == ["Segmentation fault in libtorch"]


def test_a_dead_kernel_names_the_chapter_and_the_likely_cause(tmp_path, monkeypatch, capsys):
    notebook = _notebook(tmp_path / "07_dies.ipynb", "import os\nos._exit(1)")
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    monkeypatch.setattr(book, "chapters", lambda: [notebook])
    assert book.run("smoke") == 1
    assert "FAILED 07_dies.ipynb: its kernel died (out of memory is the usual cause" in capsys.readouterr().err


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """Every chapter, top to bottom, on the smoke profile, as `make run-all PROFILE=smoke` runs it."""
    root = tmp_path_factory.mktemp("out")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SPECBOOK_OUTPUT", str(root))
        assert book.run("smoke") == 0
    return root


@pytest.mark.chapters
def test_executed_chapters_hold_no_warnings_and_their_kernels_logged_nothing_unexpected(smoke_run):
    notebooks = smoke_run / "data" / "smoke" / "notebooks"
    for notebook in CHAPTERS:
        executed = nbformat.read(notebooks / notebook.name, as_version=4)
        stderr = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stderr")
        assert "Warning" not in stderr, f"{notebook.name} printed a warning: filter it if it is known and harmless (runinfo.KNOWN_HARMLESS)"
        assert "\x1b[" not in stderr, f"{notebook.name} holds terminal escape codes (nested progress bars)"
        assert book.unexpected_kernel_log(notebooks / f"{notebook.stem}.kernel.log") == []
        for cell in executed.cells:
            for output in cell.get("outputs", []):
                text = output.get("data", {}).get("text/plain", "") or output.get("text", "")
                if all(level in text for level in LEVELS):  # a table or list over the levels keeps the book's order
                    assert [text.index(level) for level in LEVELS] == sorted(text.index(level) for level in LEVELS), text[:300]


# Columns that count things: an executed chapter's tables show them as whole numbers, never 50.0.
COUNT_COLUMNS = {"n", "answers", "correct answers", "train rows", "target's correct rows", "truncated", "requests", "tokens", "kept"}


def _html_tables(html: str) -> list[list[list[str]]]:
    """The rows (header row first) of every <table> in a notebook's HTML output."""
    from html.parser import HTMLParser

    class Tables(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tables, self.cell = [], None

        def handle_starttag(self, tag, attrs):
            if tag == "table":
                self.tables.append([])
            elif tag == "tr":
                self.tables[-1].append([])
            elif tag in ("td", "th"):
                self.cell = ""

        def handle_endtag(self, tag):
            if tag in ("td", "th"):
                self.tables[-1][-1].append(self.cell.strip())
                self.cell = None

        def handle_data(self, data):
            if self.cell is not None:
                self.cell += data

    parser = Tables()
    parser.feed(html)
    return parser.tables


@pytest.mark.chapters
def test_executed_tables_show_counts_as_whole_numbers(smoke_run):
    checked = 0
    for notebook in CHAPTERS:
        executed = nbformat.read(smoke_run / "data" / "smoke" / "notebooks" / notebook.name, as_version=4)
        html = [o["data"]["text/html"] for c in executed.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
        for table in (t for h in html for t in _html_tables(h)):
            header = table[0]
            for column in COUNT_COLUMNS & set(header):
                i = header.index(column)
                values = [row[i] for row in table[1:] if len(row) == len(header) and row[i]]  # '' in the index names' row
                assert values and all(v.isdigit() for v in values), f"{notebook.name}: column {column!r} shows {values[:5]}"
                checked += 1
    assert checked >= 5  # the chapters' tables hold counts; a renamed column must not silently pass


@pytest.mark.chapters
def test_smoke_run_writes_executed_notebooks(smoke_run):
    for notebook in CHAPTERS:
        executed = nbformat.read(smoke_run / "data" / "smoke" / "notebooks" / notebook.name, as_version=4)
        errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
        assert not errors
        injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert 'profile = "smoke"' in injected[0].source


@pytest.mark.chapters
def test_chapter_01_writes_the_datasets_and_the_figure(smoke_run):
    data = smoke_run / "data" / "smoke"
    for level in LEVELS:
        cot = rationales.load_rows(Artifacts(data), level, "train_cot")
        cod = rationales.load_rows(Artifacts(data), level, "train_cod")
        test = rationales.load_rows(Artifacts(data), level, "test")
        assert cot and len(cot) == len(cod) and test
        for row in cot + cod + test:
            assert {"id", "level", "question", "answer", "rationale"} <= set(row) and row["level"] == level
        assert sum(r["rationale_tokens"] for r in cod) < sum(r["rationale_tokens"] for r in cot)
        assert {r["test_set"] for r in test} == {"test_new_variants", "test_held_out_templates"}
        assert not {r["question"] for r in test} & {r["question"] for r in cot}
    summary = json.loads((data / "datasets" / "manifest.json").read_text())["summary"]
    assert [row["level"] for row in summary["levels"]] == list(LEVELS)
    for suffix in ("png", "svg"):
        assert (smoke_run / "figures" / "smoke" / f"01_token_lengths.{suffix}").stat().st_size > 1000


@pytest.mark.chapters
def test_a_rerun_reuses_finished_datasets(smoke_run, monkeypatch):
    from specbook import profiles

    monkeypatch.setenv("SPECBOOK_OUTPUT", str(smoke_run))
    data = smoke_run / "data" / "smoke"
    before = (data / "datasets" / "easy" / "train_cod.jsonl").stat().st_mtime_ns

    class NoTeacher:
        name = "must-not-run"

        def write(self, problems):
            raise AssertionError("the finished stage ran its teacher again")

    report = rationales.build(profiles.load("smoke"), Artifacts(data), teacher=NoTeacher())
    assert report["teacher"] == "template"
    assert report["built_at"] == json.loads((data / "datasets" / "manifest.json").read_text())["commit"]
    assert (data / "datasets" / "easy" / "train_cod.jsonl").stat().st_mtime_ns == before


@pytest.mark.chapters
def test_a_damaged_dataset_file_rebuilds_the_stage(smoke_run, monkeypatch):
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(smoke_run))
    data = smoke_run / "data" / "smoke"
    path = data / "datasets" / "easy" / "test.jsonl"
    original = path.read_bytes()
    path.write_bytes(original[: len(original) // 2])
    rationales.build(profiles.load("smoke"), Artifacts(data))
    assert path.read_bytes() == original
    path.unlink()
    rationales.build(profiles.load("smoke"), Artifacts(data))
    assert path.read_bytes() == original


@pytest.mark.chapters
def test_a_rerun_of_the_book_with_nothing_changed_computes_nothing_again(smoke_run, monkeypatch, capsys):
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(smoke_run))
    models = smoke_run / "data" / "smoke" / "models"
    weights = {p: p.stat().st_mtime_ns for p in models.glob("*/*.safetensors")}  # base models, adapters, drafts
    assert book.run("smoke") == 0  # runs what the tests above touched (a dataset file rewritten with its own bytes)
    capsys.readouterr()
    assert book.run("smoke") == 0
    assert f"0 of {len(CHAPTERS)} chapters ran" in capsys.readouterr().out
    assert book.run("smoke", force=True) == 0  # every chapter runs; its stages find their work done
    assert {p: p.stat().st_mtime_ns for p in models.glob("*/*.safetensors")} == weights
    notebooks = smoke_run / "data" / "smoke" / "notebooks"
    measured = {
        "00_theory": 3,
        "02_training": 1 + 3 * len(LEVELS),
        "03_distillation": len(STYLES) * len(LEVELS),
        "04_benchmarking": 3 * len(LEVELS) + 1 + 2 * len(STYLES) * len(LEVELS) + len(LEVELS),  # accuracy, step costs, timed, whole, sampled
    }
    for chapter, measurements in measured.items():
        executed = nbformat.read(notebooks / f"{chapter}.ipynb", as_version=4)
        text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
        assert text.count("(cached: computed at commit") == measurements, chapter


@pytest.mark.chapters
def test_chapter_00_writes_the_measurement_and_the_figures(smoke_run):
    import pandas as pd

    P = profiles.load("smoke")
    results = pd.read_csv(smoke_run / "data" / "smoke" / "theory" / "acceptance_vs_k.csv")
    assert len(results) == len(P.theory.draft_layers) * len(P.theory.ks)
    assert results["acceptance rate"].between(0, 1).all()
    assert (results["tokens/step"] >= 1).all() and (results["tokens/step"] <= results["K"] + 1).all()
    assert (results["c"] > 0).all() and (results["speedup"] > 0).all()
    for name in ("00_roofline", "00_losslessness", "00_speedup_model", "00_acceptance_vs_k"):
        for suffix in ("png", "svg"):
            assert (smoke_run / "figures" / "smoke" / f"{name}.{suffix}").stat().st_size > 1000


@pytest.mark.chapters
def test_chapter_02_writes_six_adapters_base_models_and_figures(smoke_run):
    models_dir = smoke_run / "data" / "smoke" / "models"
    for role in ("target", "draft"):
        assert (models_dir / f"base_{role}" / "model.safetensors").exists()
        assert (models_dir / f"base_{role}" / "tokenizer_config.json").exists()
    for level in LEVELS:
        for style in STYLES:
            adapter = models_dir / f"target_{style}_{level}"
            manifest = json.loads((adapter / "manifest.json").read_text())
            summary = manifest["summary"]
            assert (adapter / "adapter_model.safetensors").exists() and summary["backend"] == training.backend()
            # smoke, like tiny, is a curriculum: each longer level went on from the adapter of the level below
            below = LEVELS[LEVELS.index(level) - 1] if level != LEVELS[0] else None
            start_from = manifest["params"].get("start_from")
            assert (start_from and pathlib.Path(start_from).name) == (f"target_{style}_{below}" if below else None)
            assert summary["curve"] and summary["eval_curve"] and summary["train_rows"] > 0
            assert (adapter / "merged" / "model.safetensors").exists()
    for name in ("02_pretraining_loss", "02_loss_curves", "02_accuracy_check"):
        for suffix in ("png", "svg"):
            assert (smoke_run / "figures" / "smoke" / f"{name}.{suffix}").stat().st_size > 1000
    # the Trainer's log dicts go to each fine-tune's log file, not into the page a reader scrolls
    executed = nbformat.read(smoke_run / "data" / "smoke" / "notebooks" / "02_training.ipynb", as_version=4)
    printed = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "'loss':" not in printed and "'train_runtime':" not in printed
    logged = (models_dir / f"target_cod_{LEVELS[0]}" / "checkpoints" / training.TRAINING_LOG).read_text().splitlines()
    assert logged and all("step" in json.loads(line) for line in logged) and any("loss" in json.loads(line) for line in logged)


@pytest.mark.chapters
def test_chapter_03_writes_the_targets_answers_their_drafts_and_the_acceptance_figures(smoke_run):
    from specbook import distillation, jsonl

    P = profiles.load("smoke")
    A = Artifacts(smoke_run / "data" / "smoke")
    for level in LEVELS:
        for style in STYLES:
            rows = jsonl.read(A.distilled(style, level) / distillation.ROWS)
            assert len(rows) == P.distill.questions_per_level * P.distill.samples_per_question
            assert {"id", "question", "text", "tokens", "finish_reason", "correct"} <= set(rows[0])
            # the distilled draft everywhere, the two controls on distill.control_levels alone
            assert distillation.methods(P.distill, level) == (distillation.METHODS if level in P.distill.control_levels else ("distilled",))
            for method in distillation.METHODS:
                draft = A.draft(method, style, level)
                if method not in distillation.methods(P.distill, level):
                    assert not draft.exists()
                    continue
                summary = json.loads((draft / "manifest.json").read_text())
                if P.draft_sft.lora is None:  # trained in full: a plain model, nothing to merge
                    assert (draft / "model.safetensors").exists() and not (draft / "adapter_config.json").exists()
                else:
                    assert (draft / "adapter_model.safetensors").exists() and (A.merged(draft) / "model.safetensors").exists()
                assert ("teacher" in summary["params"]) == (method == "white_box") and summary["summary"]["eval_curve"]
    for name in ("03_draft_training", "03_acceptance_by_position"):
        for suffix in ("png", "svg"):
            assert (smoke_run / "figures" / "smoke" / f"{name}.{suffix}").stat().st_size > 1000


@pytest.mark.chapters
def test_chapter_04_writes_every_run_with_its_fields_provenance_and_the_figures(smoke_run):
    from specbook import distillation, results

    P = profiles.load("smoke")
    B = P.bench
    out = smoke_run / "data" / "smoke" / "results"
    runs = results.load_runs(out)
    assert (
        {p.stem for p in out.glob("*.csv")}
        == set(runs.run)
        == {p.name.removesuffix(".requests.jsonl") for p in out.glob("*.requests.jsonl")}
    )

    def timed_per_level(drafts):  # per target: alone, the base draft and the level's trained drafts, n-gram; CoD: the K sweep
        return 2 * (1 + 1 + drafts + 1) + len([k for k in B.ks if k != B.k])

    drafts = {level: len(distillation.methods(P.distill, level)) for level in LEVELS}
    assert sorted(drafts.values()) == [1, 1, 3]  # smoke trains the controls on one level
    per_set = {"all": len(LEVELS) * (3 + len(STYLES)), "timed": sum(map(timed_per_level, drafts.values())), "sampled": len(LEVELS) * 2}
    assert runs.groupby("request_set").size().to_dict() == per_set  # whole test set: 3 alone, 2 speculative per level
    assert set(runs.profile) == {"smoke"} and set(runs.config_hash) == {profiles.config_hash(P)} and set(runs.engine) == {P.engine.kind}
    for level in LEVELS:
        whole = len(rationales.load_rows(Artifacts(smoke_run / "data" / "smoke"), level, "test"))
        at = runs[runs.level == level].set_index(["request_set", "target", "draft", "k"])
        assert at.loc[("all", "cod", "alone", 0), "requests"] == whole == at.loc[("all", "cod", "distilled", B.k), "requests"]
        assert at.loc[("all", "cod", "distilled", B.k), "identical_to_plain"] == 1.0  # every row of the whole test set checked
        spec = at.loc[("timed", "cod", "distilled", B.k)]
        assert spec.requests == B.timing_rows and spec.identical_to_plain == 1.0  # greedy speculation is lossless
        assert spec.speedup_low <= spec.speedup <= spec.speedup_high and spec.predicted_speedup > 0
        assert len(spec.speedup_rounds) == B.rounds and spec.round_spread >= 0 and isinstance(spec.unstable, bool)
        assert math.isnan(at.loc[("timed", "cot", "ngram", B.k), "predicted_speedup"])
        requests = results.load_requests(out, spec.run)
        assert all(len(r) == B.rounds for r in requests.round_latencies_s)
        assert all(sum(s) == a and len(s) == n for s, a, n in zip(requests.step_accepts, requests.accepted, requests.steps, strict=True))
    for name in ("04_speedup_by_draft", "04_k_sweep"):
        for suffix in ("png", "svg"):
            assert (smoke_run / "figures" / "smoke" / f"{name}.{suffix}").stat().st_size > 1000


@pytest.mark.chapters
def test_chapter_05_answers_every_question_on_every_level_and_writes_its_tables_and_figures(smoke_run):
    import pandas as pd

    analysis_dir = smoke_run / "data" / "smoke" / "analysis"
    verdicts = pd.read_csv(analysis_dir / "verdicts.csv")
    questions = verdicts.question.str.extract(r"^(\d[abc]?)\.")[0]
    per_level = {"1": len(STYLES), "2a": len(STYLES) + 1, "2b": len(STYLES), "3a": 1, "3b": 1, "3c": 1}
    for level in LEVELS:
        assert questions[verdicts.level == level].value_counts().to_dict() == per_level
    assert verdicts.test.notna().all() and verdicts.verdict.notna().all()
    accuracy = pd.read_csv(analysis_dir / "accuracy.csv")
    assert len(accuracy) == 5 * len(LEVELS) and accuracy["reference accuracy"].between(0, 1).all()
    adjusted = verdicts.dropna(subset=["p (Holm)"])
    assert len(adjusted) and (adjusted["p (Holm)"] >= adjusted.p).all()  # Holm only raises p-values
    report = (analysis_dir / "results.md").read_text()
    assert "profile smoke" in report and "| level" in report and "Fine-tuning raises accuracy" in report
    time_to_correct = pd.read_csv(analysis_dir / "time_to_correct.csv")
    assert len(time_to_correct) == 2 * len(STYLES) * len(LEVELS)
    for name in ("05_accuracy", "05_lengths_and_positions", "05_speedup_and_latency", "05_drafts", "05_misses"):
        for suffix in ("png", "svg"):
            assert (smoke_run / "figures" / "smoke" / f"{name}.{suffix}").stat().st_size > 1000


@pytest.mark.chapters
def test_make_bench_prints_its_table_on_the_books_models(smoke_run, monkeypatch, capsys):
    from specbook import bench

    monkeypatch.setenv("SPECBOOK_OUTPUT", str(smoke_run))
    bench.main(["--profile", "smoke"])
    out = capsys.readouterr().out
    B = profiles.load("smoke").bench
    assert "profile smoke" in out and "CoD target + distilled draft, easy" in out
    table = [line for line in out.splitlines() if line.startswith(("native", "transformers"))]
    assert len(table) == 3 * (1 + len(B.ks))  # three engines, alone and every K
    assert all(line.endswith(f"{B.bench_prompts}/0/0") for line in table)  # every output the engine's own: no near-tie, no mismatch
    assert out.count("x [") == 2 * len(B.ks)  # native eager and compiled against transformers at every K
    assert all(any(line.split()[:1] == [f"K={k}"] and line.count("x [") == 2 for line in out.splitlines()) for k in B.ks)
    in_the_loop = [line for line in out.splitlines() if line.startswith(("  native eager ", "  native compiled "))]
    assert len(in_the_loop) == 2 and all("back to back" in line and "after a pause" in line for line in in_the_loop)


@pytest.mark.chapters
def test_make_book_builds_a_website_of_every_chapter_that_loads_nothing_from_outside(smoke_run, monkeypatch):
    import re

    from specbook import site

    monkeypatch.setenv("SPECBOOK_OUTPUT", str(smoke_run))
    index = site.build("smoke")
    pages = {p.stem: p.read_text() for p in index.parent.glob("*.html")}
    assert {nb.stem for nb in CHAPTERS} <= set(pages)
    for name, page in pages.items():
        assert site.external_loads(page) == [], name
        for image in re.findall(r'<img[^>]*src="([^"]+)"', page):
            inline = image.startswith("data:image/")  # the pipeline figure travels inside the page
            assert inline or (index.parent / image).is_file(), f"{name} shows {image}, which is not in the site"
        if name in {nb.stem for nb in CHAPTERS}:
            assert 'alt="The book&#x27;s pipeline' in page or "alt=\"The book's pipeline" in page, f"{name}: no pipeline figure"
    assert 'profile = "smoke"' not in pages["05_analysis"]  # papermill's injected cell is left out
    assert "<img" in pages["05_analysis"] and "The answers" in pages["05_analysis"]
    assert "Where to start" in pages["index"] and "Fine-tuning raises accuracy" in pages["index"]  # chapter 05's answers
    assert {"glossary", "notes"} <= set(pages)
    assert "tag_hide-input" in pages["02_training"]  # the setup cell is folded
    assert (index.parent / "_static" / "mathjax" / "tex-chtml.js").is_file()  # formulas render offline


@pytest.mark.chapters
def test_executed_chapters_keep_progress_bars_as_final_lines(smoke_run):
    import nbformat

    for chapter in CHAPTERS:
        notebook = nbformat.read(smoke_run / "data" / "smoke" / "notebooks" / chapter.name, as_version=4)
        for cell in (c for c in notebook.cells if c.cell_type == "code"):
            streams = [o for o in cell.outputs if o.output_type == "stream"]
            assert len(streams) < 10, f"{chapter.name}: a cell with {len(streams)} stream outputs"  # not one per refresh
            assert not any("\r" in o.text for o in streams), f"{chapter.name}: a progress bar's refreshes kept"


def test_an_executed_chapter_keeps_each_progress_bars_final_line(tmp_path):
    import nbformat

    refreshes = [nbformat.v4.new_output("stream", name="stderr", text=f"\rtrain: {i}%|#  | {i}/100") for i in range(101)]
    cleared = [nbformat.v4.new_output("stream", name="stderr", text=t) for t in ("\rtimed: 0%", "\r" + " " * 20 + "\r")]
    cell = nbformat.v4.new_code_cell(
        "train()",
        outputs=[
            nbformat.v4.new_output("stream", name="stdout", text="loading\n"),
            *refreshes,
            nbformat.v4.new_output("stream", name="stderr", text="\n"),
            *cleared,  # tqdm(leave=False) clears its line as it closes
            nbformat.v4.new_output("stream", name="stderr", text="\nsaved: 0%\rsaved: 100%\n"),
            nbformat.v4.new_output("execute_result", data={"text/plain": "3"}, execution_count=1),
        ],
    )
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# A"), cell]), path)
    book.keep_final_progress(path)
    outputs = nbformat.read(path, as_version=4).cells[1].outputs
    assert [o.output_type for o in outputs] == ["stream", "stream", "execute_result"]
    assert outputs[0].text == "loading\n"
    assert outputs[1].text == "train: 100%|#  | 100/100\nsaved: 100%\n"


@pytest.mark.chapters
def test_a_book_killed_at_a_few_moments_and_run_again_ends_where_an_uninterrupted_run_ends(smoke_run, tmp_path):
    """The short version of `make kill-test`: three kills, one at a stage boundary."""
    assert killtest.run("smoke", kills=3, how="KILL", seed=0, workdir=tmp_path, reference=smoke_run) == 0


@pytest.mark.chapters
def test_make_seeds_trains_a_seed_anew_on_the_same_data_and_chapter_05_reads_it(smoke_run, tmp_path, monkeypatch):
    import pandas as pd

    from specbook import results, seeds

    root = tmp_path / "out"
    shutil.copytree(smoke_run, root)  # chapter 05 runs again here, not in the run the other tests read
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(root))
    assert seeds.main(["--profile", "smoke", "--seeds", "2"]) == 0
    main, other = root / "data" / "smoke", root / "data" / "smoke-seed1"
    for level in LEVELS:
        for split in ("train_cot", "train_cod", "test"):  # the same problems and rationales, so the seeds pair by problem
            assert (other / "datasets" / level / f"{split}.jsonl").read_bytes() == (
                main / "datasets" / level / f"{split}.jsonl"
            ).read_bytes()
    for model in ("base_target", "base_draft", "target_cod_easy/merged", "draft_distilled_cod_easy"):  # everything trained anew
        assert (other / "models" / model / "model.safetensors").read_bytes() != (main / "models" / model / "model.safetensors").read_bytes()
    assert sorted(p.stem for p in (other / "notebooks").glob("*.ipynb")) == ["01_datasets", "02_training", "03_distillation"]
    runs = results.load_runs(other / "results")
    assert set(runs.request_set) == {"all"} and set(runs.profile) == {"smoke-seed1"}  # no timings repeated
    assert len(runs) == len(LEVELS) * (1 + 2 * len(STYLES))  # every target alone, each tuned one with its distilled draft
    table = pd.read_csv(main / "analysis" / "seeds.csv")
    assert [c for c in table.columns if c.startswith("seed ")] == ["seed 0", "seed 1"] and len(table) == 7 * len(LEVELS)
    assert "**Across 2 seeds** (0, 1;" in (main / "analysis" / "results.md").read_text()
    # a seed chapter that runs again (here: its record lost) sees the results that `measure` then
    # rewrites: measure's record (its window) must excuse them, or every `make seeds` would run it again
    (other / "notebooks" / "03_distillation.run.json").unlink()
    assert seeds.main(["--profile", "smoke", "--seeds", "2"]) == 0
    chapters = book.chapters()
    for notebook in chapters[1:4]:
        assert book.why_run("smoke-seed1", notebook, chapters[chapters.index(notebook) + 1 :]) is None, notebook.stem
