"""In the controller: reboot the machine for a test that asked, its state saved.

By the time :func:`reboot` runs, the run loop has let the other running
tests finish, ended the worker of the test that asked, and made the state
durable (the test is marked to run again, its reboot count one higher). What
is left is the command; the machine going down ends this process. A command
that fails, or returns while the machine stays up, ends the run saying so,
with :data:`PAUSED` as its exit status: ``--pexen-resume`` continues it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from typing import NoReturn

import pytest

from ._reporting import say
from ._resume import PAUSED
from ._state import RESUME_COMMAND


def reboot(config: pytest.Config, command: str, wait: float, why: str) -> NoReturn:
    say(config, f"{why}: the state is saved; rebooting with: {command}", bold=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    try:
        status = subprocess.run(command, shell=True).returncode
    except OSError as error:
        pytest.exit(f"pexen: the reboot command could not run ({error}); after a reboot: {RESUME_COMMAND}", PAUSED)
    if status != 0:
        pytest.exit(
            f"pexen: the reboot command failed (exit status {status}); the machine was not rebooted. "
            f"Reboot it, then: {RESUME_COMMAND}",
            PAUSED,
        )
    # A reboot command usually returns at once and the machine goes down soon after.
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))
    pytest.exit(
        f"pexen: the reboot command returned, but the machine did not go down within {wait:g}s "
        f"(--pexen-reboot-wait). Reboot it, then: {RESUME_COMMAND}",
        PAUSED,
    )
