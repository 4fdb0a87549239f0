"""Start and stop a real ComfyUI server with this pack installed, for tests, the demo and benchmarks.

The server runs ``main.py --cpu`` (or on the GPU when asked) with ``--base-directory`` pointing at a
scratch folder, so its models, inputs, outputs and custom_nodes live there and the ComfyUI tree itself
is never written to. The pack is linked into ``<base>/custom_nodes/zizi_video``.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_DIR_NAME = "zizi_video"
MODEL_SUBFOLDERS = ("checkpoints", "controlnet", "loras", "vae", "zizi", "animatediff_models", "pose")

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """A ComfyUI process on 127.0.0.1. Use as a context manager or call ``start()`` / ``stop()``."""

    def __init__(self, comfy_dir: Path, base_dir: Path, port: int | None = None, cpu: bool = True,
                 extra_args: tuple[str, ...] = ()) -> None:
        self.comfy_dir = Path(comfy_dir)
        self.base_dir = Path(base_dir)
        self.port = port or free_port()
        self.cpu = cpu
        self.extra_args = extra_args
        self.log_path = self.base_dir / "comfyui-server.log"
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def models_dir(self) -> Path:
        return self.base_dir / "models"

    @property
    def input_dir(self) -> Path:
        return self.base_dir / "input"

    @property
    def output_dir(self) -> Path:
        return self.base_dir / "output"

    def prepare(self) -> None:
        """Create the folder layout and link the pack into custom_nodes."""
        for sub in MODEL_SUBFOLDERS:
            (self.models_dir / sub).mkdir(parents=True, exist_ok=True)
        for sub in ("input", "output", "temp", "user", "custom_nodes"):
            (self.base_dir / sub).mkdir(parents=True, exist_ok=True)
        link = self.base_dir / "custom_nodes" / PACK_DIR_NAME
        if not link.exists():
            link.symlink_to(REPO_ROOT, target_is_directory=True)

    def command(self) -> list[str]:
        cmd = [
            sys.executable, str(self.comfy_dir / "main.py"),
            "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base_dir),
            "--database-url", "sqlite:///:memory:",
            "--disable-auto-launch", "--disable-api-nodes",
        ]
        if self.cpu:
            cmd.append("--cpu")
        return cmd + list(self.extra_args)

    def start(self, timeout: float = 240.0) -> ComfyServer:
        self.prepare()
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("COMFYUI_PATH", None)
        log_file = open(self.log_path, "ab")  # noqa: SIM115 - owned by the process for its lifetime
        self.process = subprocess.Popen(
            self.command(), cwd=self.comfy_dir, stdout=log_file, stderr=subprocess.STDOUT, env=env,
            start_new_session=True,
        )
        log_file.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited with code {self.process.returncode} while starting:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/system_stats", timeout=5) as r:
                    if r.status == 200:
                        log.info("ComfyUI is up at %s", self.url)
                        return self
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.5)
        self.stop()
        raise TimeoutError(f"ComfyUI did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, grace: float = 20.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 200) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> ComfyServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
