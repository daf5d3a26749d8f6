"""Where the book reads its sources and writes its artifacts."""
from __future__ import annotations

import os
from pathlib import Path

# The lib is installed in editable mode from lib/specbook, so the repository is two levels up.
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
PARAMS = NOTEBOOKS / "params"


def output_root() -> Path:
    """Artifacts go under the repository unless SPECBOOK_OUTPUT points elsewhere (the tests do)."""
    return Path(os.environ.get("SPECBOOK_OUTPUT", ROOT))


def data_dir(profile: str) -> Path:
    return output_root() / "data" / profile


def figures_dir(profile: str) -> Path:
    return output_root() / "figures" / profile
