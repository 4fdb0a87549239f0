"""Import ComfyUI into the current process and this pack as the package ``zizi_video``, the way
ComfyUI imports custom nodes. For tests and benchmarks that call the pack's ComfyUI side directly."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent
PACK_MODULE = "zizi_video"


def import_pack(comfyui_dir: Path, cpu: bool | None = None) -> ModuleType:
    """Returns the pack module (``pack.nodes.comfy``, ``pack.zizi_models`` ...).

    cpu: run ComfyUI on the CPU (``main.py --cpu``); default: when torch sees no usable GPU.
    """
    if str(comfyui_dir) not in sys.path:
        sys.path.insert(0, str(comfyui_dir))
    import torch
    from comfy.cli_args import args

    # must be decided before comfy.model_management is imported
    args.cpu = args.cpu or (cpu if cpu is not None else not torch.cuda.is_available())
    import folder_paths  # noqa: F401 - ComfyUI is "running": the pack registers its nodes

    if PACK_MODULE not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK_MODULE, REPO_ROOT / "__init__.py", submodule_search_locations=[str(REPO_ROOT)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_MODULE] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_MODULE]
