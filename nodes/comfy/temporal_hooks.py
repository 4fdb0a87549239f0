"""What ComfyUI's patches call when a temporal module runs inside its UNet (``nodes/comfy`` installs them).

Pure PyTorch, no ComfyUI import: ``InjectedTemporalLayer`` is the placeholder injected into the UNet blocks,
``run_injected`` the forward_timestep_embed patch that runs it, ``frame_call_wrapper`` the DIFFUSION_MODEL
wrapper that puts each UNet call's FrameCall into ``transformer_options``.
"""

from __future__ import annotations

import torch
from torch import nn

from ...zizi_models.temporal import (
    FrameCall,
    WindowInputs,
    ZiziTemporalModel,
    add_known_frames,
    run_temporal_layer,
)

WINDOW_OPTION = "zizi_window"  # transformer_options entry: WindowInputs of the window being sampled
CALL_OPTION = "zizi_frame_call"  # transformer_options entry: FrameCall of the UNet call in progress
REFERENCE_OPTION = "zizi_reference_frame"  # transformer_options entry: the anchor's index in the window, if any


class InjectedTemporalLayer(nn.Module):
    """Placeholder inside a UNet block; the forward_timestep_embed patch runs it with the FrameCall.

    The temporal layer is held outside the module tree: its weights belong to the temporal model's own
    ModelPatcher, so the UNet's state dict, size and device moves never include them.
    """

    def __init__(self, role: str, layer: nn.Module, temporal: ZiziTemporalModel) -> None:
        super().__init__()
        self.role = role  # "known" (conv_in extra channels), "conv" (temporal conv), "motion"
        object.__setattr__(self, "layer", layer)
        object.__setattr__(self, "temporal", temporal)

    def run(self, x: torch.Tensor, call: FrameCall) -> torch.Tensor:
        if self.role == "known":
            return add_known_frames(self.temporal, x, call)
        return run_temporal_layer(self.layer, x, call)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a Zizi temporal layer ran without its forward_timestep_embed patch; "
                           "load the temporal module with ZiziTemporalModelLoader")


def current_call(transformer_options: dict) -> FrameCall:
    call = transformer_options.get(CALL_OPTION)
    if call is None:
        raise RuntimeError("Zizi temporal layers called outside a Zizi-prepared UNet call")
    return call


def run_injected(layer, x, emb, context, transformer_options, *args, **kwargs):
    return layer.run(x, current_call(transformer_options))


def frame_call_wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
    """DIFFUSION_MODEL wrapper: this call's FrameCall from the window the sampler set, or treat the latent
    batch as one clip of contiguous frames (plain KSampler on a frame batch).

    The window keeps the FrameCall it built for this batch layout and device (``WindowInputs.for_batch``),
    so every step of a window reuses its device inputs and its known-frame, pose and level features; nothing
    here or in the temporal layers reads a tensor back to the host."""
    window = transformer_options.get(WINDOW_OPTION)
    if window is None:
        copies = max(1, len(transformer_options.get("cond_or_uncond", [0])))
        window = WindowInputs.contiguous(x.shape[0] // copies)
    transformer_options[CALL_OPTION] = window.for_batch(x.shape[0], x.device)
    try:
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    finally:
        transformer_options.pop(CALL_OPTION, None)
