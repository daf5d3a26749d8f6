"""Seeds and provenance: every number the book shows says which profile and commit made it."""

from __future__ import annotations

import os
import random
import subprocess
import warnings
from pathlib import Path

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


# Warnings the libraries raise on every run of the book that say nothing about it: each matched by
# its category and the start of its message, so that any other warning still shows.
KNOWN_HARMLESS = [
    # raised inside TRL/peft's training loop, not by the book's code
    (FutureWarning, r"`is_gradient_checkpointing` is deprecated"),
    # TRL pins batches by default; without a GPU there is nothing to pin to
    (UserWarning, r"'pin_memory' argument is set as true but no accelerator is found"),
    # headless runs (papermill) have no widgets: tqdm's text bars are what they should show
    (Warning, r"IProgress not found"),
]


def quiet_known_warnings() -> None:
    """Silence KNOWN_HARMLESS (each chapter calls it first), and nothing else."""
    for category, message in KNOWN_HARMLESS:
        warnings.filterwarnings("ignore", message=message, category=category)


def commit(root: Path = ROOT) -> str:
    """The checkout's commit, with '+dirty' when the work tree has uncommitted changes."""

    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short=12", "HEAD")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"
    # compares content as git stores it (`git status` calls a notebook saved with outputs changed
    # when the outputs change its size, though the nbstripout filter makes it identical)
    dirty = subprocess.run(["git", "-C", str(root), "diff", "--quiet", "HEAD"], capture_output=True).returncode != 0
    return sha + ("+dirty" if dirty else "")


def machine() -> dict:
    """What a timing depends on besides the code: the processor, the threads torch uses, the
    library versions. Part of every cached timing's parameters, so that another machine measures anew."""
    import platform

    import torch

    cpu = platform.processor()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "gpu": gpu}


def stamp(profile: str) -> str:
    """One line to print under every table and figure: the profile, a hash of all its values (two
    runs with other settings differ) and the commit."""
    from specbook import profiles

    return f"profile {profile} · config {profiles.config_hash(profiles.load(profile))} · commit {commit()}"
