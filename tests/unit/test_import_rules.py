"""The layering rules of DESIGN.md, read off the source with ``ast`` (no module is imported).

- ``zizi_models/`` and ``train/`` import no ComfyUI, no ``nodes``, no ``devtools``;
- in ``nodes/`` only the boundary package ``nodes/comfy/`` imports ComfyUI's modules;
- node modules (files that define ``NODE_CLASS_MAPPINGS``) do not import each other;
- no source file is over 500 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
COMFY_MODULES = {"comfy", "comfy_extras", "comfy_execution", "folder_paths", "server", "latent_preview", "execution",
                 "node_helpers", "comfy_api"}
MAX_LINES = 500


def python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (REPO / folder).rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, level) of every import in the file: level 0 absolute, 1 ``from .x``, 2 ``from ..x``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.module is None:  # from . import a, b
                out += [(alias.name, node.level) for alias in node.names]
            else:
                out.append((node.module, node.level))
    return out


def resolved_package_path(path: Path, module: str, level: int, root: Path = REPO) -> str | None:
    """A relative import as a path inside ``root`` ('nodes/comfy/folders'), None for an absolute one."""
    if level == 0:
        return None
    base = path.parent
    for _ in range(level - 1):
        base = base.parent
    return (base.relative_to(root) / module.replace(".", "/")).as_posix()


def violations(path: Path, forbidden: set[str], root: Path = REPO) -> list[str]:
    """Imports of ``forbidden`` top-level names: absolute (``import comfy``) or, for the pack's own
    folders, relative (``from ..nodes import x``)."""
    found = []
    for module, level in imported_modules(path):
        name = module if level == 0 else resolved_package_path(path, module, level, root)
        if name.replace("/", ".").split(".")[0] in forbidden:
            found.append(f"{'.' * level}{module}")
    return found


@pytest.mark.parametrize("folder", ["zizi_models", "train"])
def test_core_packages_import_no_comfyui_nodes_or_devtools(folder: str) -> None:
    bad = {str(p.relative_to(REPO)): v for p in python_files(folder)
           if (v := violations(p, COMFY_MODULES | {"nodes", "devtools"}))}
    assert bad == {}


def test_only_the_boundary_package_imports_comfyui() -> None:
    outside = [p for p in python_files("nodes") if "comfy" not in p.relative_to(REPO / "nodes").parts[:1]]
    assert outside, "nodes/ has node modules"
    bad = {str(p.relative_to(REPO)): v for p in outside if (v := violations(p, COMFY_MODULES))}
    assert bad == {}


def node_modules() -> list[Path]:
    return [p for p in python_files("nodes") if "NODE_CLASS_MAPPINGS = " in p.read_text() and p.name != "__init__.py"]


def test_node_modules_do_not_import_each_other() -> None:
    names = {p.relative_to(REPO).with_suffix("").as_posix() for p in node_modules()}
    assert len(names) >= 6
    bad = {}
    for path in node_modules():
        imported = {resolved_package_path(path, m, level) for m, level in imported_modules(path) if level}
        others = sorted(imported & names)
        if others:
            bad[str(path.relative_to(REPO))] = others
    assert bad == {}


def test_the_rule_checker_sees_violations(tmp_path: Path) -> None:
    """The checks above can fail: ComfyUI imported absolutely, nodes/ imported relatively from train/."""
    probe = tmp_path / "train" / "probe.py"
    probe.parent.mkdir()
    probe.write_text("import os\nimport folder_paths\nimport comfy.sample\nfrom ..nodes.comfy import folders\n"
                     "from . import config\n")
    assert violations(probe, COMFY_MODULES | {"nodes"}, root=tmp_path) == ["folder_paths", "comfy.sample", "..nodes.comfy"]


def test_no_source_file_is_over_500_lines() -> None:
    long = {str(p.relative_to(REPO)): n for p in python_files("nodes", "zizi_models", "train", "devtools", "bench", "tests")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
