"""A real HTTP server that records webhook deliveries: the demo's reps and the tests' receiver."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 drops connections in a burst of deliveries, and
    # the sender's retry then adds a second of latency that is not the sender's fault.
    request_queue_size = 256
    daemon_threads = True


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


class WebhookReceiver:
    """Listens on 127.0.0.1 in a thread (``port`` 0: a free one); every POST lands in
    ``deliveries``, and is handed to ``on_delivery`` when one is given."""

    def __init__(
        self,
        status: int = 200,
        port: int = 0,
        on_delivery: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.deliveries: queue.Queue[Delivery] = queue.Queue()
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                delivery = Delivery(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                receiver.deliveries.put(delivery)
                if on_delivery is not None:
                    on_delivery(delivery)
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = _Server(("127.0.0.1", port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
