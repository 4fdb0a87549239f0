"""The loop controller's host-memory path: admission before allocation, streaming 10,000 frames in bounded
RAM, a 1-frame video from the hint, the plan summary and the interrupt checks before the loop.

The controller runs for real (planning, the latent store, run_plan, decoding in chunks, LoopOutput and the
writer path); only the window sampler and the VAE are cheap stand-ins: a "sampled" frame is filled with
its index (mod 256) / 255, and the VAE maps latents to pixels by nearest upsampling, so frames can be
recognised in the output."""

from __future__ import annotations

import gc
import threading
from types import SimpleNamespace

import numpy as np
import psutil
import pytest
import torch
from einops import rearrange, repeat

from zizi_models.planner import plan_video
from zizi_models.run_memory import RunMemory, admission_problem, estimate_run_memory
from zizi_models.video_io import read_video

SIZE = 128
LONG = 10_000
CHUNK = 16
GB = 10**9
STREAM = "stream to file (small IMAGE)"


class FakeVAE:
    """ComfyUI VAE stand-in: encode = 8x8 mean pooling (+ a copy of the first channel), decode = nearest upsampling."""

    downscale_ratio = 8

    def __init__(self) -> None:
        self.decoded = 0
        self.rss_samples: list[int] = []

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        pooled = rearrange(images, "n (h a) (w b) c -> n c h w (a b)", a=8, b=8).mean(-1)
        return torch.cat([pooled, pooled[:, :1]], dim=1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        self.decoded += latents.shape[0]
        self.rss_samples.append(psutil.Process().memory_info().rss)
        return repeat(latents[:, :3].clamp(0, 1), "n c h w -> n (h a) (w b) c", a=8, b=8).contiguous()


class FakeSampler:
    """WindowSampler stand-in: each generated frame is filled with (frame index mod 256) / 255."""

    calls = 0

    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, request) -> torch.Tensor:
        FakeSampler.calls += 1
        values = torch.tensor([f % 256 / 255 for f in request.frames]).reshape(-1, 1, 1, 1)
        return values.expand_as(request.latents).clone()

    def to_model_space(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


class FakeWriter:
    """VideoWriter stand-in that only counts frames."""

    made: list[FakeWriter] = []

    def __init__(self, path, fps: float) -> None:
        self.path, self.frames_written, self.closed, self.shape = path, 0, False, None
        FakeWriter.made.append(self)

    def write(self, frames: np.ndarray) -> None:
        self.frames_written += len(frames)
        self.shape = frames.shape[1:]

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def controller(comfy_pack, monkeypatch, tmp_path, one_torch_thread):
    """The real ZiziLoopController with the stand-ins, ComfyUI's output folder in tmp_path and 1 GB of
    available host RAM (patched; the streaming run must fit in it, the all-frames run must not)."""
    lc = comfy_pack.nodes.loop_controller
    monkeypatch.setattr(lc, "require_temporal_model", lambda model: SimpleNamespace(
        config=SimpleNamespace(max_positions=32), pose_encoder=None))
    monkeypatch.setattr(lc, "WindowSampler", FakeSampler)
    monkeypatch.setattr(comfy_pack.nodes.comfy.folders, "output_directory", lambda: tmp_path)
    monkeypatch.setattr(comfy_pack.zizi_models.run_memory, "available_bytes", lambda: 1 * GB)
    FakeSampler.calls = 0
    FakeWriter.made = []
    return lc


def run(lc, total_frames: int, size: int = SIZE, **options):
    vae = options.pop("vae", FakeVAE())
    return lc.ZiziLoopController().generate(None, [], [], vae, size, size, total_frames, 16, 4, 0.66, 0, 1, 1.0,
                                            "euler", "normal", decode_chunk=options.pop("decode_chunk", CHUNK),
                                            **options)


def frame_value(index: int) -> float:
    return index % 256 / 255


class PeakRss:
    """The process's peak RSS growth over a block, sampled every 2 ms by a thread."""

    def __enter__(self) -> PeakRss:
        gc.collect()
        self.base = self.peak = psutil.Process().memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        process = psutil.Process()
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, process.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, psutil.Process().memory_info().rss)

    def growth(self, extra: list[int] = ()) -> int:
        return max([self.peak, *extra]) - self.base


