"""``make demo``: run the pack's most complete headless job end to end and write a video under ``output/``.

It starts a real ComfyUI server with the pack installed, queues the shipped API-format workflow
``workflows/sd15_frames_to_video_api.json`` over HTTP (following websocket progress), and copies the
resulting video and frames into ``output/demo/``. No weights can be downloaded here, so by default it
uses the seeded random full-size SD1.5 checkpoint (the frames are noise-like textures: the point is
the pipeline); pass ``--checkpoint /path/to/sd15.safetensors`` to run it on a real SD1.5 model.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

from devtools.comfy_client import ComfyClient
from devtools.comfy_server import ComfyServer
from devtools.comfyui_provision import find_comfyui
from devtools.random_sd15 import full_sd15_checkpoint
from devtools.workflows import load_api_workflow, set_inputs

REPO_ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = "sd15_frames_to_video_api.json"

log = logging.getLogger("zizi.demo")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", type=Path, help="an SD1.5 .safetensors checkpoint (default: random SD1.5)")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="width = height, a multiple of 8")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--output", type=Path, default=REPO_ROOT / "output" / "demo")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    started = time.perf_counter()
    checkpoint = args.checkpoint.resolve() if args.checkpoint else full_sd15_checkpoint()
    if not checkpoint.is_file():
        log.error("--checkpoint %s: no such file", checkpoint)
        return 2
    with tempfile.TemporaryDirectory(prefix="zizi-demo-") as scratch:
        server = ComfyServer(find_comfyui(), Path(scratch))
        server.prepare()
        (server.models_dir / "checkpoints" / checkpoint.name).symlink_to(checkpoint)
        with server:
            client = ComfyClient(server.url)
            prompt = load_api_workflow(WORKFLOW)
            set_inputs(prompt, "CheckpointLoaderSimple", ckpt_name=checkpoint.name)
            set_inputs(prompt, "EmptyLatentImage", width=args.size, height=args.size, batch_size=args.frames)
            set_inputs(prompt, "KSampler", steps=args.steps)

            def report(event: dict) -> None:
                if event["type"] == "progress":
                    data = event["data"]
                    log.info("node %s: %d/%d", data["node"], data["value"], data["max"])

            log.info("queueing %s on %s", WORKFLOW, server.url)
            result = client.run(prompt, timeout=3600, on_event=report)
            args.output.mkdir(parents=True, exist_ok=True)
            written = []
            for node_outputs in result.outputs.values():
                for info in node_outputs.get("images", []):
                    target = args.output / Path(info["filename"]).name
                    target.write_bytes(client.view(info))
                    written.append(target)
        if server.log_path.exists():
            shutil.copy(server.log_path, args.output / "comfyui-server.log")
    videos = [p for p in written if p.suffix in {".mp4", ".webm"}]
    log.info("wrote %d files to %s in %.0f s", len(written), args.output, time.perf_counter() - started)
    for video in videos:
        log.info("video: %s", video)
    return 0 if videos else 1


if __name__ == "__main__":
    sys.exit(main())
