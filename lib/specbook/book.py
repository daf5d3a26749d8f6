"""Run the book: every chapter in order, headless, with papermill, on one profile.

    python -m specbook.book --profile tiny [--only 01]

Executed notebooks (with outputs) go to data/<profile>/notebooks/, figures to figures/<profile>/.
A chapter whose last run is still current is not run again (`--force` runs it anyway): current
means the same notebook, lib, profile values, installed packages and processor, and every file
present when that run ended (its outputs and what it read) is still there, untouched. A file
rewritten since by a later chapter's run does not count: earlier chapters never read it.
The terminal shows each code cell as it starts (with the section it belongs to), the chapters'
progress bars, and at the end the time of each chapter; the executed notebook keeps each bar's
final line only (`keep_final_progress`), not one output per refresh. The kernel's own log (not the cells'
outputs) goes to data/<profile>/notebooks/<chapter>.kernel.log; lines that are not known to be
harmless are shown. A failing chapter stops the run and names the notebook, the cell and the error.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

from specbook import profiles, runinfo, runlock, stages
from specbook.paths import LIB, NOTEBOOKS, artifacts, figures_dir, output_root

# Kernel log lines that say nothing about a chapter: jupyter's local kernels talk over TCP on
# localhost; jupyter_client interrupts a kernel before it shuts it down; and sometimes the kernel's
# control-channel task is still waiting when its process exits (asyncio reports it in two lines).
HARMLESS_KERNEL_LOG = [
    r"Kernel is running over TCP without encryption",
    r"KeyboardInterrupt caught in kernel",
    r"^Task was destroyed but it is pending!$",
    r"^task: <Task pending name='Task-\d+' coro=<Kernel\.dispatch_control\(\)",
]


def chapters(directory: Path = NOTEBOOKS) -> list[Path]:
    """The chapters, NN_slug.ipynb, in the order of their numbers."""
    return sorted(directory.glob("[0-9][0-9]_*.ipynb"))


def select(only: list[str] | None) -> list[Path]:
    found = chapters()
    if not only:
        return found
    picked = [nb for nb in found if any(nb.stem.startswith(o) for o in only)]
    missing = [o for o in only if not any(nb.stem.startswith(o) for nb in found)]
    if missing:
        names = ", ".join(nb.stem for nb in found)
        raise SystemExit(f"no chapter matches {', '.join(missing)}; chapters: {names}")
    return picked


def fingerprint(notebook: Path, profile: str) -> str:
    """What a chapter's run depends on besides the files it reads: its notebook, the lib, every value
    of the profile, the installed packages and the processor (chapters cache timings per machine)."""
    digest = hashlib.sha256(notebook.read_bytes())
    for source in sorted(LIB.glob("*.py")):
        digest.update(source.name.encode() + source.read_bytes())
    packages = sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions())
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        cpu = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name")), cpu)
    digest.update(json.dumps([profiles.config_hash(profiles.load(profile)), packages, cpu, os.cpu_count()]).encode())
    return digest.hexdigest()[:16]


def _files(profile: str) -> dict[str, list[int]]:
    """Size and modification time of every artifact of the profile (the executed notebooks and the
    run's lock aside), by its path under the output root: a run copied with its times kept stays current."""
    roots, notebooks, lock = [artifacts(profile).root, figures_dir(profile)], artifacts(profile).notebooks, runlock.lock_file(profile)
    return {
        str(path.relative_to(output_root())): [(stat := path.stat()).st_size, stat.st_mtime_ns]
        for root in roots
        if root.exists()
        for path in root.rglob("*")
        if path.is_file() and notebooks not in path.parents and path != lock
    }


def _record(profile: str, notebook: Path) -> Path:
    return artifacts(profile).notebooks / f"{notebook.stem}.run.json"


def _read_record(profile: str, notebook: Path) -> dict | None:
    try:
        return json.loads(_record(profile, notebook).read_text())
    except (OSError, ValueError):
        return None


def why_run(profile: str, notebook: Path, later: list[Path]) -> str | None:
    """Why `notebook` must run again, or None when its last run is current. `later`: the chapters
    after it, whose runs may rewrite files that this chapter's record saw but never reads."""
    record = _read_record(profile, notebook)
    if record is None:
        return "it has not run to its end on this profile"
    if not (artifacts(profile).notebooks / notebook.name).exists():
        return "its executed notebook is missing"
    if record["fingerprint"] != fingerprint(notebook, profile):
        return "its notebook, the lib, the profile, the installed packages or the processor changed"
    windows = [(r["started_ns"], r["ended_ns"]) for r in map(lambda nb: _read_record(profile, nb), later) if r]
    for name, (size, mtime) in record["files"].items():
        path = output_root() / name  # an absolute name (a record of older code) stays itself
        try:
            stat = path.stat()
        except OSError:
            return f"{path} is missing"
        if [stat.st_size, stat.st_mtime_ns] != [size, mtime] and not any(a <= stat.st_mtime_ns <= b for a, b in windows):
            return f"{path} changed since"
    return None


def _kernel_logging_to(path: Path):
    """A kernel manager whose kernel writes its own log (stdout and stderr of the process) to `path`."""
    from jupyter_client.manager import AsyncKernelManager

    class KernelLoggingToFile(AsyncKernelManager):
        async def start_kernel(self, **kw):
            with open(path, "ab") as log:  # the kernel process keeps its own copy of the file
                return await super().start_kernel(stdout=log, stderr=log, **kw)

    return KernelLoggingToFile


def unexpected_kernel_log(path: Path) -> list[str]:
    """The lines of a kernel log that are not known to be harmless."""
    if not path.exists():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [line for line in lines if line.strip() and not any(re.search(p, line) for p in HARMLESS_KERNEL_LOG)]


def _status_engine() -> str:
    """A papermill engine that prints one line as each code cell starts: the chapter, the cell's
    number, its section (the last markdown heading above it) and the minutes since the chapter began."""
    from papermill.engines import NBClientEngine, papermill_engines

    class Status(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
            chapter = Path(kwargs["input_path"]).stem
            total = sum(c.cell_type == "code" for c in nb_man.nb.cells)  # the injected parameters included
            start, number, section = time.perf_counter(), 0, ""
            original = nb_man.cell_start

            def cell_start(cell, cell_index=None, **kw):  # papermill calls it for every cell, markdown too
                nonlocal number, section
                if cell.cell_type == "markdown" and (heading := re.match(r"#+\s*(.*)", cell.source)):
                    section = heading.group(1)[:60]
                elif cell.cell_type == "code":
                    number += 1
                    print(f"  {chapter} · cell {number}/{total} · {section} · {(time.perf_counter() - start) / 60:.1f} min", flush=True)
                return original(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("specbook-status", Status)
    return "specbook-status"


def final_progress(text: str) -> str:
    """Stream text as a terminal leaves it: a progress bar redraws its line after each carriage
    return, so a line keeps its last state; a bar that cleared itself on closing (tqdm's
    `leave=False`) leaves nothing, as in the terminal."""
    lines = []
    for line in text.split("\n"):
        last = line.rstrip("\r").split("\r")[-1]
        if last.strip() or "\r" not in line:
            lines.append(last)
    return "\n".join(lines)


def keep_final_progress(path: Path) -> None:
    """Merge each cell's consecutive stream outputs of one kind (stdout, stderr) and keep each
    progress bar's final line: a bar refreshed 500 times is one line, not 500 outputs."""
    import nbformat

    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        merged = []
        for out in cell.outputs:
            if out.output_type == "stream" and merged and merged[-1].output_type == "stream" and merged[-1].name == out.name:
                merged[-1].text += out.text
            else:
                merged.append(out)
        for out in merged:
            if out.output_type == "stream":
                out.text = final_progress(out.text)
        cell.outputs = [o for o in merged if o.output_type != "stream" or o.text.strip()]
    nbformat.write(notebook, path)


def run(profile: str, only: list[str] | None = None, force: bool = False) -> int:
    try:
        profiles.load(profile)
    except profiles.ProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        with runlock.running(profile):
            return _run(profile, select(only), force)
    except runlock.ProfileBusy as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(profile: str, todo: list[Path], force: bool) -> int:
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    out_dir = artifacts(profile).notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    engine, seconds, book = _status_engine(), {}, chapters()
    for i, notebook in enumerate(todo, start=1):
        output = out_dir / notebook.name
        later = book[book.index(notebook) + 1 :] if notebook in book else []
        reason = "--force" if force else why_run(profile, notebook, later)
        if reason is None:
            record = _read_record(profile, notebook)
            print(
                f"[{i}/{len(todo)}] {notebook.stem} on {profile}: current (run at commit {record['commit']} in "
                f"{_minutes(record['seconds'])}; `make run-all FORCE=1` runs it again)",
                flush=True,
            )
            seconds[notebook.stem] = None
            continue
        kernel_log = out_dir / f"{notebook.stem}.kernel.log"
        kernel_log.unlink(missing_ok=True)
        _record(profile, notebook).unlink(missing_ok=True)
        print(f"[{i}/{len(todo)}] {notebook.stem} on {profile} (runs: {reason})", flush=True)
        start, started_ns = time.perf_counter(), time.time_ns() - 10**9  # file times lag the clock by up to a tick
        ran_with = fingerprint(notebook, profile)  # before the run: what it ran with, even if a file is edited meanwhile
        try:
            pm.execute_notebook(
                str(notebook),
                str(output),
                parameters={"profile": profile},
                cwd=str(NOTEBOOKS),
                engine_name=engine,
                progress_bar=False,
                stderr_file=sys.stderr,  # the chapter's progress bars
                kernel_name="python3",
                kernel_manager_class=_kernel_logging_to(kernel_log),
            )
        except PapermillExecutionError as err:
            print(
                f"FAILED {notebook.name}, cell {err.exec_count} (index {err.cell_index}): {err.ename}: {err.evalue}\n"
                f"  the executed notebook, with the full traceback: {output}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        except DeadKernelError:
            print(
                f"FAILED {notebook.name}: its kernel died (out of memory is the usual cause: free memory or pick a smaller profile)\n"
                f"  the cells that ran, with their outputs: {output}\n  the kernel's log: {kernel_log}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        except KeyboardInterrupt:  # Ctrl-C: the chapter is not recorded as run; its finished stages are kept
            print(
                f"\ninterrupted in {notebook.stem}: what its stages finished is kept, and long stages resume from their "
                f"checkpoints; `make run-all PROFILE={profile}` goes on from there",
                file=sys.stderr,
                flush=True,
            )
            return 130
        finally:
            if output.exists():
                keep_final_progress(output)
            for line in unexpected_kernel_log(kernel_log):
                print(f"  kernel: {line}", file=sys.stderr, flush=True)
        seconds[notebook.stem] = time.perf_counter() - start
        record = {
            "fingerprint": ran_with,
            "commit": runinfo.commit(),
            "seconds": seconds[notebook.stem],
            "started_ns": started_ns,
            "ended_ns": time.time_ns(),
            "machine": runinfo.machine(),
            "files": _files(profile),
        }
        stages.write_atomically(_record(profile, notebook), json.dumps(record, indent=1))
        print(f"[{i}/{len(todo)}] {notebook.stem} done in {_minutes(seconds[notebook.stem])}", flush=True)
    ran = {name: s for name, s in seconds.items() if s is not None}
    print(f"\nThe book on {profile}: {len(ran)} of {len(todo)} chapters ran, in {_minutes(sum(ran.values()))}")
    for name, s in seconds.items():
        print(f"  {name:<16} {'current' if s is None else _minutes(s):>9}")
    print(f"  executed notebooks: {out_dir}\n  figures:            {figures_dir(profile)}", flush=True)
    return 0


def run_time(profile: str) -> str | None:
    """The book's last run on `profile`, from its chapters' records: minutes per chapter and in all,
    the commit(s) and the machine; None unless every chapter has a record."""
    records = {nb.stem: _read_record(profile, nb) for nb in chapters()}
    if not records or any(r is None for r in records.values()):
        return None
    machines = {json.dumps(r["machine"], sort_keys=True) for r in records.values() if r.get("machine")}
    if not machines:  # recorded by older code: the machine chapter 04's results say they were timed on
        machines = {json.dumps(json.loads(p.read_text())["provenance"]["machine"], sort_keys=True) for p in _results_records(profile)}
    if len(machines) == 1:
        machine = json.loads(machines.pop())
        on = f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}"
    else:
        on = "machines that differ from chapter to chapter" if machines else "a machine not recorded"
    commits = ", ".join(sorted({r["commit"] for r in records.values()}))
    per = ", ".join(f"{name[:2]} {r['seconds'] / 60:.1f}" for name, r in records.items())
    total = sum(r["seconds"] for r in records.values()) / 60
    return f"The book's last run on `{profile}` took {total:.1f} minutes (chapter by chapter: {per}) on {on}, at commit {commits}."


def recorded_minutes(profile: str) -> str | None:
    """The minutes of every chapter (or part of one) recorded on `profile`, and their sum: "82.2
    minutes (01 0.2, 02 44.6, 03 29.3, 04 8.1)"; None when none is recorded. A chapter stopped and
    resumed counts its last run only: the one its record keeps."""
    records = {nb.stem[:2]: r for nb in chapters() if (r := _read_record(profile, nb))}
    if not records:
        return None
    per = ", ".join(f"{name} {r['seconds'] / 60:.1f}" for name, r in records.items())
    return f"{sum(r['seconds'] for r in records.values()) / 60:.1f} minutes ({per})"


def record_part(profile: str, notebook: Path, started_ns: int, seconds: float) -> None:
    """A record of part of a chapter's work done outside its notebook (a seed run's whole-test-set
    runs of chapter 04, `seeds.measure`): its time, and its window, inside which the records of
    the chapters before it take the files it rewrote for its own. It holds no fingerprint of the
    chapter, so the chapter itself still runs whole when asked to."""
    record = {
        "fingerprint": "part of the chapter, run by other code",
        "commit": runinfo.commit(),
        "seconds": seconds,
        "started_ns": started_ns - 10**9,  # file times lag the clock by up to a tick
        "ended_ns": time.time_ns(),
        "machine": runinfo.machine(),
        "files": {},
    }
    artifacts(profile).notebooks.mkdir(parents=True, exist_ok=True)
    stages.write_atomically(_record(profile, notebook), json.dumps(record, indent=1))


def _results_records(profile: str) -> list[Path]:
    return [p for p in artifacts(profile).results.glob("*.json") if p.name != "manifest.json"][:1]


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 60 else f"{seconds / 60:.1f} min"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny", help=f"one of {', '.join(profiles.available())}")
    parser.add_argument("--only", nargs="*", help="chapter numbers or names, e.g. 01")
    parser.add_argument("--force", action="store_true", help="run the chapters even when their last run is current")
    args = parser.parse_args(argv)
    return run(args.profile, args.only, args.force)


if __name__ == "__main__":
    sys.exit(main())
