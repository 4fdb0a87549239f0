"""Inflating a tiny diffusers UNet2DConditionModel into ZiziVideoUNet."""

import gc

import pytest
import torch
from diffusers import UNet2DConditionModel
from einops import rearrange
from torch import nn

from zizi_models.temporal import (
    FrameContext,
    TemporalModelConfig,
    ZiziTemporalModel,
    ZiziVideoUNet,
    freeze_backbone,
    temporal_config_for_unet,
    unet_layout,
)

B, F, H, W, L, D = 1, 4, 8, 8, 5, 32
POSITIONS = torch.tensor([[0, 2, 6, 10]])


def tiny_unet(seed: int = 0) -> UNet2DConditionModel:
    """SD1.5's structure (3 cross-attn down blocks + 1 plain, mirrored up) at toy width."""
    torch.manual_seed(seed)
    return UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        block_out_channels=(32, 64, 64, 64),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=D,
        attention_head_dim=8,
        norm_num_groups=32,
    ).eval()


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def unet() -> UNet2DConditionModel:
    return tiny_unet()


def randomize_(module: nn.Module, seed: int = 0, std: float = 0.1) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * std)
    return module


def inputs(seed: int = 0, batch: int = B) -> dict:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.tensor([[1.0, 1.0, 0.0, 0.0]]).repeat(batch, 1)
    return dict(
        sample=torch.randn(batch, F, 4, H, W, generator=gen),
        timestep=torch.tensor([500] * batch),
        encoder_hidden_states=torch.randn(batch, L, D, generator=gen),
        positions=POSITIONS.repeat(batch, 1),
        known_latents=torch.randn(batch, F, 4, H, W, generator=gen) * mask[:, :, None, None, None],
        mask=mask,
        aug_level=torch.tensor([[0.0, 0.6, 0.0, 0.0]]).repeat(batch, 1),
    )


def per_frame_reference(unet: UNet2DConditionModel, x: dict) -> torch.Tensor:
    """The 2D UNet on each frame on its own."""
    out = torch.empty_like(x["sample"])
    for b in range(x["sample"].shape[0]):
        for f in range(F):
            out[b, f] = unet(
                x["sample"][b, f][None], x["timestep"][b], x["encoder_hidden_states"][b][None]
            ).sample[0]
    return out


def all_hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


@pytest.mark.parametrize("temporal_conv", [False, True])
def test_identity_at_init_with_known_frames(unet, temporal_conv):
    video = ZiziVideoUNet(
        unet, ZiziTemporalModel(temporal_config_for_unet(unet, has_temporal_conv=temporal_conv))
    )
    try:
        x = inputs()
        with torch.no_grad():
            ours = video(**x)
    finally:
        video.eject()
    with torch.no_grad():
        reference = per_frame_reference(unet, x)
    assert ours.shape == (B, F, 4, H, W)
    assert (ours - reference).abs().max().item() < 1e-5


def test_hook_sites_and_clean_eject(unet):
    x = inputs()
    with torch.no_grad():
        before = unet(
            rearrange(x["sample"], "b f c h w -> (b f) c h w"),
            500,
            x["encoder_hidden_states"].repeat(F, 1, 1),
        ).sample
    assert all_hooks(unet) == 0
    temporal = randomize_(ZiziTemporalModel(temporal_config_for_unet(unet, has_temporal_conv=True)))
    video = ZiziVideoUNet(unet, temporal)
    # motion modules: 4 down x 2 + mid 1 + 4 up x 3; temporal convs: 4 x 2 + 2 + 4 x 3; + time embedding + conv_in
    assert all_hooks(unet) == (8 + 1 + 12) + (8 + 2 + 12) + 2
    with torch.no_grad():
        video(**x)
    assert video.eject() is unet
    assert all_hooks(unet) == 0
    with torch.no_grad():
        after = unet(
            rearrange(x["sample"], "b f c h w -> (b f) c h w"),
            500,
            x["encoder_hidden_states"].repeat(F, 1, 1),
        ).sample
    assert torch.equal(before, after)
    with pytest.raises(RuntimeError, match="ejected"):
        video(**x)


def test_context_manager_and_garbage_collection_remove_hooks(unet):
    with ZiziVideoUNet(unet) as video:
        assert video.attached and all_hooks(unet) == 8 + 1 + 12 + 2
    assert not video.attached and all_hooks(unet) == 0
    video = ZiziVideoUNet(unet)
    assert all_hooks(unet) > 0
    del video
    gc.collect()
    assert all_hooks(unet) == 0


