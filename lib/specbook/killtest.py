"""The book killed at many moments: a run started again after a kill must end where an
uninterrupted run ends.

    python -m specbook.killtest --profile smoke --kills 20 [--signal INT] [--seed 0]

First a reference run of the whole book, into an output root of its own. Then chains of runs into
another root: the book is started, stopped at a moment, and started again, until `--kills` stops
have happened and a run ends by itself. Every other moment is drawn at random (seeded) over the
run; the others come just after a stage records itself done (a new manifest): the stage
boundaries. KILL stops the book and its chapters' kernels at once (a crash, a lost machine); INT
is what Ctrl-C in a terminal sends to the book (its kernels run in a session of their own).

What a reader sees (`seen`) must then equal the reference's: the data sets, every model's and
adapter's weights, chapter 04's results without their timing columns, and chapter 05's tables of
accuracy, tokens and the verdicts that do not rest on a timing. Each difference is listed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# The columns and metrics measured in seconds or computed from them (`results.request_rows`,
# `results.run_metrics`, `results.timed_metrics`): they differ from run to run.
TIMING = {
    *("ttft_s", "latency_s", "draft_s", "target_s", "round_latencies_s"),
    *("tokens_per_s", "ttft_median_s", "decode_step_s", "decode_draft_s", "decode_target_s", "latency_median_s", "latency_p90_s"),
    *("prompt_pass_share", "speedup", "speedup_ci", "speedup_rounds", "round_spread", "unstable", "predicted_speedup"),
    *("decode_speedup", "efficiency", "decode_efficiency"),
}
RESTART_S = 20  # about what a started book takes before its first chapter's work (a kernel, the imports)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def _without_timing_csv(path: Path) -> str:
    rows = list(csv.DictReader(io.StringIO(path.read_text())))
    kept = [{k: v for k, v in row.items() if k not in TIMING} for row in rows]
    return _digest(json.dumps(kept, sort_keys=True).encode())


def seen(root: Path, profile: str) -> dict[str, str]:
    """A digest of each artifact a reader sees, by its path under `root`, timing left out."""
    data = root / "data" / profile
    out = {}
    for path in sorted((data / "datasets").rglob("*.jsonl")):
        out[str(path.relative_to(root))] = _digest(path.read_bytes())
    for path in sorted((data / "models").rglob("*.safetensors")):
        if "checkpoints" not in path.parts:  # resumable work, not a result
            out[str(path.relative_to(root))] = _digest(path.read_bytes())
    results = data / "results"
    for path in sorted(results.glob("*.csv")):
        out[str(path.relative_to(root))] = _without_timing_csv(path)
    for path in sorted(results.glob("*.requests.jsonl")):
        rows = [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in path.read_text().splitlines()]
        out[str(path.relative_to(root))] = _digest(json.dumps(rows, sort_keys=True).encode())
    for path in sorted(p for p in results.glob("*.json") if p.name != "manifest.json"):
        record = json.loads(path.read_text())
        metrics = {k: v for k, v in record["metrics"].items() if k not in TIMING}
        out[str(path.relative_to(root))] = _digest(json.dumps(metrics, sort_keys=True).encode())
    for name in ["accuracy.csv", "tokens.csv"]:
        path = data / "analysis" / name
        if path.exists():
            out[str(path.relative_to(root))] = _digest(path.read_bytes())
    verdicts = data / "analysis" / "verdicts.csv"
    if verdicts.exists():
        rows = [r for r in csv.DictReader(io.StringIO(verdicts.read_text())) if not r["question"].startswith("2a.")]
        out[str(verdicts.relative_to(root))] = _digest(json.dumps(rows, sort_keys=True).encode())
    return out


def differences(reference: dict[str, str], other: dict[str, str]) -> list[str]:
    said = [f"missing after the kills: {p}" for p in sorted(reference.keys() - other.keys())]
    said += [f"only after the kills: {p}" for p in sorted(other.keys() - reference.keys())]
    said += [f"differs: {p}" for p in sorted(reference.keys() & other.keys()) if reference[p] != other[p]]
    return said


def _descendants(pid: int) -> list[int]:
    """Every process under `pid` (its kernels, which jupyter starts in sessions of their own)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _book(profile: str, root: Path, log) -> subprocess.Popen:
    env = {**os.environ, "SPECBOOK_OUTPUT": str(root)}
    env.pop("SPECBOOK_LOCK_HOLDER", None)
    command = [sys.executable, "-m", "specbook.book", "--profile", profile]
    return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _manifests(root: Path) -> set[Path]:
    """Every stage's manifest under `root`, walked while the book adds and deletes folders."""
    found = set()
    for folder, _, files in os.walk(root, onerror=lambda err: None):  # a folder deleted mid-walk is skipped
        if "manifest.json" in files:
            found.add(Path(folder) / "manifest.json")
    return found


