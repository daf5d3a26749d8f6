"""One run of a profile at a time. Every run of a profile (the book, a chapter in JupyterLab, the
site, chapter 05 alone) holds data/<profile>/.running while it runs; a second run stops at once
with an error that names the one running (pid, command, since when).

The lock is the operating system's (flock on that file), so it is released when its process ends,
however it ends: a lock left by a killed run is taken over, never waited on. The book holds it
for the chapters it runs and passes its pid to their kernels (SPECBOOK_LOCK_HOLDER), which run
under it; a chapter opened in JupyterLab holds it until its kernel is shut down.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import time
from pathlib import Path

from specbook.paths import data_dir

HOLDER_ENV = "SPECBOOK_LOCK_HOLDER"
_held: dict[Path, object] = {}  # lock file → its open handle, for as long as this process holds it


class ProfileBusy(RuntimeError):
    pass


def lock_file(profile: str) -> Path:
    return data_dir(profile) / ".running"


def holder(profile: str) -> dict:
    """Who holds (or last held) the profile's lock: {"pid", "command", "started"}, or {}."""
    try:
        return json.loads(lock_file(profile).read_text() or "{}")
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _take(profile: str, command: str | None):
    """Take the profile's lock for this process: its open handle, or None where this process
    holds it already or runs under the process that holds it (a chapter's kernel under the book)."""
    path = lock_file(profile)
    if path in _held:
        return None
    if os.environ.get(HOLDER_ENV) and str(holder(profile).get("pid")) == os.environ[HOLDER_ENV]:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")  # noqa: SIM115 (held open for as long as the lock is held)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        h = holder(profile)
        raise ProfileBusy(
            f"profile {profile!r} is in use by pid {h.get('pid')} ({h.get('command')}), running since {h.get('started')}: "
            f"two runs at once would write the same files. Wait for it to end, or stop it (kill {h.get('pid')}; "
            "in JupyterLab: Kernel > Shut Down Kernel)."
        ) from None
    handle.seek(0)
    handle.truncate()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    command = command or " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])
    handle.write(json.dumps({"pid": os.getpid(), "command": command, "started": started}))
    handle.flush()
    _held[path] = handle
    return handle


def hold(profile: str, command: str | None = None) -> None:
    """Hold the profile's lock until this process ends (a chapter's kernel); ProfileBusy where another run holds it."""
    _take(profile, command)


def _release(profile: str) -> None:
    handle = _held.pop(lock_file(profile), None)
    if handle is not None:
        handle.close()  # closing the file releases the flock


@contextlib.contextmanager
def running(profile: str, command: str | None = None):
    """Hold the profile's lock for a block (the book, the site), its kernels running under it."""
    took = _take(profile, command) is not None
    before = os.environ.get(HOLDER_ENV)
    os.environ[HOLDER_ENV] = str(holder(profile).get("pid", os.getpid()))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HOLDER_ENV, None)
        else:
            os.environ[HOLDER_ENV] = before
        if took:
            _release(profile)
