"""Per-window work once per window, and no host synchronisation in the UNet path (issue #15, item 2).

Several UNet calls of one window through the ComfyUI bridge exactly as its samplers make them (the
DIFFUSION_MODEL wrapper builds the FrameCall from the window in transformer_options): the FrameCall, the
known-frame channels, the pose encoder's features and the level embedding are made once per window; no
call reads a tensor back to the host; the results are bit-identical to building everything per call.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
import traceback
from pathlib import Path

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from devtools.random_sd15 import TINY_UNET_CONFIG, build_unet
from tests.unit.tiny_inflated import inflate, randomized_temporal

SIZE = 16  # latent grid; pose images at 8x
FRAMES = 4
POSITIONS = torch.tensor([0, 3, 7, 11])
MASK = torch.tensor([1.0, 1.0, 0.0, 0.0])
LEVEL = torch.tensor([0.0, 0.4, 0.0, 0.0])

# Python-level reads of a tensor's values to the host, and the ATen ops that need one on an accelerator
SYNC_METHODS = ("item", "tolist", "cpu", "numpy", "__int__", "__float__", "__bool__", "__index__")
SYNC_OPS = {"_local_scalar_dense", "nonzero", "masked_select", "unique", "_unique2", "unique_consecutive",
            "unique_dim", "equal", "is_nonzero", "_assert_async"}


def _where() -> str:
    """The innermost caller outside torch and this file."""
    for frame in reversed(traceback.extract_stack()[:-2]):
        path = Path(frame.filename)
        if "torch" in path.parts or path == Path(__file__).resolve():
            continue
        return f"{frame.filename}:{frame.lineno} {frame.name}"
    return "?"


class HostSyncGuard(TorchDispatchMode):
    """Records every host read of a tensor while active: the Python methods (patched on torch.Tensor) and
    the sync-needing ATen ops (seen by the dispatch mode), each with the code location that caused it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.events: list[tuple[str, str]] = []
        self.active = False
        for name in SYNC_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._spy(name, getattr(torch.Tensor, name)))

    def _spy(self, name: str, original):
        def spy(tensor, *args, **kwargs):
            if self.active:
                self.events.append((name, _where()))
            return original(tensor, *args, **kwargs)
        return spy

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if self.active and func.overloadpacket.__name__ in SYNC_OPS:
            self.events.append((func.overloadpacket.__name__, _where()))
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        self.active = True
        return super().__enter__()

    def __exit__(self, *exc):
        self.active = False
        return super().__exit__(*exc)


@pytest.fixture(scope="module")
def models(comfy_pack, one_torch_thread):
    unet = build_unet(TINY_UNET_CONFIG, seed=3).float()
    _, patched, comfy_temporal = inflate(comfy_pack, unet, randomized_temporal(unet, seed=4))
    hooks = sys.modules[f"{comfy_pack.__name__}.nodes.comfy.temporal_hooks"]
    return patched, comfy_pack.nodes.comfy, comfy_pack.zizi_models.temporal, hooks, comfy_temporal


def comfy_pack_name(pack_temporal) -> str:
    return pack_temporal.__name__.split(".")[0]


def make_window(pack_temporal, seed: int = 5):
    generator = torch.Generator().manual_seed(seed)
    known = torch.randn(FRAMES, 4, SIZE, SIZE, generator=generator) * MASK[:, None, None, None]
    pose = torch.rand(FRAMES, 3, SIZE * 8, SIZE * 8, generator=generator)
    return pack_temporal.WindowInputs(POSITIONS, known, MASK, LEVEL, pose)


def call_inputs(steps: int, rows: int, seed: int = 6):
    generator = torch.Generator().manual_seed(seed)
    xs = [torch.randn(rows, 4, SIZE, SIZE, generator=generator) for _ in range(steps)]
    ts = [torch.full((rows,), 900.0 - 200 * i) for i in range(steps)]
    context = torch.randn(rows, 77, 32, generator=generator)
    return xs, ts, context


