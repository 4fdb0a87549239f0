"""`auto` (0) window and stride: the values a temporal module file records (ours), AnimateDiff's 16 / 4 for
files that record none (AnimateDiff layout, a Zizi file without training facts), resolved by the nodes."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from safetensors.torch import save_file

from zizi_models.temporal import (
    TemporalModelConfig,
    ZiziTemporalModel,
    read_temporal_state,
    save_temporal_model,
)
from zizi_models.temporal.layout import is_motion_key, to_file_key
from zizi_models.temporal.trained_defaults import (
    ANIMATEDIFF_STRIDE,
    ANIMATEDIFF_WINDOW,
    METADATA_ATTR,
    attach_file_facts,
    trained_defaults,
    trained_defaults_of,
)

REPO = Path(__file__).resolve().parents[2]
PUPPET_TEMPORAL = REPO / "weights" / "zizi_puppet_temporal.safetensors"
SMALL = TemporalModelConfig(block_out_channels=(32, 64), has_mid=False, time_embed_dim=96, aug_embed_dim=16)


def loaded(path: Path) -> ZiziTemporalModel:
    """What the loader should hand the nodes: the model with its file's metadata kept on it."""
    state = read_temporal_state(path)
    model = ZiziTemporalModel(state.config)
    return attach_file_facts(model, state.metadata, state.source_format)


def animatediff_layout_file(path: Path, config: TemporalModelConfig) -> Path:
    """Motion-module tensors only, AnimateDiff key names, no metadata: what an AnimateDiff release holds."""
    state = ZiziTemporalModel(config).state_dict()
    save_file({to_file_key(k): v.contiguous() for k, v in state.items() if is_motion_key(k)}, str(path))
    return path


def test_shipped_puppet_module_records_window_8_and_stride_4() -> None:
    state = read_temporal_state(PUPPET_TEMPORAL)
    assert state.metadata["trained_window"] == 8
    assert state.metadata["trained_stride"]["extrapolate"] == [1, 2, 4]
    defaults = trained_defaults_of(loaded(PUPPET_TEMPORAL))
    assert (defaults.window, defaults.stride) == (8, 4)
    assert "trained_window" in defaults.source


@pytest.mark.parametrize(("recorded", "expected"), [
    ({"trained_window": 12, "trained_stride": {"starter": [1], "extrapolate": [1, 3], "interpolate": [1]}}, (12, 3)),
    ({"trained_window": 10, "trained_stride": 2}, (10, 2)),  # plain int and list forms are read too
    ({"trained_window": 6, "trained_stride": [1, 5]}, (6, 5)),
    ({"trained_window": 64, "trained_stride": 4}, (32, 4)),  # never wider than the module's max_positions
    ({"trained_window": 9}, (9, ANIMATEDIFF_STRIDE)),  # half recorded: the other half is AnimateDiff's
])
def test_module_with_training_metadata(tmp_path: Path, recorded: dict, expected: tuple[int, int]) -> None:
    path = tmp_path / "trained.safetensors"
    save_temporal_model(ZiziTemporalModel(SMALL), path, metadata=recorded)
    defaults = trained_defaults_of(loaded(path))
    assert (defaults.window, defaults.stride) == expected
    if expected[0] == 32:
        assert "32 positions" in defaults.source


def test_module_without_training_metadata_gets_animatediff_values(tmp_path: Path) -> None:
    path = tmp_path / "bare.safetensors"
    save_temporal_model(ZiziTemporalModel(SMALL), path)  # format metadata only, no training facts
    defaults = trained_defaults_of(loaded(path))
    assert (defaults.window, defaults.stride) == (ANIMATEDIFF_WINDOW, ANIMATEDIFF_STRIDE) == (16, 4)
    assert "records no trained window" in defaults.source


@pytest.mark.parametrize(("max_positions", "window"), [(32, 16), (24, 16), (12, 12)])  # v2/v3, v1, a short one
def test_animatediff_layout_module(tmp_path: Path, max_positions: int, window: int) -> None:
    path = animatediff_layout_file(tmp_path / "mm.safetensors", SMALL.replace(max_positions=max_positions))
    model = loaded(path)
    assert model.source_format == "animatediff" and getattr(model, METADATA_ATTR) == {}
    defaults = trained_defaults_of(model)
    assert (defaults.window, defaults.stride) == (window, 4)
    assert defaults.source.startswith("AnimateDiff module records no trained window")


def test_garbage_metadata_is_ignored() -> None:
    for bad in ({"trained_window": "eight", "trained_stride": {"extrapolate": []}},
                {"trained_window": 1, "trained_stride": 0}, {"trained_window": True, "trained_stride": [0, -4]},
                {"trained_window": 7.5, "trained_stride": None}):
        defaults = trained_defaults(bad, "zizi-temporal", 32)
        assert (defaults.window, defaults.stride) == (16, 4), bad


def test_a_model_the_loader_kept_no_metadata_on_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        defaults = trained_defaults_of(ZiziTemporalModel(SMALL))
    assert (defaults.window, defaults.stride) == (16, 4)
    assert "no file metadata" in caplog.text


def test_nodes_resolve_auto_and_say_so(comfy_pack) -> None:
    sampling = comfy_pack.nodes.window_sampling
    puppet = loaded(PUPPET_TEMPORAL)
    assert sampling.resolve_window_stride(puppet, 0, 0, 240)[:2] == (8, 4)
    window, stride, used = sampling.resolve_window_stride(puppet, 0, 0, 240)
    assert used.startswith("window 8 (auto), stride 4 (auto): the module's trained_window")
    assert sampling.resolve_window_stride(puppet, 7, 0, 240)[:2] == (7, 4)
    assert sampling.resolve_window_stride(puppet, 0, 2, 240)[:2] == (8, 2)
    window, stride, used = sampling.resolve_window_stride(puppet, 7, 3, 240)
    assert (window, stride, used) == (7, 3, "window 7, stride 3")  # as set: nothing looked up
    window, _, used = sampling.resolve_window_stride(puppet, 0, 0, 5)  # a video shorter than the window
    assert window == 5 and "window cut to total_frames" in used
    with pytest.raises(ValueError, match="^window: 1 frame"):
        sampling.resolve_window_stride(puppet, 1, 0, 240)
