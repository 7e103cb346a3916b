"""Reading an exec's output with a deadline: the SDK's stream readers wait for data without one.

A hook that goes quiet (``sleep 600``) must not hold the agent past its
deadline, so the attached socket is read here with ``select`` and Docker's
multiplexed framing (an 8-byte header: stream, 3 zero bytes, big-endian
length) is undone by hand. Only the tail is kept: it is evidence, not a log.
"""

from __future__ import annotations

import select
import time
from typing import Any

OUTPUT_KEEP = 16_384  # bytes of output held while the exec runs
TAIL_LINES = 10  # kept for evidence, as Compose keeps for its error message
TAIL_CHARS = 2048
_HEADER = 8


def read_until(sock: Any, deadline: float) -> bytes:
    """Frames from ``sock`` until it closes or ``deadline`` (monotonic) passes; the last payload bytes."""
    raw = getattr(sock, "_sock", sock)  # the SDK hands a SocketIO wrapping the socket
    pending = bytearray(already_read(sock, raw))
    output = bytearray(take_frames(pending))
    while (remaining := deadline - time.monotonic()) > 0:
        buffered = getattr(raw, "pending", lambda: 0)()  # TLS may hold decrypted bytes select cannot see
        if not buffered and not select.select([raw], [], [], remaining)[0]:
            break
        chunk = raw.recv(4096)
        if not chunk:
            break
        pending += chunk
        output += take_frames(pending)
        del output[:-OUTPUT_KEEP]
    return bytes(output)


def already_read(sock: Any, raw: Any) -> bytes:
    """Stream bytes that came in with the response headers and wait in the HTTP reader's buffer.

    The SDK hands over the socket under that buffer: a quick hook's whole output
    can sit there (seen on a loaded machine), and reading only the socket loses it.
    """
    try:
        buffer = sock._response.raw._fp.fp  # the BufferedReader http.client read the headers with
    except AttributeError:
        return b""
    timeout = raw.gettimeout()
    raw.setblocking(False)  # take what is buffered; never wait for the socket here
    try:
        waiting = buffer.peek(65536) or b""
        return bytes(buffer.read1(len(waiting))) if waiting else b""
    except (BlockingIOError, ValueError, OSError):
        return b""
    finally:
        raw.settimeout(timeout)


def take_frames(pending: bytearray) -> bytes:
    """The payloads of the whole frames at the start of ``pending``, which keeps the rest."""
    out = bytearray()
    while len(pending) >= _HEADER:
        size = int.from_bytes(pending[4:_HEADER], "big")
        if len(pending) < _HEADER + size:
            break
        out += pending[_HEADER:_HEADER + size]
        del pending[:_HEADER + size]
    return bytes(out)


def tail(output: bytes) -> str:
    """The last non-blank lines (a progress bar's last state), at most ``TAIL_CHARS``."""
    lines = [ln.rstrip("\r").rsplit("\r", 1)[-1] for ln in output.decode("utf-8", "replace").split("\n")]
    return "\n".join([ln for ln in lines if ln.strip()][-TAIL_LINES:])[-TAIL_CHARS:]
