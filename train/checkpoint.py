"""Atomic, resumable checkpoints: `<output>/checkpoints/step_XXXXXXX/`.

A checkpoint is written into `checkpoints/.tmp-step_XXXXXXX/` (same file system), every file and the
folder are fsync'ed, and only then is the folder renamed to its final name, so a checkpoint folder
either is complete or does not exist: a crash, SIGKILL or full disk while saving leaves the previous
checkpoints untouched (a leftover `.tmp-*` folder is ignored and removed by the next run).

Contents (accelerate's `save_state` + ours):
    model.safetensors          trainable weights (temporal model [+ LoRA A/B]) as accelerate wraps them
    optimizer.bin, scheduler.bin, scaler.pt (fp16), random_states_<rank>.pkl   (accelerate)
    custom_checkpoint_0.pkl    learning-rate schedule
    custom_checkpoint_1.pkl    trainer state: step, data position, active clips, per-clip losses
    custom_checkpoint_2.pkl    EMA shadow weights (when EMA is on)
    temporal.safetensors       the temporal model in the Zizi format (what `export` reads)
    temporal_ema.safetensors   the same with EMA weights (when EMA is on)
    lora.safetensors, lora_ema.safetensors   LoRA A/B weights, diffusers names (when LoRA is on)
    config.yaml                the resolved config
    trainer_state.json         human-readable summary; written last
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
TMP_PREFIX = ".tmp-"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^step_(\d{7,})$")


class CheckpointError(RuntimeError):
    pass


def checkpoint_name(step: int) -> str:
    return f"step_{step:07d}"


def checkpoints_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / CHECKPOINTS


def list_checkpoints(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints, oldest first."""
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_dir() and (path / STATE_FILE).is_file():
            found.append((int(match.group(1)), path))
    return [path for _, path in sorted(found)]


def checkpoint_step(path: str | Path) -> int:
    match = _NAME.match(Path(path).name)
    if not match:
        raise ValueError(f"{path} is not a checkpoint folder (step_XXXXXXX)")
    return int(match.group(1))


def resolve_resume(output_dir: str | Path, resume: str | None) -> Path | None:
    """`latest` -> newest complete checkpoint of the run (None when there is none); a path -> that checkpoint."""
    if not resume:
        return None
    if resume == "latest":
        found = list_checkpoints(output_dir)
        return found[-1] if found else None
    path = Path(resume)
    if path.is_dir() and (path / STATE_FILE).is_file():
        return path
    if path.is_dir() and list_checkpoints(path):  # a run folder: its latest checkpoint
        return list_checkpoints(path)[-1]
    raise CheckpointError(f"--resume {resume}: not a complete checkpoint folder (no {STATE_FILE}) nor a run folder")


def remove_stale_temporaries(output_dir: str | Path) -> None:
    root = checkpoints_root(output_dir)
    if not root.is_dir():
        return
    for path in root.iterdir():
        if path.name.startswith(TMP_PREFIX):
            logger.warning("removing an unfinished checkpoint %s (interrupted while saving)", path)
            shutil.rmtree(path, ignore_errors=True)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            _fsync(path)
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        _fsync(path)
    _fsync(folder)


def save_checkpoint(
    output_dir: str | Path,
    step: int,
    write_state: Callable[[Path], None],
    write_extras: Callable[[Path], None],
    is_main: bool,
    barrier: Callable[[], None],
    keep: int,
) -> Path:
    """Write checkpoint `step` atomically; keep the newest `keep`.

    write_state(folder): every process (accelerate's save_state); write_extras(folder): main process
    only, must write STATE_FILE last. On failure the temporary folder is removed, earlier checkpoints
    are untouched, and CheckpointError is raised.
    """
    root = checkpoints_root(output_dir)
    final = root / checkpoint_name(step)
    tmp = root / (TMP_PREFIX + checkpoint_name(step))
    if final.is_dir() and (final / STATE_FILE).is_file():
        logger.info("checkpoint %s already exists", final)
        return final
    try:
        if is_main:
            root.mkdir(parents=True, exist_ok=True)
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir()
        barrier()
        write_state(tmp)
        barrier()
        if is_main:
            write_extras(tmp)
            if not (tmp / STATE_FILE).is_file():
                raise CheckpointError(f"write_extras did not write {STATE_FILE}")
            fsync_tree(tmp)
            if final.exists():  # an incomplete folder with the final name (should not happen): replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            _fsync(root)
    except Exception as err:
        if is_main:
            shutil.rmtree(tmp, ignore_errors=True)
        previous = [p.name for p in list_checkpoints(output_dir)]
        raise CheckpointError(
            f"saving checkpoint {final.name} failed ({type(err).__name__}: {err}); earlier checkpoints are intact "
            f"({', '.join(previous) or 'none'}); free space / fix the cause and rerun with --resume latest"
        ) from err
    barrier()
    if is_main:
        for old in list_checkpoints(output_dir)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
            logger.info("removed old checkpoint %s (keep %d)", old.name, keep)
    barrier()
    if is_main:
        logger.info("saved checkpoint %s", final)
    return final
