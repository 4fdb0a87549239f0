"""The ONE module of the pack that touches ComfyUI internals.

Everything else in ``nodes/`` goes through these functions, so a ComfyUI update that moves an
internal breaks this file only (and the real-server tests catch it). ``zizi_models/`` and ``train/``
never import ComfyUI at all.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import comfy.model_management
import comfy.utils
import folder_paths

log = logging.getLogger(__name__)

ZIZI_MODEL_FOLDER = "zizi"
ANIMATEDIFF_MODEL_FOLDER = "animatediff_models"
SAFETENSORS_EXTENSIONS = {".safetensors"}


def register_model_folders() -> None:
    """Register ``models/zizi`` (our temporal modules) and ``models/animatediff_models`` with ComfyUI.

    Idempotent, and it keeps paths other packs or ``extra_model_paths.yaml`` added before us.
    """
    for name in (ZIZI_MODEL_FOLDER, ANIMATEDIFF_MODEL_FOLDER):
        default = os.path.join(folder_paths.models_dir, name)
        if name in folder_paths.folder_names_and_paths:
            paths, extensions = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            extensions.update(SAFETENSORS_EXTENSIONS)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(SAFETENSORS_EXTENSIONS))


def progress_bar(total: int) -> comfy.utils.ProgressBar:
    """ComfyUI's progress bar (shown on the node in the UI and sent as websocket ``progress`` events)."""
    return comfy.utils.ProgressBar(total)


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel or POSTed ``/interrupt``."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def input_directory() -> Path:
    return Path(folder_paths.get_input_directory())


def output_directory() -> Path:
    return Path(folder_paths.get_output_directory())


def list_input_files(content_type: str) -> list[str]:
    """Files in ComfyUI's input folder of one content type ("video", "image"), sorted, for a combo input."""
    root = input_directory()
    if not root.is_dir():
        return []
    names = [f.name for f in root.iterdir() if f.is_file()]
    return sorted(folder_paths.filter_files_content_types(names, [content_type]))


def resolve_input_file(name: str, input_name: str) -> Path:
    """Resolve a file name received from the UI/API strictly inside ComfyUI's input folders.

    ``input_name`` is the node input it came from, used in the error message.
    """
    path = Path(folder_paths.get_annotated_filepath(name)).resolve()
    allowed = [input_directory().resolve(), output_directory().resolve(), Path(folder_paths.get_temp_directory()).resolve()]
    if not any(path.is_relative_to(root) for root in allowed):
        raise ValueError(f"{input_name}: {name!r} points outside ComfyUI's input folder; pick a file from the list")
    if not path.is_file():
        raise FileNotFoundError(f"{input_name}: {name!r} not found in {input_directory()}; upload it there first")
    return path


def resolve_model_file(folder: str, name: str, input_name: str) -> Path:
    """Resolve a model file name strictly inside the ComfyUI model folder ``folder``."""
    path = folder_paths.get_full_path(folder, name)
    if path is None:
        searched = ", ".join(folder_paths.get_folder_paths(folder)) if folder in folder_paths.folder_names_and_paths else "?"
        raise FileNotFoundError(f"{input_name}: {name!r} not found in the {folder!r} model folders ({searched})")
    return Path(path)


def save_path(filename_prefix: str, width: int, height: int) -> tuple[Path, str, int, str]:
    """Where an output file with ``filename_prefix`` goes: (folder, file stem, counter, subfolder)."""
    full_folder, filename, counter, subfolder, _ = folder_paths.get_save_image_path(
        filename_prefix, str(output_directory()), width, height
    )
    return Path(full_folder), filename, counter, subfolder
