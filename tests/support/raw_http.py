"""HTTP/1.1 over a bare socket, for requests an HTTP client will not send: a body that is
announced but never sent, or a chunked body the client stops sending part way.

Both return the status the server answered *while the rest of the body was still held
back by the client*: a server that reads the whole body before answering never answers,
and the read times out (an AssertionError naming the request).
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import urlsplit

import orjson

CHUNK = 64 * 1024


def _connect(url: str, timeout: float) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=timeout)


def _head(method: str, path: str, headers: dict[str, str]) -> bytes:
    fields = (f"{name}: {value}" for name, value in headers.items())
    lines = [f"{method} {path} HTTP/1.1", "Host: baton.test", *fields]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _status(sock: socket.socket, what: str) -> tuple[int, bytes]:
    """The status and the whole response (head and body, as Content-Length says)."""
    answer = b""
    try:
        while not _complete(answer):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    except TimeoutError:
        raise AssertionError(f"no answer to {what} while its body was held back") from None
    assert answer.startswith(b"HTTP/1.1 "), f"{what}: {answer[:200]!r}"
    return int(answer[9:12]), answer


def _complete(answer: bytes) -> bool:
    head, found, body = answer.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


def declared_only(
    url: str, path: str, length: int, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, bytes]:
    """``POST`` announcing ``Content-Length: length`` and sending no byte of the body."""
    with _connect(url, timeout) as sock:
        head = {"Content-Type": "application/json", "Content-Length": str(length)}
        sock.sendall(_head("POST", path, {**head, **(headers or {})}))
        return _status(sock, f"POST {path} declaring {length} bytes")


def chunked_past(
    url: str, path: str, limit: int, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, int]:
    """``POST`` a chunked body of ``limit`` bytes plus one chunk, then send nothing more
    (no final chunk): the server can only answer by deciding on what it has. Returns the
    status and the body bytes sent."""
    with _connect(url, timeout) as sock:
        head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
        sock.sendall(_head("POST", path, {**head, **(headers or {})}))
        sent = 0
        while sent <= limit:
            piece = b" " * CHUNK
            try:
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            except (BrokenPipeError, ConnectionResetError):
                break  # the server answered and closed while we were still sending
            sent += len(piece)
        status, _ = _status(sock, f"POST {path} chunked past {limit} bytes")
        return status, sent


def refused_unread(url: str, path: str) -> tuple[bytes, dict[str, Any]]:
    """``POST`` announcing a 4 GiB body: it must be a 413 sent before any byte of it.
    Returns the response head (lower case) and its JSON body."""
    status, answer = declared_only(url, path, 4 * 1024**3)
    assert status == 413, answer[:500]
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.lower(), orjson.loads(body)