def test_streaming_10000_frames_holds_latents_and_one_chunk(controller, comfy_pack, monkeypatch) -> None:
    monkeypatch.setattr(comfy_pack.nodes.loop_output, "VideoWriter", FakeWriter)
    vae = FakeVAE()
    with PeakRss() as rss:
        images, latent, plan = run(controller, LONG, output=STREAM, vae=vae)
    (writer,) = FakeWriter.made
    assert writer.frames_written == LONG and writer.closed and writer.shape == (SIZE, SIZE, 3)
    assert writer.path.name.startswith("stream_") and writer.path.parent.name == "zizi"  # the default prefix
    assert vae.decoded == LONG
    assert images.shape == (CHUNK, SIZE, SIZE, 3)  # the IMAGE output: the last decode_chunk frames only
    assert torch.allclose(images[:, 0, 0, 0], torch.tensor([frame_value(f) for f in range(LONG - CHUNK, LONG)]))
    assert latent["samples"].shape == (LONG, 4, SIZE // 8, SIZE // 8)
    assert len(plan.splitlines()) <= 41
    # keeping every frame would be LONG x 128 x 128 x 3 x 4 B = 1.97 GB; latents are 41 MB
    growth = rss.growth(vae.rss_samples)
    assert growth < 300 * 2**20, f"peak RSS grew by {growth / 2**20:.0f} MiB while streaming"


def test_all_frames_is_refused_before_allocating_when_ram_is_short(controller, comfy_pack, monkeypatch) -> None:
    monkeypatch.setattr(comfy_pack.nodes.loop_output, "VideoWriter", FakeWriter)
    allocated = []
    monkeypatch.setattr(controller, "LatentStore", lambda *a, **k: allocated.append(a))
    with pytest.raises(ValueError) as refused:
        run(controller, LONG)
    message = str(refused.value)
    assert message.startswith(f"total_frames: {LONG} frames of {SIZE}x{SIZE} need about 2.0 GB of host RAM")
    assert "only 1.0 GB is available" in message and f"'{STREAM}'" in message and "\n" not in message
    assert not allocated and FakeSampler.calls == 0 and not FakeWriter.made


def test_all_frames_keeps_every_frame_in_order_and_streams_a_real_mp4(controller, tmp_path) -> None:
    images, latent, _ = run(controller, 40, size=64, decode_chunk=8, stream_prefix="zizi_test/all")
    assert images.shape == (40, 64, 64, 3)
    assert torch.allclose(images[:, 0, 0, 0], torch.tensor([frame_value(f) for f in range(40)]))
    assert latent["samples"].shape == (40, 4, 8, 8)
    (video,) = (tmp_path / "zizi_test").glob("all_*.mp4")
    assert read_video(video)[0].shape == (40, 64, 64, 3)


def test_streaming_writes_every_frame_to_a_real_mp4_and_returns_the_last_chunk(controller, tmp_path) -> None:
    images, _, _ = run(controller, 43, size=64, decode_chunk=8, output=STREAM)
    assert images.shape == (8, 64, 64, 3)  # 43 = 5 x 8 + 3: the last 8 frames across the last two chunks
    assert torch.allclose(images[:, 0, 0, 0], torch.tensor([frame_value(f) for f in range(35, 43)]))
    (video,) = (tmp_path / "zizi").glob("stream_*.mp4")
    frames = read_video(video)[0]
    assert frames.shape == (43, 64, 64, 3)
    assert abs(float(frames[42].mean()) - 255 * frame_value(42)) < 4  # the frames are the sampled ones


def test_one_frame_video_is_the_hint_frame(controller) -> None:
    hint = torch.full((1, SIZE, SIZE, 3), 0.25)
    images, latent, plan = run(controller, 1, hint_image=hint)
    assert images.shape == (1, SIZE, SIZE, 3) and torch.allclose(images, hint)
    assert latent["samples"].shape == (1, 4, SIZE // 8, SIZE // 8)
    assert FakeSampler.calls == 0
    with pytest.raises(ValueError, match="^total_frames: 1 frame needs a hint_image"):
        run(controller, 1)


def test_plan_is_summarised_unless_full_plan(controller) -> None:
    steps = plan_video(400, window=16, stride=4, max_positions=32, hint=False)
    assert len(steps) > 100
    _, _, summary = run(controller, 400)
    lines = summary.splitlines()
    assert len(lines) <= 41 and f"{len(steps)} steps: starter 1 steps" in lines[1]
    _, _, full = run(controller, 400, full_plan=True)
    assert len(full.splitlines()) == len(steps) + 1


def test_context_frames_reaches_the_plan(controller) -> None:
    # fewer context frames: more new frames per extrapolation window, fewer windows, the same video
    counts = {}
    for context in (3, 1):
        images, _, plan = run(controller, 200, interpolate=False, context_frames=context, full_plan=True)
        extrapolations = [line for line in plan.splitlines() if " extrapolate " in line]
        # each extrapolation window: the anchor 0*, `context` earlier frames, the rest new ("!")
        assert all(line.split("@")[0].count(",") + 1 - line.count("!") == 1 + context for line in extrapolations)
        assert torch.allclose(images[:, 0, 0, 0], torch.tensor([frame_value(f) for f in range(200)]))
        counts[context] = len(plan.splitlines()) - 1
    assert counts[1] < counts[3]


@pytest.mark.parametrize("interrupt_at", [1, 2, 3])
def test_interrupt_is_checked_before_planning_and_before_allocating(controller, comfy_pack, monkeypatch,
                                                                    interrupt_at: int) -> None:
    calls = {"checks": 0, "planned": 0, "stores": 0}

    def check() -> None:
        calls["checks"] += 1
        if calls["checks"] == interrupt_at:
            raise InterruptedError

    real_plan, real_store = controller.plan_video, controller.LatentStore
    monkeypatch.setattr(comfy_pack.nodes.comfy.runtime, "throw_if_interrupted", check)
    monkeypatch.setattr(controller, "plan_video", lambda *a, **k: calls.__setitem__("planned", 1) or real_plan(*a, **k))
    monkeypatch.setattr(controller, "LatentStore", lambda *a, **k: calls.__setitem__("stores", 1) or real_store(*a, **k))
    with pytest.raises(InterruptedError):
        run(controller, 100)
    assert (calls["planned"], calls["stores"]) == {1: (0, 0), 2: (1, 0), 3: (1, 1)}[interrupt_at]
    assert FakeSampler.calls == 0


def test_run_memory_estimates() -> None:
    streamed = estimate_run_memory(10_000, 512, 512, 16, streaming=True)
    assert streamed == RunMemory(images=16 * 512 * 512 * 3 * 4, latents=10_000 * 4 * 64 * 64 * 4,
                                 decode=16 * 512 * 512 * 3 * 5)
    assert streamed.latents == 655_360_000 and streamed.total == streamed.new == 768_606_208
    everything = estimate_run_memory(10_000, 512, 512, 16, streaming=False, pose_bytes=10**9)
    assert everything.images == 31_457_280_000 and everything.pose == 10**9
    assert everything.new == 31_457_280_000 + 655_360_000 + 62_914_560 and everything.total == everything.new + 10**9
    puppet = estimate_run_memory(100, 64, 48, 32, streaming=True, latent_scale=4)
    assert puppet == RunMemory(images=32 * 64 * 48 * 12, latents=100 * 4 * 12 * 16 * 4, decode=32 * 64 * 48 * 15)
    assert estimate_run_memory(3, 64, 64, 16, streaming=True).images == 3 * 64 * 64 * 12  # chunk cut to the video
    with pytest.raises(ValueError, match="decode_chunk must be >= 1"):
        estimate_run_memory(3, 64, 64, 0, streaming=True)


def test_admission_refuses_over_80_percent_of_available_ram_naming_the_inputs() -> None:
    memory = RunMemory(images=7 * GB, latents=1 * GB, decode=0, pose=5 * GB)
    assert admission_problem(memory, 10 * GB, 1000, 512, 512, streaming=False) is None  # 8 GB new <= 80% of 10
    problem = admission_problem(memory, 9 * GB, 1000, 768, 512, streaming=False)
    assert problem.startswith("total_frames: 1000 frames of 768x512 need about 8.0 GB of host RAM (IMAGE output 7.00 GB")
    assert "pose images 5.00 GB, already loaded" in problem and "only 9.0 GB is available" in problem
    assert "set output to 'stream to file (small IMAGE)'" in problem
    streaming = admission_problem(memory, 9 * GB, 1000, 768, 512, streaming=True)
    assert "set output" not in streaming and "lower total_frames, width or height" in streaming
