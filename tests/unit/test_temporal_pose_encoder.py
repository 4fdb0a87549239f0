"""The optional pose encoder of the temporal model: zero at init, read back from a file, resized input."""

from __future__ import annotations

import pytest
import torch

from zizi_models.temporal import (
    TemporalModelConfig,
    ZiziTemporalModel,
    load_temporal_model,
    save_temporal_model,
)
from zizi_models.temporal.context import FrameContext
from zizi_models.temporal.frame_call import FrameCall, add_known_frames
from zizi_models.temporal.layout import infer_config
from zizi_models.temporal.pose_encoder import PoseEncoder, pose_encoder_widths

CONFIG = TemporalModelConfig(block_out_channels=(32, 64), heads=4, max_positions=8, pose_channels=3, pose_downscale=4)


def test_widths_and_bad_downscale() -> None:
    assert pose_encoder_widths(4, 16) == [16, 32, 64]
    assert pose_encoder_widths(1, 8) == [8]
    with pytest.raises(ValueError, match="pose_downscale"):
        pose_encoder_widths(6, 16)


def test_fresh_encoder_adds_nothing_and_trained_one_follows_the_pose() -> None:
    torch.manual_seed(0)
    encoder = PoseEncoder(3, 32, downscale=4)
    pose = torch.rand(2, 3, 32, 32)
    assert encoder(pose).shape == (2, 32, 8, 8)
    assert encoder(pose).abs().max().item() == 0.0
    torch.nn.init.normal_(encoder.proj.weight, std=0.1)
    a, b = encoder(pose), encoder(torch.rand(2, 3, 32, 32))
    assert (a - b).abs().mean().item() > 1e-3


def test_add_known_frames_resizes_the_pose_to_the_latent_grid() -> None:
    torch.manual_seed(1)
    model = ZiziTemporalModel(CONFIG)
    torch.nn.init.normal_(model.pose_encoder.proj.weight, std=0.1)
    features = torch.zeros(3, 32, 8, 8)
    pose = torch.rand(3, 3, 32, 32)
    call = FrameCall(FrameContext(torch.arange(3)[None]), None, None, pose)
    exact = add_known_frames(model, features, call)
    # a pose at twice the size is area-downsampled to 32x32 first: same result for a 2x2-block image
    big = pose.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    resized = add_known_frames(model, features, FrameCall(call.ctx, None, None, big))
    assert torch.allclose(exact, resized, atol=1e-5)
    assert exact.abs().mean().item() > 1e-3
    # no pose: nothing added
    assert add_known_frames(model, features, FrameCall(call.ctx, None, None)).abs().max().item() == 0.0


def test_pose_encoder_survives_save_and_is_inferred_from_shapes(tmp_path) -> None:
    torch.manual_seed(2)
    model = ZiziTemporalModel(CONFIG)
    torch.nn.init.normal_(model.pose_encoder.proj.weight, std=0.1)
    path = tmp_path / "pose.safetensors"
    save_temporal_model(model, path)
    loaded = load_temporal_model(path)
    assert loaded.config.pose_channels == 3 and loaded.config.pose_downscale == 4
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    inferred = infer_config(shapes)
    assert (inferred.pose_channels, inferred.pose_downscale, inferred.pose_base_width) == (3, 4, 16)
