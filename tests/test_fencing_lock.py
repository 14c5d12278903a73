"""Single-flight lock: a second holder is turned away at once, across threads and processes."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from triggerfish.errors import FencingBusyError
from triggerfish.functions.fencing.lock import single_flight


def test_second_caller_is_rejected_while_the_first_holds_the_lock(tmp_path):
    path = str(tmp_path / "lock")
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with single_flight(path):
            inside.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(5)
    with pytest.raises(FencingBusyError):
        with single_flight(path):
            pass
    code = f"from triggerfish.functions.fencing.lock import single_flight\nfrom triggerfish.errors import FencingBusyError\ntry:\n    with single_flight({path!r}): pass\nexcept FencingBusyError:\n    raise SystemExit(3)\n"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 3  # another worker process
    release.set()
    holder.join()

    with single_flight(path):  # free again once released
        pass


def test_lock_is_released_when_the_block_raises(tmp_path):
    path = str(tmp_path / "lock")
    with pytest.raises(RuntimeError):
        with single_flight(path):
            raise RuntimeError("boom")
    with single_flight(path):
        pass
