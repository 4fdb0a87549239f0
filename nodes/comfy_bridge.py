"""The ONE module of the pack that touches ComfyUI internals.

Everything else in ``nodes/`` goes through these functions, so a ComfyUI update that moves an
internal breaks this file only (and the real-server tests catch it). ``zizi_models/`` and ``train/``
never import ComfyUI at all.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import comfy.model_detection
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.supported_models
import comfy.utils
import folder_paths
import torch
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock, UNetModel
from torch import nn

from ..zizi_models.temporal import (
    FrameCall,
    UNetLayout,
    WindowInputs,
    ZiziTemporalModel,
    add_aug_embedding,
    add_known_frames,
    check_unet_compatible,
    ldm_block_site,
    run_temporal_layer,
)

log = logging.getLogger(__name__)

ZIZI_MODEL_FOLDER = "zizi"
ANIMATEDIFF_MODEL_FOLDER = "animatediff_models"
POSE_MODEL_FOLDER = "pose"
# folder name -> file extensions listed for it
MODEL_FOLDERS = {
    ZIZI_MODEL_FOLDER: {".safetensors"},
    ANIMATEDIFF_MODEL_FOLDER: {".safetensors"},
    POSE_MODEL_FOLDER: {".pth", ".onnx", ".pt", ".torchscript"},
}


def register_model_folders() -> None:
    """Register ``models/zizi`` (temporal modules), ``models/animatediff_models`` and ``models/pose``
    (OpenPose/DWPose weights) with ComfyUI.

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


def model_folder_paths(folder: str) -> list[Path]:
    """Every directory registered for a model folder (default first, then extra_model_paths.yaml ones)."""
    return [Path(p) for p in folder_paths.get_folder_paths(folder)]


def list_model_files(folder: str) -> list[str]:
    """Files of a model folder, as names relative to it, for a combo input."""
    return folder_paths.get_filename_list(folder)


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


# ---- temporal module injection ---------------------------------------------------------------------
#
# The same ZiziTemporalModel that ZiziVideoUNet hooks into diffusers' UNet is inserted into ComfyUI's
# UNet (openaimodel.UNetModel) through ModelPatcher mechanisms, on a clone of the received MODEL:
#   injections       insert InjectedTemporalLayer placeholders into the TimestepEmbedSequential blocks
#                    (ComfyUI ejects them around weight loading/patching, so LoRA keys never shift)
#   forward_timestep_embed patch   runs each placeholder with the current FrameCall
#   emb_patch        adds the augmentation-level embedding to the time embedding
#   DIFFUSION_MODEL wrapper        turns the window the sampler set (or a plain frame batch) into a
#                    FrameCall for this UNet call (cond and uncond copies share positions)
#   additional model the temporal weights, in their own ModelPatcher so ComfyUI moves them to the device

TEMPORAL_KEY = "zizi_temporal"
WINDOW_OPTION = "zizi_window"  # transformer_options entry: WindowInputs of the window being sampled
CALL_OPTION = "zizi_frame_call"  # transformer_options entry: FrameCall of the UNet call in progress


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


def _current_call(transformer_options: dict) -> FrameCall:
    call = transformer_options.get(CALL_OPTION)
    if call is None:
        raise RuntimeError("Zizi temporal layers called outside a Zizi-prepared UNet call")
    return call


def _run_injected(layer, x, emb, context, transformer_options, *args, **kwargs):
    return layer.run(x, _current_call(transformer_options))


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


def _frame_call_wrapper(executor, x, timesteps, context, y, control, transformer_options, **kwargs):
    """DIFFUSION_MODEL wrapper: build this call's FrameCall from the window the sampler set, or treat
    the latent batch as one clip of contiguous frames (plain KSampler on a frame batch)."""
    window = transformer_options.get(WINDOW_OPTION)
    if window is None:
        copies = max(1, len(transformer_options.get("cond_or_uncond", [0])))
        window = WindowInputs.contiguous(x.shape[0] // copies)
    transformer_options[CALL_OPTION] = window.for_batch(x.shape[0], x.device)
    try:
        return executor(x, timesteps, context, y, control, transformer_options, **kwargs)
    finally:
        transformer_options.pop(CALL_OPTION, None)


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
    patched.set_model_forward_timestep_embed_patch((InjectedTemporalLayer, _run_injected))
    patched.set_model_emb_patch(lambda emb, model_channels, options: add_aug_embedding(temporal, emb, _current_call(options)))
    patched.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, TEMPORAL_KEY, _frame_call_wrapper)
    patched.set_attachments(TEMPORAL_KEY, temporal)
    return patched


