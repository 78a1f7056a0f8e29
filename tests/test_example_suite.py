"""The shipped example suite, run as the README says, on a copy of it."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

EXAMPLE = Path(__file__).parent.parent / "examples" / "suite"
SCHEMA = Path(__file__).parent / "junit-10.xsd"
OUTCOMES = {"passed": 32, "skipped": 3, "xfailed": 1, "warned": 3, "blocked": 2}


@pytest.fixture
def example(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the example suite (its state and xUnit files go there)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("PYTEST_ADDOPTS", raising=False)
    copy = pytester.path / "suite"
    shutil.copytree(EXAMPLE, copy, ignore=shutil.ignore_patterns(".pexen", "__pycache__", ".pytest_cache"))
    return copy


def run_example(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "pytest_pexen._plugin", "--pexen", "-v", "suite", *args, timeout=120)


def test_the_example_runs_as_documented(pytester, example):
    result = run_example(pytester)
    assert result.ret == 0
    assert result.parseoutcomes() == OUTCOMES
    # Each line on its own: the order of tests that run at once varies.
    for line in [
        "pexen: 2 workers (default, process), 8 (sys, thread), 1 (vm, process); *",
        "*hw/conftest.py::smart_sdb WARNED*",
        "*sys/mem/pressure.sh WARNED*",
        "*sys/disk/fsck.sh SKIPPED (no spare partition to check)*",
        "WARNED hw/conftest.py::smart_sdb - sdb has been powered on 41000 hours (budget 40000)",
        "BLOCKED sys/boot/attestation.sh - requires 'measured-boot', provided by "
        "sys/boot/measured_boot.sh which was blocked",
        "BLOCKED sys/boot/measured_boot.sh - requires 'tpm', provided by sys/boot/tpm.sh which was skipped",
    ]:
        result.stdout.fnmatch_lines([line])
    report = example / ".pexen" / "report.xml"
    xmlschema.XMLSchema(str(SCHEMA)).validate(str(report))
    assert len(ET.parse(report).getroot().findall(".//testcase")) == sum(OUTCOMES.values())


def test_the_order_follows_the_metadata(pytester, example):
    lines = [line for line in run_example(pytester).outlines if " PASSED" in line or " WARNED" in line]
    order = [line.split()[0] for line in lines]

    def at(nodeid: str) -> int:
        return order.index(f"suite/{nodeid}")

    # Providers before what requires them, across the tree and its defaults.
    assert at("images/test_images.py::test_build_image") < at("deploy/test_deploy.py::test_deploy")
    assert at("images/test_images.py::test_build_image") < at("drivers/net/test_net_driver.py::test_build")
    assert at("drivers/storage/test_storage_driver.py::test_load") < at("hw/conftest.py::smart_sda")
    # Tests added while the run goes on run before what waits for their tag.
    assert at("hw/test_links.py::test_discover_links") < at("hw/test_links.py::test_discover_links::link_eth1")
    assert at("hw/test_links.py::test_discover_links::link_eth1") < at("hw/test_links.py::test_link_report")
    assert at("deploy/test_web.py::test_apache") < at("deploy/test_web.py::test_front_page")
    # Groups one after the other: default, then the scripts, then the VM.
    assert at("test_cleanup.py::test_collect_logs") < at("sys/net/ping.sh") < at("vm/test_vm.py::test_boot")


def test_the_two_local_build_tags_do_not_clash(pytester, example):
    # A failing storage build blocks what needs it, and nothing in drivers/net.
    storage = example / "drivers" / "storage" / "test_storage_driver.py"
    storage.write_text(storage.read_text().replace("    time.sleep(0.3)\n", "    assert False, 'no compiler'\n"))
    result = run_example(pytester)
    for line in [
        "*drivers/net/test_net_driver.py::test_load PASSED*",
        "BLOCKED drivers/storage/test_storage_driver.py::test_load - requires 'build@drivers/storage', "
        "provided by drivers/storage/test_storage_driver.py::test_build which failed",
        "BLOCKED hw/conftest.py::smart_sda - requires 'storage', provided by "
        "drivers/storage/test_storage_driver.py::test_load which was blocked",
    ]:
        result.stdout.fnmatch_lines([line])
    assert result.parseoutcomes()["failed"] == 1
