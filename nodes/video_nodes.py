"""Video file nodes: load frames from a video in ComfyUI's input folder, save frames as an mp4/webm."""

from __future__ import annotations

import hashlib
import logging

import torch

from ..zizi_models.video_io import VIDEO_FORMATS, VideoWriter, probe_video, read_video, resize_and_crop
from .comfy import folders, runtime

log = logging.getLogger(__name__)

SAVE_CHUNK_FRAMES = 16


class ZiziLoadVideo:
    """Decode a video from ComfyUI's input folder into an IMAGE batch (time = batch axis)."""

    CATEGORY = "Zizi Video/io"
    RETURN_TYPES = ("IMAGE", "FLOAT", "INT")
    RETURN_NAMES = ("frames", "fps", "frame_count")
    FUNCTION = "load"
    DESCRIPTION = "Loads frames of a video from ComfyUI's input folder, optionally resampled to a new fps and resized."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "video": (folders.list_input_files("video"), {"video_upload": True}),
                "fps": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 240.0, "step": 0.5,
                                  "tooltip": "Resample to this frame rate (nearest frame). 0 keeps the source rate."}),
                "start_seconds": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 1e6, "step": 0.1}),
                "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000, "tooltip": "0 = all frames"}),
                "width": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8, "tooltip": "0 keeps the source size"}),
                "height": ("INT", {"default": 0, "min": 0, "max": 8192, "step": 8, "tooltip": "0 keeps the source size"}),
            }
        }

    @classmethod
    def IS_CHANGED(cls, video: str, **_: object) -> str:
        path = folders.resolve_input_file(video, "video")
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    @classmethod
    def VALIDATE_INPUTS(cls, video: str, width: int = 0, height: int = 0) -> bool | str:
        try:
            folders.resolve_input_file(video, "video")
        except (FileNotFoundError, ValueError) as e:
            return str(e)
        if (width == 0) != (height == 0):
            return f"width and height: set both (got {width}x{height}) or leave both at 0 to keep the source size"
        return True

    def load(self, video: str, fps: float, start_seconds: float, max_frames: int, width: int, height: int):
        path = folders.resolve_input_file(video, "video")
        try:
            frames, out_fps = read_video(
                path, target_fps=fps or None, start_s=start_seconds, max_frames=max_frames or None
            )
        except (ValueError, OSError) as e:
            raise ValueError(f"video: cannot decode {video!r}: {e}") from e
        if width and height:
            frames = resize_and_crop(frames, width, height)
        images = torch.from_numpy(frames).float().div_(255.0)  # [F, H, W, 3] in 0..1
        log.info("loaded %d frames %dx%d at %.3g fps from %s", len(frames), frames.shape[2], frames.shape[1], out_fps, path.name)
        return (images, float(out_fps), len(frames))


class ZiziSaveVideo:
    """Encode an IMAGE batch into a video file in ComfyUI's output folder, chunk by chunk."""

    CATEGORY = "Zizi Video/io"
    RETURN_TYPES = ()
    OUTPUT_NODE = True
    FUNCTION = "save"
    DESCRIPTION = "Saves the frames as an H.264 mp4 or VP9 webm in ComfyUI's output folder."

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "images": ("IMAGE",),
                "fps": ("FLOAT", {"default": 12.0, "min": 0.1, "max": 240.0, "step": 0.5}),
                "filename_prefix": ("STRING", {"default": "zizi/video"}),
                "format": (sorted(VIDEO_FORMATS), {"default": "mp4"}),
            }
        }

    def save(self, images: torch.Tensor, fps: float, filename_prefix: str, format: str):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images: expected an IMAGE batch [frames, height, width, 3], got {tuple(images.shape)}")
        frame_count, height, width, _ = images.shape
        folder, stem, counter, subfolder = folders.save_path(filename_prefix, width, height)
        filename = f"{stem}_{counter:05}_.{format}"  # trailing "_" lets ComfyUI count up
        progress = runtime.progress_bar(frame_count)
        writer = VideoWriter(folder / filename, fps, format)
        try:
            for start in range(0, frame_count, SAVE_CHUNK_FRAMES):
                runtime.throw_if_interrupted()
                chunk = images[start : start + SAVE_CHUNK_FRAMES].cpu().numpy()
                writer.write(chunk)
                progress.update(len(chunk))
        finally:
            writer.close()  # an interrupted save still leaves a playable file with what was written
        info = probe_video(folder / filename)
        log.info("saved %d frames (%dx%d, %.3g fps) to %s", writer.frames_written, info.width, info.height, fps, folder / filename)
        result = {"filename": filename, "subfolder": subfolder, "type": "output"}
        return {"ui": {"images": [result], "animated": (True,)}}


NODE_CLASS_MAPPINGS = {
    "ZiziLoadVideo": ZiziLoadVideo,
    "ZiziSaveVideo": ZiziSaveVideo,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "ZiziLoadVideo": "Zizi Load Video",
    "ZiziSaveVideo": "Zizi Save Video",
}
