"""Checkpoints: a SIGKILLed run resumed ends bitwise equal to an uninterrupted one; a failed save (disk
full) keeps the previous checkpoint loadable; the save is durable (fsync before and after the rename);
a changed config is refused on resume."""

from __future__ import annotations

import errno
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import train.fit as fit_module
from train.checkpoint import STATE_FILE, CheckpointError, list_checkpoints, resolve_resume, save_checkpoint
from train.config import load_config
from train.fit import fit
from zizi_models.temporal import load_temporal_model

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "train" / "configs" / "tiny_cpu.yaml"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


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


def test_sigkill_then_resume_is_bitwise_identical(tmp_path: Path, train_dataset: Path, tiny_sd15_path: Path) -> None:
    # pruning at step 3 (after the kill) must also replay identically from the checkpoint's loss records
    common = _common(train_dataset, tiny_sd15_path, max_steps=5, **{
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


def test_failed_checkpoint_keeps_the_previous_one(tmp_path: Path, train_dataset: Path, tiny_sd15_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "run"
    common = _common(train_dataset, tiny_sd15_path, max_steps=2, output_dir=output, **{"checkpoint.every": 1})
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


def test_resume_refuses_a_changed_config(tmp_path: Path, train_dataset: Path, tiny_sd15_path: Path) -> None:
    output = tmp_path / "run"
    common = _common(train_dataset, tiny_sd15_path, max_steps=1, output_dir=output)
    fit(load_config(TINY, common))
    changed = load_config(TINY, common + ["max_steps=2", "augmentation.snr_min=0.66"])
    with pytest.raises(ValueError, match="augmentation.snr_min: 0.25 -> 0.66.*--allow-config-change"):
        fit(changed, resume="latest")
    result = fit(changed, resume="latest", allow_config_change=True)
    assert result.step == 2
    state = torch.load(list_checkpoints(output)[-1] / "custom_checkpoint_1.pkl", weights_only=False)
    assert state["config_changes"][0]["step"] == 1


def _write_state(folder: Path) -> None:
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "sub").mkdir()
    (folder / "sub" / "random_states_0.pkl").write_bytes(b"rng")


def _write_extras(folder: Path) -> None:
    (folder / STATE_FILE).write_text("{}")


def _identity(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_dev, info.st_ino


def test_checkpoint_is_fsynced_before_and_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[tuple[str, object]] = []
    real_fsync, real_rename = os.fsync, os.rename

    def fsync(fd: int) -> None:
        info = os.fstat(fd)
        events.append(("fsync", (info.st_dev, info.st_ino)))
        real_fsync(fd)

    def rename(src, dst, *args, **kwargs) -> None:
        events.append(("rename", Path(dst).name))
        real_rename(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)
    final = save_checkpoint(tmp_path / "run", 3, _write_state, _write_extras, is_main=True, barrier=lambda: None, keep=2)
    monkeypatch.undo()

    assert final.name == "step_0000003" and events.count(("rename", final.name)) == 1
    at = events.index(("rename", final.name))
    before = [identity for kind, identity in events[:at] if kind == "fsync"]
    after = [identity for kind, identity in events[at + 1:] if kind == "fsync"]
    files = [final / "model.safetensors", final / "sub" / "random_states_0.pkl", final / STATE_FILE]
    order = [_identity(p) for p in [*files, final / "sub", final]]  # files, then folders from the deepest up
    assert all(identity in before for identity in order), "a file or folder was not fsync'ed before the rename"
    assert sorted(order, key=before.index) == order
    assert _identity(final.parent) in after, "checkpoints/ not fsync'ed after the rename"
    assert _identity(tmp_path / "run") in after, "the save created checkpoints/ but did not fsync its parent"


def test_a_failed_fsync_fails_the_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    output = tmp_path / "run"
    save_checkpoint(output, 1, _write_state, _write_extras, is_main=True, barrier=lambda: None, keep=5)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(CheckpointError, match="step_0000002 failed.*Input/output error.*step_0000001"):
        save_checkpoint(output, 2, _write_state, _write_extras, is_main=True, barrier=lambda: None, keep=5)

    def folders_unsupported(fd: int) -> None:  # e.g. a file system that refuses fsync on folders
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", folders_unsupported)
    save_checkpoint(output, 2, _write_state, _write_extras, is_main=True, barrier=lambda: None, keep=5)
    monkeypatch.undo()
    assert [p.name for p in list_checkpoints(output)] == ["step_0000001", "step_0000002"]
    assert sorted(p.name for p in (output / "checkpoints").iterdir()) == ["step_0000001", "step_0000002"]
