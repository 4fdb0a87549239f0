"""A small client for ComfyUI's HTTP + websocket API, the way a studio script drives it headless.

``run()`` opens the websocket first (so no event is missed), queues an API-format prompt with
``POST /prompt``, follows ``progress`` / ``executing`` events until the prompt ends, then polls
``/history/<id>`` until its outputs appear (history can still be empty just after
``execution_success``). Output files come back through ``/view``.

Timeouts are sized for a busy 2-core machine: a ComfyUI that is sampling, loading a model or importing
custom nodes can leave a socket unanswered for a minute. Idempotent requests (every GET: ``/history``,
``/object_info``, ``/view``, ``/system_stats``, ...; ``POST /interrupt``; an overwriting upload) are
retried on a timeout or a dropped connection; ``POST /prompt`` never is, since a retry could queue the
prompt twice (a timed-out ``queue()`` raises).
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


class PromptRejected(RuntimeError):
    """ComfyUI refused the prompt at validation (HTTP 400); ``details`` holds its JSON answer."""

    def __init__(self, details: dict) -> None:
        self.details = details
        super().__init__(json.dumps(details, indent=1)[:4000])


class PromptFailed(RuntimeError):
    """The prompt ran and ended with ``execution_error``; ``error`` holds the event data."""

    def __init__(self, error: dict) -> None:
        self.error = error
        super().__init__(f"{error.get('node_type')} #{error.get('node_id')}: {error.get('exception_message')}")


@dataclass
class RunResult:
    prompt_id: str
    status: str  # "success" | "interrupted" | "error"
    events: list[dict] = field(default_factory=list)
    history: dict = field(default_factory=dict)

    @property
    def outputs(self) -> dict:
        return self.history.get("outputs", {})

    def progress_events(self, node_id: str | None = None) -> list[dict]:
        return [e["data"] for e in self.events
                if e["type"] == "progress" and (node_id is None or e["data"].get("node") == node_id)]

    def output_files(self, node_id: str, kind: str = "images") -> list[dict]:
        return self.outputs.get(node_id, {}).get(kind, [])


# A socket read this long without a byte means the server is stuck, not busy (2 cores, a model loading).
DEFAULT_TIMEOUT_S = 120.0
RETRIES = 3  # extra attempts of an idempotent request after a timeout / dropped connection
RETRY_BACKOFF_S = 2.0


def _transient(err: BaseException) -> bool:
    """A timeout or a dropped/refused connection: worth retrying an idempotent request.
    HTTP error answers (4xx/5xx) are real answers and are never retried."""
    if isinstance(err, urllib.error.HTTPError):
        return False
    if isinstance(err, urllib.error.URLError):
        return isinstance(err.reason, (TimeoutError, socket.timeout, ConnectionError, OSError))
    return isinstance(err, (TimeoutError, socket.timeout, ConnectionError, http.client.RemoteDisconnected,
                            http.client.IncompleteRead))


class ComfyClient:
    def __init__(self, base_url: str, timeout: float = DEFAULT_TIMEOUT_S, retries: int = RETRIES) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.client_id = uuid.uuid4().hex

    # plain HTTP -----------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
                 idempotent: bool | None = None) -> bytes:
        """One HTTP request; ``idempotent`` (default: GET/HEAD) requests are retried on transient errors."""
        if idempotent is None:
            idempotent = method in ("GET", "HEAD")
        attempts = 1 + (self.retries if idempotent else 0)
        for attempt in range(1, attempts + 1):
            req = urllib.request.Request(f"{self.base_url}{path}", data=body, method=method, headers=headers or {})
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as r:
                    return r.read()
            except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
                if attempt == attempts or not _transient(err):
                    raise
                log.warning("%s %s: %s (attempt %d/%d), retrying", method, path.split("?")[0], err, attempt, attempts)
                time.sleep(RETRY_BACKOFF_S * attempt)
        raise AssertionError("unreachable")

    def get_json(self, path: str) -> dict:
        return json.loads(self._request("GET", path))

    def post_json(self, path: str, payload: dict) -> dict:
        body = self._request("POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
        return json.loads(body) if body.strip() else {}

    def object_info(self) -> dict:
        return self.get_json("/object_info")

    def queue(self, prompt: dict) -> str:
        try:
            answer = self.post_json("/prompt", {"prompt": prompt, "client_id": self.client_id})
        except urllib.error.HTTPError as e:
            details = json.loads(e.read() or b"{}")
            raise PromptRejected(details) from None
        return answer["prompt_id"]

    def interrupt(self) -> None:
        self._request("POST", "/interrupt", b"{}", {"Content-Type": "application/json"}, idempotent=True)

    def history(self, prompt_id: str) -> dict:
        return self.get_json(f"/history/{prompt_id}").get(prompt_id, {})

    def wait_history(self, prompt_id: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id)
            if entry.get("status", {}).get("completed") is not None or entry.get("outputs"):
                return entry
            time.sleep(0.2)
        raise TimeoutError(f"/history/{prompt_id} still empty after {timeout:.0f} s")

    def view(self, file_info: dict) -> bytes:
        query = urllib.parse.urlencode({k: file_info.get(k, "") for k in ("filename", "subfolder", "type")})
        return self._request("GET", f"/view?{query}")

    def upload(self, path: Path, subfolder: str = "", overwrite: bool = True) -> str:
        """Upload a file into ComfyUI's input folder (``/upload/image`` takes any file); returns its name."""
        boundary = uuid.uuid4().hex
        parts = []
        for name, value in (("subfolder", subfolder), ("overwrite", "true" if overwrite else "false"), ("type", "input")):
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{Path(path).name}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode() + Path(path).read_bytes() + b"\r\n"
        )
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        answer = json.loads(self._request("POST", "/upload/image", body,
                                          {"Content-Type": f"multipart/form-data; boundary={boundary}"},
                                          idempotent=overwrite))  # re-uploading the same file changes nothing
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    # websocket ------------------------------------------------------------------
    def connect(self):
        import websocket

        ws_url = self.base_url.replace("http://", "ws://").replace("https://", "wss://")
        ws = websocket.WebSocket()
        for attempt in range(1, self.retries + 2):  # opening the websocket queues nothing: safe to retry
            try:
                ws.connect(f"{ws_url}/ws?clientId={self.client_id}", timeout=self.timeout)
                return ws
            except (websocket.WebSocketTimeoutException, ConnectionError, TimeoutError) as err:
                if attempt > self.retries:
                    raise
                log.warning("websocket connect: %s (attempt %d), retrying", err, attempt)
                ws = websocket.WebSocket()
                time.sleep(RETRY_BACKOFF_S * attempt)
        raise AssertionError("unreachable")

    def run(self, prompt: dict, timeout: float = 600.0, on_event=None, raise_on_error: bool = True) -> RunResult:
        """Queue ``prompt`` and follow it to its end. ``on_event(event)`` sees every JSON event of this prompt."""
        import websocket

        ws = self.connect()
        try:
            prompt_id = self.queue(prompt)
            result = RunResult(prompt_id, "running")
            deadline = time.monotonic() + timeout
            while result.status == "running":
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
                ws.settimeout(min(remaining, 30.0))
                try:
                    message = ws.recv()
                except websocket.WebSocketTimeoutException:
                    continue
                if not isinstance(message, str):
                    continue  # binary preview images
                event = json.loads(message)
                data = event.get("data") or {}
                if data.get("prompt_id") not in (None, prompt_id):
                    continue
                result.events.append(event)
                if on_event is not None:
                    on_event(event)
                kind = event.get("type")
                if kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                                   and data.get("prompt_id") == prompt_id):
                    result.status = "success"
                elif kind == "execution_interrupted":
                    result.status = "interrupted"
                elif kind == "execution_error":
                    result.status = "error"
                    if raise_on_error:
                        raise PromptFailed(data)
        finally:
            ws.close()
        result.history = self.wait_history(prompt_id)
        return result
