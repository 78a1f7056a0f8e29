"""Tests made at collection time, one per disk of the inventory."""

import functools

import pytest_pexen

#: Above this many hours, a disk passes with a warning: it is due for replacement.
HOURS_BUDGET = 40000


def pytest_pexen_generate(config, path):
    for line in (path / "disks.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, kind, hours = line.split()
        # Each check needs the storage driver loaded, and shares the disk bus.
        yield pytest_pexen.task(
            f"smart_{name}",
            functools.partial(check_disk, name, kind, int(hours)),
            requires=["storage"],
            uses=["disk-bus"],
        )
    # A command line is a test too: it passes when it exits 0.
    yield pytest_pexen.task("inventory_readable", f"test -r {path / 'disks.txt'}", uses=["disk-bus"])


def check_disk(name, kind, hours):
    assert kind in ("ssd", "hdd", "nvme"), f"{name}: unknown kind {kind}"
    if hours > HOURS_BUDGET:
        pytest_pexen.warn(f"{name} has been powered on {hours} hours (budget {HOURS_BUDGET})")


def pytest_pexen_task_finished(task, outcome, data):
    """A test per network link that test_discover_links found: added while the run goes on."""
    if task.name == "test_discover_links" and outcome == "passed":
        return [
            pytest_pexen.task(f"link_{nic}", functools.partial(check_link, nic, speed), provides=["links"])
            for nic, speed in data["links"].items()
        ]


def check_link(nic, speed):
    assert speed >= 1000, f"{nic} negotiated {speed} Mb/s"
