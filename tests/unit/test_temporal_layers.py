"""Temporal layers: position encoding, motion module, temporal conv, FrameContext."""

import math

import pytest
import torch
from einops import rearrange
from torch import nn

from zizi_models.temporal import (
    FrameContext,
    MotionModule,
    TemporalConv,
    TemporalModelConfig,
    ZiziTemporalModel,
    ldm_block_site,
    sinusoidal_table,
)

NONCONTIGUOUS = [0, 1, 2, 6, 10, 14, 18]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def randomize_(module: nn.Module, seed: int = 0, std: float = 0.2) -> nn.Module:
    """Give every parameter random values (buffers such as pe stay)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * std)
    return module


def motion_module(channels: int = 32, max_positions: int = 32, seed: int = 0) -> MotionModule:
    torch.manual_seed(seed)
    return MotionModule(channels, heads=8, max_positions=max_positions).eval()


def frames(batch: int, num_frames: int, channels: int = 32, size: int = 4, seed: int = 1) -> torch.Tensor:
    return torch.randn(
        batch * num_frames, channels, size, size, generator=torch.Generator().manual_seed(seed)
    )


# ---- positional encoding --------------------------------------------------------------


def animatediff_pe(max_len: int, d_model: int) -> torch.Tensor:
    """AnimateDiff's PositionalEncoding.pe, written out from its formula."""
    position = torch.arange(max_len).unsqueeze(1)
    div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
    pe = torch.zeros(1, max_len, d_model)
    pe[0, :, 0::2] = torch.sin(position * div_term)
    pe[0, :, 1::2] = torch.cos(position * div_term)
    return pe


@pytest.mark.parametrize("max_len,dim", [(24, 320), (32, 1280), (32, 32)])
def test_pe_table_is_animatediff_formula_bitwise(max_len, dim):
    assert torch.equal(sinusoidal_table(max_len, dim), animatediff_pe(max_len, dim))


def test_pe_table_matches_diffusers_sinusoidal_embedding():
    from diffusers.models.embeddings import SinusoidalPositionalEmbedding

    assert torch.equal(sinusoidal_table(32, 64), SinusoidalPositionalEmbedding(64, 32).pe)


def test_module_pe_buffer_shape_and_values():
    module = motion_module(64, max_positions=32)
    attention = module.temporal_transformer.transformer_blocks[0].attention_blocks[1]
    assert attention.pos_encoder.pe.shape == (1, 32, 64)
    assert torch.equal(attention.pos_encoder.pe, animatediff_pe(32, 64))


def test_noncontiguous_positions_gather_the_right_rows():
    """Positions p on a module == contiguous positions on a module whose pe rows are pe[p]."""
    module = randomize_(motion_module())
    x = frames(1, 7)
    positions = torch.tensor([NONCONTIGUOUS])
    out = module(x, FrameContext(positions))

    gathered = motion_module()
    gathered.load_state_dict(module.state_dict())
    for block in gathered.temporal_transformer.transformer_blocks:
        for attention in block.attention_blocks:
            attention.pos_encoder.pe = attention.pos_encoder.pe[:, NONCONTIGUOUS].clone()
    expected = gathered(x, FrameContext.contiguous(1, 7))
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, module(x, FrameContext.contiguous(1, 7)), atol=1e-4)


@pytest.mark.parametrize("bad", [[0, 1, 32], [-1, 0, 1], [5, 40, 2]])
def test_positions_out_of_range_raise_naming_positions_and_max(bad):
    module = motion_module(max_positions=32)
    with pytest.raises(ValueError) as err:
        module(frames(1, 3), FrameContext(torch.tensor([bad])))
    message = str(err.value)
    assert str(bad) in message and "32" in message


# ---- motion module vs AnimateDiff -------------------------------------------------------


class PerFrameGroupNorm(nn.Module):
    """diffusers normalises [b c f h w] over all frames; original AnimateDiff per frame."""

    def __init__(self, norm: nn.GroupNorm) -> None:
        super().__init__()
        self.norm = norm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(rearrange(x, "b c f h w -> (b f) c h w"))
        return rearrange(y, "(b f) c h w -> b c f h w", b=x.shape[0])


