"""One run of a profile at a time: a second run stops and names the first; a killed run's lock is taken over."""

import os
import signal
import subprocess
import sys

import pytest

from specbook import book, runlock

HOLD = "import time; from specbook import runlock; runlock.hold('smoke', 'the first run'); print('held', flush=True); time.sleep(120)"
TRY = "from specbook import runlock; runlock.hold('smoke'); print('ran')"


@pytest.fixture
def output(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECBOOK_OUTPUT", str(tmp_path))
    monkeypatch.delenv(runlock.HOLDER_ENV, raising=False)
    return tmp_path


def start_holder():
    first = subprocess.Popen([sys.executable, "-c", HOLD], stdout=subprocess.PIPE, text=True)
    assert first.stdout.readline().strip() == "held"
    return first


def test_a_second_run_stops_at_once_naming_the_first_and_a_killed_runs_lock_is_taken_over(output, capsys):
    first = start_holder()
    try:
        with pytest.raises(runlock.ProfileBusy, match=rf"in use by pid {first.pid} \(the first run\).*kill {first.pid}"):
            runlock.hold("smoke")
        assert book.run("smoke") == 2 and f"pid {first.pid}" in capsys.readouterr().err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    with runlock.running("smoke"):  # the dead run's lock: taken over, not waited on
        assert runlock.holder("smoke")["pid"] == os.getpid()
    assert runlock.lock_file("smoke").exists()


def test_the_books_kernels_run_under_its_lock_and_nothing_else_does(output):
    with runlock.running("smoke"):
        kernel = subprocess.run([sys.executable, "-c", TRY], capture_output=True, text=True)  # inherits SPECBOOK_LOCK_HOLDER
        assert kernel.returncode == 0 and kernel.stdout.strip() == "ran"
        stranger = subprocess.run([sys.executable, "-c", TRY], capture_output=True, text=True, env={**os.environ, runlock.HOLDER_ENV: ""})
        assert stranger.returncode != 0 and f"in use by pid {os.getpid()}" in stranger.stderr
    assert runlock.HOLDER_ENV not in os.environ
    after = subprocess.run([sys.executable, "-c", TRY], capture_output=True, text=True)  # released at the block's end
    assert after.returncode == 0
