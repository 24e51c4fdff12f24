"""The local stack's webhook receiver for Alertmanager: prints one line per alert
(status, name, severity, summary) to stdout, read with `docker compose logs alert-log`."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        for alert in body.get("alerts", []):
            labels, notes = alert.get("labels", {}), alert.get("annotations", {})
            print(
                alert.get("status"),
                labels.get("alertname"),
                labels.get("severity"),
                notes.get("summary", ""),
                flush=True,
            )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:  # no per-request access log
        pass


if __name__ == "__main__":
    HTTPServer(
        ("0.0.0.0", int(sys.argv[1]) if len(sys.argv) > 1 else 9095), Receiver
    ).serve_forever()