def test_motion_modules_see_the_right_channels_and_sites(unet):
    calls = []
    video = ZiziVideoUNet(unet)
    for name, module in video.temporal.motion_modules():
        module.register_forward_hook(lambda m, args, out, name=name: calls.append((name, args[0].shape[1])))
    try:
        with torch.no_grad():
            video(**inputs())
    finally:
        video.eject()
    names = [n for n, _ in calls]
    assert names[:8] == [f"down_blocks.{i}.motion_modules.{j}" for i in range(4) for j in range(2)]
    assert names[8] == "mid_block.motion_modules.0"
    assert names[9:] == [f"up_blocks.{i}.motion_modules.{j}" for i in range(4) for j in range(3)]
    assert [c for _, c in calls] == [32, 32, 64, 64, 64, 64, 64, 64, 64] + [64] * 9 + [32] * 3


def test_attention_mixes_frames(unet):
    video = ZiziVideoUNet(unet, randomize_(ZiziTemporalModel(temporal_config_for_unet(unet)), seed=1))
    try:
        x = inputs()
        y = dict(x, sample=x["sample"].clone())
        y["sample"][0, 0] = torch.randn(4, H, W, generator=torch.Generator().manual_seed(7))
        with torch.no_grad():
            out_x, out_y = video(**x), video(**y)
    finally:
        video.eject()
    assert (out_x[0, 3] - out_y[0, 3]).abs().max().item() > 1e-3


def test_fresh_model_does_not_mix_frames(unet):
    video = ZiziVideoUNet(unet)
    try:
        x = inputs()
        y = dict(x, sample=x["sample"].clone())
        y["sample"][0, 0] += 1.0
        with torch.no_grad():
            out_x, out_y = video(**x), video(**y)
    finally:
        video.eject()
    assert torch.allclose(out_x[0, 1:], out_y[0, 1:], atol=1e-6)


def test_positions_matter(unet):
    video = ZiziVideoUNet(unet, randomize_(ZiziTemporalModel(temporal_config_for_unet(unet)), seed=2))
    try:
        x = inputs()
        with torch.no_grad():
            out = video(**x)
            permuted = video(**dict(x, positions=torch.tensor([[10, 0, 6, 2]])))
            shifted = video(**dict(x, positions=POSITIONS + 3))
        with pytest.raises(ValueError, match="max_positions=32"):
            video(**dict(x, positions=torch.tensor([[0, 4, 8, 40]])))
    finally:
        video.eject()
    assert (out - permuted).abs().max().item() > 1e-3
    assert (out - shifted).abs().max().item() > 1e-3


def test_known_frames_and_aug_level_are_wired(unet):
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet))
    video = ZiziVideoUNet(unet, temporal)
    try:
        x = inputs()
        with torch.no_grad():
            base = video(**x)
            temporal.conv_in_extra.weight.normal_(0, 0.1)
            with_known = video(**x)
            assert (with_known - base).abs().max().item() > 1e-3
            temporal.conv_in_extra.weight.zero_()
            temporal.aug_embedding.linear_2.weight.normal_(0, 0.1)
            with_level = video(**x)
            other_level = video(**dict(x, aug_level=torch.tensor([[0.0, 0.2, 0.0, 0.0]])))
            unknown_level = video(
                **dict(x, aug_level=torch.tensor([[0.0, 0.6, 0.9, 0.9]]))
            )  # frames 2, 3 unknown
    finally:
        video.eject()
    assert (with_level[0, 1] - other_level[0, 1]).abs().max().item() > 1e-3  # frame 1's level reaches frame 1
    assert torch.equal(with_level[0, 0], other_level[0, 0])  # and no other frame (no motion modules yet)
    assert torch.equal(unknown_level, with_level)  # levels of frames with mask 0 are ignored


def test_conditioning_shapes_are_equivalent(unet):
    video = ZiziVideoUNet(unet, randomize_(ZiziTemporalModel(temporal_config_for_unet(unet)), seed=3))
    try:
        x = inputs(batch=2)
        with torch.no_grad():
            out = video(**x)
            scalar_t = video(**dict(x, timestep=500))
            per_frame_t = video(**dict(x, timestep=torch.full((2, F), 500)))
            per_frame_text = video(
                **dict(x, encoder_hidden_states=x["encoder_hidden_states"][:, None].repeat(1, F, 1, 1))
            )
        with pytest.raises(ValueError, match="timestep"):
            video(**dict(x, timestep=torch.full((3,), 500)))
    finally:
        video.eject()
    for other in (scalar_t, per_frame_t, per_frame_text):
        assert torch.allclose(out, other, atol=1e-6)


def test_freeze_backbone_trains_only_temporal(unet):
    video = ZiziVideoUNet(unet)
    try:
        trainable = freeze_backbone(video)
        assert {id(p) for p in trainable} == {id(p) for p in video.temporal.parameters()}
        assert not any(p.requires_grad for p in video.unet.parameters())
        video(**inputs()).square().mean().backward()
        assert all(p.grad is None for p in video.unet.parameters())
        proj_out = video.temporal.down_blocks[0].motion_modules[0].temporal_transformer.proj_out.weight
        assert proj_out.grad is not None and proj_out.grad.abs().sum() > 0
    finally:
        video.eject()
        unet.requires_grad_(True)
        unet.zero_grad(set_to_none=True)


