"""Report files written while a run goes on: replaced atomically, never half written.

The xUnit file, the timeline and the trace are rewritten during the run so
that, after a crash, the file on disk is a whole document of what had
finished. Each write goes to a temporary file next to the real one, is
fsynced, and renamed over it. A new file gets the mode the umask allows; an
existing one keeps its mode, and its owner and group where we may set them.
Only regular files are replaced: a directory, a device, a socket is refused
(the xUnit writer writes FIFOs and character devices through, see
:mod:`._xunit`).
"""

from __future__ import annotations

import errno
import os
import stat

import pytest


def replace(path: str, data: bytes, *, new_file_mode: int, make_directories: bool) -> None:
    """Atomically: a temporary file next to *path*, fsync, rename over it.

    A symbolic link stays a link: its target is replaced. *new_file_mode*
    is the mode of a file that did not exist (see :func:`umask`).
    """
    target = os.path.realpath(path)
    directory, name = os.path.split(target)
    if make_directories:
        try:
            os.makedirs(directory, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), directory) from None
    try:
        existing: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        existing = None
    try:
        descriptor, temporary = create_temporary(directory, name)
    except OSError as error:  # named after the directory, not our temporary file
        raise OSError(error.errno, error.strerror, directory) from None
    try:
        write_all(descriptor, data)
        if existing is not None:
            take_owner(descriptor, existing)
        os.fchmod(descriptor, stat.S_IMODE(existing.st_mode) if existing else new_file_mode)
        os.fsync(descriptor)
        os.close(descriptor)
        descriptor = -1
        os.replace(temporary, target)
    except BaseException:
        if descriptor >= 0:
            os.close(descriptor)
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def refusal(mode: int, path: str, example: str = "report.xml") -> str:
    """Why the file at *path*, of this *mode*, cannot take a report ("": it can)."""
    if stat.S_ISDIR(mode):
        return f"{path} is a directory; give the path of a file, e.g. {os.path.join(path, example)}"
    if stat.S_ISBLK(mode):
        return f"{path} is a block device, which the report would overwrite; give the path of a file"
    if stat.S_ISSOCK(mode):
        return f"{path} is a socket, which cannot be opened as a file; give the path of a file"
    return ""


def check_file_name(option: str, given: str, path: str, example: str) -> None:
    """UsageError if *given* names a directory by its spelling (a trailing slash, ``.``, ``..``)."""
    if given.endswith(("/", os.sep)) or os.path.basename(path) in ("", ".", ".."):
        sample = os.path.join(given.rstrip("/" + os.sep) or ".", example)
        raise pytest.UsageError(f"{option}: {given} names a directory; give the path of a file, e.g. {sample}")


def look_at(option: str, given: str, path: str) -> os.stat_result | None:
    """What is at *path* (None: nothing); UsageError if it cannot be looked at."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise pytest.UsageError(f"{option}: cannot use {given}: {error.strerror}") from None


def check_new_file(option: str, given: str, example: str, base: str = ".") -> str:
    """The absolute path of a report file that is always replaced (never written through).

    Raises :class:`pytest.UsageError`, before anything runs, when *given*
    cannot take it: a directory, anything but a regular file, a directory
    where no file can be made. Leaves nothing behind: to find out for real
    whether the directory takes new files, one is made and removed. A
    relative *given* is taken from the directory *base*.
    """
    path = os.path.abspath(os.path.join(base, given))
    check_file_name(option, given, path, example)
    status = look_at(option, given, path)
    if status is not None and not stat.S_ISREG(status.st_mode):
        why = refusal(status.st_mode, given, example) or f"{given} is not a regular file; give the path of a file"
        raise pytest.UsageError(f"{option}: {why}")
    check_directory(option, given, path)
    return path


def create_temporary(directory: str, name: str) -> tuple[int, str]:
    """A new file, mode 0600, next to *name*: hidden, and named after us and it.

    Not :mod:`tempfile`: this may run in a thread while the controller forks
    workers, and a lock held here must be no lock a worker could need.
    """
    for attempt in range(100):
        path = os.path.join(directory, f".{name}.pexen-{os.getpid()}-{attempt}.tmp")
        try:
            return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600), path
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", os.path.join(directory, f".{name}.pexen-*"))


def write_all(descriptor: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(descriptor, view):]


def take_owner(descriptor: int, existing: os.stat_result) -> None:
    """Give the new file the owner and group of the one it replaces, where allowed."""
    ours = os.fstat(descriptor)
    if (ours.st_uid, ours.st_gid) == (existing.st_uid, existing.st_gid):
        return
    for uid in (existing.st_uid, -1):
        try:
            os.fchown(descriptor, uid, existing.st_gid)
            return
        except OSError:
            continue


def umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def describe(error: BaseException) -> str:
    """An error in a few words, with the file it is about."""
    if isinstance(error, OSError) and error.strerror:
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror}{where}"
    return str(error) or type(error).__name__


def check_directory(option: str, given: str, path: str) -> None:
    """Raise :class:`pytest.UsageError` unless a file can be made where *path*
    goes (its nearest existing directory). Leaves nothing behind: to find
    out for real, a file is made there and removed."""
    directory = os.path.dirname(os.path.realpath(path))
    while not os.path.lexists(directory):
        directory = os.path.dirname(directory)
    if not os.path.isdir(directory):
        raise pytest.UsageError(
            f"{option}: cannot create {given}: {directory} is not a directory; give a path in a directory"
        )
    try:
        descriptor, probe = create_temporary(directory, os.path.basename(path))
        os.close(descriptor)
        os.unlink(probe)
    except OSError as error:
        raise pytest.UsageError(
            f"{option}: cannot create {given}: creating a file in {directory} failed "
            f"({error.strerror}); give a path in a writable directory"
        ) from None
