"""Checkpoint format: Zizi round trip, AnimateDiff v1/v2/v3 and diffusers MotionAdapter files, errors."""

import json
import pickle

import pytest
import torch
from safetensors.torch import load_file, save_file

from zizi_models.temporal import (
    SD15_CONFIG,
    TemporalModelConfig,
    UNetLayout,
    ZiziTemporalModel,
    check_unet_compatible,
    expected_shapes,
    infer_config,
    load_temporal_model,
    read_temporal_state,
    save_temporal_model,
)

TINY = (32, 64, 64, 64)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def animatediff_table(channels=(320, 640, 1280, 1280), pe_len: int = 32, mid: bool = True) -> dict:
    """Key -> shape of an AnimateDiff SD1.5 motion-module file, written out from AnimateDiff's
    motion_module.py (VanillaTemporalModule: 8 heads, 1 transformer block of two Temporal_Self
    attentions, GEGLU ff with mult 4; motion_module_resolutions [1,2,4,8]; v2 mid block)."""
    table = {}

    def motion_module(prefix: str, c: int) -> None:
        tt = f"{prefix}.temporal_transformer"
        table.update({f"{tt}.norm.weight": (c,), f"{tt}.norm.bias": (c,)})
        table.update({f"{tt}.proj_in.weight": (c, c), f"{tt}.proj_in.bias": (c,)})
        block = f"{tt}.transformer_blocks.0"
        for a in (0, 1):
            attn = f"{block}.attention_blocks.{a}"
            for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                table[f"{attn}.{proj}.weight"] = (c, c)
            table[f"{attn}.to_out.0.bias"] = (c,)
            table[f"{attn}.pos_encoder.pe"] = (1, pe_len, c)
            table.update({f"{block}.norms.{a}.weight": (c,), f"{block}.norms.{a}.bias": (c,)})
        table.update({f"{block}.ff.net.0.proj.weight": (8 * c, c), f"{block}.ff.net.0.proj.bias": (8 * c,)})
        table.update({f"{block}.ff.net.2.weight": (c, 4 * c), f"{block}.ff.net.2.bias": (c,)})
        table.update({f"{block}.ff_norm.weight": (c,), f"{block}.ff_norm.bias": (c,)})
        table.update({f"{tt}.proj_out.weight": (c, c), f"{tt}.proj_out.bias": (c,)})

    for i, c in enumerate(channels):
        for j in range(2):
            motion_module(f"down_blocks.{i}.motion_modules.{j}", c)
    if mid:
        motion_module("mid_block.motion_modules.0", channels[-1])
    for i, c in enumerate(reversed(channels)):
        for j in range(3):
            motion_module(f"up_blocks.{i}.motion_modules.{j}", c)
    return table


VERSIONS = {
    "v1": dict(pe_len=24, mid=False),
    "v2": dict(pe_len=32, mid=True),
    "v3": dict(pe_len=32, mid=False),
}


def write_random(table: dict, path, seed: int = 0, metadata=None) -> dict:
    gen = torch.Generator().manual_seed(seed)
    tensors = {key: torch.randn(shape, generator=gen) for key, shape in table.items()}
    save_file(tensors, str(path), metadata=metadata)
    return tensors


def perturbed_model(config: TemporalModelConfig, seed: int = 0) -> ZiziTemporalModel:
    model = ZiziTemporalModel(config)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(torch.randn(param.shape, generator=gen))
    return model


# ---- AnimateDiff layouts --------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_full_size_animatediff_layout_matches_the_model(version):
    """SD1.5 sizes without allocating a single weight: the inferred config's model has exactly
    AnimateDiff's motion-module keys and shapes."""
    table = animatediff_table(**VERSIONS[version])
    assert len(table) == {"v1": 560, "v2": 588, "v3": 560}[version]
    config = infer_config(table)
    assert config.block_out_channels == (320, 640, 1280, 1280)
    assert (config.down_layers, config.up_layers, config.heads) == (2, 3, 8)
    assert config.has_mid == VERSIONS[version]["mid"]
    assert config.max_positions == VERSIONS[version]["pe_len"]
    assert (config.num_transformer_blocks, config.num_attention_blocks, config.ff_mult) == (1, 2, 4)
    assert config.time_embed_dim == 1280
    ours = {
        k: v
        for k, v in expected_shapes(config).items()
        if not k.startswith(("conv_in_extra", "aug_embedding"))
    }
    assert ours == table
    if version == "v2":
        assert config == SD15_CONFIG
        params = sum(torch.Size(s).numel() for k, s in table.items() if not k.endswith(".pe"))
        assert params == 453_209_280  # x 4 bytes + pe tables = 1.818e9 bytes: mm_sd_v15_v2.ckpt is 1.82 GB