def temporal_model_of(model: comfy.model_patcher.ModelPatcher) -> ZiziTemporalModel | None:
    """The temporal model a MODEL was inflated with by ZiziTemporalModelLoader, if any."""
    return model.get_attachment(TEMPORAL_KEY)


def sd15_model_from_state_dict(state_dict: dict[str, torch.Tensor], prefix: str = "model.diffusion_model.",
                               dtype: torch.dtype | None = None) -> comfy.model_patcher.ModelPatcher:
    """A ComfyUI SD1.5-family MODEL from an LDM-layout UNet state dict of any width.

    ComfyUI's own detection only recognises full-size SD1.5 (320 channels, context 768); reduced-width
    SD1.5-family models (our tests, the shipped small model) get their architecture read from the
    tensor shapes and SD1.5's model class, without touching ComfyUI's global model list.
    """
    unet_config = comfy.model_detection.detect_unet_config(state_dict, prefix)
    if unet_config is None or "model_channels" not in unet_config:
        raise ValueError("state dict is not an LDM-layout UNet (no model.diffusion_model.* tensors found)")
    model_config = comfy.supported_models.SD15(unet_config)
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    if dtype is None:
        dtype = comfy.model_management.unet_dtype(model_params=0, supported_dtypes=model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, comfy.model_management.unet_manual_cast(dtype, load_device))
    model = model_config.get_model(state_dict, prefix, device=offload_device)
    model.load_model_weights(state_dict, prefix)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


# ----------------------------------------------------------------------------- external models
# Models ComfyUI does not know (MediaPipe graphs, controlnet-aux networks: the pose detectors) are
# registered with ComfyUI's model management through a weightless ModelPatcher, so that ComfyUI
# unloading models (``POST /free``, ``unload_all_models``, ``free_memory`` under memory pressure)
# releases them too. Nothing of ComfyUI is patched: this uses ModelPatcher's ON_DETACH callback.


def torch_device() -> str:
    """The device ComfyUI computes on ("cuda:0", "cpu", ...); honours ``--cpu``."""
    return str(comfy.model_management.get_torch_device())


class ZiziExternalModel(nn.Module):
    """Weightless stand-in that ComfyUI's model management lists for an external model."""


def external_model_handle(name: str, on_unload: Callable[[], None], size_bytes: int = 0) -> object:
    """A handle that puts an external model under ComfyUI's model management.

    ``on_unload()`` is called when ComfyUI unloads it (``LoadedModel.model_unload`` -> ``ModelPatcher.detach``
    with ``unpatch_all=True``: ``/free`` with ``unload_models``/``free_memory``, or ``free_memory`` making
    room for another model). Re-registering it (``external_model_in_use``) and garbage collection detach
    with ``unpatch_all=False`` and do not call it. ``size_bytes`` is what ComfyUI accounts for it.
    Keep the handle alive (e.g. module level) and never drop its last reference inside ``on_unload``:
    ComfyUI's ``free_memory`` loop indexes its model list and breaks if the model it is unloading
    is garbage collected (and removed from that list) in the middle of the unload.
    """
    stub = ZiziExternalModel()
    stub.zizi_external_model = name
    patcher = comfy.model_patcher.ModelPatcher(
        stub,
        load_device=comfy.model_management.get_torch_device(),
        offload_device=comfy.model_management.unet_offload_device(),
        size=max(1, int(size_bytes)),  # > 0, else ComfyUI re-measures the (empty) module every time
    )

    def on_detach(_patcher: object, unpatch_all: bool) -> None:
        if unpatch_all:
            on_unload()

    patcher.add_callback(comfy.patcher_extension.CallbacksMP.ON_DETACH, on_detach)
    return patcher


def external_model_in_use(handle: object) -> None:
    """Tell ComfyUI the external model is (still) loaded and in use: call before each use."""
    comfy.model_management.load_models_gpu([handle])


