"""Loading SD1.5 for training from local files: diffusers folders and LDM single files (never pickles)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from devtools.random_sd15 import TINY_TEXT_CONFIG, TINY_UNET_CONFIG, TINY_VAE_CONFIG
from train.models import load_sd15, load_single_file
from zizi_models.sd15_keys import to_ldm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_single_file_checkpoint_loads_the_same_weights(tmp_path: Path, tiny_sd15_path: Path) -> None:
    folder = load_sd15(tiny_sd15_path)
    state = to_ldm(folder.unet.state_dict(), folder.vae.state_dict(), folder.text_encoder.state_dict(),
                   TINY_UNET_CONFIG, TINY_VAE_CONFIG)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in state.items() if not k.endswith("position_ids")}, str(path))

    single = load_single_file(path, tiny_sd15_path / "tokenizer", unet_config=TINY_UNET_CONFIG,
                              vae_config=TINY_VAE_CONFIG, text_config=TINY_TEXT_CONFIG)
    for name in ("unet", "vae", "text_encoder"):
        expected, got = getattr(folder, name).state_dict(), getattr(single, name).state_dict()
        assert expected.keys() == got.keys(), name
        assert all(torch.equal(expected[k], got[k]) for k in expected), name
    ids = single.tokenizer("a dancer", return_tensors="pt").input_ids
    assert torch.equal(single.text_encoder(ids)[0], folder.text_encoder(ids)[0])
    assert single.vae_scale == pytest.approx(0.18215)
    assert single.alphas_cumprod.shape == (1000,)

    with pytest.raises(ValueError, match="model.tokenizer"):
        load_single_file(path, None, unet_config=TINY_UNET_CONFIG, vae_config=TINY_VAE_CONFIG,
                         text_config=TINY_TEXT_CONFIG)


def test_bad_pretrained_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="only from local paths"):
        load_sd15(tmp_path / "missing")
    pickle = tmp_path / "model.ckpt"
    pickle.write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="never opened"):
        load_sd15(pickle)
    with pytest.raises(ValueError, match="model.pretrained is not set"):
        load_sd15("")
