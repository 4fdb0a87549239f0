"""Atomic, resumable checkpoints: `<output>/checkpoints/step_XXXXXXX/`.

A checkpoint is written into `checkpoints/.tmp-step_XXXXXXX/` (same file system), every file and then
every folder of it are fsync'ed, and only then is the folder renamed to its final name; after the rename
`checkpoints/` itself is fsync'ed (and its parent when this save created it), so the new name is on disk
before the run goes on (and before older checkpoints are deleted). A checkpoint folder either is complete
or does not exist: a crash, SIGKILL, power loss or full disk while saving leaves the previous checkpoints
untouched (a leftover `.tmp-*` folder is ignored and removed by the next run). A file whose fsync fails
(EIO, ENOSPC) fails the save; a folder is fsync'ed where the OS and file system support it (not on
Windows, which cannot open folders; file systems that refuse it with EINVAL / ENOTSUP are skipped).

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

import errno
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


# errors meaning "this OS / file system cannot fsync a folder", not "the data did not reach the disk"
_DIR_FSYNC_UNSUPPORTED = {errno.EINVAL, errno.EBADF, errno.EACCES, errno.EPERM, errno.EISDIR,
                          getattr(errno, "ENOTSUP", errno.EINVAL), getattr(errno, "EOPNOTSUPP", errno.EINVAL)}


def fsync_file(path: Path) -> None:
    """Flush a file's data and metadata to the disk; an error (EIO, ENOSPC, ...) propagates."""
    # POSIX fsyncs a read-only descriptor; Windows' _commit needs one opened for writing
    flags = (os.O_RDWR if os.name == "nt" else os.O_RDONLY) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created, renamed or removed in it) to the disk, where supported."""
    if os.name == "nt":  # folders cannot be opened with os.open; NTFS journals its metadata
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as err:
        if err.errno in _DIR_FSYNC_UNSUPPORTED:
            return
        raise
    try:
        os.fsync(fd)
    except OSError as err:
        if err.errno not in _DIR_FSYNC_UNSUPPORTED:
            raise
        logger.debug("fsync of folder %s not supported here (%s)", path, err)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file under `folder`, then every folder from the deepest up, `folder` last."""
    paths = sorted(folder.rglob("*"))
    for path in paths:
        if path.is_file() and not path.is_symlink():
            fsync_file(path)
    for path in sorted((p for p in paths if p.is_dir() and not p.is_symlink()), key=lambda p: len(p.parts), reverse=True):
        fsync_dir(path)
    fsync_dir(folder)


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
            created_root = not root.is_dir()
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
            fsync_tree(tmp)  # contents durable before the name says "complete"
            if final.exists():  # an incomplete folder with the final name (should not happen): replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
            fsync_dir(root)  # the rename itself durable
            if created_root:
                fsync_dir(root.parent)
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
