"""AnimateDiff .ckpt / .pt motion modules: read weights-only (v1/v2/v3, wrapped or not) and one-line refusals."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import pytest
import torch

from devtools.random_addons import ANIMATEDIFF_LAYOUTS, animatediff_state
from zizi_models.temporal import (
    TemporalModelConfig,
    ZiziTemporalModel,
    load_temporal_model,
    read_temporal_state,
)

TINY = (32, 64, 64, 64)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def perturbed_state(seed: int = 0, channels: tuple[int, ...] = TINY) -> dict[str, torch.Tensor]:
    model = ZiziTemporalModel(TemporalModelConfig(block_out_channels=channels))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen) * 0.1)
    return model.state_dict()


@pytest.mark.parametrize("wrapped", [False, True])
@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_released_layouts_load_from_ckpt(tmp_path, version: str, wrapped: bool) -> None:
    state = animatediff_state(perturbed_state(), version)
    path = tmp_path / f"mm_{version}.ckpt"
    torch.save({"state_dict": state, "global_step": 12, "epoch": 1} if wrapped else state, path)
    read = read_temporal_state(path)
    mid, positions = ANIMATEDIFF_LAYOUTS[version]
    assert read.source_format == "animatediff" and read.metadata == {}
    assert read.config.block_out_channels == TINY
    assert read.config.has_mid is mid and read.config.max_positions == positions
    assert set(read.tensors) == set(state)
    assert all(torch.equal(read.tensors[k], state[k]) for k in state)
    model = load_temporal_model(path)  # the file's tensors reach the model
    key = "up_blocks.1.motion_modules.2.temporal_transformer.proj_out.weight"
    assert torch.equal(model.state_dict()[key], state[key])


def test_pt_suffix_and_legacy_pickle_format(tmp_path) -> None:
    state = animatediff_state(perturbed_state(1), "v3")
    path = tmp_path / "old.pt"
    torch.save(state, path, _use_new_zipfile_serialization=False)  # raw pickle, not a zip archive
    assert read_temporal_state(path).config.has_mid is False


class RunsCode:
    def __init__(self, marker) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (subprocess.call, ([sys.executable, "-c", f"open({self.marker!r}, 'w').write('ran')"],))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_code_running_pickle_is_refused_and_never_runs(tmp_path, writer: str) -> None:
    marker = tmp_path / "code_ran"
    state = animatediff_state(perturbed_state(), "v2")
    payload = {**state, "trap": RunsCode(marker)}
    path = tmp_path / "mm_sd_v15_v2.ckpt"
    if writer == "torch.save":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps({"trap": RunsCode(marker), "step": 1}, protocol=2))  # a raw pickle
    # the crafted pickle really does run code when fully unpickled (in a throw-away copy of the check)
    probe = tmp_path / "probe.ckpt"
    torch.save({"trap": RunsCode(tmp_path / "probe_ran")}, probe)
    torch.load(probe, weights_only=False)
    assert (tmp_path / "probe_ran").exists()
    with pytest.raises(ValueError) as error:
        read_temporal_state(path)
    message = str(error.value)
    assert not marker.exists(), "the pickle's code ran"
    assert "\n" not in message and str(path) in message and "refused" in message
    assert re.search(r"would import and call '[\w.]*\.call'", message)  # the global the pickle names


def test_truncated_ckpt(tmp_path) -> None:
    path = tmp_path / "mm.ckpt"
    torch.save(animatediff_state(perturbed_state(), "v2"), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as error:
        read_temporal_state(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value) and "truncated" in str(error.value)


def test_ckpt_that_is_not_a_motion_module(tmp_path) -> None:
    path = tmp_path / "v1-5-pruned.ckpt"
    torch.save({"state_dict": {"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(8, 4, 3, 3)}}, path)
    with pytest.raises(ValueError, match=r"is not a temporal module.*Stable Diffusion model checkpoint") as error:
        read_temporal_state(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    listing = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], listing)
    with pytest.raises(ValueError, match=r"holds a list, expected a dict of tensors"):
        read_temporal_state(listing)
    text = tmp_path / "readme.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"readme.ckpt is not a PyTorch .ckpt/.pt file"):
        read_temporal_state(text)


def _shape_only(shape: tuple[int, ...]) -> torch.Tensor:
    """A tensor of `shape` whose saved storage is one element (full-size shapes in a tiny file)."""
    return torch.zeros(1, dtype=torch.float16).expand(*shape)


def test_sdxl_motion_modules_are_refused_by_shape(tmp_path) -> None:
    sdxl = {}
    for i, c in enumerate((320, 640, 1280)):  # AnimateDiff-SDXL: 3 blocks
        for j in range(2):
            tt = f"down_blocks.{i}.motion_modules.{j}.temporal_transformer"
            sdxl[f"{tt}.proj_in.weight"] = _shape_only((c, c))
            sdxl[f"{tt}.transformer_blocks.0.attention_blocks.0.pos_encoder.pe"] = _shape_only((1, 32, c))
        sdxl[f"up_blocks.{2 - i}.motion_modules.0.temporal_transformer.proj_in.weight"] = _shape_only((c, c))
    path = tmp_path / "mm_sdxl_v10_beta.ckpt"
    torch.save(sdxl, path)
    with pytest.raises(ValueError, match=r"motion module for SDXL .*\(320, 640, 1280\).*expected an SD1.5") as error:
        read_temporal_state(path)
    assert "\n" not in str(error.value) and str(path) in str(error.value)
    hotshot = tmp_path / "hsxl_temporal_layers.pt"
    torch.save({"down_blocks.0.temporal_attentions.0.temporal_transformer.proj_in.weight": _shape_only((320, 320))},
               hotshot)
    with pytest.raises(ValueError, match=r"HotShot-XL motion module \(for SDXL"):
        read_temporal_state(hotshot)
