"""devtools.comfy_client: a slow answer to an idempotent request is retried, POST /prompt never is."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devtools import comfy_client
from devtools.comfy_client import ComfyClient


class SlowFirst(BaseHTTPRequestHandler):
    """Every path answers its first request after 1.5 s and later ones at once; counts the requests."""

    calls: dict[str, int] = {}

    def _answer(self) -> None:
        path = self.path.split("?")[0]
        n = self.calls[path] = self.calls.get(path, 0) + 1
        if n == 1:
            time.sleep(1.5)
        body = json.dumps({"prompt_id": "p1"} if path == "/prompt" else {"n": n}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:  # noqa: N802
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def slow_server(monkeypatch):
    monkeypatch.setattr(comfy_client, "RETRY_BACKOFF_S", 0.05)
    SlowFirst.calls = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowFirst)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_idempotent_requests_are_retried_after_a_timeout(slow_server) -> None:
    client = ComfyClient(slow_server, timeout=0.5)
    assert client.get_json("/system_stats") == {"n": 2}
    assert SlowFirst.calls["/system_stats"] == 2
    client.interrupt()
    assert SlowFirst.calls["/interrupt"] == 2


def test_queue_is_never_retried(slow_server) -> None:
    client = ComfyClient(slow_server, timeout=0.5)
    with pytest.raises(OSError):
        client.queue({"1": {"class_type": "X", "inputs": {}}})
    time.sleep(1.2)  # let the slow first answer finish
    assert SlowFirst.calls["/prompt"] == 1


def test_default_timeout_is_sized_for_a_busy_two_core_machine() -> None:
    assert ComfyClient("http://127.0.0.1:1").timeout >= 120
