"""JSON Lines files: the book's data format. Corrupt lines fail loudly with the fix."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path


class JsonlError(ValueError):
    pass


def read(path: str | Path, *, torn_tail_ok: bool = False) -> list[dict]:
    """All rows of a JSONL file. With torn_tail_ok (append-only logs), an unfinished last line
    left by a crash is cut off instead of failing: it was never a complete row."""
    path = Path(path)
    if not path.exists():
        return []
    raw = path.read_bytes()
    lines = raw.split(b"\n")
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            is_tail = number == len(lines) and not raw.endswith(b"\n")
            if torn_tail_ok and is_tail:
                with open(path, "r+b") as f:
                    f.truncate(len(raw) - len(line))
                break
            raise JsonlError(
                f"{path}:{number}: not valid JSON ({err.msg} at column {err.colno}). "
                f"Fix or delete that line, or delete the file to regenerate it."
            ) from None
    return rows


def write(path: str | Path, rows: Iterable[dict]) -> Path:
    """Write rows atomically: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
    return path


def append(path: str | Path, rows: Iterable[dict]) -> None:
    """Append rows and flush them to disk, so a resumed run finds every finished row."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
