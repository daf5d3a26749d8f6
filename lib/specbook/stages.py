"""Idempotent stages. A stage's manifest records its parameters, the hashes of its inputs and the
hashes of the outputs it wrote. A re-run is skipped only when the parameters and inputs are the
same and every output is still there, unchanged; anything else reruns the stage (and says why).
Resumable work inside a stage (training checkpoints, generation logs) lives in a work folder that
belongs to one fingerprint: work made for other settings is cleared, never resumed."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

from specbook.jsonl import write_atomically
from specbook.paths import ROOT, output_root
from specbook.runinfo import commit

MANIFEST = "manifest.json"
WORK_FINGERPRINT = "fingerprint.txt"
RESULT = "result.pkl"
T = TypeVar("T")


def file_hash(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class DamagedArtifact(RuntimeError):
    pass


def read_manifest(manifest: Path) -> dict:
    """A manifest's contents; DamagedArtifact naming it where it cannot be read (a write cut short)."""
    try:
        content = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        raise DamagedArtifact(
            f"{manifest} cannot be read ({err}): a run stopped while writing it. Delete {manifest.parent} and run the "
            f"book again (make run-all PROFILE={_profile_of(manifest)}): the chapter that writes it makes it again."
        ) from None
    return content if isinstance(content, dict) else {}


def writer_record(path: str | Path) -> tuple[Path, dict] | None:
    """The manifest of the stage (or folder) that wrote `path` and what it recorded of the file
    ({"bytes", "sha256"}), or None for a file no manifest lists (a source file, a Hub model)."""
    path = Path(path)
    for folder in path.parents:
        manifest = folder / MANIFEST
        if manifest.is_file():
            recorded = read_manifest(manifest).get("outputs", {}).get(str(path.relative_to(folder)))
            if isinstance(recorded, dict):
                return manifest, recorded
    return None


def _profile_of(path: Path) -> str:
    """The profile whose artifacts hold `path` (data/<profile>/... under the output root)."""
    from specbook.paths import output_root

    try:
        return Path(path).resolve().relative_to((output_root() / "data").resolve()).parts[0]
    except (ValueError, IndexError):
        return "<profile>"


def damaged(path: str | Path, manifest: Path, recorded: dict, digest: str | None) -> DamagedArtifact:
    path = Path(path)
    now = f"{path.stat().st_size} bytes with sha256 {digest[:12]}…" if digest else "missing"
    return DamagedArtifact(
        f"{path} is damaged: {manifest.parent} wrote it as {recorded['bytes']} bytes with sha256 {recorded['sha256'][:12]}…, "
        f"and it is now {now}. Nothing is computed from it: run the book again (make run-all PROFILE={_profile_of(path)}); "
        "the chapter that wrote it sees the change and makes it again."
    )


def checked_hash(path: str | Path) -> str:
    """The file's sha256, checked against what the stage that wrote it recorded (`writer_record`):
    a file changed since (a truncated model, a hand edit, a half-written copy) raises
    DamagedArtifact instead of feeding the stages after it."""
    digest = file_hash(path)
    found = writer_record(path)
    if found and found[1]["sha256"] != digest:
        raise damaged(path, *found, digest)
    return digest


def record_outputs(directory: str | Path, files: Iterable[str | Path]) -> None:
    """Add `files` to the manifest of a folder written file by file (chapter 04's results), so
    that its readers can check them (`check_outputs`) as a stage's are checked."""
    manifest = Path(directory) / MANIFEST
    outputs = read_manifest(manifest).get("outputs", {}) if manifest.is_file() else {}
    for p in map(Path, files):
        outputs[str(p.relative_to(directory))] = {"bytes": p.stat().st_size, "sha256": file_hash(p)}
    write_atomically(manifest, json.dumps({"outputs": dict(sorted(outputs.items()))}, indent=1))  # each run's JSON holds its commit


def check_outputs(directory: str | Path) -> None:
    """Every file of a folder written file by file, as its manifest recorded it: DamagedArtifact for
    the first changed or missing one, or one the manifest does not list (written by a run stopped
    before it recorded the file)."""
    manifest = Path(directory) / MANIFEST
    if not manifest.is_file():
        return
    outputs = read_manifest(manifest).get("outputs", {})
    unlisted = sorted(p.name for p in Path(directory).iterdir() if p.is_file() and p.name != MANIFEST and p.name not in outputs)
    if unlisted:
        raise DamagedArtifact(
            f"{Path(directory) / unlisted[0]} is not in {manifest}: a run stopped between writing it and recording it. Run the "
            f"book again (make run-all PROFILE={_profile_of(manifest)}): the chapter that writes {Path(directory).name} makes it again."
        )
    for name, recorded in outputs.items():
        path = Path(directory) / name
        digest = file_hash(path) if path.is_file() else None
        if digest != recorded["sha256"]:
            raise damaged(path, manifest, recorded, digest)


