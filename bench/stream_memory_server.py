"""Server RSS of a streamed puppet video: 500 vs 5,000 frames through the shipped workflow (issue #13, item 3).

    python bench/stream_memory_server.py [--frames 500 5000] [--steps 2]

One ComfyUI server (``devtools.comfyui_provision``) with the pack and its shipped puppet model; for each
length N the demo motion (``zizi_models.puppet.demo_sequence``) of N frames goes into the input folder
and ``workflows/puppet_long_video_api.json`` is queued over HTTP with ``total_frames`` N and the
controller's ``output`` set to streaming. The server process's RSS is sampled every 50 ms: its level
before the prompt, its peak during it, and the part of the peak that the graph's own pose images hold
(ZiziPoseRender's IMAGE, N x 64 x 64 x 3 float32, made before the controller runs and counted by its
admission estimate as already loaded). Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peak_rss import PeakRss  # noqa: E402
from devtools.comfy_client import ComfyClient  # noqa: E402
from devtools.comfy_server import ComfyServer  # noqa: E402
from devtools.comfyui_provision import find_comfyui  # noqa: E402
from devtools.demo import PUPPET_SIZE, PUPPET_WORKFLOW, write_puppet_inputs  # noqa: E402
from devtools.workflows import load_api_workflow, set_inputs  # noqa: E402
from zizi_models.puppet import demo_sequence  # noqa: E402

log = logging.getLogger("bench.stream_memory_server")
STREAM = "stream to file (small IMAGE)"
MB = 2**20


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="zizi-stream-server-") as scratch, \
            ComfyServer(find_comfyui(), Path(scratch)) as server:
        client = ComfyClient(server.url, timeout=3600)
        rows = []
        for frames in args.frames:
            write_puppet_inputs(server.input_dir, demo_sequence(frames=frames, size=PUPPET_SIZE, seed=0))
            prompt = load_api_workflow(PUPPET_WORKFLOW)
            controller = set_inputs(prompt, "ZiziLoopController", total_frames=frames, steps=args.steps,
                                    stream_prefix=f"bench/stream_{frames}")
            prompt[controller]["inputs"]["output"] = STREAM  # the shipped workflow keeps the default
            time.sleep(2.0)  # let the previous prompt's memory settle
            with PeakRss(server.process.pid) as rss:
                started = time.perf_counter()
                result = client.run(prompt, timeout=24 * 3600)
                seconds = time.perf_counter() - started
            assert result.status == "success", result.status
            pose_mb = frames * PUPPET_SIZE * PUPPET_SIZE * 3 * 4 / MB
            rows.append((frames, rss.start / MB, rss.peak / MB, (rss.peak - rss.start) / MB, pose_mb, seconds))
            log.info("N=%d: RSS before %.0f MiB, peak %.0f MiB, %.0f s", frames, rss.start / MB, rss.peak / MB, seconds)
        print(f"Machine: {platform.machine()}, {psutil.cpu_count()} CPU threads, "  # noqa: T201
              f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM\n"
              f"Command: `python bench/stream_memory_server.py --frames {' '.join(map(str, args.frames))} "
              f"--steps {args.steps}`\n\n"
              "| frames | server RSS before (MiB) | peak (MiB) | peak - before (MiB) | of it, the graph's pose images (MiB) "
              "| peak - before - pose images (MiB) | seconds |\n|---:|---:|---:|---:|---:|---:|---:|")
        for frames, before, peak, growth, pose_mb, seconds in rows:
            print(f"| {frames} | {before:.0f} | {peak:.0f} | {growth:.0f} | {pose_mb:.0f} | {growth - pose_mb:.0f} "  # noqa: T201
                  f"| {seconds:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
