"""Just enough of the Kafka wire protocol to tell whether a broker is really up.

* ``api_versions``: ApiVersions v0 (api key 18); every broker answers v0.
* ``broker_ids``: Metadata v4 (api key 3) for no topics; the brokers it lists are
  registered and unfenced, i.e. able to serve produce/fetch requests.

Requests use header v1 (api_key, api_version, correlation_id, client_id);
responses start with header v0 (correlation_id).
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass
from itertools import count

API_METADATA = 3
API_VERSIONS = 18
METADATA_VERSION = 4
CLIENT_ID = b"baton-devstack"

_correlation_ids = count(1)


class KafkaProtocolError(RuntimeError):
    """The broker answered with an error code or with something unexpected."""


@dataclass
class _Reader:
    data: bytes
    pos: int = 0

    def take(self, fmt: str) -> int:
        (value,) = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return int(value)

    def string(self) -> str | None:
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos : self.pos + length].decode()
        self.pos += length
        return value


def api_versions(host: str, port: int, timeout: float = 2.0) -> dict[int, tuple[int, int]]:
    """Send ApiVersions v0; return ``{api_key: (min_version, max_version)}``.

    Raises KafkaProtocolError when the broker answers with a non-zero error code
    and OSError when it cannot be reached.
    """
    body = _request(host, port, API_VERSIONS, 0, b"", timeout)
    error_code = body.take(">h")
    if error_code != 0:
        raise KafkaProtocolError(f"ApiVersions error_code={error_code}")
    versions = {}
    for _ in range(body.take(">i")):
        key, low, high = body.take(">h"), body.take(">h"), body.take(">h")
        versions[key] = (low, high)
    return versions


def broker_ids(host: str, port: int, timeout: float = 2.0) -> list[int]:
    """Node ids of the brokers listed by a Metadata v4 request (for no topics)."""
    no_topics_no_autocreate = struct.pack(">ib", 0, 0)
    body = _request(host, port, API_METADATA, METADATA_VERSION, no_topics_no_autocreate, timeout)
    body.take(">i")  # throttle_time_ms
    ids = []
    for _ in range(body.take(">i")):
        ids.append(body.take(">i"))
        body.string()  # host
        body.take(">i")  # port
        body.string()  # rack
    return ids


def broker_ready(host: str, port: int, node_id: int | None = None, timeout: float = 2.0) -> bool:
    """True when ApiVersions succeeds and Metadata lists ``node_id`` (or any broker)."""
    try:
        api_versions(host, port, timeout)
        ids = broker_ids(host, port, timeout)
    except (OSError, KafkaProtocolError, struct.error):
        return False
    return node_id in ids if node_id is not None else bool(ids)


def _request(
    host: str, port: int, api_key: int, api_version: int, payload: bytes, timeout: float
) -> _Reader:
    correlation_id = next(_correlation_ids) & 0x7FFFFFFF
    header = struct.pack(">hhih", api_key, api_version, correlation_id, len(CLIENT_ID))
    message = header + CLIENT_ID + payload
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(struct.pack(">i", len(message)) + message)
        (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
        response = _Reader(_recv_exactly(sock, size))
    if response.take(">i") != correlation_id:
        raise KafkaProtocolError("response correlation id does not match the request")
    return response


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise KafkaProtocolError("connection closed by the broker mid-response")
        chunks.extend(chunk)
    return bytes(chunks)
