"""``adapters/docker/engine_http``: the engine's answers to HTTP/1.0 GETs, read without http.client."""

from __future__ import annotations

import pytest

from gitops_edge.adapters.docker.engine_http import parse_answer


def test_an_answer_with_a_length_is_read_to_that_length() -> None:
    raw = b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n[1, 2]\n'
    assert parse_answer(raw) == (200, b"[1, 2]\n")
    assert parse_answer(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}") == (404, b"{}")


def test_an_answer_ended_by_the_close_and_a_chunked_one() -> None:
    assert parse_answer(b"HTTP/1.0 200 OK\r\nServer: Docker\r\n\r\n{\"a\": 1}") == (200, b'{"a": 1}')
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[1, \r\n2;x=y\r\n2]\r\n0\r\n\r\n"
    assert parse_answer(chunked) == (200, b"[1, 2]")


@pytest.mark.parametrize("raw", [
    b"",  # the engine closed without a word
    b"SSH-2.0-OpenSSH\r\n\r\n",  # not HTTP
    b"HTTP/1.0 200 OK\r\nContent-Length: 10\r\n\r\n[1]",  # cut short
    b"HTTP/1.0 200 OK\r\nContent-Length: ten\r\n\r\n[1]",
    b"HTTP/1.0 200 OK\r\nContent-Length: 3",  # no end of the header
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n[1]",  # a chunk cut short
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
])
def test_what_is_not_a_whole_answer_is_an_unreachable_engine(raw: bytes) -> None:
    with pytest.raises(OSError, match="bad answer from the engine"):
        parse_answer(raw)