def unet_calls(patched, extra: dict, xs, ts, context, wrappers: bool = True) -> list[torch.Tensor]:
    """The UNet calls a sampler makes for one window: same transformer_options every call."""
    options = dict(patched.model_options["transformer_options"])
    if wrappers:
        options["wrappers"] = patched.wrappers
    options["cond_or_uncond"] = [0, 1][: xs[0].shape[0] // FRAMES]
    options.update(extra)
    with torch.no_grad():
        return [patched.model.diffusion_model(x, t, context=context, transformer_options=dict(options))
                for x, t in zip(xs, ts, strict=True)]


def test_window_calls_make_no_host_sync(models, monkeypatch) -> None:
    import comfy.model_management

    patched, bridge, pack_temporal, hooks, temporal = models
    comfy.model_management.load_models_gpu([patched])
    window = make_window(pack_temporal)  # built (and its position bounds read) before the guard
    xs, ts, context = call_inputs(3, 2 * FRAMES)
    guard = HostSyncGuard(monkeypatch)
    with guard:
        outputs = unet_calls(patched, {bridge.WINDOW_OPTION: window}, xs, ts, context)
    assert guard.events == [], "host syncs in the UNet path:\n" + "\n".join(f"{n} at {w}" for n, w in guard.events)
    assert all(torch.isfinite(out).all() for out in outputs)

    # the guard does see a sync: FrameContext without bounds reads them from the positions
    with guard:
        pack_temporal.FrameContext(POSITIONS[None])
    assert guard.events and guard.events[0][0] in {"__int__", "_local_scalar_dense", "item"}


def test_per_window_work_is_done_once_per_window(models, monkeypatch) -> None:
    import comfy.model_management

    patched, bridge, pack_temporal, hooks, temporal = models
    comfy.model_management.load_models_gpu([patched])
    frame_call = sys.modules[pack_temporal.WindowInputs.__module__]
    builds, channels = [], []
    build, known_channels = pack_temporal.WindowInputs._build, frame_call.known_frame_channels
    monkeypatch.setattr(pack_temporal.WindowInputs, "_build", lambda self, *a: builds.append(a) or build(self, *a))
    monkeypatch.setattr(frame_call, "known_frame_channels", lambda *a: channels.append(1) or known_channels(*a))
    encoding = sys.modules[f"{comfy_pack_name(pack_temporal)}.zizi_models.temporal.positional_encoding"]
    gathers = []
    gather = encoding.SinusoidalPositionEncoding.gather
    monkeypatch.setattr(encoding.SinusoidalPositionEncoding, "gather", lambda self, *a: gathers.append(1) or gather(self, *a))
    attentions = sum(isinstance(m, encoding.SinusoidalPositionEncoding) for m in temporal.modules())
    runs = {"pose": 0, "known": 0, "aug": 0, "motion": 0}

    def counter(name):
        def hook(module, args, output):
            runs[name] += 1
        return hook

    handles = [temporal.pose_encoder.register_forward_hook(counter("pose")),
               temporal.conv_in_extra.register_forward_hook(counter("known")),
               temporal.aug_embedding.register_forward_hook(counter("aug"))]
    motion_modules = [m for _, m in temporal.motion_modules()]
    handles += [m.register_forward_hook(counter("motion")) for m in motion_modules]
    try:
        window = make_window(pack_temporal)
        steps = 4
        xs, ts, context = call_inputs(steps, 2 * FRAMES)
        unet_calls(patched, {bridge.WINDOW_OPTION: window}, xs, ts, context)
        assert len(builds) == 1 and len(channels) == 1
        assert runs == {"pose": 1, "known": 1, "aug": 1, "motion": steps * len(motion_modules)}
        assert len(gathers) == attentions  # each attention's position encodings gathered once per window
        # a cond-only call (ComfyUI splits cond and uncond when memory is short) is another batch: built once too
        single = call_inputs(2, FRAMES, seed=7)
        unet_calls(patched, {bridge.WINDOW_OPTION: window}, *single)
        assert len(builds) == 2 and runs["pose"] == 2 and runs["known"] == 2 and runs["aug"] == 2
        # a new window (the next plan step) starts afresh
        unet_calls(patched, {bridge.WINDOW_OPTION: make_window(pack_temporal, seed=8)}, xs[:2], ts[:2], context)
        assert len(builds) == 3 and runs["pose"] == 3
    finally:
        for handle in handles:
            handle.remove()


def test_cached_calls_are_bit_identical_to_building_every_call(models) -> None:
    import comfy.model_management

    patched, bridge, pack_temporal, hooks, temporal = models
    comfy.model_management.load_models_gpu([patched])
    window = make_window(pack_temporal)
    xs, ts, context = call_inputs(3, 2 * FRAMES)
    cached = unet_calls(patched, {bridge.WINDOW_OPTION: window}, xs, ts, context)
    # reference: no wrapper, a FrameCall built without the cache (computes everything in every call), new per call
    reference = [unet_calls(patched, {hooks.CALL_OPTION: window.for_batch(2 * FRAMES, "cpu", cache=False)},
                            [x], [t], context, wrappers=False)[0] for x, t in zip(xs, ts, strict=True)]
    for got, expected in zip(cached, reference, strict=True):
        assert torch.equal(got, expected)
    # the pose and the known frames reach the model (the cache is not serving something constant)
    plain = unet_calls(patched, {bridge.WINDOW_OPTION: pack_temporal.WindowInputs(POSITIONS)}, xs[:1], ts[:1], context)
    assert (plain[0] - cached[0]).abs().max().item() > 1e-3


def test_window_cache_follows_the_window_and_the_weights(comfy_pack) -> None:
    pack_temporal = comfy_pack.zizi_models.temporal
    frame_call = sys.modules[pack_temporal.WindowInputs.__module__]
    window = make_window(pack_temporal)
    assert window.bounds == (0, 11)
    call = window.for_batch(8, "cpu")
    assert window.for_batch(8, torch.device("cpu")) is call and window.for_batch(4, "cpu") is not call
    assert call.ctx.bounds == (0, 11) and call.cache == {}
    assert window.for_batch(8, "cpu", cache=False) is not call
    # setting a field forgets what was built from the old value (and re-reads the bounds)
    window.positions = torch.tensor([2, 3, 4, 5])
    assert window.bounds == (2, 5) and window.for_batch(8, "cpu") is not call
    # copies: replace() (the window sampler adds the pose this way) and deepcopy start without a cache
    window.for_batch(8, "cpu")
    assert dataclasses.replace(window, pose=None)._calls == {}
    assert copy.deepcopy(window)._calls == {} and torch.equal(copy.deepcopy(window).known, window.known)

    # window-only features are cached under no_grad, recomputed after an in-place weight change, never with grad
    model = pack_temporal.ZiziTemporalModel(pack_temporal.TemporalModelConfig(
        block_out_channels=(32, 64), heads=4, max_positions=16, pose_channels=3, pose_downscale=8))
    torch.nn.init.normal_(model.pose_encoder.proj.weight, std=0.1)
    call = make_window(pack_temporal).for_batch(8, "cpu")
    features = torch.zeros(8, 32, SIZE, SIZE)
    runs = []
    model.pose_encoder.register_forward_hook(lambda *a: runs.append(1))
    with torch.no_grad():
        first = frame_call.add_known_frames(model, features, call)
        assert torch.equal(frame_call.add_known_frames(model, features, call), first) and len(runs) == 1
        model.pose_encoder.proj.weight.mul_(2)
        assert not torch.equal(frame_call.add_known_frames(model, features, call), first) and len(runs) == 2
    with torch.enable_grad():
        frame_call.add_known_frames(model, features, call)
        frame_call.add_known_frames(model, features, call)
    assert len(runs) == 4


def test_frame_context_bounds_without_reading_positions() -> None:
    from zizi_models.temporal import FrameContext

    ctx = FrameContext(torch.tensor([[5, 1, 9]]), bounds=(1, 9))
    assert (ctx.min_position, ctx.max_position) == (1, 9)
    assert FrameContext.on_device(torch.tensor([[4, 2]]), "cpu").bounds == (2, 4)
    assert FrameContext.contiguous(2, 5).bounds == (0, 4)
    assert ctx.to("cpu").bounds == (1, 9)
    assert ctx.positions_for_batch(6) is ctx.positions_for_batch(6)  # stacked once per context
    with pytest.raises(ValueError, match="bounds"):
        FrameContext(torch.tensor([[1, 2]]), bounds=(3, 1))


def test_pose_images_are_resized_once_while_windows_share_them(comfy_pack, monkeypatch) -> None:
    pack_temporal = comfy_pack.zizi_models.temporal
    sampling = sys.modules[f"{comfy_pack_name(pack_temporal)}.nodes.window_sampling"]
    temporal = pack_temporal.ZiziTemporalModel(pack_temporal.TemporalModelConfig(
        block_out_channels=(32, 64), heads=4, max_positions=16, pose_channels=3, pose_downscale=8))
    images = torch.rand(6, 40, 56, 3, generator=torch.Generator().manual_seed(9))
    resized = []
    resize = sampling.resize_and_crop
    monkeypatch.setattr(sampling, "resize_and_crop", lambda frames, *a: resized.append(len(frames)) or resize(frames, *a))
    poses = sampling.PoseImages(images, temporal, 6, 4, 4)
    windows = [[0, 1, 2, 3], [0, 2, 3, 4], [0, 4, 5, 5]]
    got = [poses(frames) for frames in windows]
    assert resized == [4, 1, 1]  # the anchor and the overlap come from the previous window
    for frames, pose in zip(windows, got, strict=True):
        assert pose.shape == (4, 3, 32, 32)
        assert torch.equal(pose, sampling.PoseImages(images, temporal, 6, 4, 4)(frames))  # as resized anew
    single = sampling.PoseImages(images[:1], temporal, 6, 4, 4)
    resized.clear()
    single([0, 1, 2])
    single([2, 3, 4])
    assert resized == [1]


def test_comfyui_sampling_builds_each_window_once(models, monkeypatch) -> None:
    """Through ComfyUI's own KSampler (CFG, several steps): one FrameCall and one pose-encoder run per window."""
    patched, bridge, pack_temporal, hooks, temporal = models
    builds, poses = [], []
    build = pack_temporal.WindowInputs._build
    monkeypatch.setattr(pack_temporal.WindowInputs, "_build", lambda self, *a: builds.append(a[0]) or build(self, *a))
    handle = temporal.pose_encoder.register_forward_hook(lambda *a: poses.append(1))
    try:
        xs, ts, context = call_inputs(1, 1)
        positive, negative = [[context, {}]], [[torch.zeros_like(context), {}]]
        latents = torch.zeros(FRAMES, 4, SIZE, SIZE)
        out = bridge.sample_window(patched, make_window(pack_temporal), latents, MASK == 0, positive, negative, 0, 3,
                                   5.0, "euler", "normal")
    finally:
        handle.remove()
    assert out.shape == latents.shape and torch.isfinite(out).all()
    # cond + uncond in one batch of 2F rows here (ComfyUI may split them when memory is short): each batch
    # layout is built once, and the pose encoder runs once per layout, not once per step
    assert builds and len(builds) == len(set(builds)) <= 2 and len(poses) == len(builds)


def test_weights_loaded_under_inference_mode_key_the_cache_without_a_version_counter() -> None:
    # ComfyUI runs nodes under torch.inference_mode: weights it loads there are inference tensors, whose
    # _version raises; the cache key must work for them (every controller prompt on the server uses it)
    from zizi_models.temporal.frame_call import _weights_key  # keyed with tensor_stamp

    with torch.inference_mode():
        layer = torch.nn.Linear(2, 2)
    assert layer.weight.is_inference()
    assert _weights_key(layer) == _weights_key(layer)
    other = torch.nn.Linear(2, 2)  # a normal parameter: its in-place version is part of the key
    before = _weights_key(other)
    with torch.no_grad():
        other.weight.add_(1.0)
    assert _weights_key(other) != before
