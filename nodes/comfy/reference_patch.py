"""Reference attention on a MODEL clone: an attn1 replace patch on every spatial self-attention of the UNet.

ComfyUI's BasicTransformerBlock projects q/k/v and hands them to a replace patch, then applies to_out;
the patch computes ``reference_attention`` with ComfyUI's own attention function, so with no anchor in
the window, or outside the start/end range of sampling, it computes exactly what ComfyUI would. The
anchor's place in the window comes from ``sample_window`` (``REFERENCE_OPTION`` in transformer_options);
a plain frame batch (KSampler) has none and samples as without the patch.
"""

from __future__ import annotations

import logging

import comfy.ldm.modules.attention as comfy_attention
import comfy.model_patcher
import comfy.patcher_extension
import torch
from comfy.ldm.modules.attention import SpatialTransformer

from ...zizi_models.temporal.reference_attention import reference_attention
from .temporal_hooks import REFERENCE_OPTION, WINDOW_OPTION

log = logging.getLogger(__name__)

REFERENCE_KEY = "zizi_reference"  # the wrapper's key on the MODEL clone
ACTIVE_OPTION = "zizi_reference_active"  # transformer_options entry: this UNet call is inside start/end


def attention_blocks(model: comfy.model_patcher.ModelPatcher) -> list[tuple[str, int]]:
    """(block name, index) of every UNet block holding a SpatialTransformer, as ComfyUI names them."""
    unet = getattr(model.model, "diffusion_model", None)
    if unet is None or not hasattr(unet, "input_blocks"):
        raise ValueError(f"{type(model.model).__name__} is not a UNet model; reference attention needs an SD1.5 "
                         "checkpoint")
    sections = [("input", unet.input_blocks), ("middle", [unet.middle_block]), ("output", unet.output_blocks)]
    return [(name, index) for name, blocks in sections for index, block in enumerate(blocks)
            if any(isinstance(m, SpatialTransformer) for m in block.modules())]


class ReferencePatch:
    """attn1 replace patch: reference attention at ``strength`` in the UNet calls ``range_wrapper`` marks active
    (sigma in [sigma_end, sigma_start]; every call when the range is the whole of sampling)."""

    def __init__(self, strength: float, sigma_start: float, sigma_end: float, always: bool) -> None:
        self.strength, self.sigma_start, self.sigma_end, self.always = strength, sigma_start, sigma_end, always

    def range_wrapper(self, executor, x, timesteps, context, y, control, transformer_options, **kwargs):
        """DIFFUSION_MODEL wrapper: whether this UNet call's sigma is in range, read once per call (as ComfyUI's
        ControlNet reads its timestep range), not once per attention layer."""
        sigmas = transformer_options.get("sigmas")
        active = sigmas is not None and self.sigma_end <= float(sigmas.reshape(-1)[0]) <= self.sigma_start
        transformer_options[ACTIVE_OPTION] = active
        try:
            return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
        finally:
            transformer_options.pop(ACTIVE_OPTION, None)

    def __call__(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict) -> torch.Tensor:
        heads = extra_options["n_heads"]
        precision = extra_options.get("attn_precision")

        def attention(q_: torch.Tensor, k_: torch.Tensor, v_: torch.Tensor) -> torch.Tensor:
            return comfy_attention.optimized_attention(q_, k_, v_, heads, attn_precision=precision,
                                                       transformer_options=extra_options)

        anchor = extra_options.get(REFERENCE_OPTION)
        window = extra_options.get(WINDOW_OPTION)
        active = self.always or bool(extra_options.get(ACTIVE_OPTION, False))
        if anchor is None or window is None or not active:
            return attention(q, k, v)
        return reference_attention(q, k, v, window.num_frames, anchor, self.strength, attention)


def has_reference_patch(model: comfy.model_patcher.ModelPatcher) -> bool:
    """Whether ``model`` already carries a ReferencePatch (a node before, or a module trained with it)."""
    replaces = model.model_options.get("transformer_options", {}).get("patches_replace", {}).get("attn1", {})
    return any(isinstance(patch, ReferencePatch) for patch in replaces.values())


def install_reference_patch(patched: comfy.model_patcher.ModelPatcher, strength: float, start_percent: float,
                            end_percent: float) -> None:
    """Put a ReferencePatch on every attention block of ``patched`` (a clone the caller owns), replacing an
    earlier one; strength 0 computes plain attention (what turns off a trained module's reference)."""
    sampling = patched.get_model_object("model_sampling")
    patch = ReferencePatch(float(strength), float(sampling.percent_to_sigma(start_percent)),
                           float(sampling.percent_to_sigma(end_percent)), start_percent <= 0 and end_percent >= 1)
    blocks = attention_blocks(patched)
    for name, index in blocks:
        patched.set_model_attn1_replace(patch, name, index)
    patched.remove_wrappers_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, REFERENCE_KEY)
    if not patch.always:
        patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, REFERENCE_KEY,
                                     patch.range_wrapper)
    log.info("reference attention on %d UNet blocks, strength %.2f, sampling %.0f%%-%.0f%%", len(blocks), strength,
             100 * start_percent, 100 * end_percent)


def with_reference_attention(model: comfy.model_patcher.ModelPatcher, strength: float, start_percent: float,
                             end_percent: float) -> comfy.model_patcher.ModelPatcher:
    """A clone of ``model`` whose spatial self-attention layers see the window's anchor frame; strength 0
    returns a plain clone (or, on a model that already has reference attention, one patched to plain
    attention). ``model`` itself is never modified."""
    patched = model.clone()
    if strength == 0 and not has_reference_patch(patched):
        return patched
    install_reference_patch(patched, strength, start_percent, end_percent)
    return patched
