"""Inflate a diffusers `UNet2DConditionModel` (SD1.5 family) into a video UNet with hooks.

No diffusers code is copied or imported: the 2D UNet runs unchanged on the flat frame batch
`[(B F) C H W]`, and PyTorch forward hooks on its submodules insert the temporal layers:

    unet.time_embedding          output [(B F), D] += aug_embedding(level per frame)
    unet.conv_in                 output [(B F), C0, H, W] += conv_in_extra(mask, mask * known latent)
    down_blocks[i].resnets[j]    -> temporal conv (optional)
    down_blocks[i].attentions[j] -> motion module (cross-attn blocks; resnets[j] for plain DownBlock2D)
    mid_block.resnets[0|1]       -> temporal conv (optional)
    mid_block.attentions[0]      -> motion module (before the second resnet)
    up_blocks[i].resnets[j]      -> temporal conv (optional)
    up_blocks[i].attentions[j]   -> motion module (plain UpBlock2D: resnets[j]); before the upsampler
    every transformer's attn1    processor: reference attention to the window's anchor, for modules
                                 trained with it (config.reference_attention; reference_processor.py)

This is exactly where AnimateDiff puts its modules (after each resnet/attention pair, and the
result feeds the skip connections). Hooks are installed by the constructor and removed by
`eject()` (or leaving a `with ZiziVideoUNet(...)` block, or garbage collection of the wrapper),
after which the 2D UNet is bitwise the model it was (the attn1 processors are put back by `eject()`;
after garbage collection they pass through to the layers' own). They read the frame state of the latest
`forward`; the state is kept until the next forward so that backward-time recomputation
(diffusers `enable_gradient_checkpointing`) sees the same frames. Do not call the 2D UNet
directly while attached.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from functools import partial

import torch
from einops import rearrange, repeat
from torch import nn

from .compatibility import UNetLayout, check_unet_compatible
from .config import TemporalModelConfig
from .context import FrameContext
from .frame_call import FrameCall, add_aug_embedding, add_known_frames, run_temporal_layer
from .model import BlockKind, ZiziTemporalModel
from .noise_augmentation import known_frame_channels
from .reference_processor import install_reference_processors, restore_processors

logger = logging.getLogger(__name__)


def unet_layout(unet: nn.Module) -> UNetLayout:
    """Read a diffusers UNet2DConditionModel's layout from its config and modules."""
    cfg = unet.config
    layers = cfg.layers_per_block
    if not isinstance(layers, int):
        if len(set(layers)) != 1:
            raise ValueError(f"UNets with per-block layers_per_block {tuple(layers)} are not supported")
        layers = layers[0]
    return UNetLayout(
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=int(layers),
        in_channels=int(unet.conv_in.in_channels),
        time_embed_dim=int(unet.time_embedding.linear_2.out_features),
        conv_in_kernel=int(unet.conv_in.kernel_size[0]),
        cross_attention_dim=cfg.cross_attention_dim if isinstance(cfg.cross_attention_dim, int) else None,
    )


def temporal_config_for_unet(unet: nn.Module, **overrides) -> TemporalModelConfig:
    """A TemporalModelConfig that fits `unet` (SD1.5 defaults for everything the UNet does not fix)."""
    layout = unet_layout(unet)
    fields = dict(
        block_out_channels=layout.block_out_channels,
        down_layers=layout.layers_per_block,
        up_layers=layout.layers_per_block + 1,
        in_channels=layout.in_channels,
        conv_in_kernel=layout.conv_in_kernel,
        time_embed_dim=layout.time_embed_dim,
        aug_embed_dim=layout.block_out_channels[0],
    )
    fields.update(overrides)
    return TemporalModelConfig(**fields)


def _map_first_output(output, fn: Callable[[torch.Tensor], torch.Tensor]):
    """Apply fn to a module output that is a tensor, a tuple (tensor, ...) or a diffusers `.sample` output."""
    if isinstance(output, torch.Tensor):
        return fn(output)
    if isinstance(output, tuple):
        return (fn(output[0]),) + tuple(output[1:])
    if hasattr(output, "sample"):
        output.sample = fn(output.sample)
        return output
    raise TypeError(f"cannot insert a temporal layer after a module returning {type(output).__name__}")


def _remove_handles(handles: list) -> None:
    for handle in handles:
        handle.remove()
    handles.clear()


