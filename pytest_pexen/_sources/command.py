"""Running a command as a test: its outcome from its exit status, its output in the report.

Shared by script tests and generated command tasks. The exit status says
the outcome, as automake's test drivers read it: 0 passed, 77 skipped,
99 error (the test could not run), the warn code (ini
``pexen_script_warn_code``) passed with a warning, anything else failed;
killed by a signal, failed naming the signal.

A command runs in a session of its own, with a token in its environment,
so that its whole process tree can be ended (see :mod:`.._processes`):
by the process pool's watchdog (which raises :class:`~.._errors.Timeout`
in the test), by a thread pool's watchdog (which ends the tree from the
controller's thread, see :meth:`~.._pools.thread.ThreadPool.interrupt`), or
by Ctrl-C.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import shutil
import subprocess
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any, Sequence

import pytest
from _pytest._code.code import filter_traceback
from _pytest.outcomes import Skipped

from .. import _api, _data
from .._errors import Timeout
from .._pools import exit_description
from .._processes import COMMAND_VARIABLE, Command as Running, command_finished, command_started, end_commands
from .._watchdog import KILL_GRACE
from . import settings

SKIPPED = 77
HARD_ERROR = 99

#: Frames of this package are left out of a failing task's traceback.
_PACKAGE = Path(__file__).resolve().parent.parent

NODEID_VARIABLE = "PEXEN_NODEID"
TMPDIR_VARIABLE = "PEXEN_TMPDIR"
#: Under pytest's basetemp: the scratch directories of command tests and generated tasks.
SCRATCH = "pexen-tasks"


class CommandFailed(Exception):
    """A command exited with a code that means failed, or was killed by a signal."""

    # Reports name it by its name alone, as they name AssertionError.
    __module__ = "builtins"


class CommandError(Exception):
    """A command exited with 99: it could not run; reported as an error, not a failure."""

    __module__ = "builtins"


class Command:
    """One run of a command; keeps what it wrote even when the run is cut short."""

    def __init__(self, args: str | Sequence[str], cwd: Path, env: dict[str, str]) -> None:
        """*env* is the command's environment, its own (the token is added to it)."""
        self.args = args
        self.cwd = cwd
        self.env = env
        self.stdout = ""
        self.stderr = ""

    def run(self) -> int:
        """Run it to its end; its exit status (negative: killed by that signal).

        Raises :class:`Timeout` if the watchdog ended it from another thread,
        and ends its tree on any exception raised here (the watchdog's
        :class:`Timeout` in a worker process, a Ctrl-C).
        """
        token = uuid.uuid4().hex
        self.env[COMMAND_VARIABLE] = token
        # Files, not pipes: nothing to read while it runs, and a process it
        # leaves behind cannot keep us waiting for the end of its output.
        out, err = _output_file("stdout"), _output_file("stderr")
        try:
            process = subprocess.Popen(
                self.args,
                shell=isinstance(self.args, str),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
            running = Running(process.pid, token)
            command_started(running)
            try:
                try:
                    code = process.wait()
                except BaseException:
                    end_commands([running], KILL_GRACE)
                    try:
                        process.wait(KILL_GRACE)
                    except subprocess.TimeoutExpired:
                        pass
                    raise
            finally:
                command_finished()
        finally:
            self.stdout, self.stderr = _read(out), _read(err)
        if running.ended_because is not None:
            raise Timeout(running.ended_because)
        return code


def _output_file(name: str) -> int:
    """A file descriptor of an anonymous file in memory (or on disk where there is no memfd)."""
    try:
        return os.memfd_create(f"pexen-{name}", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        return os.dup(tempfile.TemporaryFile().fileno())


def _read(fd: int) -> str:
    """All that was written to *fd*, which is closed."""
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, size, 0) if size else b""
    finally:
        os.close(fd)
    return data.decode("utf-8", "replace")


def _last_line(text: str) -> str:
    for line in reversed(text.splitlines()):
        if line.strip():
            return line.strip()
    return ""


class CommandItem(pytest.Item):
    """A test that needs no fixtures, so a thread pool may run it too.

    Script tests and generated tasks are such items; running a command is
    what most of them do (:meth:`run_command`).
    """

    pexen_threadsafe = True

    @functools.cached_property
    def location(self) -> tuple[str, int | None, str]:
        """As pytest's, without working out a relative path for each of thousands of files:
        the path part of the node id is that path, for files under the rootdir."""
        path, line, domain = self.reportinfo()
        root = str(self.config.rootpath)
        if str(path).startswith(root + os.sep):
            return self.nodeid.split("::", 1)[0], line, domain
        return super().location

    def run_command(self, args: str | Sequence[str], cwd: Path, what: str) -> None:
        """Run *args* in *cwd* as this test: pass, fail, skip, warn or error by its exit status.

        *what* names the command in messages ("ping.sh", "command 'make check'").
        """
        # A run again (a retry) reports its own output only.
        self._report_sections = [section for section in self._report_sections if section[0] != "call"]
        scratch = self.scratch_dir()
        environment = self.environment(scratch)
        environment.update(_data.command_files(self, scratch))
        command = Command(args, cwd, environment)
        try:
            code = command.run()
        except OSError as error:
            raise CommandFailed(f"{what} could not be started: {error}{_hint(error)}") from None
        finally:
            for name in ("stdout", "stderr"):
                text = getattr(command, name)
                if text:
                    self.add_report_section("call", name, text)
        self._judge(code, what, _last_line(command.stderr) or _last_line(command.stdout))
        _data.collect_command_data(self, environment)

    def _judge(self, code: int, what: str, said: str) -> None:
        if code == 0:
            return
        if code == SKIPPED:
            # Reported where the test is, not at this line.
            raise Skipped(said or f"{what} exited with {SKIPPED} (skipped)", _use_item_location=True)
        if code == settings(self.config).warn_code:
            self.user_properties.append((_api.WARNED, said or f"{what} exited with {code} (warned)"))
            return
        detail = f": {said}" if said else ""
        if code == HARD_ERROR:
            raise CommandError(f"{what} exited with {HARD_ERROR} (error: it could not run){detail}")
        raise CommandFailed(f"{what} {exit_description(code)}{detail}")

    def environment(self, tmp_path: Path) -> dict[str, str]:
        """This process's environment, and what a test is told: its node id, scratch dir, reboots."""
        env = dict(os.environ)
        env[NODEID_VARIABLE] = self.nodeid
        env[TMPDIR_VARIABLE] = str(tmp_path)
        env[_api.REBOOT_COUNT_VARIABLE] = str(_api.reboot_count_of(self.nodeid))
        return env

    def scratch_dir(self) -> Path:
        """A fresh, empty directory for this test (emptied again if it runs again)."""
        factory = getattr(self.config, "_tmp_path_factory", None)
        if factory is None:
            return Path(tempfile.mkdtemp(prefix="pexen-"))
        # Named after the node id, so no two tests (or threads) ever race for a name.
        safe = re.sub(r"[^\w.-]+", "_", self.nodeid)[-80:]
        path = factory.getbasetemp() / SCRATCH / f"{safe}-{zlib.crc32(self.nodeid.encode()):08x}"
        # One system call in the common case: on some disks a directory costs
        # as much as starting a small script.
        try:
            os.mkdir(path)
        except FileNotFoundError:
            path.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            shutil.rmtree(path)
            os.mkdir(path)
        return path

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Any:
        """The frames of the test's own code: not pytest's, pluggy's or pexen's."""
        kept = excinfo.traceback.filter(
            lambda entry: filter_traceback(entry) and _PACKAGE not in Path(entry.path).parents
        )
        return kept.filter(excinfo) if kept else excinfo.traceback

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, (CommandFailed, CommandError, Timeout, _data.DataError)):
            # The message says it all; our runner's traceback would only distract.
            return super().repr_failure(excinfo, style="value")
        return super().repr_failure(excinfo, style)


