"""A message channel between the controller and one worker.

Pickled messages, each prefixed with its length, over one end of a Unix
socket pair. Reading takes whatever has arrived in one system call and
splits it into messages, so a burst of results costs one wake-up, not one
per message (``multiprocessing.Connection.poll`` builds a selector per call,
which is too slow for thousands of tiny tests).
"""

from __future__ import annotations

import pickle
import socket
import struct
from typing import Any

_LENGTH = struct.Struct("!I")
_CHUNK = 1 << 16


class Channel:
    """One end of a controller-worker connection."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()
        #: The other end is closed and everything it sent has been read.
        self.closed = False
        #: A message is being written (a signal handler must not write one now).
        self.sending = False

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return cls(ours), cls(theirs)

    def fileno(self) -> int:
        return self._sock.fileno()

    def send(self, message: Any) -> None:
        """Send *message*; values that cannot be pickled travel as their repr()."""
        try:
            data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = pickle.dumps(_picklable(message), pickle.HIGHEST_PROTOCOL)
        self.sending = True
        try:
            self._sock.sendall(_LENGTH.pack(len(data)) + data)
        finally:
            self.sending = False

    def receive(self, wait: bool = False) -> list[Any]:
        """The messages that have arrived; with *wait*, block until at least one.

        Raises EOFError when waiting on a channel whose other end is closed.
        """
        while not self.closed:
            blocking = wait and not self._has_message()
            try:
                chunk = self._sock.recv(_CHUNK, 0 if blocking else socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except (ConnectionResetError, OSError):
                chunk = b""
            if not chunk:
                self.closed = True
                break
            self._buffer += chunk
            if len(chunk) < _CHUNK and not blocking:
                break
        messages = self._split()
        if wait and not messages:
            raise EOFError("the other end of the channel is closed")
        return messages

    def close(self) -> None:
        self._sock.close()

    def _has_message(self) -> bool:
        if len(self._buffer) < _LENGTH.size:
            return False
        (length,) = _LENGTH.unpack_from(self._buffer)
        return len(self._buffer) >= _LENGTH.size + length

    def _split(self) -> list[Any]:
        messages = []
        offset = 0
        buffer = self._buffer
        while len(buffer) - offset >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(buffer, offset)
            end = offset + _LENGTH.size + length
            if end > len(buffer):
                break
            messages.append(pickle.loads(buffer[offset + _LENGTH.size : end]))
            offset = end
        del buffer[:offset]
        return messages


def _picklable(value: Any) -> Any:
    """*value* with every part that cannot be pickled replaced by its repr()."""
    try:
        pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    else:
        return value
    if type(value) is dict:
        return {_picklable(k): _picklable(v) for k, v in value.items()}
    if type(value) in (list, tuple):
        return type(value)(_picklable(v) for v in value)
    try:
        return repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
