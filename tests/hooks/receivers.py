"""A real HTTP receiver for webhook tests: a threaded ``http.server`` on localhost that records every request and
answers from a plan (a status per request, ``"hang"`` to answer only after the sender's timeout)."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook as Verifier


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int | str  # what the receiver answered ("hang": nothing in time)

    def verify(self, secret: str) -> Any:
        """The payload, after the Standard Webhooks library checked signature, id and timestamp (else it raises)."""
        return Verifier(secret).verify(self.body, self.headers)


@dataclass
class Receiver:
    url: str = ""
    plan: list[int | str] = field(default_factory=list)  # answers for the next requests; then 200
    requests: list[Received] = field(default_factory=list)
    hang_seconds: float = 3.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self) -> int | str:
        with self.lock:
            return self.plan.pop(0) if self.plan else 200

    def record(self, received: Received) -> None:
        with self.lock:
            self.requests.append(received)

    def succeeded(self) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if isinstance(r.status, int) and 200 <= r.status < 300]

    def wait_for(self, count: int, timeout: float = 30, *, succeeded: bool = True) -> list[Received]:
        """Wait until ``count`` requests (successful ones by default) arrived; return them."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.succeeded() if succeeded else list(self.requests)
            if len(got) >= count or time.monotonic() > deadline:
                return got
            time.sleep(0.05)

    def events(self, secret: str) -> list[dict]:
        return [received.verify(secret) for received in self.succeeded()]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            answer = state.answer()
            state.record(Received(dict(self.headers.items()), body, answer))
            if answer == "hang":
                time.sleep(state.hang_seconds)
                answer = 200
            if isinstance(answer, str) and answer.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", answer.removeprefix("redirect:"))
            else:
                self.send_response(int(answer))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
