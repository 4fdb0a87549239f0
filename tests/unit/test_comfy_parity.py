"""The same temporal module gives the same noise prediction in diffusers (training) and in ComfyUI
(inference), for a 7-frame window with non-contiguous positions, known frames, augmentation levels and
pose images through the pose encoder."""

from __future__ import annotations

import pytest
import torch

from devtools.random_sd15 import TINY_UNET_CONFIG, TINY_VAE_CONFIG, build_unet
from tests.unit.tiny_inflated import inflate, randomized_temporal
from zizi_models.sd15_keys import to_ldm
from zizi_models.temporal import ZiziVideoUNet, temporal_config_for_unet

# 32x32 latents: the deepest level is then 4x4. At 1x1 (8x8 latents) a per-frame GroupNorm of 64
# channels in 32 groups normalises 2 numbers, which turns float rounding into 1e-2 differences.
SIZE = 32
POSITIONS = torch.tensor([0, 1, 2, 6, 10, 14, 18])
MASK = torch.tensor([1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
LEVEL = torch.tensor([0.0, 0.25, 0.0, 0.6, 0.0, 0.0, 0.0])


@pytest.fixture(scope="module")
def models(comfy_pack):
    torch.manual_seed(0)
    unet = build_unet(TINY_UNET_CONFIG, seed=3).float()
    temporal = randomized_temporal(unet, seed=4)
    base, patched, _ = inflate(comfy_pack, unet, temporal)
    return unet, temporal, base, patched, comfy_pack.nodes.comfy, comfy_pack.zizi_models.temporal


def comfy_predict(patched, bridge, pack_temporal, x, t, context, window, cond_or_uncond, extra_options=None):
    """Call ComfyUI's UNet the way its samplers do: injected, with the patcher's patches and wrappers
    (and ``extra_options`` in transformer_options, as sample_window adds them)."""
    import comfy.model_management

    comfy.model_management.load_models_gpu([patched])
    options = dict(patched.model_options["transformer_options"])
    options["wrappers"] = patched.wrappers
    options["cond_or_uncond"] = cond_or_uncond
    options.update(extra_options or {})
    if window is not None:
        options[bridge.WINDOW_OPTION] = window
    with torch.no_grad():
        return patched.model.diffusion_model(x, t, context=context, transformer_options=options)


def test_diffusers_and_comfyui_agree(models) -> None:
    unet, temporal, base, patched, bridge, pack_temporal = models
    generator = torch.Generator().manual_seed(5)
    x = torch.randn(1, 7, 4, SIZE, SIZE, generator=generator)
    known = torch.randn(1, 7, 4, SIZE, SIZE, generator=generator) * MASK[None, :, None, None, None]
    context = torch.randn(1, 77, 32, generator=generator)
    pose = torch.rand(1, 7, 3, SIZE * 8, SIZE * 8, generator=generator)
    t = torch.tensor([421.0])
    with ZiziVideoUNet(unet, temporal) as video, torch.no_grad():
        expected = video(x, t, context, positions=POSITIONS[None], known_latents=known, mask=MASK[None],
                         aug_level=LEVEL[None], pose=pose)[0]
        without_pose = video(x, t, context, positions=POSITIONS[None], known_latents=known, mask=MASK[None],
                             aug_level=LEVEL[None])[0]
    assert (without_pose - expected).abs().max().item() > 1e-3  # the pose reaches the model
    window = pack_temporal.WindowInputs(POSITIONS, known[0], MASK, LEVEL, pose[0])
    got = comfy_predict(patched, bridge, pack_temporal, x[0], t.expand(7), context.expand(7, -1, -1), window, [0])
    assert (got - expected).abs().max().item() <= 1e-4
    # the temporal layers matter here: the plain 2D UNet gives something else
    with torch.no_grad():
        plain = unet(x[0], t.expand(7), context.expand(7, -1, -1)).sample
    assert (plain - expected).abs().max().item() > 1e-2

    # cond and uncond batched together (CFG): each half is its own copy of the window
    uncond = torch.randn(1, 77, 32, generator=generator)
    with ZiziVideoUNet(unet, temporal) as video, torch.no_grad():
        expected_uncond = video(x, t, uncond, positions=POSITIONS[None], known_latents=known, mask=MASK[None],
                                aug_level=LEVEL[None], pose=pose)[0]
    both = comfy_predict(patched, bridge, pack_temporal, torch.cat([x[0], x[0]]), t.expand(14),
                         torch.cat([context.expand(7, -1, -1), uncond.expand(7, -1, -1)]), window, [0, 1])
    assert (both[:7] - expected).abs().max().item() <= 1e-4
    assert (both[7:] - expected_uncond).abs().max().item() <= 1e-4


def test_plain_frame_batch_is_one_clip_and_base_model_is_untouched(models) -> None:
    unet, temporal, base, patched, bridge, pack_temporal = models
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(5, 4, SIZE, SIZE, generator=generator)
    context = torch.randn(1, 77, 32, generator=generator).expand(5, -1, -1)
    t = torch.full((5,), 300.0)
    with ZiziVideoUNet(unet, temporal) as video, torch.no_grad():
        expected = video(x[None], t[:1], context[:1])[0]
    got = comfy_predict(patched, bridge, pack_temporal, x, t, context, None, [0])
    assert (got - expected).abs().max().item() <= 1e-4
    # after the inflated clone ran, the received MODEL still computes the plain 2D UNet
    import comfy.model_management

    comfy.model_management.load_models_gpu([base])
    with torch.no_grad():
        plain = base.model.diffusion_model(x, t, context=context, transformer_options={})
        reference = unet(x, t, context).sample
    assert (plain - reference).abs().max().item() <= 1e-4
    assert not any(isinstance(m, bridge.InjectedTemporalLayer) for m in base.model.diffusion_model.modules())


def test_fresh_temporal_module_is_identity_in_comfyui(comfy_pack) -> None:
    bridge = comfy_pack.nodes.comfy
    pack_temporal = comfy_pack.zizi_models.temporal
    unet = build_unet(TINY_UNET_CONFIG, seed=7).float()
    base = bridge.sd15_model_from_state_dict(to_ldm(unet.state_dict(), {}, {}, TINY_UNET_CONFIG, TINY_VAE_CONFIG), dtype=torch.float32)
    fresh = pack_temporal.ZiziTemporalModel(pack_temporal.TemporalModelConfig.from_dict(
        temporal_config_for_unet(unet, has_temporal_conv=True).to_dict()))
    patched = bridge.inject_temporal_model(base, fresh)
    generator = torch.Generator().manual_seed(8)
    x = torch.randn(4, 4, SIZE, SIZE, generator=generator)
    context = torch.randn(4, 77, 32, generator=generator)
    t = torch.full((4,), 700.0)
    window = pack_temporal.WindowInputs(torch.tensor([0, 4, 8, 12]), torch.randn(4, 4, SIZE, SIZE), torch.tensor([1.0, 1, 0, 0]), torch.tensor([0.0, 0.5, 0, 0]))
    got = comfy_predict(patched, bridge, pack_temporal, x, t, context, window, [0])
    with torch.no_grad():
        reference = unet(x, t, context).sample
    assert (got - reference).abs().max().item() <= 1e-4


def test_trained_reference_attention_agrees_in_diffusers_and_comfyui(comfy_pack) -> None:
    """A module trained with reference attention is sampled with it: the loader's clone carries the patch,
    and with the window's anchor ComfyUI computes what the training UNet computes (cond and uncond)."""
    unet = build_unet(TINY_UNET_CONFIG, seed=3).float()
    temporal = randomized_temporal(unet, seed=4, reference_attention=True)
    _, patched, _ = inflate(comfy_pack, unet, temporal)
    bridge, pack_temporal = comfy_pack.nodes.comfy, comfy_pack.zizi_models.temporal
    assert bridge.has_reference_patch(patched)
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(1, 7, 4, SIZE, SIZE, generator=generator)
    known = torch.randn(1, 7, 4, SIZE, SIZE, generator=generator) * MASK[None, :, None, None, None]
    context, uncond = (torch.randn(1, 77, 32, generator=generator) for _ in range(2))
    t = torch.tensor([421.0])
    anchor = torch.zeros(1, 7, dtype=torch.bool)
    anchor[0, 0] = True
    with ZiziVideoUNet(unet, temporal) as video, torch.no_grad():
        run = lambda text, ref: video(x, t, text, positions=POSITIONS[None], known_latents=known,  # noqa: E731
                                      mask=MASK[None], aug_level=LEVEL[None], reference=ref)[0]
        expected, expected_uncond, no_anchor = run(context, anchor), run(uncond, anchor), run(context, None)
    assert (expected - no_anchor).abs().max().item() > 1e-3  # the reference matters in this window
    window = pack_temporal.WindowInputs(POSITIONS, known[0], MASK, LEVEL)
    both = comfy_predict(patched, bridge, pack_temporal, torch.cat([x[0], x[0]]), t.expand(14),
                         torch.cat([context.expand(7, -1, -1), uncond.expand(7, -1, -1)]), window, [0, 1],
                         {bridge.REFERENCE_OPTION: 0})
    assert (both[:7] - expected).abs().max().item() <= 1e-4
    assert (both[7:] - expected_uncond).abs().max().item() <= 1e-4
    # no anchor in the window (a plain KSampler batch): plain attention, as training without an anchor
    single = comfy_predict(patched, bridge, pack_temporal, x[0], t.expand(7), context.expand(7, -1, -1), window, [0])
    assert (single - no_anchor).abs().max().item() <= 1e-4
    # ZiziReferenceAttention at strength 0 turns the trained reference off (plain attention), on a clone
    off = bridge.with_reference_attention(patched, 0.0, 0.0, 1.0)
    plain = comfy_predict(off, bridge, pack_temporal, x[0], t.expand(7), context.expand(7, -1, -1), window, [0],
                          {bridge.REFERENCE_OPTION: 0})
    assert (plain - no_anchor).abs().max().item() <= 1e-4
    assert bridge.has_reference_patch(patched)  # the MODEL it was given keeps its patch
