"""Trained reference attention in a diffusers UNet: an attention processor on every spatial self-attention.

A temporal model with ``config.reference_attention`` was trained with each frame's spatial self-attention
(``attn1`` of every BasicTransformerBlock) also attending to the anchor frame of its window
(``reference_attention_per_window``). ``ZiziVideoUNet`` installs ``ReferenceProcessor`` on those layers while
it is attached; the window's anchors come from its frame state (``FrameCall.reference``). Without a frame
state, without anchors, or on a call the processor does not handle (cross-attention, a mask), the layer's
own processor runs, so the 2D UNet alone computes what it always did.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .reference_attention import heads_attention, reference_attention_per_window

StateReader = Callable[[], object]  # () -> the current FrameCall or None


class ReferenceProcessor:
    """diffusers processor for one ``attn1``: reference attention when the frame state names anchors."""

    def __init__(self, original, state: StateReader) -> None:
        self.original, self.state = original, state

    def __call__(self, attn: nn.Module, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, *args, **kwargs) -> torch.Tensor:
        call = self.state()
        anchors = getattr(call, "reference", None)
        plain = (anchors is None or encoder_hidden_states is not None or attention_mask is not None
                 or hidden_states.ndim != 3 or attn.group_norm is not None or attn.spatial_norm is not None
                 or attn.residual_connection or attn.norm_q is not None)
        if plain:
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, temb, *args, **kwargs)
        frames = hidden_states.shape[0] // len(anchors)  # hidden_states [(B F), N, C]
        q, k, v = attn.to_q(hidden_states), attn.to_k(hidden_states), attn.to_v(hidden_states)
        out = reference_attention_per_window(q, k, v, frames, anchors, heads_attention(attn.heads))
        out = attn.to_out[1](attn.to_out[0](out))  # linear, dropout
        return out / attn.rescale_output_factor


def self_attention_layers(unet: nn.Module) -> list[nn.Module]:
    """Every spatial self-attention (``attn1`` of a BasicTransformerBlock) of a diffusers 2D UNet."""
    return [module for name, module in unet.named_modules() if name.endswith(".attn1") and hasattr(module, "processor")]


def install_reference_processors(unet: nn.Module, state: StateReader) -> list[tuple[nn.Module, object]]:
    """Put a ReferenceProcessor on every attn1; returns (layer, previous processor) pairs for restoring."""
    previous = []
    for layer in self_attention_layers(unet):
        previous.append((layer, layer.processor))
        layer.set_processor(ReferenceProcessor(layer.processor, state))
    return previous


def restore_processors(previous: list[tuple[nn.Module, object]]) -> None:
    for layer, processor in previous:
        layer.set_processor(processor)
    previous.clear()
