"""Seeds and provenance: every number the book shows says which profile and commit made it."""

from __future__ import annotations

import random
import subprocess

import numpy as np

from specbook.paths import ROOT


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)


def commit() -> str:
    """The checkout's commit, with '+dirty' when the work tree has uncommitted changes."""

    def git(*args):
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def stamp(profile: str) -> str:
    """One line to print under every table and figure: the profile, a hash of all its values (two
    runs with other settings differ) and the commit."""
    from specbook import profiles

    return f"profile {profile} · config {profiles.config_hash(profiles.load(profile))} · commit {commit()}"
