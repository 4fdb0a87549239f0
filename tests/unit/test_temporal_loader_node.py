"""ZiziTemporalModelLoader inside an in-process ComfyUI: loading paths and one-line errors."""

from __future__ import annotations

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from devtools.random_sd15 import TINY_UNET_CONFIG, TINY_VAE_CONFIG, build_unet, sd15_temporal_module
from zizi_models.sd15_keys import to_ldm
from zizi_models.temporal import ZiziTemporalModel, save_temporal_model, temporal_config_for_unet


@pytest.fixture(scope="module")
def setup(comfy_pack, tmp_path_factory):
    import folder_paths

    folder = tmp_path_factory.mktemp("zizi-models")
    folder_paths.add_model_folder_path("zizi", str(folder))
    bridge = comfy_pack.nodes.comfy
    unet = build_unet(TINY_UNET_CONFIG, seed=1).float()
    base = bridge.sd15_model_from_state_dict(to_ldm(unet.state_dict(), {}, {}, TINY_UNET_CONFIG, TINY_VAE_CONFIG),
                                             dtype=torch.float32)
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet))
    save_temporal_model(temporal, folder / "tiny.safetensors", metadata={"trained_window": 7})
    zizi_tensors = load_file(str(folder / "tiny.safetensors"))
    # the same motion modules with AnimateDiff's key names only: no zizi.* tensors, no metadata
    save_file({k: v for k, v in zizi_tensors.items() if not k.startswith("zizi.")}, str(folder / "animatediff_like.safetensors"))
    with safe_open(str(folder / "tiny.safetensors"), "pt") as f:
        metadata = f.metadata()
    broken = dict(zizi_tensors)
    key = next(k for k in broken if k.endswith("attention_blocks.0.to_q.weight"))
    broken[key] = torch.zeros(32, 33)
    save_file(broken, str(folder / "bad_shape.safetensors"), metadata=metadata)  # config from metadata
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(32, 4, 3, 3)}, str(folder / "checkpoint.safetensors"))
    (folder / "sd15_full.safetensors").symlink_to(sd15_temporal_module(seed=0, fresh=True))
    return comfy_pack.nodes.temporal_nodes.ZiziTemporalModelLoader(), base, bridge


def test_loads_zizi_and_animatediff_layout_and_leaves_the_input_untouched(setup) -> None:
    node, base, bridge = setup
    for name in ("tiny.safetensors", "animatediff_like.safetensors"):
        (inflated,) = node.load(base, name)
        assert inflated is not base
        assert bridge.temporal_model_of(inflated) is not None
        assert bridge.temporal_model_of(base) is None
        assert bridge.TEMPORAL_KEY in inflated.injections and bridge.TEMPORAL_KEY not in base.injections


@pytest.mark.parametrize(("name", "expected"), [
    ("bad_shape.safetensors", r"temporal_module: .*to_q.weight' has shape \(32, 33\), expected \(32, 32\)"),
    ("checkpoint.safetensors", r"temporal_module: .*(not a temporal module|no motion)"),
    ("sd15_full.safetensors", r"model: temporal module is for a UNet with channels \(320, 640, 1280, 1280\).* but the base model has channels \(32, 64, 64, 64\)"),
])
def test_bad_files_give_one_line_errors(setup, name, expected) -> None:
    node, base, _ = setup
    with pytest.raises(ValueError, match=expected) as error:
        node.load(base, name)
    assert "\n" not in str(error.value)


def test_missing_file_is_reported_before_running(setup) -> None:
    node, _, _ = setup
    message = node.VALIDATE_INPUTS("does_not_exist.safetensors")
    assert isinstance(message, str) and "temporal_module" in message and "does_not_exist" in message
    assert node.VALIDATE_INPUTS("tiny.safetensors") is True