@pytest.mark.parametrize("version", ["v1", "v2", "v3"])
def test_tiny_animatediff_file_loads(tmp_path, version):
    path = tmp_path / f"mm_{version}.safetensors"
    tensors = write_random(animatediff_table(TINY, **VERSIONS[version]), path)
    state = read_temporal_state(path)
    assert state.source_format == "animatediff" and state.metadata == {}
    model = load_temporal_model(path)
    assert model.config.block_out_channels == TINY
    assert (model.mid_block is not None) == VERSIONS[version]["mid"]
    loaded = model.state_dict()
    for key, tensor in tensors.items():
        assert torch.equal(loaded[key], tensor), key
    # parts AnimateDiff does not have keep their identity / zero init
    assert not model.conv_in_extra.weight.any()
    assert not model.aug_embedding.linear_2.weight.any() and not model.aug_embedding.linear_2.bias.any()
    assert model.temporal_convs is None


def test_animatediff_file_without_pe_gets_the_standard_table(tmp_path):
    table = {k: v for k, v in animatediff_table(TINY).items() if not k.endswith(".pe")}
    path = tmp_path / "no_pe.safetensors"
    write_random(table, path)
    model = load_temporal_model(path)
    assert model.config.max_positions == 32
    from zizi_models.temporal import sinusoidal_table

    pe = (
        model.down_blocks[1]
        .motion_modules[0]
        .temporal_transformer.transformer_blocks[0]
        .attention_blocks[0]
        .pos_encoder.pe
    )
    assert torch.equal(pe, sinusoidal_table(32, 64))


def test_diffusers_motion_adapter_file_loads(tmp_path):
    from diffusers import MotionAdapter

    torch.manual_seed(0)
    adapter = MotionAdapter(
        block_out_channels=(32, 64),
        motion_layers_per_block=2,
        motion_num_attention_heads=8,
        motion_norm_num_groups=32,
        motion_max_seq_length=24,
        use_motion_mid_block=True,
    )
    path = tmp_path / "diffusion_pytorch_model.safetensors"
    save_file({k: v.contiguous() for k, v in adapter.state_dict().items()}, str(path))
    state = read_temporal_state(path)
    assert state.source_format == "diffusers-motion-adapter"
    model = load_temporal_model(path)
    assert (
        model.config.block_out_channels == (32, 64)
        and model.config.max_positions == 24
        and model.mid_block is not None
    )
    theirs = adapter.up_blocks[1].motion_modules[2]
    ours = model.up_blocks[1].motion_modules[2].temporal_transformer
    block, their_block = ours.transformer_blocks[0], theirs.transformer_blocks[0]
    pairs = [
        (ours.norm.weight, theirs.norm.weight),
        (ours.proj_in.weight, theirs.proj_in.weight),
        (block.attention_blocks[1].to_q.weight, their_block.attn2.to_q.weight),
        (block.attention_blocks[0].to_out[0].bias, their_block.attn1.to_out[0].bias),
        (block.norms[1].weight, their_block.norm2.weight),
        (block.ff_norm.bias, their_block.norm3.bias),
        (block.ff.net[0].proj.weight, their_block.ff.net[0].proj.weight),
        (block.attention_blocks[1].pos_encoder.pe, their_block.pos_embed.pe),
        (ours.proj_out.weight, theirs.proj_out.weight),
    ]
    for got, expected in pairs:
        assert torch.equal(got, expected)


# ---- Zizi round trip ------------------------------------------------------------------


