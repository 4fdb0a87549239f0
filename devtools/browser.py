"""A small headless-Chromium driver over the Chrome DevTools Protocol (CDP), for browser tests.

Uses the system's Chromium (Debian's ``chromium`` package, see ``devtools/install_chromium.sh``) and
``websocket-client``; nothing is downloaded. Chromium starts with ``--remote-debugging-port=0`` in a
fresh temporary profile, writes the port it chose to ``<profile>/DevToolsActivePort``, and the driver
attaches to its first page. Every CDP event is kept in ``events`` (console calls, uncaught exceptions,
log entries, failed requests), in the order they came.

    with Browser.launch() as browser:
        browser.navigate("http://127.0.0.1:8188")
        browser.wait_for("!!window.app")
        print(browser.evaluate("app.graph.nodes.length"))
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import websocket

log = logging.getLogger(__name__)

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")

# Headless in a closed network: no GPU, no QUIC, and none of the background requests (updates,
# sync, component downloads) whose refused connections would only add noise.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", "--mute-audio",
    "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
)


class BrowserError(RuntimeError):
    pass


class JavaScriptError(BrowserError):
    """An expression given to ``evaluate`` threw; ``details`` is CDP's exceptionDetails."""

    def __init__(self, details: dict) -> None:
        self.details = details
        exc = details.get("exception", {})
        super().__init__(exc.get("description") or details.get("text") or json.dumps(details)[:2000])


def find_chromium() -> str | None:
    """Path of a Chromium binary: ``$CHROMIUM`` if set, else the usual system locations."""
    env = os.environ.get("CHROMIUM")
    if env:
        return env if Path(env).is_file() else shutil.which(env)
    for candidate in CHROMIUM_CANDIDATES:
        if Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium")


