"""A real webhook receiver on loopback: verifies every delivery with the Standard Webhooks verifier."""

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks import Webhook


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    payload: dict | None  # the verified JSON; None when verification failed
    error: str | None


@dataclass
class Receiver:
    """Answers 500 to the first `fail_first` deliveries, then 200; `secret` is set once the webhook exists."""

    fail_first: int = 0
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = 500 if len(receiver.received) < receiver.fail_first else 200
                try:
                    payload, error = Webhook(receiver.secret).verify(body, headers), None
                except Exception as exc:  # recorded: the test asserts every delivery verified
                    payload, error = None, f"{type(exc).__name__}: {exc}"
                receiver.received.append(Received(headers, body, status, payload, error))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def verified(self) -> list[dict]:
        assert all(r.error is None for r in self.received), [r.error for r in self.received]
        return [r.payload for r in self.received]