def test_round_trip_is_bitwise_with_metadata(tmp_path):
    config = TemporalModelConfig(
        block_out_channels=TINY,
        has_temporal_conv=True,
        max_positions=48,
        time_embed_dim=128,
        aug_embed_dim=32,
        heads=4,
    )
    model = perturbed_model(config)
    path = tmp_path / "out" / "zizi_temporal.safetensors"
    save_temporal_model(model, path, {"trained_window": 7, "trained_stride": 4, "snr_range": [0.33, 0.66]})
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # atomic write left nothing behind

    raw = load_file(str(path))
    assert "zizi.conv_in_extra.weight" in raw and "zizi.aug_embedding.linear_2.weight" in raw
    assert "zizi.temporal_convs.mid_block.1.conv.weight" in raw
    assert "down_blocks.0.motion_modules.1.temporal_transformer.proj_out.weight" in raw

    state = read_temporal_state(path)
    assert state.source_format == "zizi-temporal"
    assert state.config == config  # heads come from metadata, not shapes
    assert state.metadata["trained_window"] == 7 and state.metadata["snr_range"] == [0.33, 0.66]
    assert state.metadata["format_version"] == 1 and state.metadata["max_positions"] == 48
    assert state.metadata["parts"] == {
        "aug_embedding": True,
        "conv_in_extra": True,
        "mid_block": True,
        "pose_encoder": False,
        "temporal_conv": True,
    }

    loaded = load_temporal_model(path)
    original, restored = model.state_dict(), loaded.state_dict()
    assert original.keys() == restored.keys()
    for key in original:
        assert original[key].dtype == restored[key].dtype and torch.equal(original[key], restored[key]), key


def test_fp16_export_loads(tmp_path):
    model = perturbed_model(
        TemporalModelConfig(block_out_channels=(32, 64), time_embed_dim=128, aug_embed_dim=32)
    )
    path = tmp_path / "half.safetensors"
    save_temporal_model(model, path, dtype=torch.float16)
    assert load_file(str(path))["zizi.conv_in_extra.weight"].dtype == torch.float16
    loaded = load_temporal_model(path, dtype=torch.float16)
    assert loaded.conv_in_extra.weight.dtype == torch.float16
    assert torch.equal(loaded.conv_in_extra.weight, model.conv_in_extra.weight.half())


