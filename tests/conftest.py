"""Shared fixtures: the ComfyUI tree, a real ComfyUI server with this pack, cached random models."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from devtools.comfy_client import ComfyClient
from devtools.comfy_inprocess import import_pack
from devtools.comfy_server import ComfyServer
from devtools.comfyui_provision import find_comfyui
from devtools.random_sd15 import full_sd15_checkpoint, tiny_sd15_diffusers

REPO_ROOT = Path(__file__).resolve().parent.parent
SD15_CHECKPOINT_NAME = "sd15_random.safetensors"

log = logging.getLogger(__name__)


@pytest.fixture(scope="module")
def one_torch_thread():
    """For modules of toy-sized models: one intra-op thread is fastest there, and on a busy 2-core machine
    two OpenMP threads waiting on each other make a step ~10x slower. Restored after the module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def comfyui_dir() -> Path:
    return find_comfyui()


@pytest.fixture(scope="session")
def comfy_pack(comfyui_dir: Path):
    """ComfyUI imported into the test process, and this pack imported as the package ``zizi_video``
    the way ComfyUI imports custom nodes (``zizi_video.nodes.comfy`` etc.)."""
    return import_pack(comfyui_dir)


@pytest.fixture(scope="session")
def sd15_checkpoint_path() -> Path:
    """Full-size random SD1.5 checkpoint in the LDM layout (cached; ~30 s to build the first time)."""
    return full_sd15_checkpoint(seed=0)


@pytest.fixture(scope="session")
def tiny_sd15_path() -> Path:
    return tiny_sd15_diffusers(seed=0)


@pytest.fixture(scope="session")
def comfy_server(comfyui_dir: Path, sd15_checkpoint_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """One real ComfyUI server for the whole session, with the pack linked into custom_nodes and the
    random SD1.5 checkpoint in its (temporary) checkpoints folder."""
    base = tmp_path_factory.mktemp("comfyui-base")
    server = ComfyServer(comfyui_dir, base, extra_args=("--preview-method", "latent2rgb"))  # previews on the websocket
    server.prepare()
    (server.models_dir / "checkpoints" / SD15_CHECKPOINT_NAME).symlink_to(sd15_checkpoint_path)
    server.start()
    yield server
    server.stop()
    if os.environ.get("ZIZI_PRINT_SERVER_LOG"):
        print(server.log_text())  # noqa: T201


@pytest.fixture(scope="session")
def server_models(comfy_server: ComfyServer) -> dict[str, str]:
    """Random full-size add-ons linked into the server's model folders; returns their names."""
    from devtools.random_addons import sd15_controlnet, sd15_lora
    from devtools.random_sd15 import sd15_temporal_module, tiny_base_checkpoint

    names = {"temporal_fresh": "zizi_fresh.safetensors", "temporal_random": "zizi_random.safetensors",
             "lora": "lora.safetensors", "controlnet": "control.safetensors",
             "small_vae4": "zizi_tiny_vae4.safetensors", "small_vae3": "zizi_tiny_vae3.safetensors"}
    links = {
        ("zizi", names["temporal_fresh"]): lambda: sd15_temporal_module(seed=0, fresh=True),
        ("zizi", names["temporal_random"]): lambda: sd15_temporal_module(seed=0, fresh=False),
        ("loras", names["lora"]): lambda: sd15_lora(seed=0),
        ("controlnet", names["controlnet"]): lambda: sd15_controlnet(seed=0),
        # Zizi small models (ZiziCheckpointLoader), with SD1.5's 4-level VAE and a 3-level one (downscale 4)
        ("zizi_checkpoints", names["small_vae4"]): lambda: tiny_base_checkpoint(seed=0, vae_levels=4),
        ("zizi_checkpoints", names["small_vae3"]): lambda: tiny_base_checkpoint(seed=0, vae_levels=3),
    }
    for (folder, name), build in links.items():
        link = comfy_server.models_dir / folder / name
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(build())
    return names


@pytest.fixture()
def comfy(comfy_server: ComfyServer) -> ComfyClient:
    assert comfy_server.alive(), f"ComfyUI server died:\n{comfy_server.log_tail()}"
    return ComfyClient(comfy_server.url)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Attach the server log to the report of every failing test that used the server."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "comfy_server" in getattr(item, "fixturenames", ()):
        server = item.funcargs.get("comfy_server") if hasattr(item, "funcargs") else None
        if server is not None:
            report.sections.append(("ComfyUI server log (last 200 lines)", server.log_tail()))
