"""A ComfyUI server with ComfyUI-AnimateDiff-Evolved 1.5.7 (from ``../shared/anchors/``) beside this pack.

Used by the parity test and by ``bench/versus_ade.py``: the peer users trust, installed the way a user
installs it (extracted into ``custom_nodes``), with the same random files in both packs' folders.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from devtools.comfy_server import ComfyServer

ADE_TARBALL = Path(__file__).resolve().parents[2] / "shared" / "anchors" / "ComfyUI-AnimateDiff-Evolved-1.5.7.tar.gz"
ADE_LOADER = "ADE_AnimateDiffLoaderGen1"
OUR_ANIMATEDIFF_PREFIX = "animatediff_models/"  # how ZiziTemporalModelLoader lists models/animatediff_models


def server_with_ade(comfy_dir: Path, base: Path, checkpoints: dict[str, Path], motion_modules: dict[str, Path],
                    extra_args: tuple[str, ...] = ()) -> ComfyServer:
    """A prepared (not started) server under ``base`` with ADE extracted into its custom_nodes and the given
    files linked into ``models/checkpoints`` and ``models/animatediff_models`` under the given names."""
    if not ADE_TARBALL.is_file():
        raise FileNotFoundError(f"{ADE_TARBALL} is missing: it comes with ../shared/anchors/")
    server = ComfyServer(comfy_dir, base, extra_args=extra_args)
    server.prepare()
    with tarfile.open(ADE_TARBALL) as archive:
        archive.extractall(base / "custom_nodes", filter="data")
    for folder, files in (("checkpoints", checkpoints), ("animatediff_models", motion_modules)):
        (server.models_dir / folder).mkdir(parents=True, exist_ok=True)
        for name, source in files.items():
            link = server.models_dir / folder / name
            if not link.exists():
                link.symlink_to(source)
    return server
