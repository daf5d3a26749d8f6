"""Idempotent stages: a manifest records a stage's parameters and input hashes; a re-run with the
same ones is skipped, a changed one reruns. Deleting a stage's folder reruns it too."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from specbook.runinfo import commit

MANIFEST = "manifest.json"


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class Stage:
    def __init__(self, directory: str | Path, params: dict, inputs: list[str | Path] = ()):
        self.directory = Path(directory)
        self.params = params
        self.inputs = {str(p): file_hash(p) for p in inputs}
        blob = json.dumps({"params": params, "inputs": self.inputs}, sort_keys=True, default=str)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def done(self) -> bool:
        if not self.manifest_path.exists():
            return False
        return json.loads(self.manifest_path.read_text()).get("fingerprint") == self.fingerprint

    def finish(self, summary: dict | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        manifest = {
            "fingerprint": self.fingerprint,
            "commit": commit(),
            "params": self.params,
            "inputs": self.inputs,
            "summary": summary or {},
        }
        self.manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))

    def manifest(self) -> dict:
        return json.loads(self.manifest_path.read_text())

    def summary(self) -> dict:
        return self.manifest()["summary"]
