"""Temporal module injection into ComfyUI's SD1.5 UNet.

The same ZiziTemporalModel that ZiziVideoUNet hooks into diffusers' UNet is inserted into ComfyUI's
UNet (openaimodel.UNetModel) through ModelPatcher mechanisms, on a clone of the received MODEL:
  injections       insert InjectedTemporalLayer placeholders into the TimestepEmbedSequential blocks
                   (ComfyUI ejects them around weight loading/patching, so LoRA keys never shift)
  forward_timestep_embed patch   runs each placeholder with the current FrameCall
  emb_patch        adds the augmentation-level embedding to the time embedding
  DIFFUSION_MODEL wrapper        turns the window the sampler set (or a plain frame batch) into a
                   FrameCall for this UNet call (cond and uncond copies share positions)
  additional model the temporal weights, in their own ModelPatcher so ComfyUI moves them to the device
"""

from __future__ import annotations

from collections import OrderedDict

import comfy.model_patcher
import comfy.patcher_extension
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock, UNetModel
from torch import nn

from ...zizi_models.temporal import (
    UNetLayout,
    ZiziTemporalModel,
    add_aug_embedding,
    check_unet_compatible,
    ldm_block_site,
)
from . import temporal_hooks as hooks
from .reference_patch import install_reference_patch
from .temporal_hooks import InjectedTemporalLayer

TEMPORAL_KEY = "zizi_temporal"


def _block_with_temporal_layers(block: nn.Sequential, temporal: ZiziTemporalModel, site: tuple) -> list[nn.Module]:
    """The block's layers with temporal convs after each ResBlock and the motion module after the
    last SpatialTransformer (or the last ResBlock when there is none), i.e. before any Upsample."""
    kind, index, layer_index = site
    layers = list(block)
    spatial = [i for i, m in enumerate(layers) if isinstance(m, SpatialTransformer)]
    resnets = [i for i, m in enumerate(layers) if isinstance(m, ResBlock)]
    motion_after = (spatial or resnets)[-1 if kind != "mid" else 0]
    out: list[nn.Module] = []
    for i, module in enumerate(layers):
        out.append(module)
        if i in resnets:
            resnet_index = resnets.index(i) if kind == "mid" else layer_index
            conv = temporal.temporal_conv_at(kind, index, resnet_index)
            if conv is not None:
                out.append(InjectedTemporalLayer("conv", conv, temporal))
        if i == motion_after:
            motion = temporal.motion_module_at(kind, index, layer_index)
            if motion is not None:
                out.append(InjectedTemporalLayer("motion", motion, temporal))
    return out


class TemporalInjection:
    """Insert / remove the placeholders. One injected UNet at a time: ComfyUI detaches clones of the
    same model before loading another one."""

    def __init__(self, temporal: ZiziTemporalModel, layers_per_block: int, levels: int) -> None:
        self.temporal = temporal
        self.layers_per_block = layers_per_block
        self.levels = levels
        self.originals: list[tuple[nn.Sequential, list[nn.Module]]] = []

    def _replace(self, block: nn.Sequential, layers: list[nn.Module]) -> None:
        self.originals.append((block, list(block)))
        block._modules = OrderedDict((str(i), m) for i, m in enumerate(layers))

    def inject(self, patcher: comfy.model_patcher.ModelPatcher) -> None:
        if self.originals:
            self.eject(patcher)
        unet = patcher.model.diffusion_model
        self._replace(unet.input_blocks[0], [*unet.input_blocks[0], InjectedTemporalLayer("known", self.temporal.conv_in_extra, self.temporal)])
        sections = [("input", i, b) for i, b in enumerate(unet.input_blocks)]
        sections += [("middle", 0, unet.middle_block)] + [("output", i, b) for i, b in enumerate(unet.output_blocks)]
        for section, index, block in sections:
            site = ldm_block_site(section, index, self.layers_per_block, self.levels)
            if site is not None:
                self._replace(block, _block_with_temporal_layers(block, self.temporal, site))

    def eject(self, patcher: comfy.model_patcher.ModelPatcher) -> None:
        for block, layers in reversed(self.originals):
            block._modules = OrderedDict((str(i), m) for i, m in enumerate(layers))
        self.originals.clear()


def unet_layout(model: comfy.model_patcher.ModelPatcher) -> UNetLayout:
    """The layout of a ComfyUI MODEL's UNet; ValueError when the model is not a UNet at all."""
    diffusion_model = getattr(model.model, "diffusion_model", None)
    if not isinstance(diffusion_model, UNetModel):
        name = type(model.model).__name__
        raise ValueError(f"model: {name} is not a UNet model; Zizi temporal modules need an SD1.5 checkpoint")
    config = model.model.model_config.unet_config
    res_blocks = config["num_res_blocks"]
    res_blocks = res_blocks if isinstance(res_blocks, int) else res_blocks[0]
    return UNetLayout(
        block_out_channels=tuple(config["model_channels"] * m for m in config["channel_mult"]),
        layers_per_block=int(res_blocks),
        in_channels=int(config["in_channels"]),
        time_embed_dim=int(config["model_channels"]) * 4,
        conv_in_kernel=int(diffusion_model.input_blocks[0][0].kernel_size[0]),
        cross_attention_dim=config.get("context_dim"),
    )


def inject_temporal_model(model: comfy.model_patcher.ModelPatcher, temporal: ZiziTemporalModel) -> comfy.model_patcher.ModelPatcher:
    """A clone of ``model`` that runs ``temporal``'s layers; ``model`` itself is never modified."""
    layout = unet_layout(model)
    check_unet_compatible(temporal.config, layout)
    dtype = model.model.manual_cast_dtype or model.model.get_dtype()
    temporal = temporal.to(dtype=dtype).eval().requires_grad_(False)
    temporal_patcher = comfy.model_patcher.ModelPatcher(temporal, load_device=model.load_device, offload_device=model.offload_device)
    patched = model.clone()
    patched.set_additional_models(TEMPORAL_KEY, [temporal_patcher])
    injection = TemporalInjection(temporal, layout.layers_per_block, len(layout.block_out_channels))
    patched.set_injections(TEMPORAL_KEY, [comfy.patcher_extension.PatcherInjection(injection.inject, injection.eject)])
    patched.set_model_forward_timestep_embed_patch((InjectedTemporalLayer, hooks.run_injected))
    patched.set_model_emb_patch(lambda emb, model_channels, options: add_aug_embedding(temporal, emb, hooks.current_call(options)))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, TEMPORAL_KEY, hooks.frame_call_wrapper)
    patched.set_attachments(TEMPORAL_KEY, temporal)
    if temporal.config.reference_attention:  # trained with it: sampled with it, at full strength
        install_reference_patch(patched, 1.0, 0.0, 1.0)
    return patched


def temporal_model_of(model: comfy.model_patcher.ModelPatcher) -> ZiziTemporalModel | None:
    """The temporal model a MODEL was inflated with by ZiziTemporalModelLoader, if any."""
    return model.get_attachment(TEMPORAL_KEY)
