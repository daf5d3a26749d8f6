"""JSON Lines files: the book's data format. One JSON object per line, each line ending in a newline.
Corrupt lines fail loudly with the file, the line and the fix.

Two kinds of file: data files written whole and atomically (`write`, read back by `read`: a
missing file is an error), and append-only logs of long work (`append`, read back by `read_log`:
a missing log is an empty one, and the line a crash left unfinished is repaired or cut off)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


class JsonlError(ValueError):
    pass


def _parse(path: Path, number: int, line: bytes) -> dict:
    """One line as a row, or JsonlError naming the file, the line and the fix."""
    fix = "Fix or delete that line, or delete the file to regenerate it."
    try:
        row = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise JsonlError(f"{path}:{number}: not UTF-8 (byte {err.start + 1} of the line). {fix}") from None
    except json.JSONDecodeError as err:
        raise JsonlError(f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno}). {fix}") from None
    if not isinstance(row, dict):
        raise JsonlError(f"{path}:{number}: a JSON {type(row).__name__}, not an object (each line must be one row). {fix}")
    return row


def _rows(path: Path, lines: list[bytes]) -> list[dict]:
    return [_parse(path, number, line) for number, line in enumerate(lines, start=1) if line.strip()]


def read(path: str | Path) -> list[dict]:
    """All rows of a JSONL data file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: the stage that writes it has not run (or the file was deleted)")
    return _rows(path, path.read_bytes().split(b"\n"))


def read_log(path: str | Path) -> list[dict]:
    """All finished rows of an append-only log (none when it does not exist yet). `append` ends every
    row with a newline, so a last line without one was being written when the run stopped: kept
    (and its newline added) when it is a whole row, cut off otherwise, so that the next append
    starts on a line of its own."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    *lines, tail = raw.split(b"\n")
    rows = _rows(path, lines)
    if tail.strip():
        try:
            rows.append(_parse(path, len(lines) + 1, tail))
            with open(path, "ab") as f:
                f.write(b"\n")
        except JsonlError:
            with open(path, "r+b") as f:
                f.truncate(len(raw) - len(tail))
    return rows


def write_atomically(path: Path, text: str) -> None:
    """`path` holds `text` whole or keeps what it held: a run stopped mid-write leaves no half file."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write rows atomically: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return path


def append(path: str | Path, rows: Iterable[dict]) -> None:
    """Append rows to a log and flush them to disk, so a resumed run finds every finished row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
