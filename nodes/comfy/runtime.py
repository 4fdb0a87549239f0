"""ComfyUI's runtime: progress bars, progress text, latent previews, interrupt checks, the compute device.

Previews and progress go through ComfyUI's own machinery, the way KSampler sends them (0.3.75 and 0.8.0
alike): ``latent_preview.get_previewer`` honours the server's ``--preview-method`` (0.8.0 also the
prompt's ``extra_data.preview_method``) and the model's ``latent_format``; ``ProgressBar.update_absolute
(value, total, preview)`` reaches the server's progress hook, which sends the websocket ``progress``
event, the binary preview image and checks for Cancel. ``PromptServer.send_progress_text`` (both
versions) shows a line of text on the node; without a server it is only logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

import comfy.model_management
import comfy.utils
import torch

log = logging.getLogger(__name__)

PREVIEW_FORMAT = "JPEG"  # what latent_preview.prepare_callback uses
MAX_PREVIEW_FRAMES = 8  # a window's preview is a strip of at most this many of its generated frames

StepCallback = Callable[[int, torch.Tensor, torch.Tensor, int], None]


def progress_bar(total: int) -> comfy.utils.ProgressBar:
    """ComfyUI's progress bar (shown on the node in the UI and sent as websocket ``progress`` events)."""
    return comfy.utils.ProgressBar(total)


def throw_if_interrupted() -> None:
    """Raise ComfyUI's interrupt exception if the user pressed Cancel or POSTed ``/interrupt``."""
    comfy.model_management.throw_exception_if_processing_interrupted()


def torch_device() -> str:
    """The device ComfyUI computes on ("cuda:0", "cpu", ...); honours ``--cpu``."""
    return str(comfy.model_management.get_torch_device())


def executing_node_id() -> str | None:
    """The id of the node ComfyUI is executing now (None outside a prompt)."""
    try:
        from comfy_execution.utils import get_executing_context
    except ImportError:  # an embedding without comfy_execution
        return None
    context = get_executing_context()
    return None if context is None else str(context.node_id)


def progress_text(text: str, node_id: str | None = None) -> None:
    """Show ``text`` on the node (``PromptServer.send_progress_text``) and log it.

    node_id: the node's ``UNIQUE_ID`` hidden input; None = the node ComfyUI is executing."""
    log.info("%s", text)
    node_id = node_id if node_id is not None else executing_node_id()
    if node_id is None:
        return
    server = sys.modules.get("server")  # ComfyUI's main.py imports it; absent in scripts and unit tests
    instance = getattr(getattr(server, "PromptServer", None), "instance", None)
    send = getattr(instance, "send_progress_text", None)
    if send is None:  # an older ComfyUI: logging only
        return
    send(text, node_id)


class SamplingProgress:
    """The node's progress bar in generated frames, advanced per sampling step, with latent previews.

    ``window_callback(model, generate)`` is a ``comfy.sample.sample`` callback for one window: after
    step i of n the bar stands at ``done + count * (i + 1) / n`` frames (count = the window's generated
    frames) and carries a preview of those frames (a strip, left to right), decoded by ComfyUI's
    previewer for the model (none with ``--preview-method none``). ``window_done`` moves ``done`` on.
    """

    def __init__(self, total_frames: int, node_id: str | None = None) -> None:
        self.total = max(int(total_frames), 1)
        self.node_id = node_id
        self.bar = comfy.utils.ProgressBar(self.total, node_id=node_id)
        self.done = 0
        self._previewers: dict[int, object] = {}  # one previewer per model per run (TAESD loads once)

    def _previewer(self, model):
        key = id(model.model)
        if key not in self._previewers:
            import latent_preview

            self._previewers[key] = latent_preview.get_previewer(model.load_device, model.model.latent_format)
        return self._previewers[key]

    def window_callback(self, model, generate: Sequence[bool] | torch.Tensor) -> StepCallback:
        index = [i for i, g in enumerate(torch.as_tensor(generate).tolist()) if g] or [0]
        count = len(index)
        shown = index[:MAX_PREVIEW_FRAMES]
        previewer = self._previewer(model)

        def callback(step: int, x0: torch.Tensor, x: torch.Tensor, total_steps: int) -> None:
            preview = None
            if previewer is not None:
                strip = torch.cat(list(x0[shown]), dim=-1).unsqueeze(0)  # [1, C, h, w * frames]
                preview = previewer.decode_latent_to_preview_image(PREVIEW_FORMAT, strip)
            value = self.done + count * min(step + 1, total_steps) / max(total_steps, 1)
            self.bar.update_absolute(min(value, self.total), self.total, preview)

        return callback

    def window_done(self, frames: int) -> None:
        self.done = min(self.done + int(frames), self.total)
        self.bar.update_absolute(self.done, self.total)

    def text(self, text: str) -> None:
        progress_text(text, self.node_id)
