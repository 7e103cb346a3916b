"""The daemon's local control socket: one writer per device.

When the daemon runs, ``gitops-edge sync|status|plan|lock|...`` do not open the
engine and the state store themselves: they send their argument vector over a
Unix socket in ``state_dir`` (owner-only, mode 0600) and print what the daemon
streams back, ending with its exit code. ``sync`` this way wakes the daemon's own
cycle and shows its progress as it happens, like ``flux reconcile``.

The protocol is newline-delimited JSON: the client sends ``{"argv": [...]}``;
the daemon answers with ``{"out": text}`` / ``{"err": text}`` lines and one final
``{"exit": code}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO, cast

log = logging.getLogger("gitops_edge.daemon.control")

SOCKET_NAME = "control.sock"
MAX_REQUEST_BYTES = 64 * 1024
# sun_path holds 108 bytes; a longer path is reached through the directory's descriptor
_SUN_PATH_MAX = 100

Handler = Callable[[list[str], "Reply"], int]


class Reply:
    """What a command run for a client writes: text to its stdout or stderr, in order."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self.gone = False

    def _send(self, obj: dict[str, object]) -> None:
        data = (json.dumps(obj) + "\n").encode()
        with self._lock:
            if self.gone:
                return
            try:
                self._conn.sendall(data)
            except OSError:
                self.gone = True  # the client left (Ctrl-C, a closed pipe); the command still finishes

    def out(self, text: str) -> None:
        self._send({"out": text})

    def err(self, text: str) -> None:
        self._send({"err": text})

    def exit(self, code: int) -> None:
        self._send({"exit": code})

    def stream(self, which: str) -> TextIO:
        """A text stream whose writes reach the client (``print(..., file=reply.stream("out"))``)."""
        return cast(TextIO, _ReplyStream(self, which))


class _ReplyStream(io.TextIOBase):
    """Just enough of a text stream for ``print``, logging and ``contextlib.redirect_stdout``."""

    def __init__(self, reply: Reply, which: str) -> None:
        super().__init__()
        self._reply = reply
        self._which = which

    def write(self, text: str) -> int:
        if text:
            (self._reply.out if self._which == "out" else self._reply.err)(text)
        return len(text)

    def writable(self) -> bool:
        return True


@contextlib.contextmanager
def _short_path(path: Path) -> Iterator[str]:
    """``path`` itself, or the same file through /proc/self/fd when it is too long for sun_path."""
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def socket_path(state_dir: Path) -> Path:
    return state_dir / SOCKET_NAME


class ControlServer:
    """Accepts one command per connection and runs it with ``handler`` on its own thread."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = path
        self.handler = handler
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                self.path.unlink()  # a stale socket of a daemon that died; only one daemon holds sync.lock
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)  # created 0600: the socket runs commands as the daemon's user
        try:
            with _short_path(self.path) as where:
                sock.bind(where)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        sock.listen(8)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="control", daemon=True)
        self._thread.start()
        log.debug("control socket at %s", self.path)

    def stop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
            self._sock = None
        with contextlib.suppress(OSError):
            self.path.unlink()

    def _accept(self) -> None:
        while self._sock is not None:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="control-client", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            reply = Reply(conn)
            try:
                argv = _read_request(conn)
            except ValueError as exc:
                reply.err(f"gitops-edge: bad control request: {exc}\n")
                reply.exit(2)
                return
            try:
                code = self.handler(argv, reply)
            except Exception:  # a bug in one command must not take the daemon down
                log.exception("control command %s failed", argv[:1])
                reply.err("gitops-edge: internal error in the daemon (see its log)\n")
                code = 70
            reply.exit(code)


def _read_request(conn: socket.socket) -> list[str]:
    buf = b""
    while not buf.endswith(b"\n"):
        chunk = conn.recv(4096)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_REQUEST_BYTES:
            raise ValueError("request too large")
    try:
        doc = json.loads(buf.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None
    argv = doc.get("argv") if isinstance(doc, dict) else None
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise ValueError('expected {"argv": [strings]}')
    return argv


def request(path: Path, argv: list[str], out: TextIO, err: TextIO, timeout_s: float | None = None) -> int | None:
    """Run ``argv`` in the daemon listening on ``path``; None when no daemon listens there."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        with _short_path(path) as where:
            sock.settimeout(2.0)
            sock.connect(where)
    except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
        sock.close()
        return None
    except OSError:
        sock.close()
        return None
    with sock:
        sock.settimeout(timeout_s)
        sock.sendall((json.dumps({"argv": argv}) + "\n").encode())
        reader = sock.makefile("r", encoding="utf-8")
        for line in reader:
            msg = json.loads(line)
            if "out" in msg:
                out.write(msg["out"])
                out.flush()
            elif "err" in msg:
                err.write(msg["err"])
                err.flush()
            elif "exit" in msg:
                return int(msg["exit"])
    err.write("gitops-edge: the daemon closed the control connection without an answer\n")
    return 4