def test_loading_never_unpickles(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    save_temporal_model(perturbed_model(TemporalModelConfig(block_out_channels=(32, 64))), path)

    def forbidden(*args, **kwargs):
        raise AssertionError("unpickling is not allowed")

    monkeypatch.setattr(torch, "load", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    load_temporal_model(path)


# ---- errors ---------------------------------------------------------------------------


def test_not_a_safetensors_file(tmp_path):
    text = tmp_path / "notes.safetensors"
    text.write_text("definitely not tensors")
    with pytest.raises(ValueError, match="is not a safetensors file"):
        load_temporal_model(text)
    ckpt = tmp_path / "mm_sd_v15_v2.ckpt"
    torch.save({"down_blocks.0.motion_modules.0.temporal_transformer.norm.weight": torch.ones(2)}, ckpt)
    with pytest.raises(ValueError, match=r"must have motion modules in both down_blocks and up_blocks"):
        load_temporal_model(ckpt)  # a .ckpt is read (weights only) and then judged by its tensors
    with pytest.raises(FileNotFoundError):
        load_temporal_model(tmp_path / "missing.safetensors")


def test_sd_checkpoint_is_not_a_temporal_module(tmp_path):
    path = tmp_path / "v1-5-pruned.safetensors"
    save_file(
        {
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
            "first_stage_model.decoder.conv_in.weight": torch.zeros(2),
        },
        str(path),
    )
    with pytest.raises(ValueError, match="not a temporal module.*Stable Diffusion"):
        read_temporal_state(path)


def test_shape_mismatch_names_key_and_shapes(tmp_path):
    table = animatediff_table(TINY)
    bad_key = "up_blocks.2.motion_modules.1.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_v.weight"
    table[bad_key] = (64, 32)
    path = tmp_path / "bad.safetensors"
    write_random(table, path)
    with pytest.raises(ValueError) as err:
        load_temporal_model(path)
    message = str(err.value)
    assert bad_key in message and "(64, 32)" in message and "expected (64, 64)" in message
    assert "\n" not in message


def test_zizi_metadata_config_must_match_shapes(tmp_path):
    model = perturbed_model(
        TemporalModelConfig(block_out_channels=(32, 64), time_embed_dim=128, aug_embed_dim=32)
    )
    path = tmp_path / "m.safetensors"
    save_temporal_model(model, path)
    tensors = load_file(str(path))
    meta = {
        "format": json.dumps("zizi-temporal"),
        "format_version": "1",
        "config": TemporalModelConfig(
            block_out_channels=(32, 64), time_embed_dim=256, aug_embed_dim=32
        ).to_json(),
    }
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(
        ValueError,
        match=r"zizi\.aug_embedding\.linear_1\.\w+' has shape \(128,( 32)?\), expected \(256,( 32)?\)",
    ):
        load_temporal_model(path)


def test_incomplete_and_foreign_tensors(tmp_path):
    table = animatediff_table(TINY)
    incomplete = {k: v for k, v in table.items() if "up_blocks.3.motion_modules.2" not in k or "proj_in" in k}
    write_random(incomplete, tmp_path / "a.safetensors")
    with pytest.raises(ValueError, match="incomplete temporal module"):
        load_temporal_model(tmp_path / "a.safetensors")
    write_random({**table, "zizi.pose_encoder.weight": (4, 4)}, tmp_path / "b.safetensors")
    with pytest.raises(ValueError, match=r"unexpected tensor 'zizi\.pose_encoder\.weight'"):
        load_temporal_model(tmp_path / "b.safetensors")


def test_newer_format_version_and_reserved_metadata(tmp_path):
    model = perturbed_model(TemporalModelConfig(block_out_channels=(32, 64)))
    with pytest.raises(ValueError, match="written by save_temporal_model"):
        save_temporal_model(model, tmp_path / "x.safetensors", {"config": {}})
    path = tmp_path / "future.safetensors"
    save_temporal_model(model, path)
    save_file(load_file(str(path)), str(path), metadata={"format": '"zizi-temporal"', "format_version": "99"})
    with pytest.raises(ValueError, match="format version 99"):
        read_temporal_state(path)


# ---- base UNet compatibility ----------------------------------------------------------


def test_base_unet_compatibility():
    sd15 = UNetLayout((320, 640, 1280, 1280), 2, in_channels=4, time_embed_dim=1280, cross_attention_dim=768)
    check_unet_compatible(SD15_CONFIG, sd15)
    sdxl = UNetLayout((320, 640, 1280), 2, in_channels=4, time_embed_dim=1280, cross_attention_dim=2048)
    with pytest.raises(ValueError, match=r"SD1\.x/SD2\.x layout.*\(SDXL layout\)"):
        check_unet_compatible(SD15_CONFIG, sdxl)
    with pytest.raises(ValueError, match="input channels"):
        check_unet_compatible(SD15_CONFIG, UNetLayout((320, 640, 1280, 1280), 2, in_channels=9))
    with pytest.raises(ValueError, match="layers_per_block=1"):
        check_unet_compatible(SD15_CONFIG, UNetLayout((320, 640, 1280, 1280), 1))


def test_zizi_file_without_metadata_infers_its_config(tmp_path):
    config = TemporalModelConfig(
        block_out_channels=(32, 64),
        has_temporal_conv=True,
        has_mid=False,
        time_embed_dim=96,
        aug_embed_dim=16,
    )
    model = perturbed_model(config)
    path = tmp_path / "bare.safetensors"
    save_temporal_model(model, path)
    save_file(load_file(str(path)), str(path))  # strip the metadata
    state = read_temporal_state(path)
    assert state.source_format == "zizi-temporal" and state.metadata == {}
    assert state.config == config
    loaded = load_temporal_model(path)
    for key, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key


def test_structural_errors_name_the_file(tmp_path):
    table = {k: v for k, v in animatediff_table(TINY).items() if not k.startswith("up_blocks.")}
    path = tmp_path / "down_only.safetensors"
    write_random(table, path)
    with pytest.raises(ValueError, match=r"down_only\.safetensors: .*both down_blocks and up_blocks"):
        read_temporal_state(path)


def test_max_positions_can_grow_when_pe_is_the_standard_sinusoid(tmp_path):
    from zizi_models.temporal import sinusoidal_table

    table = animatediff_table(TINY)
    gen = torch.Generator().manual_seed(0)
    tensors = {
        key: sinusoidal_table(shape[1], shape[2])
        if key.endswith(".pe")
        else torch.randn(shape, generator=gen)
        for key, shape in table.items()
    }
    save_file(tensors, str(tmp_path / "v2.safetensors"))
    model = load_temporal_model(tmp_path / "v2.safetensors", max_positions=128)
    assert model.config.max_positions == 128
    loaded = model.state_dict()
    for key, tensor in tensors.items():
        if key.endswith(".pe"):
            assert loaded[key].shape == (1, 128, tensor.shape[2])
            assert torch.equal(loaded[key][:, :32], tensor)
        else:
            assert torch.equal(loaded[key], tensor), key

    write_random(table, tmp_path / "odd_pe.safetensors")  # random pe tables: meaning unknown
    with pytest.raises(ValueError, match="not the standard sinusoid"):
        load_temporal_model(tmp_path / "odd_pe.safetensors", max_positions=128)
