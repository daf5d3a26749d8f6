"""Figures: one look for the whole book, saved as PNG and SVG under figures/<profile>/."""

from __future__ import annotations

from pathlib import Path

import matplotlib

from specbook.paths import figures_dir
from specbook.runinfo import stamp

matplotlib.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "svg.hashsalt": "specbook",  # stable SVG ids, so unchanged figures give unchanged files
    }
)


def save(fig, profile: str, name: str) -> list[Path]:
    """Save `fig` as figures/<profile>/<name>.png and .svg, stamped with profile and commit."""
    out = figures_dir(profile)
    out.mkdir(parents=True, exist_ok=True)
    fig.text(0.99, 0.005, stamp(profile), ha="right", va="bottom", fontsize=7, color="0.5")
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    for path in paths:
        fig.savefig(path, bbox_inches="tight", metadata={"Date": None} if path.suffix == ".svg" else None)
    return paths
