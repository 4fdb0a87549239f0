"""fit configuration: YAML + overrides, unknown keys, types, resume-time change detection, optimizer choice."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from train.__main__ import main
from train.config import ConfigError, config_changes, load_config, to_dict, valid_keys
from train.optim import OptimizerUnavailable, build_optimizer, lr_lambda
from train.windows import check_window_config

CONFIGS = Path(__file__).resolve().parents[2] / "train" / "configs"


def test_shipped_configs_load() -> None:
    tiny = load_config(CONFIGS / "tiny_cpu.yaml")
    assert tiny.window.frames == 4 and tiny.mixed_precision == "no"
    assert Path(tiny.model.pretrained).is_absolute()  # ../ paths resolve against the YAML file
    sd15 = load_config(CONFIGS / "sd15.yaml")
    assert sd15.window.frames == 16 and sd15.model.gradient_checkpointing
    check_window_config(sd15.window, sd15.model.max_positions)
    check_window_config(tiny.window, tiny.model.max_positions)


def test_overrides_are_typed() -> None:
    config = load_config(CONFIGS / "tiny_cpu.yaml", ["optimizer.lr=3e-5", "max_steps=7", "ema.enabled=false",
                                                    "window.extrapolate_strides=[1, 3]", "data.prompt=a b c"])
    assert config.optimizer.lr == pytest.approx(3e-5) and isinstance(config.optimizer.lr, float)
    assert config.max_steps == 7 and config.ema.enabled is False
    assert config.window.extrapolate_strides == [1, 3] and config.data.prompt == "a b c"


def test_unknown_override_key_lists_valid_keys() -> None:
    with pytest.raises(ConfigError) as err:
        load_config(CONFIGS / "tiny_cpu.yaml", ["optimizer.lrr=1"])
    message = str(err.value)
    assert "optimizer.lrr" in message and "optimizer.lr" in message and "optimizer.warmup_steps" in message
    with pytest.raises(ConfigError, match="unknown config key 'bogus'.*max_steps"):
        load_config(None, ["bogus=1"])


def test_unknown_yaml_key_and_bad_types_are_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("window:\n  frame: 8\n")
    with pytest.raises(ConfigError, match="window.frame'.*window.frames"):
        load_config(path)
    path.write_text("max_steps: lots\n")
    with pytest.raises(ConfigError, match="max_steps.*integer"):
        load_config(path)
    with pytest.raises(ConfigError, match="is a section"):
        load_config(None, ["optimizer=1"])
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config(None, ["mixed_precision=fp8"])
    with pytest.raises(ConfigError, match="loss.min_snr_gamma must be >= 0"):
        load_config(None, ["loss.min_snr_gamma=-1"])


def test_cli_reports_unknown_key_with_exit_code_2(capsys: pytest.CaptureFixture) -> None:
    assert main(["fit", "-c", str(CONFIGS / "tiny_cpu.yaml"), "--set", "optimizer.lrr=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'optimizer.lrr'" in err and "optimizer.lr" in err
    assert main(["fit", "-c", str(CONFIGS / "tiny_cpu.yaml"), "--set", "max_steps=3", "--print-config"]) == 0
    assert "max_steps: 3" in capsys.readouterr().out


def test_every_key_can_be_overridden() -> None:
    keys = valid_keys()
    assert "augmentation.snr_min" in keys and "pruning.drop_fraction" in keys and "lora.enabled" in keys
    config = load_config(None, ["augmentation.snr_min=0.5", "augmentation.snr_max=1.0"])
    assert (config.augmentation.snr_min, config.augmentation.snr_max) == (0.5, 1.0)


def test_config_changes_ignore_bookkeeping_keys() -> None:
    old = load_config(CONFIGS / "tiny_cpu.yaml")
    new = load_config(CONFIGS / "tiny_cpu.yaml", ["checkpoint.every=3", "logging.every=1", "output_dir=/elsewhere"])
    assert config_changes(to_dict(old), new) == []
    changed = load_config(CONFIGS / "tiny_cpu.yaml", ["augmentation.snr_min=0.66"])
    assert [c[0] for c in config_changes(to_dict(old), changed)] == ["augmentation.snr_min"]


def test_window_that_exceeds_positions_is_rejected() -> None:
    config = load_config(None, ["window.frames=16", "window.extrapolate_strides=[4]"])
    with pytest.raises(ConfigError, match="max_positions"):
        check_window_config(config.window, config.model.max_positions)


def test_8bit_adam_gives_a_clear_message_without_gpu() -> None:
    config = load_config(None, ["optimizer.name=adamw8bit"])
    params = [torch.nn.Parameter(torch.zeros(2))]
    with pytest.raises(OptimizerUnavailable, match="CUDA GPU.*optimizer.name=adamw"):
        build_optimizer([{"params": params}], config.optimizer, torch.device("cpu"))


def test_learning_rate_schedule() -> None:
    assert lr_lambda(0, 10, 100, "cosine") == pytest.approx(0.1)
    assert lr_lambda(9, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_lambda(10, 10, 100, "cosine") == pytest.approx(1.0)
    assert lr_lambda(55, 10, 100, "cosine") == pytest.approx(0.5)
    assert lr_lambda(100, 10, 100, "cosine") == pytest.approx(0.0)
    assert lr_lambda(90, 10, 100, "constant") == 1.0