def diffusers_reference(module: MotionModule, channels: int, max_positions: int) -> nn.Module:
    """diffusers' AnimateDiffTransformer3D with `module`'s weights (diffusers' own AD key conversion)."""
    from diffusers.models.unets.unet_motion_model import AnimateDiffTransformer3D

    reference = AnimateDiffTransformer3D(
        num_attention_heads=8,
        attention_head_dim=channels // 8,
        in_channels=channels,
        norm_num_groups=32,
        activation_fn="geglu",
        attention_bias=False,
        double_self_attention=True,
        positional_embeddings="sinusoidal",
        num_positional_embeddings=max_positions,
    )
    converted = {
        key.replace("temporal_transformer.", "")
        .replace(".norms.0", ".norm1")
        .replace(".norms.1", ".norm2")
        .replace(".ff_norm", ".norm3")
        .replace(".attention_blocks.0", ".attn1")
        .replace(".attention_blocks.1", ".attn2"): value
        for key, value in module.state_dict().items()
        if "pos_encoder" not in key
    }
    missing, unexpected = reference.load_state_dict(converted, strict=False)
    assert not unexpected and all("pos_embed" in k for k in missing)
    reference.norm = PerFrameGroupNorm(reference.norm)
    return reference.eval()


@pytest.mark.parametrize("batch,num_frames,channels", [(1, 7, 32), (2, 5, 64)])
def test_contiguous_positions_reproduce_animatediff(batch, num_frames, channels):
    module = randomize_(motion_module(channels), seed=3)
    reference = diffusers_reference(module, channels, 32)
    x = frames(batch, num_frames, channels)
    with torch.no_grad():
        ours = module(x, FrameContext.contiguous(batch, num_frames))
        theirs = reference(x, num_frames=num_frames)
    assert ours.shape == x.shape
    assert torch.allclose(ours, theirs, atol=1e-5), (ours - theirs).abs().max()


def test_fresh_motion_module_is_identity():
    module = motion_module()
    x = frames(2, 7)
    positions = torch.tensor([NONCONTIGUOUS, list(range(7))])
    assert torch.equal(module(x, FrameContext(positions)), x)


def test_group_norm_is_per_frame():
    """With attention outputs zeroed the module is a per-frame function: frame 0's output must not
    move when frame 1's content changes. A norm over all frames would fail this."""
    module = randomize_(motion_module(), seed=5)
    with torch.no_grad():
        for block in module.temporal_transformer.transformer_blocks:
            for attention in block.attention_blocks:
                attention.to_out[0].weight.zero_()
                attention.to_out[0].bias.zero_()
    ctx = FrameContext.contiguous(1, 3)
    x = frames(1, 3)
    y = x.clone()
    y[1] = (
        torch.randn(y[1].shape, generator=torch.Generator().manual_seed(9)) * 50 + 7
    )  # new content, new statistics
    out_x, out_y = module(x, ctx), module(y, ctx)
    assert torch.allclose(out_x[0], out_y[0], atol=1e-6)
    assert torch.allclose(out_x[2], out_y[2], atol=1e-6)
    assert not torch.allclose(out_x[1], out_y[1])

    # the same change with attention on does reach frame 0 (the test can see mixing)
    mixing = randomize_(motion_module(), seed=5)
    assert not torch.allclose(mixing(x, ctx)[0], mixing(y, ctx)[0], atol=1e-4)


def test_attention_mixes_frames_only_within_a_video():
    module = randomize_(motion_module(), seed=2)
    ctx = FrameContext.contiguous(2, 4)
    x = frames(2, 4)
    y = x.clone()
    y[0] = torch.randn(y[0].shape, generator=torch.Generator().manual_seed(9))  # video 0, frame 0
    out_x, out_y = module(x, ctx), module(y, ctx)
    assert not torch.allclose(out_x[3], out_y[3], atol=1e-4)  # video 0 frame 3 sees it
    assert torch.equal(out_x[4:], out_y[4:])  # video 1 does not


def test_frame_permutation_equivariance():
    """Attention over frames with pe tied to each frame: permuting frames and positions together
    permutes the output."""
    module = randomize_(motion_module(), seed=4)
    x = frames(1, 7)
    positions = torch.tensor([NONCONTIGUOUS])
    perm = torch.tensor([3, 0, 6, 1, 5, 2, 4])
    out = module(x, FrameContext(positions))
    out_perm = module(x[perm], FrameContext(positions[:, perm]))
    assert torch.allclose(out_perm, out[perm], atol=1e-5)


def test_gradient_checkpointing_gives_same_gradients():
    def grads(checkpointing: bool):
        module = randomize_(motion_module(), seed=6).train()
        module.gradient_checkpointing = checkpointing
        x = frames(1, 5).requires_grad_(True)
        module(x, FrameContext(torch.tensor([[0, 2, 4, 6, 8]]))).square().sum().backward()
        return [p.grad.clone() for p in module.parameters()] + [x.grad.clone()]

    for with_cp, without in zip(grads(True), grads(False), strict=True):
        assert torch.allclose(with_cp, without, atol=1e-6)