class ZiziVideoUNet(nn.Module):
    """A diffusers 2D UNet + a ZiziTemporalModel = a video denoiser over [B, F, 4, H, W]."""

    def __init__(
        self, unet: nn.Module, temporal: ZiziTemporalModel | None = None, gradient_checkpointing: bool = False
    ) -> None:
        super().__init__()
        self.unet = unet
        self.temporal = (
            temporal if temporal is not None else ZiziTemporalModel(temporal_config_for_unet(unet))
        )
        check_unet_compatible(self.temporal.config, unet_layout(unet))
        self.temporal.set_gradient_checkpointing(gradient_checkpointing)
        self._state: FrameCall | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []
        self._processors: list = []  # (attn1 layer, its own processor) while reference processors are installed
        # if this object is garbage-collected without eject(), its hooks go with it
        self._finalizer = weakref.finalize(self, _remove_handles, self._handles)
        self.attach()

    # ---- hooks ------------------------------------------------------------------------

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def attach(self) -> None:
        """Install the hooks on the 2D UNet (idempotent)."""
        if self.attached:
            return
        unet, temporal = self.unet, self.temporal
        try:
            self._hook(unet.time_embedding, partial(add_aug_embedding, temporal))
            self._hook(unet.conv_in, partial(add_known_frames, temporal))
            for i, block in enumerate(unet.down_blocks):
                self._hook_block(block, "down", i)
            if unet.mid_block is not None:
                self._hook_block(unet.mid_block, "mid", 0)
            for i, block in enumerate(unet.up_blocks):
                self._hook_block(block, "up", i)
            if temporal.config.reference_attention:
                video_ref = weakref.ref(self)
                self._processors = install_reference_processors(
                    unet, lambda: getattr(video_ref(), "_state", None))
        except Exception:
            _remove_handles(self._handles)
            restore_processors(self._processors)
            raise
        logger.debug("ZiziVideoUNet: %d hooks installed", len(self._handles))

    def eject(self) -> nn.Module:
        """Remove every hook and the frame state; returns the untouched 2D UNet."""
        _remove_handles(self._handles)
        restore_processors(self._processors)
        self._state = None
        return self.unet

    def __enter__(self) -> ZiziVideoUNet:
        return self

    def __exit__(self, *exc_info) -> None:
        self.eject()

    def clear_frame_state(self) -> None:
        """Forget the latest forward's frames (hooks become pass-through until the next forward)."""
        self._state = None

    def _hook(self, module: nn.Module, apply: Callable[[torch.Tensor, FrameCall], torch.Tensor]) -> None:
        """Forward hook running `apply(output, state)` while a frame state is set (weakly bound to self)."""
        video_ref = weakref.ref(self)

        def hook(module: nn.Module, args, output):
            video = video_ref()
            state = video._state if video is not None else None
            if state is None:
                return output
            return _map_first_output(output, lambda hidden: apply(hidden, state))

        self._handles.append(module.register_forward_hook(hook))

    def _hook_block(self, block: nn.Module, kind: BlockKind, index: int) -> None:
        resnets = list(block.resnets)
        attentions = list(getattr(block, "attentions", None) or [])
        # temporal conv after every resnet; registered first so it runs before a motion module on the same resnet
        for j, resnet in enumerate(resnets):
            conv = self.temporal.temporal_conv_at(kind, index, j)
            if conv is not None:
                self._hook(resnet, partial(run_temporal_layer, conv))
        # motion module j follows attention j (cross-attention blocks) or resnet j (plain blocks)
        sites = attentions or resnets
        modules = self.temporal.motion_modules_of(kind, index)
        if kind == "mid":
            sites = sites[:1]
        if modules and len(sites) != len(modules):
            raise ValueError(
                f"{kind} block {index} has {len(sites)} resnet/attention pairs but the temporal model has "
                f"{len(modules)} motion modules there; the base UNet does not match the temporal module"
            )
        for site, module in zip(sites, modules, strict=False):
            self._hook(site, partial(run_temporal_layer, module))

    # ---- forward ----------------------------------------------------------------------

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | float | int,
        encoder_hidden_states: torch.Tensor,
        positions: torch.Tensor | None = None,
        known_latents: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        aug_level: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        reference: torch.Tensor | None = None,
        **unet_kwargs,
    ) -> torch.Tensor:
        """Predict noise for a batch of videos.

        sample [B, F, 4, H, W]; timestep scalar, [B] or [B, F]; encoder_hidden_states [B, L, D] or
        [B, F, L, D]; positions [B, F] (default 0..F-1); known_latents [B, F, 4, H, W] (already
        augmented) with mask [B, F] (1 = known); aug_level [B, F] (only where mask = 1 counts);
        pose [B, F, C_pose, H * s, W * s] rendered pose images in [0, 1] (models with a pose encoder).
        reference [B, F] bool: each window's anchor frame (at most one per window; a window without one
        attends plainly); only models trained with reference attention read it.
        Extra `unet_kwargs` go to the 2D UNet unchanged and must already be flat over (B F),
        e.g. ControlNet `down_block_additional_residuals`. Returns [B, F, 4, H, W].
        """
        if not self.attached:
            raise RuntimeError("ZiziVideoUNet was ejected; call attach() before running it again")
        batch, frames = sample.shape[:2]
        device = sample.device
        if positions is None:
            ctx = FrameContext.contiguous(batch, frames, device)
        else:
            ctx = FrameContext.on_device(positions, device)  # bounds read before the move: no sync for host positions
        if (ctx.batch_size, ctx.num_frames) != (batch, frames):
            raise ValueError(
                f"positions shape {tuple(ctx.positions.shape)} must be [B, F] = {(batch, frames)}"
            )

        extra = None
        if known_latents is not None or mask is not None:
            if known_latents is None or mask is None:
                raise ValueError("known_latents and mask must be given together")
            extra = rearrange(
                known_frame_channels(mask.to(device), known_latents), "b f c h w -> (b f) c h w"
            )
        # no level given = every frame at level 0 (clean); the embedding is always added, so a
        # trained level-0 embedding applies the same way here and in the ComfyUI bridge
        if aug_level is None:
            level = torch.zeros(batch, frames, device=device)
        else:
            level = aug_level.to(device=device, dtype=torch.float32).reshape(batch, frames)
        if mask is not None:
            level = level * mask.to(device=device, dtype=torch.float32)
        level = rearrange(level, "b f -> (b f)")
        flat_pose = None if pose is None else rearrange(pose.to(device), "b f c h w -> (b f) c h w")
        self._state = FrameCall(ctx, extra, level, flat_pose, window_anchors(reference, batch, frames))

        out = self.unet(
            rearrange(sample, "b f c h w -> (b f) c h w"),
            self._flat_timesteps(timestep, batch, frames, device),
            self._flat_context(encoder_hidden_states, batch, frames),
            return_dict=False,
            **unet_kwargs,
        )[0]
        return rearrange(out, "(b f) c h w -> b f c h w", b=batch, f=frames)

    @staticmethod
    def _flat_timesteps(
        timestep: torch.Tensor | float | int, batch: int, frames: int, device
    ) -> torch.Tensor:
        t = torch.as_tensor(timestep, device=device)
        if t.ndim == 0:
            return t.expand(batch * frames)
        if t.shape == (batch,):
            return repeat(t, "b -> (b f)", f=frames)
        if t.shape == (batch, frames):
            return rearrange(t, "b f -> (b f)")
        raise ValueError(
            f"timestep must be a scalar, [B] or [B, F] = [{batch}, {frames}], got {tuple(t.shape)}"
        )

    @staticmethod
    def _flat_context(encoder_hidden_states: torch.Tensor, batch: int, frames: int) -> torch.Tensor:
        if encoder_hidden_states.ndim == 3 and encoder_hidden_states.shape[0] == batch:
            return repeat(encoder_hidden_states, "b l d -> (b f) l d", f=frames)
        if encoder_hidden_states.ndim == 4 and encoder_hidden_states.shape[:2] == (batch, frames):
            return rearrange(encoder_hidden_states, "b f l d -> (b f) l d")
        raise ValueError(
            f"encoder_hidden_states must be [B, L, D] or [B, F, L, D] with B={batch}, F={frames}, "
            f"got {tuple(encoder_hidden_states.shape)}"
        )


def window_anchors(reference: torch.Tensor | None, batch: int, frames: int) -> tuple[int | None, ...] | None:
    """reference [B, F] bool -> per window the index of its anchor frame, or None where it has none."""
    if reference is None:
        return None
    if tuple(reference.shape) != (batch, frames):
        raise ValueError(f"reference must be [B, F] = {(batch, frames)}, got {tuple(reference.shape)}")
    flags = reference.detach().to("cpu", torch.bool)
    if bool((flags.sum(dim=1) > 1).any()):
        raise ValueError("reference: a window has more than one anchor frame")
    return tuple(int(row.nonzero()[0]) if bool(row.any()) else None for row in flags)


def freeze_backbone(video_unet: ZiziVideoUNet) -> list[nn.Parameter]:
    """Freeze the 2D UNet, make every temporal parameter trainable; returns the trainable parameters."""
    video_unet.unet.requires_grad_(False)
    video_unet.temporal.requires_grad_(True)
    trainable = [p for p in video_unet.temporal.parameters() if p.requires_grad]
    logger.info("freeze_backbone: %d trainable temporal parameters", sum(p.numel() for p in trainable))
    return trainable