def _kill_all(book: subprocess.Popen) -> None:
    """SIGKILL to the book and everything under it at once."""
    for pid in [book.pid, *_descendants(book.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    book.wait()


def _stop(book: subprocess.Popen, how: str) -> str:
    """Stop the book: KILL the book and everything under it at once; INT to the book alone, as a
    terminal's Ctrl-C (its kernels are in sessions of their own), then wait for it to end."""
    if how == "KILL":
        _kill_all(book)
        return "killed"
    os.killpg(book.pid, signal.SIGINT)
    try:
        book.wait(timeout=120)
        return f"ended on SIGINT with code {book.returncode}"
    except subprocess.TimeoutExpired:
        _kill_all(book)
        return "did not end within 120 s of SIGINT: killed"


def _last_cell(log_path: Path) -> str:
    """The chapter and cell the book had started last (its status lines: "  02_training · cell 5/17 · ...")."""
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if " · cell " in line]
    return lines[-1].strip()[:80] if lines else "before the first cell"


def _stopped(book: subprocess.Popen, root: Path, how: str, at_boundary: bool, after_s: float) -> bool:
    """Wait for the moment (the next new manifest, or `after_s` seconds) and stop the book there
    (`book.stopped` says how); False when the book ended by itself first."""
    known, started = _manifests(root), time.perf_counter()
    while book.poll() is None:
        time.sleep(0.05)
        if (at_boundary and _manifests(root) - known) or (not at_boundary and time.perf_counter() - started > after_s):
            book.stopped = _stop(book, how)
            return True
    return False


def run(profile: str, kills: int, how: str, seed: int, workdir: Path, reference: Path | None = None) -> int:
    """The test; `reference`: the output root of a finished run of the same code, else one is made in `workdir`."""
    from tqdm import tqdm

    rng = random.Random(seed)
    log_path = workdir / "books.log"
    with open(log_path, "a") as log:
        if reference is None:
            reference = workdir / "reference"
            if _book(profile, reference, log).wait() != 0:
                print(f"the reference run failed: {log_path}", file=sys.stderr)
                return 2
        records = (reference / "data" / profile / "notebooks").glob("*.run.json")
        length = sum(json.loads(r.read_text())["seconds"] for r in records)
        print(f"reference run: {length / 60:.1f} min of chapters; {len(_manifests(reference))} stages", flush=True)
        stops, chains = [], 0
        bar = tqdm(total=kills, desc=f"{how} stops")
        while len(stops) < kills:  # a chain ends when a run ends by itself; another starts if stops remain
            if chains >= kills:
                print(f"{chains} chains ended by themselves before {kills} stops: the runs are too short", file=sys.stderr)
                return 2
            chains += 1
            root, chain_start = workdir / f"chain{chains}", time.perf_counter()
            while True:
                book = _book(profile, root, log)
                at_boundary, after_s = len(stops) % 2 == 1, rng.uniform(RESTART_S, RESTART_S + 2 * length / kills)
                if len(stops) < kills and _stopped(book, root, how, at_boundary, after_s):
                    log.flush()
                    moment = {
                        "chain": chains,
                        "at_s": round(time.perf_counter() - chain_start, 1),
                        "kind": "boundary" if at_boundary else "random",
                    }
                    stops.append({**moment, "stop": book.stopped, "running": _last_cell(log_path)})
                    bar.update()
                    continue
                if book.wait() != 0:
                    print(f"a run of chain {chains} failed after {len(stops)} stops: {log_path}", file=sys.stderr)
                    return 1
                break
            found = differences(seen(reference, profile), seen(root, profile))
            if found:
                print(f"chain {chains}: {len(found)} artifacts differ from the reference:", *found[:50], sep="\n  ", file=sys.stderr)
                return 1
        bar.close()
    spread = sorted(s["at_s"] for s in stops)
    print(f"{len(stops)} stops ({how}) in {chains} chain(s), at {', '.join(f'{s:.0f}' for s in spread)} s; reference run {length:.0f} s")
    print("every artifact a reader sees equals the reference's", flush=True)
    (workdir / "stops.json").write_text(json.dumps(stops, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--signal", choices=["KILL", "INT"], default="KILL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="where the runs go (default: a temporary folder, kept)")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="specbook-killtest-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"runs in {workdir}", flush=True)
    return run(args.profile, args.kills, args.signal, args.seed, workdir)


if __name__ == "__main__":
    sys.exit(main())
