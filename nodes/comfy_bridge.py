"""The ONE module of the pack that touches ComfyUI internals.

Everything else in ``nodes/`` goes through these functions, so a ComfyUI update that moves an
internal breaks this file only (and the real-server tests catch it). ``zizi_models/`` and ``train/``
never import ComfyUI at all.
"""

from __future__ import annotations

import functools
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import comfy.latent_formats
import comfy.model_base
import comfy.model_detection
import comfy.model_management
import comfy.model_patcher
import comfy.patcher_extension
import comfy.sample
import comfy.samplers
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models
import comfy.supported_models_base
import comfy.utils
import folder_paths
import torch
from comfy.ldm.modules.attention import SpatialTransformer
from comfy.ldm.modules.diffusionmodules.openaimodel import ResBlock, UNetModel
from torch import nn

from ..zizi_models import base_checkpoint
from ..zizi_models.sd15_keys import TEXT_PREFIX, UNET_PREFIX, VAE_PREFIX
from ..zizi_models.temporal import (
    UNetLayout,
    WindowInputs,
    ZiziTemporalModel,
    add_aug_embedding,
    check_unet_compatible,
    ldm_block_site,
)
from . import temporal_hooks as hooks
from .temporal_hooks import CALL_OPTION, WINDOW_OPTION, InjectedTemporalLayer  # noqa: F401 - re-exported

log = logging.getLogger(__name__)

ZIZI_MODEL_FOLDER = "zizi"
ANIMATEDIFF_MODEL_FOLDER = "animatediff_models"
POSE_MODEL_FOLDER = "pose"
ZIZI_CHECKPOINT_FOLDER = "zizi_checkpoints"  # Zizi small models (whole SD1.5-family model in one file)
# folder name -> file extensions listed for it
MODEL_FOLDERS = {
    ZIZI_MODEL_FOLDER: {".safetensors"},
    ANIMATEDIFF_MODEL_FOLDER: {".safetensors"},
    POSE_MODEL_FOLDER: {".pth", ".onnx", ".pt", ".torchscript"},
    ZIZI_CHECKPOINT_FOLDER: {".safetensors"},
}
# folder name -> folders inside the pack searched after ComfyUI's models/<name> (weights shipped with the pack)
PACK_WEIGHTS = str(Path(__file__).resolve().parent.parent / "weights")  # the shipped puppet model's two files
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
# WINDOW_OPTION, CALL_OPTION, InjectedTemporalLayer and the functions the patches call: temporal_hooks.py


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
    return patched


def temporal_model_of(model: comfy.model_patcher.ModelPatcher) -> ZiziTemporalModel | None:
    """The temporal model a MODEL was inflated with by ZiziTemporalModelLoader, if any."""
    return model.get_attachment(TEMPORAL_KEY)