# ---- temporal conv ------------------------------------------------------------------------


def test_temporal_conv_identity_at_init_and_local_after_training():
    conv = TemporalConv(32)
    ctx = FrameContext.contiguous(1, 5)
    x = frames(1, 5)
    assert torch.equal(conv(x, ctx), x)
    randomize_(conv, seed=7)
    y = x.clone()
    y[0] += 1.0
    out_x, out_y = conv(x, ctx), conv(y, ctx)
    assert not torch.allclose(out_x[1], out_y[1])  # kernel 3 reaches the neighbour
    assert torch.equal(out_x[2:], out_y[2:])  # and nothing further


# ---- FrameContext and model lookup --------------------------------------------------------


def test_frame_context_shapes_and_batch_copies():
    ctx = FrameContext(torch.tensor([[0, 4, 8], [1, 5, 9]]))
    assert (ctx.batch_size, ctx.num_frames, ctx.min_position, ctx.max_position) == (2, 3, 0, 9)
    doubled = ctx.positions_for_batch(12)  # classifier-free guidance: cond videos then uncond videos
    assert torch.equal(doubled, torch.tensor([[0, 4, 8], [1, 5, 9], [0, 4, 8], [1, 5, 9]]))
    with pytest.raises(ValueError, match="not a multiple"):
        ctx.positions_for_batch(7)
    assert FrameContext([0, 1, 2]).positions.shape == (1, 3)
    with pytest.raises(ValueError, match="integers"):
        FrameContext(torch.tensor([[0.0, 1.0]]))


def test_model_structure_and_lookup():
    config = TemporalModelConfig(
        block_out_channels=(32, 64, 64, 64), time_embed_dim=128, aug_embed_dim=32, has_temporal_conv=True
    )
    model = ZiziTemporalModel(config)
    assert [len(b.motion_modules) for b in model.down_blocks] == [2, 2, 2, 2]
    assert [len(b.motion_modules) for b in model.up_blocks] == [3, 3, 3, 3]
    assert [b.motion_modules[0].channels for b in model.up_blocks] == [64, 64, 64, 32]
    assert model.motion_module_at("mid", 0, 0) is model.mid_block.motion_modules[0]
    assert model.motion_module_at("down", 4, 0) is None and model.motion_module_at("up", 0, 3) is None
    assert model.temporal_conv_at("mid", 0, 1) is not None and model.temporal_conv_at("mid", 0, 2) is None
    assert len(list(model.motion_modules())) == 2 * 4 + 3 * 4 + 1
    assert model.conv_in_extra.weight.shape == (32, 5, 3, 3) and not model.conv_in_extra.weight.any()
    assert torch.equal(model.augmentation_embedding(torch.rand(6)), torch.zeros(6, 128))
    assert ZiziTemporalModel(config.replace(has_mid=False)).mid_block is None


def test_widened_conv_in_equals_base_plus_extra():
    model = randomize_(ZiziTemporalModel(TemporalModelConfig(block_out_channels=(32, 64))), seed=8)
    base = nn.Conv2d(4, 32, 3, padding=1)
    wide = nn.Conv2d(9, 32, 3, padding=1)
    with torch.no_grad():
        wide.weight.copy_(model.widened_conv_in(base.weight))
        wide.bias.copy_(base.bias)
    x, extra = torch.randn(2, 4, 8, 8), torch.randn(2, 5, 8, 8)
    expected = base(x) + model.known_frame_features(extra)
    assert torch.allclose(wide(torch.cat([x, extra], 1)), expected, atol=1e-5)


def test_ldm_block_sites_for_sd15():
    inputs = {i: ldm_block_site("input", i) for i in range(12)}
    assert [i for i, site in inputs.items() if site is None] == [0, 3, 6, 9]  # conv_in and Downsamples
    assert [inputs[i] for i in (1, 2, 4, 5, 7, 8, 10, 11)] == [
        ("down", i, j) for i in range(4) for j in range(2)
    ]
    assert ldm_block_site("middle") == ("mid", 0, 0)
    assert [ldm_block_site("output", n) for n in range(12)] == [
        ("up", i, j) for i in range(4) for j in range(3)
    ]
    assert ldm_block_site("output", 12) is None and ldm_block_site("input", 12) is None
    with pytest.raises(ValueError, match="section"):
        ldm_block_site("decoder", 0)