def _hint(error: OSError) -> str:
    if error.errno == errno.ENOEXEC:
        return " (does it start with a #! line?)"
    if error.errno == errno.ENOENT and error.filename and os.path.isfile(error.filename):
        # The file is there: what is missing is the interpreter its #! line names.
        try:
            with open(error.filename, "rb") as file:
                first = file.readline(256)
        except OSError:
            return ""
        if not first.startswith(b"#!"):
            return ""
        interpreter = first[2:].rstrip(b"\n")
        if interpreter.endswith(b"\r"):
            return " (its #! line ends in a carriage return: the file has Windows line endings)"
        return f" (the interpreter its #! line names is missing: {interpreter.decode(errors='replace').strip()})"
    return ""


class ErrorPhase:
    """Reports a command that exited with 99 as an error: pytest's word for a test that could not run.

    An error is a failure outside the test's call, so the report of the
    call is made a report of the setup (which is where, by its own account,
    the command failed).
    """

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        report = yield
        if call.when == "call" and call.excinfo is not None and isinstance(call.excinfo.value, CommandError):
            report.when = "setup"
        return report


def use_error_phase(config: pytest.Config) -> None:
    """Register :class:`ErrorPhase` (once), when the first command test is collected."""
    if not config.pluginmanager.has_plugin("pexen-error-phase"):
        config.pluginmanager.register(ErrorPhase(), "pexen-error-phase")