def sd15_model_from_state_dict(state_dict: dict[str, torch.Tensor], prefix: str = "model.diffusion_model.",
                               dtype: torch.dtype | None = None, num_heads: int | None = None,
                               sampling: dict | None = None) -> comfy.model_patcher.ModelPatcher:
    """A ComfyUI SD1.5-family MODEL from an LDM-layout UNet state dict of any width.

    ComfyUI's own detection only recognises full-size SD1.5 (320 channels, context 768); reduced-width
    SD1.5-family models (our tests, the shipped small model) get their architecture read from the
    tensor shapes and SD1.5's model class, without touching ComfyUI's global model list.
    num_heads (SD1.5: 8) and sampling (``ldm_sampling_settings``: prediction + beta schedule) override
    SD1.5's on this model's own config.
    """
    unet_config = comfy.model_detection.detect_unet_config(state_dict, prefix)
    if unet_config is None or "model_channels" not in unet_config:
        raise ValueError("state dict is not an LDM-layout UNet (no model.diffusion_model.* tensors found)")
    model_config = comfy.supported_models.SD15(unet_config)
    if num_heads is not None:
        model_config.unet_config["num_heads"] = num_heads
    if sampling is not None:
        settings = dict(sampling)
        v_pred = settings.pop("prediction") == "v_prediction"
        model_type = comfy.model_base.ModelType.V_PREDICTION if v_pred else comfy.model_base.ModelType.EPS
        model_config.sampling_settings.update(settings)
        model_config.model_type = lambda *args, **kwargs: model_type
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    if dtype is None:
        dtype = comfy.model_management.unet_dtype(model_params=0, supported_dtypes=model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(dtype, comfy.model_management.unet_manual_cast(dtype, load_device))
    model = model_config.get_model(state_dict, prefix, device=offload_device)
    model.load_model_weights(state_dict, prefix)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def sd15_family_from_checkpoint(path: str | os.PathLike, dtype: torch.dtype | None = None) -> tuple:
    """(MODEL, CLIP, VAE) of a Zizi small model: a whole SD1.5-family model in one file, its architecture in
    the metadata (``zizi_models/base_checkpoint.py``). ComfyUI's Load Checkpoint cannot load it (its detection
    knows full-size models only, its VAE defaults assume 128 channels / 4 levels, its SD1 CLIP width 768), so
    each part is built here from the file's configs, per instance. dtype: of all three; None: ComfyUI's choice.
    """
    arch = base_checkpoint.read_base_architecture(path)
    state = comfy.utils.load_torch_file(str(path), safe_load=True)
    vae_sd = {k[len(VAE_PREFIX):]: v for k, v in state.items() if k.startswith(VAE_PREFIX)}
    text_sd = {k[len(TEXT_PREFIX):]: v for k, v in state.items()
               if k.startswith(TEXT_PREFIX) and not k.endswith("position_ids")}
    # a CLIPTextModel has no projection; identity keeps the (unused) projected pooled output defined
    text_sd["text_projection.weight"] = torch.eye(int(arch.text_encoder["hidden_size"]))
    unet_keys = {k[len(UNET_PREFIX):] for k in state if k.startswith(UNET_PREFIX)}
    model = sd15_model_from_state_dict(state, UNET_PREFIX, dtype, num_heads=arch.attention_heads,
                                       sampling=base_checkpoint.ldm_sampling_settings(arch.scheduler))
    latent_format = comfy.latent_formats.SD15(scale_factor=arch.latent_scaling_factor)
    latent_format.taesd_decoder_name = None  # SD1.5's TAESD previewer does not know this latent space
    model.model.latent_format = model.model.model_config.latent_format = latent_format
    clip, vae = _small_clip(arch, text_sd, dtype), _small_vae(arch, vae_sd, dtype)
    for part, module, keys in (("unet", model.model.diffusion_model, unet_keys), ("vae", vae.first_stage_model, vae_sd),
                               ("text_encoder", clip.cond_stage_model.clip_l.transformer, text_sd)):
        missing = sorted(set(module.state_dict()) - set(keys))
        if missing:
            raise ValueError(f"{Path(path).name}: {part}: {len(missing)} tensors missing from the file (e.g. {missing[:2]})")
    return model, clip, vae


def _small_vae(arch: base_checkpoint.BaseArchitecture, vae_sd: dict[str, torch.Tensor], dtype: torch.dtype | None) -> comfy.sd.VAE:
    """ComfyUI's VAE with an LDM ddconfig from the diffusers config (its defaults assume SD1.5's widths)."""
    vae = comfy.sd.VAE(sd=vae_sd, config={"params": base_checkpoint.ldm_vae_config(arch.vae)}, dtype=dtype)
    ratio = arch.vae_scale_factor  # the config path leaves SD1.5's 8 in place
    vae.downscale_ratio = vae.upscale_ratio = ratio
    decode_memory = vae.memory_used_decode  # estimated for 8 x 8 output pixels per latent pixel
    vae.memory_used_decode = lambda shape, dtype: decode_memory(shape, dtype) * ratio * ratio / 64
    return vae


def _small_clip(arch: base_checkpoint.BaseArchitecture, text_sd: dict[str, torch.Tensor], dtype: torch.dtype | None) -> comfy.sd.CLIP:
    """ComfyUI's SD1 CLIP (SD1 tokenizer, last layer, unprojected pooled output) with the file's text config."""
    config = dict(arch.text_encoder)
    width, positions = int(config["hidden_size"]), int(config["max_position_embeddings"])
    tokenizer = functools.partial(comfy.sd1_clip.SD1Tokenizer, tokenizer=functools.partial(
        comfy.sd1_clip.SDTokenizer, max_length=positions, embedding_size=width))
    text_model = functools.partial(comfy.sd1_clip.SDClipModel, textmodel_json_config=config, max_length=positions,
                                   return_projected_pooled=False)  # as SD1CheckpointClipModel
    target = comfy.supported_models_base.ClipTarget(tokenizer, functools.partial(comfy.sd1_clip.SD1ClipModel, clip_model=text_model))
    clip = comfy.sd.CLIP(target, embedding_directory=folder_paths.get_folder_paths("embeddings"),
                         parameters=comfy.utils.calculate_parameters(text_sd),
                         model_options={} if dtype is None else {"dtype": dtype})
    clip.load_sd(text_sd)
    return clip


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


@torch.no_grad()
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


@torch.no_grad()  # ComfyUI runs nodes in inference mode; direct callers must not keep autograd graphs either
def vae_encode(vae, images: torch.Tensor) -> torch.Tensor:
    """IMAGE [N, H, W, 3] -> raw latents [N, 4, H/8, W/8]."""
    return vae.encode(images[..., :3])


@torch.no_grad()  # without it a long loop run outside ComfyUI's executor held every chunk's decoder graph
def vae_decode(vae, latents: torch.Tensor) -> torch.Tensor:
    """raw latents [N, 4, h, w] -> IMAGE [N, H, W, 3] on the CPU."""
    images = vae.decode(latents)
    return images.reshape(-1, *images.shape[-3:]).cpu()


def vae_downscale(vae) -> int:
    """Pixels per latent cell of a VAE (8 for SD1.5's; the small puppet model's is 4)."""
    ratio = vae.spacial_compression_encode() if hasattr(vae, "spacial_compression_encode") else vae.downscale_ratio
    return int(ratio)
