"""The three window samplers in an in-process ComfyUI on a tiny SD1.5-family model: the known frames and
the snr really reach the model, frames land at the right indices, bad input fails clearly."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

from devtools.random_sd15 import TINY_UNET_CONFIG, build_unet
from tests.unit.tiny_inflated import inflate, perturbed_temporal

LATENT = 16  # 128x128 frames


@pytest.fixture(scope="module")
def setup(comfy_pack):
    unet = build_unet(TINY_UNET_CONFIG, seed=5).float()
    generator = torch.Generator().manual_seed(6)
    base, model, _ = inflate(comfy_pack, unet, perturbed_temporal(unet, generator))
    conditioning = [[torch.randn(1, 77, 32, generator=generator), {}]]
    negative = [[torch.zeros(1, 77, 32), {}]]
    return comfy_pack.nodes.window_samplers, model, base, conditioning, negative


def known_video(seed: int = 0) -> dict:
    return {"samples": torch.randn(7, 4, LATENT, LATENT, generator=torch.Generator().manual_seed(seed))}


def extrapolate(nodes, model, pos, neg, known: dict, snr: float, seed: int = 1):
    return nodes.ZiziExtrapolateSampler().sample(model, pos, neg, known, 3, 4, 3, snr, seed, 2, 4.0, "euler", "normal", 1.0)


def test_extrapolation_depends_on_known_frames_and_snr(setup) -> None:
    nodes, model, _, pos, neg = setup
    new, everything = extrapolate(nodes, model, pos, neg, known_video(), snr=0.66)
    assert new["zizi_frames"] == [10, 14, 18]
    assert everything["zizi_frames"] == [0, 1, 2, 3, 4, 5, 6, 10, 14, 18]
    assert torch.equal(everything["samples"][:7], known_video()["samples"])  # known frames untouched
    assert torch.is_grad_enabled() and new["samples"].grad_fn is None  # no autograd graph kept outside ComfyUI
    again, _ = extrapolate(nodes, model, pos, neg, known_video(), snr=0.66)
    assert torch.equal(again["samples"], new["samples"])  # deterministic for a seed
    changed = known_video()
    changed["samples"][6] += 1.0  # only the last known frame differs
    moved, _ = extrapolate(nodes, model, pos, neg, changed, snr=0.66)
    assert (moved["samples"] - new["samples"]).abs().mean() > 1e-3
    clean, _ = extrapolate(nodes, model, pos, neg, known_video(), snr=10000.0)  # augmentation off
    assert (clean["samples"] - new["samples"]).abs().mean() > 1e-3


def test_the_anchor_reaches_the_model_exactly_and_augmenting_it_would_change_the_result(setup, comfy_pack,
                                                                                       monkeypatch) -> None:
    nodes, model, _, pos, neg = setup
    autoregressive, planner = comfy_pack.zizi_models.autoregressive, comfy_pack.zizi_models.planner
    requests = []
    real_request = autoregressive.window_request

    def recording(*args, **kwargs):
        requests.append(real_request(*args, **kwargs))
        return requests[-1]

    monkeypatch.setattr(autoregressive, "window_request", recording)
    snr = 0.01  # heavy augmentation: a known frame keeps 1% of its power
    exact, _ = extrapolate(nodes, model, pos, neg, known_video(), snr=snr)
    (request,) = requests
    frames = list(request.frames)
    # the loop controller's step 1 (the planner's): context on the stride grid 6, 2 (before the planner drove this
    # node it was the last known frames 4, 5, 6; the new frames 10, 14, 18 are the same)
    assert frames == [0, 2, 6, 10, 14, 18]
    anchor, context = frames.index(0), [i for i, f in enumerate(frames) if 0 < f < 7]
    model_space = comfy_pack.nodes.comfy.latent_to_model_space(model, request.latents)
    window = request.window
    # the anchor goes in exactly (level 0); the other known frames are augmented at the snr (level 1/(1+snr))
    assert torch.equal(window.known[anchor], model_space[anchor]) and window.level[anchor] == 0
    assert torch.allclose(window.level[context], torch.full((len(context),), 1 / (1 + snr)))
    assert all((window.known[i] - model_space[i]).abs().mean() > 0.1 for i in context)

    # the same run with the anchor augmented like the other known frames: a different result
    requests.clear()
    monkeypatch.setattr(planner.PlanStep, "is_anchor", lambda self, frame: False)
    augmented_anchor, _ = extrapolate(nodes, model, pos, neg, known_video(), snr=snr)
    assert requests[0].window.level[anchor] > 0  # the patch really augmented it
    assert (augmented_anchor["samples"] - exact["samples"]).abs().mean() > 1e-3


def test_interpolation_fills_every_gap_and_starter_keeps_the_first_latent(setup) -> None:
    nodes, model, _, pos, neg = setup
    _, everything = extrapolate(nodes, model, pos, neg, known_video(), snr=0.66)
    (filled,) = nodes.ZiziInterpolateSampler().sample(model, pos, neg, everything, 7, 0.66, 3, 2, 4.0, "euler", "normal", 1.0)
    assert filled["zizi_frames"] == list(range(19))
    assert torch.equal(filled["samples"][[0, 6, 10, 14, 18]], everything["samples"][[0, 6, 7, 8, 9]])
    assert filled["samples"][[7, 8, 9, 11, 15]].abs().mean() > 0.01  # gaps were generated, not left at zero
    first = {"samples": torch.randn(1, 4, LATENT, LATENT)}
    (start,) = nodes.ZiziStarterSampler().sample(model, pos, neg, LATENT * 8, LATENT * 8, 5, 0, 2, 4.0, "euler", "normal",
                                                  1.0, first_latent=first)
    assert start["zizi_frames"] == [0, 1, 2, 3, 4]
    assert torch.equal(start["samples"][0], first["samples"][0])


def test_plain_model_bad_indices_and_short_control_batches_are_refused(setup, comfy_pack) -> None:
    import comfy.controlnet

    nodes, model, base, pos, neg = setup
    class HintOnlyControl(comfy.controlnet.ControlBase):  # ComfyUI's subclasses copy themselves like this
        def copy(self):
            c = HintOnlyControl()
            self.copy_to(c)
            return c

    control = HintOnlyControl().set_cond_hint(torch.rand(12, 3, 128, 128))
    with_control = [[pos[0][0], {"control": control}]]
    with pytest.raises(ValueError, match="positive: a ControlNet has 12 hint images but the video needs 19"):
        extrapolate(nodes, model, with_control, neg, known_video(), snr=0.66)
    bridge = comfy_pack.nodes.comfy
    sliced = bridge.slice_conditioning(with_control, [0, 5, 11], "positive")
    assert torch.equal(sliced[0][1]["control"].cond_hint_original, control.cond_hint_original[[0, 5, 11]])
    assert with_control[0][1]["control"].cond_hint_original.shape[0] == 12  # the input conditioning is untouched
    with pytest.raises(ValueError, match="model: this MODEL has no temporal layers"):
        extrapolate(nodes, base, pos, neg, known_video(), snr=0.66)
    with pytest.raises(ValueError, match="known: zizi_frames"):
        extrapolate(nodes, model, pos, neg, {**known_video(), "zizi_frames": [0, 1, 1, 2, 3, 4, 5]}, snr=0.66)


def test_pose_images_reach_a_pose_encoder_and_are_checked(setup, comfy_pack) -> None:
    nodes, model, base, pos, neg = setup
    bridge = comfy_pack.nodes.comfy
    pack_temporal = comfy_pack.zizi_models.temporal
    config = pack_temporal.TemporalModelConfig.from_dict(
        {**bridge.temporal_model_of(model).config.to_dict(), "pose_channels": 3, "pose_downscale": 8})
    posed = pack_temporal.ZiziTemporalModel(config)
    generator = torch.Generator().manual_seed(8)
    with torch.no_grad():
        posed.load_state_dict(bridge.temporal_model_of(model).state_dict(), strict=False)
        for p in posed.pose_encoder.parameters():
            p.add_(torch.randn(p.shape, generator=generator) * 0.1)
    posed_model = bridge.inject_temporal_model(base, posed)
    def smooth_poses(seed: int) -> torch.Tensor:  # [19, H, W, 3] in 0..1, smooth enough to survive a resize
        coarse = torch.rand(19, 3, LATENT // 2, LATENT // 2, generator=torch.Generator().manual_seed(seed))
        return rearrange(F.interpolate(coarse, size=(LATENT * 8, LATENT * 8), mode="bilinear"), "f c h w -> f h w c")

    poses = smooth_poses(9)
    other = poses.clone()
    other[10] = 1.0 - other[10]  # only the pose of new frame 10 differs

    def run(images):
        return nodes.ZiziExtrapolateSampler().sample(posed_model, pos, neg, known_video(), 3, 4, 3, 0.66, 1, 2, 4.0,
                                                     "euler", "normal", 1.0, pose_images=images)[0]["samples"]

    first, changed = run(poses), run(other)
    assert torch.equal(first, run(poses))
    assert (first - changed).abs().mean() > 1e-3
    # poses at another size are resized (cover + centre crop): half-size images give a result close to the
    # full-size one, much closer than other poses give
    half = run(rearrange(F.interpolate(rearrange(poses, "f h w c -> f c h w"), scale_factor=0.5, mode="bilinear"),
                         "f c h w -> f h w c"))
    unrelated = run(smooth_poses(10))
    assert (half - first).abs().mean() < 0.25 * (unrelated - first).abs().mean()
    with pytest.raises(ValueError, match="pose_images: 5 pose images but the video needs 19"):
        run(poses[:5])
    with pytest.raises(ValueError, match="pose_images: this temporal module has no pose encoder"):
        nodes.ZiziExtrapolateSampler().sample(model, pos, neg, known_video(), 3, 4, 3, 0.66, 1, 2, 4.0, "euler",
                                              "normal", 1.0, pose_images=poses)


def test_previews_per_step_progress_in_frames_and_progress_text(setup, comfy_pack, monkeypatch) -> None:
    """With a preview method on, every sampling step sends the window's generated frames as a latent preview
    strip through ComfyUI's progress hook, the bar counts generated frames (fractions per step), one line of
    progress text names the window and its frames, and the result is the one a run without previews gives."""
    import sys
    import types

    import comfy.utils
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod

    nodes, model, _, pos, neg = setup
    plain, _ = extrapolate(nodes, model, pos, neg, known_video(), snr=0.66)  # no hook, no previews
    updates, texts = [], []
    monkeypatch.setattr(comfy.utils, "PROGRESS_BAR_HOOK",
                        lambda value, total, preview, node_id=None: updates.append((value, total, preview, node_id)))
    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod.Latent2RGB)
    server = types.SimpleNamespace(PromptServer=types.SimpleNamespace(instance=types.SimpleNamespace(
        send_progress_text=lambda text, node_id: texts.append((text, node_id)))))
    monkeypatch.setitem(sys.modules, "server", server)
    new, _ = nodes.ZiziExtrapolateSampler().sample(model, pos, neg, known_video(), 3, 4, 3, 0.66, 1, 2, 4.0, "euler",
                                                   "normal", 1.0, unique_id="17")
    assert torch.equal(new["samples"], plain["samples"])  # previews only read
    assert texts == [("window 1/1: extrapolate frames 10, 14, 18", "17")]
    steps = [u for u in updates if u[2] is not None]
    assert [(v, t) for v, t, _, _ in steps] == [(1.5, 3), (3.0, 3)]  # 2 steps of a 3-frame window
    assert updates[-1][:3] == (3, 3, None) and {u[3] for u in updates} == {"17"}
    kind, image, _ = steps[0][2]
    assert kind == "JPEG" and image.size == (3 * LATENT, LATENT)  # the three new frames side by side
    assert len(set(image.getdata())) > 1  # a real picture, not a flat colour
    updates.clear()
    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod.NoPreviews)
    nodes.ZiziExtrapolateSampler().sample(model, pos, neg, known_video(), 3, 4, 3, 0.66, 1, 2, 4.0, "euler", "normal", 1.0)
    assert updates and all(u[2] is None for u in updates)  # --preview-method none: progress only


def test_auto_values_of_the_samplers_come_from_the_module(setup, comfy_pack, caplog) -> None:
    from zizi_models.temporal.trained_defaults import attach_file_facts

    nodes, model, base, pos, neg = setup
    bridge = comfy_pack.nodes.comfy
    temporal = bridge.temporal_model_of(model)
    trained = bridge.inject_temporal_model(base, temporal)
    attach_file_facts(temporal, {"trained_window": 6, "trained_stride": {"extrapolate": [1, 2]}}, "zizi-temporal")
    try:
        new, _ = nodes.ZiziExtrapolateSampler().sample(trained, pos, neg, known_video(), 0, 0, 3, 0.66, 1, 1, 4.0,
                                                       "euler", "normal", 1.0)
        assert new["zizi_frames"] == [8, 10]  # window 6 = anchor + 3 context + 2 new, at stride 2
        (start,) = nodes.ZiziStarterSampler().sample(trained, pos, neg, LATENT * 8, LATENT * 8, 0, 0, 1, 4.0, "euler",
                                                      "normal", 1.0, first_latent={"samples": torch.randn(1, 4, LATENT, LATENT)})
        assert start["zizi_frames"] == [0, 1, 2, 3, 4, 5]
        _, everything = extrapolate(nodes, trained, pos, neg, known_video(), snr=0.66)  # gaps 7-9, 11-13, 15-17
        attach_file_facts(temporal, {"trained_window": 4, "trained_stride": 4}, "zizi-temporal")
        with caplog.at_level(logging.INFO):
            (filled,) = nodes.ZiziInterpolateSampler().sample(trained, pos, neg, everything, 0, 0.66, 3, 1, 4.0,
                                                              "euler", "normal", 1.0)
        assert filled["zizi_frames"] == list(range(19))
        # window 4 = anchor + the gap's two ends + 1 new frame: 9 windows, the first one between frames 6 and 10
        assert "window 1/9: interpolate frames 7" in caplog.text and "window 9/9: interpolate frames 17" in caplog.text
    finally:
        for name in ("file_metadata", "source_format"):
            delattr(temporal, name)
