"""`make seeds`: the book's verdicts under independent seeds, for chapter 05 to read.

A seed run is the profile under another seed, `<profile>-seed<N>` (`profiles.seed_run`): its
artifacts go to data/<profile>-seed<N>/, apart from the main run's. Only what does not depend on
the seed comes from the main run: chapter 01's problems, their split, the teacher's rationales
and the tokenizer learnt from them (`data_seed`; copied, so that a paid or sampling teacher is not
asked again, and checked file for file), so every seed is graded on the same test set and runs
pair by problem. What the seed changes: the offline profiles' base models (their pretraining
documents and order), every fine-tune and every draft, and the order of their training rows.

A seed run executes chapters 01-03 as they are (its executed notebooks kept beside its artifacts;
chapter 01 finds its data made) and, of chapter 04, what does not time the machine: every target
alone and with its distilled draft on the whole test set (accuracy, tokens, acceptance). Chapter 05
of the main run runs again at the end, to read them. Everything resumes: run it again after a stop.

    python -m specbook.seeds --profile tiny --seeds 3
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from specbook import analysis, benchmarking, book, profiles, results, runlock, stages
from specbook.paths import artifacts, data_dir
from specbook.profiles import LEVELS
from specbook.runinfo import seed_everything
from specbook.stages import file_hash
from specbook.styles import STYLES

SEED_CHAPTERS = ["01", "02", "03"]  # run whole under each seed; of chapter 04, `measure`
DATA = ("datasets", "cache", "teacher", "models/tokenizer")  # chapter 01's stages, which do not depend on the seed


def seed_list(main_seed: int, n: int) -> list[int]:
    """The seeds of `make seeds SEEDS=n`: the main run's first."""
    if n < 1:
        raise ValueError(f"SEEDS is {n}: give 1 or more (the main run's seed is one of them)")
    return [main_seed + i for i in range(n)]


def take_data(profile: str, name: str) -> None:
    """The main run's chapter-01 stages copied into the seed run `name`, unless it has them already."""
    main, other = artifacts(profile), artifacts(name)
    if (other.datasets / stages.MANIFEST).is_file():
        return
    for folder in DATA:
        if (main.root / folder).is_dir():
            shutil.copytree(main.root / folder, other.root / folder, dirs_exist_ok=True)


def same_data(profile: str, name: str) -> None:
    """The seed run `name` trains and tests on the main run's data, file for file: else it could not pair by problem."""
    main, other = artifacts(profile), artifacts(name)
    files = [main.dataset(level, split) for level in LEVELS for split in ("train_cot", "train_cod", "test")]
    files += sorted(main.tokenizer.glob("tokenizer*.json"))
    for path in files:
        twin = other.root / path.relative_to(main.root)
        if file_hash(path) != file_hash(twin):
            raise RuntimeError(
                f"{twin} differs from {path}: a seed run must keep the main run's problems, rationales and tokenizer. "
                f"Delete {other.root} and run make seeds again; if it differs again, chapter 01 depends on the seed where it must not."
            )


def measure(name: str) -> None:
    """Chapter 04's whole-test-set runs for the seed run `name`, written to its results folder, and
    recorded as part of chapter 04 (`book.record_part`): its time, and its window, inside which the
    records of chapters 01-03 take the files it rewrites for its own."""
    P, A = profiles.load(name), artifacts(name)
    started_ns, start = time.time_ns(), time.perf_counter()
    with runlock.running(name):
        seed_everything(P.seed)
        shutil.rmtree(A.results, ignore_errors=True)  # written again below, from the caches where nothing changed
        models = benchmarking.Models(P, A)
        tests = benchmarking.test_sets(A)
        accuracy = benchmarking.every_target_alone(models, tests)
        benchmarking.every_target_with_its_draft(models, tests, accuracy)
        book.record_part(name, book.select(["04"])[0], started_ns, time.perf_counter() - start)


def run(profile: str, n: int) -> int:
    """The main run (current or run now), then each other seed's run, then the main run's chapter 05."""
    seeds = seed_list(profiles.load(profile).seed, n)
    status = book.run(profile)
    for seed in seeds[1:]:
        if status:
            return status
        name = profiles.seed_run(profile, seed)
        print(f"\n== seed {seed} of {', '.join(map(str, seeds))}: {data_dir(name)}", flush=True)
        take_data(profile, name)
        status = book.run(name, only=SEED_CHAPTERS[:1])
        if not status:
            same_data(profile, name)  # before hours of training on data that would not pair
            status = book.run(name, only=SEED_CHAPTERS[1:])
        if not status:
            measure(name)
    return status or book.run(profile, only=["05"], force=True)


def _needed(engine: str, k: int) -> set[str]:
    """The runs `analysis.untimed_verdicts` reads."""
    alone = {results.Run(level, t, "alone", 0, 0.0, engine, "all").name for level in LEVELS for t in ("base", *STYLES)}
    return alone | {results.Run(level, s, "distilled", k, 0.0, engine, "all").name for level in LEVELS for s in STYLES}


def verdicts_by_seed(profile: str, k: int) -> tuple[dict, list[str]]:
    """{seed: `analysis.untimed_verdicts`} for the main run and every finished seed run of
    `profile`, and a line per seed run: where its results come from (profile, config, commit), or
    why it is left out (unfinished, running now, damaged)."""
    main = profiles.load(profile)
    R = results.Results(artifacts(profile).results)
    by_seed, lines = {main.seed: analysis.untimed_verdicts(R, k)}, []
    runs_of = {}
    for folder in data_dir(profile).parent.glob(f"{profile}-seed*"):
        found = profiles.SEED_RUN.match(folder.name)
        if found and found["main"] == profile and int(found["seed"]) != main.seed:
            runs_of[int(found["seed"])] = folder.name
    for seed, name in sorted(runs_of.items()):
        where = artifacts(name).results
        try:
            with runlock.running(name):  # not while `make seeds` writes it
                runs = results.load_runs(where) if (where / stages.MANIFEST).is_file() else None
                if runs is None or not _needed(R.engine, k) <= set(runs.run):
                    lines.append(f"seed {seed}: unfinished ({where}); `make seeds` finishes it")
                    continue
                by_seed[seed] = analysis.untimed_verdicts(results.Results(where), k)
                lines.append(f"seed {seed}: {results.provenance_line(runs)}; its chapters' last runs took {book.recorded_minutes(name)}")
        except runlock.ProfileBusy:
            lines.append(f"seed {seed}: left out, running now ({name})")
        except (stages.DamagedArtifact, ValueError, OSError) as err:
            lines.append(f"seed {seed}: left out, {err}")
    return by_seed, lines


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="tiny", help=f"one of {', '.join(profiles.available())}")
    parser.add_argument("--seeds", type=int, default=3, help="how many seeds, the main run's among them")
    args = parser.parse_args(argv)
    try:
        profiles.load(args.profile)
        seed_list(0, args.seeds)
    except (profiles.ProfileError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return run(args.profile, args.seeds)


if __name__ == "__main__":
    sys.exit(main())
