"""Subject LoRA: peft on the spatial attention projections, exported in ComfyUI LoraLoader's kohya/LDM keys."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from diffusers import UNet2DConditionModel
from safetensors import safe_open

from train.artifacts import unet_structure
from train.config import load_config
from train.export import export
from train.fit import fit
from train.lora import add_lora, lora_layers, lora_state_dict, to_kohya
from train.synthetic import ensure_dataset
from zizi_models.sd15_configs import SD15_VAE_CONFIG
from zizi_models.sd15_keys import UNET_PREFIX, to_ldm

TINY = Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny_cpu.yaml"
TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")



def _comfy_lora_names(unet: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    """ComfyUI's comfy/lora.py model_lora_keys_unet rule over the LDM UNet keys: for every
    `diffusion_model.<path>.weight`, the LoRA name `lora_unet_<path with '.' -> '_'>`; with the weight shape."""
    ldm = to_ldm(unet.state_dict(), {}, {}, dict(unet.config), SD15_VAE_CONFIG)
    return {
        "lora_unet_" + key[len(UNET_PREFIX) : -len(".weight")].replace(".", "_"): tuple(value.shape)
        for key, value in ldm.items()
        if key.startswith(UNET_PREFIX) and key.endswith(".weight")
    }


def test_kohya_export_matches_ldm_keys_and_the_peft_delta(tiny_sd15_path: Path) -> None:
    unet = UNet2DConditionModel.from_pretrained(str(tiny_sd15_path / "unet"))
    names = _comfy_lora_names(unet)
    add_lora(unet, rank=4, alpha=2.0, targets=TARGETS)
    torch.manual_seed(0)
    for layer in lora_layers(unet).values():
        torch.nn.init.normal_(layer["lora_B"]["default"].weight)  # peft starts B at zero
    kohya = to_kohya(lora_state_dict(unet), 2.0, unet_structure(unet.config), dtype=torch.float32)

    modules = {key.split(".", 1)[0] for key in kohya}
    expected = {n for n in names if n.endswith(tuple(f"{attn}_{t.replace('.', '_')}" for attn in ("attn1", "attn2")
                                                     for t in TARGETS))}
    assert modules == expected and len(modules) == 8 * sum(1 for n in names if n.endswith("attn1_to_q"))
    assert "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q" in modules
    assert "lora_unet_output_blocks_11_1_transformer_blocks_0_attn2_to_out_0" in modules
    assert "lora_unet_middle_block_1_transformer_blocks_0_attn2_to_k" in modules

    structure = unet_structure(unet.config)
    for path in lora_layers(unet):
        (ldm_key,) = to_ldm({f"{path}.weight": torch.zeros(1)}, {}, {}, structure, SD15_VAE_CONFIG)
        name = "lora_unet_" + ldm_key[len(UNET_PREFIX) : -len(".weight")].replace(".", "_")
        down, up, alpha = (kohya[f"{name}.{part}"] for part in ("lora_down.weight", "lora_up.weight", "alpha"))
        out_features, in_features = names[name]
        assert down.shape == (4, in_features) and up.shape == (out_features, 4) and float(alpha) == 2.0
        delta = up @ down * (float(alpha) / down.shape[0])  # what LoraLoader adds to the weight
        torch.testing.assert_close(delta, unet.get_submodule(path).get_delta_weight("default"))


def test_fit_with_lora_then_export_for_comfyui(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory,
                                               tiny_sd15_path: Path) -> None:
    data = ensure_dataset(tmp_path_factory.getbasetemp() / "zizi_train_dataset", tiny_sd15_path)
    fit(load_config(TINY, [f"data.dataset={data}", f"model.pretrained={tiny_sd15_path}", f"output_dir={tmp_path}",
                           "max_steps=1", "checkpoint.every=1", "data.batch_size=1", "lora.enabled=true",
                           "lora.rank=2", "lora.alpha=1.0", "logging.progress_bar=false", "logging.tensorboard=false"]))
    result = export(tmp_path, tmp_path / "t.safetensors", lora=tmp_path / "subject_lora.safetensors")
    with safe_open(str(result.lora), framework="pt") as handle:
        keys = list(handle.keys())
        assert handle.metadata()["ss_network_dim"] == "2"
        ups = [handle.get_tensor(k) for k in keys if k.endswith("lora_up.weight")]
    names = _comfy_lora_names(UNet2DConditionModel.from_pretrained(str(tiny_sd15_path / "unet")))
    assert keys and all(key.split(".", 1)[0] in names for key in keys)
    assert {key.split(".", 1)[1] for key in keys} == {"lora_down.weight", "lora_up.weight", "alpha"}
    assert any(up.abs().sum() > 0 for up in ups), "the LoRA was not trained (lora_up stayed zero)"
