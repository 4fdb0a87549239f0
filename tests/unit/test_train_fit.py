"""fit end to end on the tiny model: preprocess -> 50 steps -> the loss really drops; logs, videos, checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train.checkpoint import list_checkpoints
from train.config import load_config
from train.fit import fit
from zizi_models.video_io import probe_video

TINY = Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_fit_50_steps_lowers_the_loss(tmp_path: Path, train_dataset: Path, tiny_sd15_path: Path,
                                      caplog: pytest.LogCaptureFixture) -> None:
    config = load_config(TINY, [
        f"data.dataset={train_dataset}", f"model.pretrained={tiny_sd15_path}", f"output_dir={tmp_path / 'run'}",
        "max_steps=50", "data.batch_size=1", "checkpoint.every=20", "checkpoint.keep=2",
        "validation.every=50", "validation.steps=2", "logging.every=10", "logging.progress_bar=false",
    ])
    with caplog.at_level(logging.INFO, logger="train.monitor"):
        result = fit(config)
    assert result.step == 50 and len(result.losses) == 50
    # no progress bar: every logging.every steps an INFO line reports the loss (headless runs)
    progress = [r.getMessage() for r in caplog.records if r.name == "train.monitor" and r.levelno == logging.INFO]
    assert [m.split()[1] for m in progress] == ["10", "20", "30", "40", "50"]
    assert f"loss {result.losses[9]:.5f}" in progress[0]
    first, last = sum(result.losses[:10]) / 10, sum(result.losses[-10:]) / 10
    assert last < 0.9 * first, f"loss did not drop: first 10 steps {first:.4f}, last 10 steps {last:.4f}"

    run = tmp_path / "run"
    assert [p.name for p in list_checkpoints(run)] == ["step_0000040", "step_0000050"]  # keep 2; the end is saved
    assert not any(p.name.startswith(".tmp") for p in (run / "checkpoints").iterdir())
    video = probe_video(run / "validation" / "step_0000050.mp4")  # sampled | real, side by side
    assert (video.width, video.height) == (128, 64)
    assert list((run / "logs").rglob("events.out.tfevents.*"))


def test_gradient_checkpointing_gives_the_same_update(tmp_path: Path, train_dataset: Path, tiny_sd15_path: Path) -> None:
    weights = []
    for checkpointing in ("false", "true"):
        output = tmp_path / checkpointing
        fit(load_config(TINY, [
            f"data.dataset={train_dataset}", f"model.pretrained={tiny_sd15_path}", f"output_dir={output}", "max_steps=1",
            "checkpoint.every=1", "data.batch_size=1", f"model.gradient_checkpointing={checkpointing}",
            "logging.progress_bar=false", "logging.tensorboard=false",
        ]))
        weights.append(load_file(str(output / "checkpoints" / "step_0000001" / "temporal.safetensors")))
    plain, recomputed = weights
    for key in plain:
        torch.testing.assert_close(recomputed[key], plain[key], rtol=1e-5, atol=1e-6, msg=key)


def test_a_low_precision_backbone_trains_without_accelerates_autocast(tmp_path: Path, train_dataset: Path,
                                                                       tiny_sd15_path: Path, monkeypatch) -> None:
    """Under DeepSpeed accelerate never autocasts (its native_amp stays off: DeepSpeed owns the precision), so the
    fit step must autocast itself: the bf16 backbone meets fp32 latents (the likely cause of the DeepSpeed row's
    failure in the forward on an H200, docs/benchmarks.md)."""
    import train.fit as fit_module

    made = []

    def accelerator_without_native_amp(config):
        accelerator = make_accelerator(config)
        accelerator.native_amp = False  # what Accelerator.__init__ leaves for DistributedType.DEEPSPEED
        made.append(accelerator)
        return accelerator

    make_accelerator = fit_module.make_accelerator
    monkeypatch.setattr(fit_module, "make_accelerator", accelerator_without_native_amp)
    result = fit(load_config(TINY, [
        f"data.dataset={train_dataset}", f"model.pretrained={tiny_sd15_path}", f"output_dir={tmp_path / 'run'}",
        "max_steps=2", "data.batch_size=1", "mixed_precision=bf16", "checkpoint.every=2",
        "validation.every=2", "validation.steps=1", "logging.progress_bar=false", "logging.tensorboard=false",
    ]))
    assert made and not made[0].native_amp
    assert result.step == 2 and all(torch.isfinite(torch.tensor(result.losses)))
    assert (tmp_path / "run" / "validation" / "step_0000002.mp4").is_file()  # validation sampled in bf16 too