class Browser:
    """One headless Chromium process and a CDP session attached to its page."""

    def __init__(self, process: subprocess.Popen, profile_dir: Path, ws: websocket.WebSocket,
                 version: dict) -> None:
        self.process = process
        self.profile_dir = profile_dir
        self.ws = ws
        self.version = version
        self.events: list[dict] = []
        self._ids = itertools.count(1)

    # ---- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def launch(cls, binary: str | None = None, window_size: tuple[int, int] = (1600, 1000),
               timeout: float = 30.0, extra_flags: tuple[str, ...] = ()) -> Browser:
        binary = binary or find_chromium()
        if not binary:
            raise BrowserError("no Chromium found (run `bash devtools/install_chromium.sh`)")
        profile_dir = Path(tempfile.mkdtemp(prefix="zizi-chromium-"))
        cmd = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}",
               f"--window-size={window_size[0]},{window_size[1]}", *extra_flags, "about:blank"]
        stderr_log = open(profile_dir / "chromium-stderr.log", "wb")  # noqa: SIM115 - owned by the process
        process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=stderr_log, start_new_session=True)
        stderr_log.close()
        try:
            port = cls._wait_for_port(process, profile_dir, timeout)
            base = f"http://127.0.0.1:{port}"
            version = cls._get_json(f"{base}/json/version")
            page = next((t for t in cls._get_json(f"{base}/json/list") if t.get("type") == "page"), None)
            if page is None:
                page = cls._get_json(f"{base}/json/new?about:blank", method="PUT")
            ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=timeout,
                                             suppress_origin=True, enable_multithread=False)
        except Exception:
            cls._terminate(process)
            shutil.rmtree(profile_dir, ignore_errors=True)
            raise
        browser = cls(process, profile_dir, ws, version)
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        log.info("Chromium %s attached on port %s", version.get("Browser"), port)
        return browser

    @staticmethod
    def _wait_for_port(process: subprocess.Popen, profile_dir: Path, timeout: float) -> int:
        port_file = profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = (profile_dir / "chromium-stderr.log").read_text(errors="replace")[-4000:]
                raise BrowserError(f"Chromium exited with code {process.returncode}:\n{err}")
            if port_file.is_file():
                lines = port_file.read_text().split()
                if lines and lines[0].isdigit():
                    return int(lines[0])
            time.sleep(0.1)
        raise BrowserError(f"Chromium did not open its DevTools port within {timeout:.0f} s")

    @staticmethod
    def _get_json(url: str, method: str = "GET") -> dict | list:
        req = urllib.request.Request(url, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    @staticmethod
    def _terminate(process: subprocess.Popen) -> None:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._terminate(self.process)
        shutil.rmtree(self.profile_dir, ignore_errors=True)

    def stderr_tail(self, chars: int = 4000) -> str:
        path = self.profile_dir / "chromium-stderr.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- protocol --------------------------------------------------------------------------------

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        """Send one CDP command and return its result; events that arrive meanwhile go to ``events``."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            msg = self._receive(deadline - time.monotonic())
            if msg is None:
                raise BrowserError(f"no answer to {method} within {timeout:.0f} s")
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _receive(self, timeout: float) -> dict | None:
        if timeout <= 0:
            return None
        self.ws.settimeout(timeout)
        try:
            msg = json.loads(self.ws.recv())
        except websocket.WebSocketTimeoutException:
            return None
        if "method" in msg and "id" not in msg:
            self.events.append(msg)
        return msg

    def pump(self, seconds: float) -> None:
        """Collect the events that arrive in the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while self._receive(deadline - time.monotonic()) is not None:
            pass

    # ---- page helpers ----------------------------------------------------------------------------

    def navigate(self, url: str, timeout: float = 60.0) -> None:
        self.send("Page.navigate", {"url": url}, timeout=timeout)

    def evaluate(self, expression: str, timeout: float = 60.0) -> object:
        """Evaluate a JS expression in the page (promises are awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {
            "expression": expression, "awaitPromise": True, "returnByValue": True,
            "userGesture": True, "timeout": int(timeout * 1000),
        }, timeout=timeout + 5)
        if "exceptionDetails" in result:
            raise JavaScriptError(result["exceptionDetails"])
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60.0, interval: float = 0.2) -> object:
        """Poll a JS expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression, timeout=max(1.0, deadline - time.monotonic()))
                if value:
                    return value
            except JavaScriptError as e:
                last_error = e
            self.pump(interval)
        raise BrowserError(f"timed out after {timeout:.0f} s waiting for {expression!r}"
                           + (f" (last error: {last_error})" if last_error else ""))

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png"})["data"]
        path = Path(path)
        path.write_bytes(base64.b64decode(data))
        return path

    # ---- what the page reported ------------------------------------------------------------------

    def mark(self) -> int:
        """Position in ``events``; pass it to the report helpers to see only what came after."""
        return len(self.events)

    def console_messages(self, since: int = 0, kinds: tuple[str, ...] | None = None) -> list[dict]:
        """Console API calls (``{"type", "text"}``), optionally only of the given types ("error", ...)."""
        out = []
        for event in self.events[since:]:
            if event["method"] != "Runtime.consoleAPICalled":
                continue
            params = event["params"]
            if kinds is not None and params.get("type") not in kinds:
                continue
            out.append({"type": params.get("type"), "text": " ".join(_remote_text(a) for a in params.get("args", []))})
        return out

    def exceptions(self, since: int = 0) -> list[str]:
        """Uncaught exceptions and unhandled promise rejections in the page."""
        out = []
        for event in self.events[since:]:
            if event["method"] == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                exc = details.get("exception", {})
                out.append(exc.get("description") or details.get("text", "exception"))
        return out

    def log_entries(self, since: int = 0, levels: tuple[str, ...] = ("error",)) -> list[dict]:
        """Browser log entries (``{"source", "level", "text", "url"}``), e.g. failed network requests."""
        out = []
        for event in self.events[since:]:
            if event["method"] == "Log.entryAdded":
                entry = event["params"]["entry"]
                if entry.get("level") in levels:
                    out.append({k: entry.get(k) for k in ("source", "level", "text", "url")})
        return out

    def failed_requests(self, since: int = 0) -> list[dict]:
        """Requests that failed at the network level (``{"url", "error"}``)."""
        urls = {}
        for event in self.events[since:]:
            if event["method"] == "Network.requestWillBeSent":
                urls[event["params"]["requestId"]] = event["params"]["request"]["url"]
        out = []
        for event in self.events[since:]:
            if event["method"] == "Network.loadingFailed":
                params = event["params"]
                out.append({"url": urls.get(params["requestId"], "?"), "error": params.get("errorText")})
        return out


def _remote_text(obj: dict) -> str:
    """Readable text of a CDP RemoteObject (a console.log argument)."""
    if "value" in obj:
        value = obj["value"]
        return value if isinstance(value, str) else json.dumps(value)
    if "unserializableValue" in obj:
        return obj["unserializableValue"]
    return obj.get("description") or obj.get("type", "?")