# ---- sampling one window through ComfyUI's own sampler machinery ----------------------------------

def latent_to_model_space(model: comfy.model_patcher.ModelPatcher, latents: torch.Tensor) -> torch.Tensor:
    """Raw VAE latents (ComfyUI LATENT) -> the UNet's input space (SD1.5: x 0.18215)."""
    return model.model.process_latent_in(latents)


def slice_conditioning(conditioning: list, frames: list[int], input_name: str) -> list:
    """The conditioning with every ControlNet hint batch cut to ``frames`` (absolute frame indices:
    hint image i belongs to video frame i). A hint batch of 1 applies to every frame; a batch that
    does not reach the highest frame is an error naming the input."""
    sliced: dict[int, object] = {}

    def slice_control(control):
        if control is None:
            return None
        if id(control) not in sliced:
            hint = control.cond_hint_original
            copy = control.copy()
            if hint is not None and hint.shape[0] != 1:
                if hint.shape[0] <= max(frames):
                    raise ValueError(f"{input_name}: a ControlNet has {hint.shape[0]} hint images but frame {max(frames)} "
                                     "needs one; give one control image per video frame (or a single image for all)")
                copy.cond_hint_original = hint[frames]
            copy.set_previous_controlnet(slice_control(control.previous_controlnet))
            sliced[id(control)] = copy
        return sliced[id(control)]

    out = []
    for tensor, options in conditioning:
        options = options.copy()
        if "control" in options:
            options["control"] = slice_control(options["control"])
        out.append([tensor, options])
    return out


def control_hint_counts(conditioning: list) -> list[int]:
    """How many hint images each ControlNet in the conditioning carries (the whole chain)."""
    counts, seen = [], set()
    for _, options in conditioning:
        control = options.get("control")
        while control is not None and id(control) not in seen:
            seen.add(id(control))
            if control.cond_hint_original is not None:
                counts.append(int(control.cond_hint_original.shape[0]))
            control = control.previous_controlnet
    return counts


def sample_window(model: comfy.model_patcher.ModelPatcher, window: WindowInputs, latents: torch.Tensor,
                  generate: torch.Tensor, positive: list, negative: list, seed: int, steps: int, cfg: float,
                  sampler_name: str, scheduler: str, denoise: float = 1.0) -> torch.Tensor:
    """Denoise one window with ComfyUI's KSampler machinery (any sampler/scheduler, CFG, LoRA, ControlNet).

    latents [F, 4, h, w] raw: the known frames' clean latents, zeros elsewhere; generate [F] bool: the
    frames to sample. Known frames are held by ComfyUI's noise mask (their noisy input follows their
    clean latent, as in training) and also reach the temporal layers through ``window``.
    Returns [F, 4, h, w] raw latents on the intermediate device.
    """
    windowed = model.clone()
    windowed.model_options["transformer_options"][WINDOW_OPTION] = window
    noise = comfy.sample.prepare_noise(latents, seed)
    mask = generate.float().reshape(-1, 1, 1, 1).expand(-1, 1, *latents.shape[-2:]).contiguous()
    return comfy.sample.sample(windowed, noise, steps, cfg, sampler_name, scheduler, positive, negative, latents,
                               denoise=denoise, noise_mask=None if bool(generate.all()) else mask,
                               disable_pbar=True, seed=seed)


def sampler_names() -> list[str]:
    return list(comfy.samplers.KSampler.SAMPLERS)


def scheduler_names() -> list[str]:
    return list(comfy.samplers.KSampler.SCHEDULERS)


def vae_encode(vae, images: torch.Tensor) -> torch.Tensor:
    """IMAGE [N, H, W, 3] -> raw latents [N, 4, H/8, W/8]."""
    return vae.encode(images[..., :3])


def vae_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """raw latents [N, 4, h, w] -> IMAGE [N, H, W, 3] on the CPU."""
    images = vae.decode(latents)
    return images.reshape(-1, *images.shape[-3:]).cpu()


def vae_downscale(vae) -> int:
    """Pixels per latent cell of a VAE (8 for SD1.5's; the small puppet model's is 4)."""
    ratio = vae.spacial_compression_encode() if hasattr(vae, "spacial_compression_encode") else vae.downscale_ratio
    return int(ratio)