def temporal_grads(unet_checkpointing: bool, module_checkpointing: bool) -> list[torch.Tensor]:
    unet = tiny_unet()
    if unet_checkpointing:
        unet.enable_gradient_checkpointing()
    unet.train()
    temporal = randomize_(ZiziTemporalModel(temporal_config_for_unet(unet, has_temporal_conv=True)), seed=4)
    video = ZiziVideoUNet(unet, temporal, gradient_checkpointing=module_checkpointing)
    freeze_backbone(video)
    video(**inputs()).square().mean().backward()
    video.eject()
    return [p.grad for p in temporal.parameters()]


def test_gradient_checkpointing_matches_plain_backward():
    plain = temporal_grads(False, False)
    for unet_cp, module_cp in [(False, True), (True, False), (True, True)]:
        for got, expected in zip(temporal_grads(unet_cp, module_cp), plain, strict=True):
            assert torch.allclose(got, expected, atol=1e-5, rtol=1e-4)


def test_bf16_backbone_with_fp32_temporal_layers():
    unet = tiny_unet().to(torch.bfloat16)
    temporal = randomize_(ZiziTemporalModel(temporal_config_for_unet(unet)), seed=5)
    video = ZiziVideoUNet(unet, temporal)
    x = inputs()
    x = {
        k: v.to(torch.bfloat16)
        if v.is_floating_point() and k in ("sample", "encoder_hidden_states", "known_latents")
        else v
        for k, v in x.items()
    }
    with torch.no_grad():
        out = video(**x)
    video.eject()
    assert out.dtype == torch.bfloat16 and torch.isfinite(out).all()
    assert (
        temporal.down_blocks[0].motion_modules[0].temporal_transformer.proj_in.weight.dtype == torch.float32
    )


def test_layout_and_incompatible_temporal_model(unet):
    layout = unet_layout(unet)
    assert layout.block_out_channels == (32, 64, 64, 64) and layout.layers_per_block == 2
    assert layout.time_embed_dim == 128 and layout.cross_attention_dim == D
    with torch.device("meta"):
        sd15 = ZiziTemporalModel(TemporalModelConfig())
    with pytest.raises(ValueError, match=r"channels \(320, 640, 1280, 1280\)"):
        ZiziVideoUNet(unet, sd15)
    assert all_hooks(unet) == 0


def test_frame_context_from_video_unet_is_kept_for_backward(unet):
    video = ZiziVideoUNet(unet)
    try:
        with torch.no_grad():
            video(**inputs())
        assert isinstance(video._state.ctx, FrameContext)
        assert torch.equal(video._state.ctx.positions, POSITIONS)
        video.clear_frame_state()
        assert video._state is None
    finally:
        video.eject()


def test_trained_reference_attention_reads_each_windows_anchor_and_ejects(unet):
    """A module trained with reference attention: every attn1 of the 2D UNet also attends to the window's
    anchor frame; windows without an anchor, and calls without `reference`, compute what a module without
    it computes."""
    originals = {name: type(m.processor) for name, m in unet.named_modules() if name.endswith(".attn1")}
    x = inputs(batch=2)
    with torch.no_grad(), ZiziVideoUNet(unet, ZiziTemporalModel(temporal_config_for_unet(unet))) as video:
        plain = video(**x)
    reference = torch.zeros(2, F, dtype=torch.bool)
    reference[0, 1] = True  # window 0: anchor at frame 1; window 1: none
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet, reference_attention=True))  # fresh: no frame mixing
    with torch.no_grad(), ZiziVideoUNet(unet, temporal) as video:
        assert {type(m.processor).__name__ for n, m in unet.named_modules() if n.endswith(".attn1")} == {
            "ReferenceProcessor"}
        without = video(**x)
        with_anchor = video(**x, reference=reference)
        with pytest.raises(ValueError, match="more than one anchor"):
            video(**x, reference=torch.ones(2, F, dtype=torch.bool))
    assert torch.equal(without, plain)
    assert torch.allclose(with_anchor[1], plain[1], atol=1e-5)  # no anchor: plain attention
    assert torch.allclose(with_anchor[0, 1], plain[0, 1], atol=1e-5)  # the anchor sees itself twice: unchanged
    changed = (with_anchor[0] - plain[0]).abs().amax(dim=(1, 2, 3))  # [F]
    assert bool((changed[[0, 2, 3]] > 1e-3).all()), changed
    assert {name: type(m.processor) for name, m in unet.named_modules() if name.endswith(".attn1")} == originals
