"""Checkpoints: a SIGKILLed run resumed ends bitwise equal to an uninterrupted one; a failed save (disk
full) keeps the previous checkpoint loadable; a changed config is refused on resume."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import train.fit as fit_module
from train.checkpoint import CheckpointError, list_checkpoints, resolve_resume
from train.config import load_config
from train.fit import fit
from train.synthetic import ensure_dataset
from zizi_models.temporal import load_temporal_model

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "train" / "configs" / "tiny_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")



@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory, tiny_sd15_path: Path) -> Path:
    return ensure_dataset(tmp_path_factory.getbasetemp() / "zizi_train_dataset", tiny_sd15_path)


def _common(dataset: Path, tiny: Path, **extra: object) -> list[str]:
    settings = {
        "data.dataset": dataset, "model.pretrained": tiny, "data.batch_size": 1, "logging.progress_bar": "false",
        "logging.tensorboard": "false", **extra,
    }
    return [f"{k}={v}" for k, v in settings.items()]


def _tensors_equal(a: Path, b: Path) -> None:
    left, right = load_file(str(a)), load_file(str(b))
    assert left.keys() == right.keys()
    different = [k for k in left if not torch.equal(left[k], right[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"the training process exited ({proc.returncode}) before writing {path}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


def test_sigkill_then_resume_is_bitwise_identical(tmp_path: Path, dataset: Path, tiny_sd15_path: Path) -> None:
    # pruning at step 3 (after the kill) must also replay identically from the checkpoint's loss records
    common = _common(dataset, tiny_sd15_path, max_steps=5, **{
        "checkpoint.every": 2, "checkpoint.keep": 5, "pruning.enabled": "true", "pruning.at_step": 3,
        "pruning.drop_fraction": 0.25,
    })
    killed = tmp_path / "killed"
    sets = [arg for item in common + [f"output_dir={killed}"] for arg in ("--set", item)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": str(torch.get_num_threads())}
    log = (tmp_path / "killed.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "train", "fit", "-c", str(TINY), *sets], cwd=REPO, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    _wait_for(killed / "checkpoints" / "step_0000002", proc, timeout=600)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    log.close()
    assert proc.returncode == -signal.SIGKILL, (tmp_path / "killed.log").read_text()[-2000:]
    assert not (killed / "checkpoints" / "step_0000005").exists(), "the run finished before it was killed"

    resumed = fit(load_config(TINY, common + [f"output_dir={killed}"]), resume="latest")
    assert resumed.resumed_from is not None and resumed.resumed_from.name in ("step_0000002", "step_0000004")
    reference = fit(load_config(TINY, common + [f"output_dir={tmp_path / 'reference'}"]))
    assert resumed.step == reference.step == 5

    a, b = killed / "checkpoints" / "step_0000005", tmp_path / "reference" / "checkpoints" / "step_0000005"
    for name in ("temporal.safetensors", "temporal_ema.safetensors", "model.safetensors"):
        _tensors_equal(a / name, b / name)
    state_a = torch.load(a / "custom_checkpoint_1.pkl", weights_only=False)
    state_b = torch.load(b / "custom_checkpoint_1.pkl", weights_only=False)
    assert state_a["pruned_at"] == state_b["pruned_at"] == 3
    assert state_a["active_ids"] == state_b["active_ids"] and len(state_a["active_ids"]) == 3
    assert (state_a["epoch"], state_a["position"]) == (state_b["epoch"], state_b["position"])


def test_failed_checkpoint_keeps_the_previous_one(tmp_path: Path, dataset: Path, tiny_sd15_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "run"
    common = _common(dataset, tiny_sd15_path, max_steps=2, output_dir=output, **{"checkpoint.every": 1})
    real_write = fit_module.write_weights

    def disk_full_on_second_save(folder: Path, config, temporal_config, step, *args, **kwargs):
        if step < 2:
            return real_write(folder, config, temporal_config, step, *args, **kwargs)
        (folder / "temporal.safetensors").write_bytes(b"\x00" * 1000)  # half-written, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fit_module, "write_weights", disk_full_on_second_save)
    with pytest.raises(CheckpointError, match="step_0000002 failed.*No space left.*step_0000001"):
        fit(load_config(TINY, common))
    monkeypatch.undo()

    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["step_0000001"]
    latest = resolve_resume(output, "latest")
    assert latest == list_checkpoints(output)[-1] and latest.name == "step_0000001"
    model = load_temporal_model(latest / "temporal.safetensors")
    assert sum(p.numel() for p in model.parameters()) > 0

    result = fit(load_config(TINY, common), resume="latest")
    assert result.resumed_from.name == "step_0000001" and result.step == 2
    assert [p.name for p in list_checkpoints(output)] == ["step_0000001", "step_0000002"]


def test_resume_refuses_a_changed_config(tmp_path: Path, dataset: Path, tiny_sd15_path: Path) -> None:
    output = tmp_path / "run"
    common = _common(dataset, tiny_sd15_path, max_steps=1, output_dir=output)
    fit(load_config(TINY, common))
    changed = load_config(TINY, common + ["max_steps=2", "augmentation.snr_min=0.66"])
    with pytest.raises(ValueError, match="augmentation.snr_min: 0.25 -> 0.66.*--allow-config-change"):
        fit(changed, resume="latest")
    result = fit(changed, resume="latest", allow_config_change=True)
    assert result.step == 2
    state = torch.load(list_checkpoints(output)[-1] / "custom_checkpoint_1.pkl", weights_only=False)
    assert state["config_changes"][0]["step"] == 1
