"""ComfyUI's folders: model folders the pack registers, input/output files, save paths.

Every file name that arrives through the UI or the API is resolved here, strictly inside ComfyUI's folders.
"""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths

ZIZI_MODEL_FOLDER = "zizi"
ANIMATEDIFF_MODEL_FOLDER = "animatediff_models"
POSE_MODEL_FOLDER = "pose"
ZIZI_CHECKPOINT_FOLDER = "zizi_checkpoints"  # Zizi small models (whole SD1.5-family model in one file)
# folder name -> file extensions listed for it
MODEL_FOLDERS = {
    ZIZI_MODEL_FOLDER: {".safetensors", ".ckpt", ".pt"},  # pickled files: torch.load(weights_only=True) only
    ANIMATEDIFF_MODEL_FOLDER: {".safetensors", ".ckpt", ".pt"},
    POSE_MODEL_FOLDER: {".pth", ".onnx", ".pt", ".torchscript"},
    ZIZI_CHECKPOINT_FOLDER: {".safetensors"},
}
# folder name -> folders inside the pack searched after ComfyUI's models/<name> (weights shipped with the pack)
PACK_WEIGHTS = str(Path(__file__).resolve().parents[2] / "weights")  # the shipped puppet model's two files
PACK_MODEL_PATHS = {ZIZI_CHECKPOINT_FOLDER: [PACK_WEIGHTS], "zizi": [PACK_WEIGHTS]}


def register_model_folders() -> None:
    """Register ``models/zizi`` (temporal modules), ``models/animatediff_models``, ``models/pose``
    (OpenPose/DWPose weights) and ``models/zizi_checkpoints`` + the pack's ``weights/`` (small models) with ComfyUI.

    Idempotent, and it keeps paths other packs or ``extra_model_paths.yaml`` added before us.
    """
    for name, wanted in MODEL_FOLDERS.items():
        default = os.path.join(folder_paths.models_dir, name)
        if name in folder_paths.folder_names_and_paths:
            paths, extensions = folder_paths.folder_names_and_paths[name]
            if default not in paths:
                paths.append(default)
            extensions.update(wanted)
        else:
            folder_paths.folder_names_and_paths[name] = ([default], set(wanted))
        paths = folder_paths.folder_names_and_paths[name][0]
        paths.extend(p for p in PACK_MODEL_PATHS.get(name, ()) if p not in paths)


def model_folder_paths(folder: str) -> list[Path]:
    """Every directory registered for a model folder (default first, then extra_model_paths.yaml ones)."""
    return [Path(p) for p in folder_paths.get_folder_paths(folder)]


def list_model_files(folder: str) -> list[str]:
    """Files of a model folder, as names relative to it, for a combo input."""
    return folder_paths.get_filename_list(folder)


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


def list_input_files_with_suffix(suffixes: set[str]) -> list[str]:
    """Files in ComfyUI's input folder with one of ``suffixes`` (e.g. {".json"}), sorted."""
    root = input_directory()
    if not root.is_dir():
        return []
    return sorted(f.name for f in root.iterdir() if f.is_file() and f.suffix.lower() in suffixes)


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
