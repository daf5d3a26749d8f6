"""Where the book reads its sources and writes its artifacts: every artifact path is named here once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The lib is installed in editable mode from lib/specbook, so the repository is two levels up.
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = NOTEBOOKS / "params"
LIB = Path(__file__).resolve().parent
# the published reference run's numbers, with their source (tracked in the repository, not generated)
REFERENCE_RUN = ROOT / "data" / "reference_run.csv"
REFERENCE_K = 5  # the reference run's draft length (its header says so)


def lib_sources(*modules: str) -> list[Path]:
    """The source files of lib modules or packages (every module of one), by name: the code a stage's result depends on."""
    files = []
    for name in modules:
        package = LIB / name
        files += sorted(package.glob("*.py")) if package.is_dir() else [LIB / f"{name}.py"]
    missing = [f for f in files if not f.exists()]
    if missing:
        raise FileNotFoundError(f"no lib source {', '.join(map(str, missing))}: name a module or package of {LIB}")
    return files


def output_root() -> Path:
    """Artifacts go under the repository unless SPECBOOK_OUTPUT points elsewhere (the tests do)."""
    return Path(os.environ.get("SPECBOOK_OUTPUT", ROOT))


def data_dir(profile: str) -> Path:
    return output_root() / "data" / profile


def figures_dir(profile: str) -> Path:
    return output_root() / "figures" / profile


@dataclass(frozen=True)
class Artifacts:
    """The artifacts of one profile under `root` (data/<profile>), stage by stage."""

    root: Path

    def require(self, path: Path, made_by: str) -> Path:
        """`path`, or an error naming the chapter that makes it (`made_by`, e.g. "01_datasets") and how to run it."""
        if not path.exists():
            raise FileNotFoundError(
                f"{path} does not exist yet: chapter {made_by} makes it. "
                f"Run that chapter first (make run-all PROFILE={self.root.name} NB={made_by[:2]})."
            )
        return path

    @property
    def notebooks(self) -> Path:  # executed chapters, with outputs
        return self.root / "notebooks"

    @property
    def cache(self) -> Path:  # generated problems, reusable across stages
        return self.root / "cache"

    @property
    def teacher(self) -> Path:  # the teachers' resumable work (batch jobs, generated rows)
        return self.root / "teacher"

    @property
    def theory(self) -> Path:  # chapter 00's measurements
        return self.root / "theory"

    @property
    def datasets(self) -> Path:  # chapter 01's stage (its manifest lives here)
        return self.root / "datasets"

    def dataset(self, level: str, name: str) -> Path:
        """name: train_cot, train_cod or test."""
        return self.datasets / level / f"{name}.jsonl"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def tokenizer(self) -> Path:
        return self.models / "tokenizer"

    def base_model(self, role: str) -> Path:
        """role: target or draft (offline profiles: pretrained here)."""
        return self.models / f"base_{role}"

    def target(self, style: str, level: str) -> Path:
        """The LoRA adapter of the target tuned on one style and level (chapter 02)."""
        return self.models / f"target_{style}_{level}"

    def merged(self, adapter: Path) -> Path:
        """An adapter folded into its base model, saved beside the adapter."""
        return adapter / "merged"

    def draft(self, method: str, style: str, level: str) -> Path:
        """A draft trained for the target of one style and level (chapter 03); method: how (distillation.METHODS)."""
        return self.models / f"draft_{method}_{style}_{level}"

    def distilled(self, style: str, level: str) -> Path:
        """The stage holding what the tuned target of one style and level wrote for its training
        questions (chapter 03): rows.jsonl, its manifest, and while it runs the resumable log."""
        return self.root / "distilled" / f"{style}_{level}"

    @property
    def results(self) -> Path:  # chapter 04's per-request and per-run results
        return self.root / "results"

    @property
    def analysis(self) -> Path:  # chapter 05's tables and verdicts (the README's results come from here)
        return self.root / "analysis"

    @property
    def site(self) -> Path:  # `make book`: the executed chapters as a static website
        return self.root / "site"

    def cached(self, chapter: str, name: str) -> Path:
        """A chapter's cached measurement (`stages.cached`), e.g. chapter "00_theory", name "sweep"."""
        return self.root / "cached" / chapter / name


def artifacts(profile: str) -> Artifacts:
    return Artifacts(data_dir(profile))