def portable(value):
    """`value` (params, or inputs keyed by path) with every path under the output root or the
    repository written relative to it: a run copied or moved elsewhere keeps its stages."""
    if isinstance(value, dict):
        return {portable(k): portable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [portable(v) for v in value]
    if isinstance(value, str | Path):
        text = str(value)
        for root in (str(output_root()), str(ROOT)):
            if text.startswith(root + "/"):
                return text.removeprefix(root + "/")
        return text if isinstance(value, Path) else value
    return value


def fingerprint(params: dict, paths_as_given: bool = False) -> str:
    """The hash of a stage's params and inputs, its paths portable (`paths_as_given`: as older code hashed them)."""
    return hashlib.sha256(json.dumps(params if paths_as_given else portable(params), sort_keys=True, default=str).encode()).hexdigest()


def work_folder(directory: str | Path, owner: str) -> Path:
    """`directory`, emptied first when it holds work made for another fingerprint than `owner`,
    so that a resume never continues work of other settings."""
    directory = Path(directory)
    mark = directory / WORK_FINGERPRINT
    if directory.exists() and (not mark.exists() or mark.read_text() != owner):
        if any(p != mark for p in directory.iterdir()):
            print(f"{directory}: made for other settings; cleared, starting over")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    mark.write_text(owner)
    return directory


class Stage:
    def __init__(self, directory: str | Path, params: dict, inputs: list[str | Path] = ()):
        self.directory = Path(directory)
        self.params = params
        self.inputs = {str(p): checked_hash(p) for p in inputs}
        self.fingerprint = fingerprint({"params": params, "inputs": self.inputs})
        # a stage finished by older code, whose fingerprints held absolute paths, is reused where it is
        self.accepted = {self.fingerprint, fingerprint({"params": params, "inputs": self.inputs}, paths_as_given=True)}

    @property
    def manifest_path(self) -> Path:
        return self.directory / MANIFEST

    def stale(self) -> str | None:
        """Why the stage must run, or None when its finished outputs can be reused."""
        if not self.manifest_path.exists():
            return "not built yet"
        try:
            manifest = self.manifest()
        except DamagedArtifact:
            return "its manifest cannot be read (a run stopped while writing it)"
        if manifest.get("fingerprint") not in self.accepted:
            return "its settings or inputs changed"
        if not manifest.get("outputs"):
            return "its manifest lists no outputs (made by older code)"
        for name, recorded in manifest["outputs"].items():
            path = self.directory / name
            if not path.is_file():
                return f"its output {name} is missing"
            if path.stat().st_size != recorded["bytes"] or file_hash(path) != recorded["sha256"]:
                return f"its output {name} changed"
        return None

    def done(self) -> bool:
        """Whether the finished outputs can be reused. When not, the files the last build wrote are
        removed with its manifest, so that none of them passes for this build's (a model trained
        in full must not sit beside the adapter an earlier setting left)."""
        reason = self.stale()
        if reason and self.manifest_path.exists():
            print(f"{self.directory}: rebuilding, {reason}")
            try:
                written = self.manifest().get("outputs", {})
            except DamagedArtifact:
                written = {}  # unreadable: what it listed is overwritten by this build
            for name in written:
                (self.directory / name).unlink(missing_ok=True)
            self.manifest_path.unlink()
        return reason is None

    def work_folder(self, name: str) -> Path:
        """A folder for this stage's resumable work, cleared when it was made for other settings."""
        return work_folder(self.directory / name, self.fingerprint)

    def finish(self, summary: dict | None = None, outputs: Iterable[str | Path] | None = None) -> None:
        """Record the stage as done. `outputs`: the files it wrote, or folders standing for the
        files directly in them; by default the files directly in the stage's folder."""
        self.directory.mkdir(parents=True, exist_ok=True)
        files = []
        for path in map(Path, [self.directory] if outputs is None else outputs):
            files += sorted(p for p in path.iterdir() if p.is_file() and p.name != MANIFEST) if path.is_dir() else [path]
        if not files:
            raise ValueError(f"stage {self.directory} finished without writing any output")
        manifest = {
            "fingerprint": self.fingerprint,
            "commit": commit(),
            "params": self.params,
            "inputs": self.inputs,
            "outputs": {str(p.relative_to(self.directory)): {"bytes": p.stat().st_size, "sha256": file_hash(p)} for p in files},
            "summary": summary or {},
        }
        # unsorted: a summary keeps its keys' order, which the chapters' tables show
        write_atomically(self.manifest_path, json.dumps(manifest, indent=2, default=str))

    def manifest(self) -> dict:
        return read_manifest(self.manifest_path)

    def summary(self) -> dict:
        return self.manifest()["summary"]


def cached(directory: str | Path, params: dict, compute: Callable[[], T], inputs: list[str | Path] = ()) -> T:
    """compute() once for these params and inputs: its result is kept in `directory` (a pickle the
    manifest hashes) and read back on a re-run, with a line saying which commit computed it.
    For a chapter's measurements, so that a re-run of the book with nothing changed takes seconds."""
    stage = Stage(directory, params, inputs)
    path = stage.directory / RESULT
    if stage.done():
        print(f"(cached: computed at commit {stage.manifest()['commit']}; delete {stage.directory} to compute it again)")
        with open(path, "rb") as f:
            return pickle.load(f)
    result = compute()
    stage.directory.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(result, f)
    stage.finish({}, outputs=[path])
    return result


def measured(
    directory: str | Path, compute: Callable[[], T], settings: dict, models: list, code: list[Path], engine=None, per_machine=False
) -> T:
    """A chapter's measurement (`cached`), reused while its settings, the models' weights (`models`:
    folders, or Hub ids named by their id), the code, the engine's settings and, for a timing
    (`per_machine`), this machine are unchanged."""
    import dataclasses

    from specbook.runinfo import machine

    weights = [f for m in models if Path(m).is_dir() for f in sorted(Path(m).glob("*.safetensors"))]
    settings = {**settings, "models": [str(m) for m in models]}
    if engine is not None:
        settings["engine"] = dataclasses.asdict(engine)
    if per_machine:
        settings["machine"] = machine()
    return cached(directory, settings, compute, inputs=[*code, *weights])
