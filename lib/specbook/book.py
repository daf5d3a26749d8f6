"""Run the book: every chapter in order, headless, with papermill, on one profile.

    python -m specbook.book --profile tiny [--only 01]

Executed notebooks (with outputs) go to data/<profile>/notebooks/. A failing chapter stops the
run and names the notebook, the cell and the error.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from specbook import profiles
from specbook.paths import NOTEBOOKS, artifacts


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


def run(profile: str, only: list[str] | None = None) -> int:
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    try:
        profiles.load(profile)
    except profiles.ProfileError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    todo = select(only)
    out_dir = artifacts(profile).notebooks
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, notebook in enumerate(todo, start=1):
        output = out_dir / notebook.name
        print(f"[{i}/{len(todo)}] {notebook.stem} on {profile} ...", flush=True)
        start = time.perf_counter()
        try:
            pm.execute_notebook(
                str(notebook),
                str(output),
                parameters={"profile": profile},
                cwd=str(NOTEBOOKS),
                progress_bar=False,
                log_output=False,
                kernel_name="python3",
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
                f"  the cells that ran, with their outputs: {output}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        print(f"[{i}/{len(todo)}] {notebook.stem} done in {time.perf_counter() - start:.0f} s -> {output}", flush=True)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny", help=f"one of {', '.join(profiles.available())}")
    parser.add_argument("--only", nargs="*", help="chapter numbers or names, e.g. 01")
    args = parser.parse_args(argv)
    return run(args.profile, args.only)


if __name__ == "__main__":
    sys.exit(main())
