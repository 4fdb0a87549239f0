"""`python -m train fit`: train the temporal layers (and optionally a subject LoRA) with accelerate.

One optimizer step = `gradient_accumulation_steps` micro-batches of `data.batch_size` windows per
process. Everything random in a step is drawn from generators derived from (seed, step, rank)
(seeding.py) and the data position is checkpointed, so `--resume` continues bit for bit on the same
hardware (exactly on CPU; on GPUs up to non-deterministic kernels).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedType, ProjectConfiguration, set_seed

from .artifacts import read_config_dict, write_config, write_trainer_state, write_weights
from .batch import build_training_batch, drop_prompts, masked_mse, min_snr_weights
from .build import build_model
from .checkpoint import (
    STATE_FILE,
    CheckpointError,
    remove_stale_temporaries,
    resolve_resume,
    save_checkpoint,
)
from .config import ConfigError, TrainConfig, config_changes
from .data import WindowDataset, make_loader
from .ema import EMA
from .monitor import Monitor
from .optim import build_optimizer, build_scheduler
from .pruning import prune
from .seeding import BATCH_STREAM, VALIDATION_STREAM, generator
from .state import TrainerState
from .text import PromptEncoder
from .validation import decode_frames, sample_starter, write_side_by_side
from .windows import check_window_config

logger = logging.getLogger(__name__)


@dataclass
class FitResult:
    output_dir: Path
    step: int
    losses: list[float] = field(default_factory=list)  # per optimizer step, this invocation only
    resumed_from: Path | None = None


def make_accelerator(config: TrainConfig) -> Accelerator:
    if config.mixed_precision == "fp16" and not torch.cuda.is_available():
        raise ConfigError("mixed_precision=fp16 needs a CUDA GPU; on the CPU use bf16 or no")
    output = Path(config.output_dir)
    return Accelerator(
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        mixed_precision=config.mixed_precision,
        log_with="tensorboard" if config.logging.tensorboard else None,
        project_config=ProjectConfiguration(project_dir=str(output), logging_dir=str(output / "logs")),
    )


class Fit:
    """The state of one `fit` invocation; `run()` trains to `max_steps`."""

    def __init__(self, config: TrainConfig, resume: str | None = None, allow_config_change: bool = False) -> None:
        self.config = config
        self.output = Path(config.output_dir)
        self.accelerator = accelerator = make_accelerator(config)
        device = accelerator.device
        check_window_config(config.window, config.model.max_positions)
        if accelerator.is_main_process:
            self.output.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(self.output)
        self.dataset = WindowDataset(config.data.dataset, config.window, config.model.max_positions, config.data.prompt,
                                     config.data.pose_line_scale if config.model.pose_encoder else None)
        index = self.dataset.index
        set_seed(config.seed)  # fresh temporal / LoRA weights; nothing later reads the global RNGs
        self.model = build_model(config, device, need_vae=config.validation.every > 0,
                                 pose_downscale=index.size // index.latent_shape[-1])
        self.state = TrainerState(self.dataset.clip_ids())
        trainable = self.model.trainable
        self.ema = EMA(trainable.named_parameters(), config.ema.decay, config.ema.warmup) if config.ema.enabled else None
        optimizer = build_optimizer(self.model.param_groups(config), config.optimizer, device)
        self.scheduler = build_scheduler(optimizer, config.optimizer, config.max_steps)
        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.data.batch_size
        if accelerator.distributed_type == DistributedType.FSDP and self.ema is not None:
            raise ValueError("EMA is not supported with FSDP (parameters are sharded); set ema.enabled=false "
                             "or use DDP / DeepSpeed ZeRO-2 (the temporal layers fit on one GPU)")
        self.wrapped, self.optimizer = accelerator.prepare(trainable, optimizer)
        accelerator.register_for_checkpointing(self.scheduler, self.state)
        if self.ema is not None:
            accelerator.register_for_checkpointing(self.ema)
        parts = self.model.parts
        self.prompts = PromptEncoder(parts.tokenizer, parts.text_encoder, device)
        self.alphas_cumprod = parts.alphas_cumprod.to(device)
        self.resumed_from = self._resume(resume, allow_config_change)
        if config.logging.tensorboard:
            accelerator.init_trackers("zizi_fit", config=_hparams(config))

    # ---- resume -------------------------------------------------------------------------

    def _resume(self, resume: str | None, allow_change: bool) -> Path | None:
        path = resolve_resume(self.output, resume)
        if path is None:
            if resume:
                logger.info("--resume %s: no checkpoint in %s yet, starting from step 0", resume, self.output)
            return None
        changes = config_changes(read_config_dict(path), self.config)
        if changes:
            text = "; ".join(f"{k}: {old!r} -> {new!r}" for k, old, new in changes)
            if not allow_change:
                raise ValueError(
                    f"the config differs from the checkpoint's in what is trained ({text}); changing a run midway "
                    "makes it unreproducible. Use the checkpoint's config, or pass --allow-config-change to accept"
                )
            logger.warning("resuming with config changes: %s", text)
        self.accelerator.load_state(str(path))
        if changes:
            self.state.config_changes.append({"step": self.state.step, "changes": [list(c) for c in changes]})
        logger.info("resumed from %s (step %d, epoch %d, position %d)", path, self.state.step,
                    self.state.epoch, self.state.position)
        return path

    # ---- one optimizer step ---------------------------------------------------------------

    def _micro_step(self, batch: dict, micro_index: int) -> torch.Tensor:
        """Forward + backward of one micro-batch; returns the per-window losses [B] (detached)."""
        config, accelerator = self.config, self.accelerator
        device = accelerator.device
        gen = generator(device, config.seed, BATCH_STREAM, micro_index, accelerator.process_index)
        aug = config.augmentation
        tb = build_training_batch(
            batch["latents"].to(device), batch["mask"], batch["is_anchor"], batch["positions"],
            self.alphas_cumprod, gen, aug.snr_min, aug.snr_max, aug.clean_prob,
        )
        prompts = drop_prompts(batch["caption"], config.data.text_dropout, gen)
        text = self.prompts(prompts)  # [B, 77, D]
        with accelerator.accumulate(self.wrapped):
            pose = batch["pose"].to(device) if "pose" in batch else None
            with self._autocast():
                prediction = self.wrapped(tb.noisy, tb.timesteps, text, tb.positions, tb.known_latents, tb.mask,
                                          tb.aug_level, pose, batch["is_anchor"])  # [B, F, 4, h, w]
            per_window = masked_mse(prediction, tb.noise, tb.loss_mask)  # [B]
            weights = min_snr_weights(tb.timesteps, self.alphas_cumprod, config.loss.min_snr_gamma)  # [B]
            accelerator.backward((per_window * weights).mean())
            if accelerator.sync_gradients:
                self.grad_norm = self._clip()
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return per_window.detach()

    def _autocast(self) -> torch.autocast:
        """Autocast to the backbone's dtype, here and not only through accelerate: under DeepSpeed accelerate never
        autocasts (DeepSpeed owns the precision) and the low-precision backbone would meet fp32 latents. Nested
        in accelerate's own autocast (one GPU, DDP, FSDP) it changes nothing."""
        dtype = self.model.weight_dtype
        return torch.autocast(self.accelerator.device.type, dtype=dtype, enabled=dtype != torch.float32)

    def _clip(self) -> float | None:
        params = [p for p in self.wrapped.parameters() if p.requires_grad]
        max_norm = self.config.optimizer.max_grad_norm
        if max_norm > 0:
            norm = self.accelerator.clip_grad_norm_(params, max_norm)
        else:
            grads = [p.grad.detach().float().norm() for p in params if p.grad is not None]
            norm = torch.stack(grads).norm() if grads else None
        return float(norm) if norm is not None else None

    def _loader_iter(self):
        accelerator, state, config = self.accelerator, self.state, self.config
        loader = make_loader(self.dataset, state.active, config.data.batch_size, config.seed,
                             accelerator.process_index, accelerator.num_processes, state.epoch, state.position,
                             config.data.num_workers)
        return iter(loader)

    # ---- the loop -----------------------------------------------------------------------

    def run(self) -> FitResult:
        config, accelerator, state = self.config, self.accelerator, self.state
        accum = config.gradient_accumulation_steps
        monitor = Monitor(accelerator, state.step, config.max_steps, config.logging.every, config.logging.progress_bar)
        batches = self._loader_iter()
        self.wrapped.train()
        try:
            while state.step < config.max_steps:
                self.grad_norm = None
                losses = []
                for micro in range(accum):
                    batch = next(batches)
                    per_window = self._micro_step(batch, state.step * accum + micro)
                    losses_all = accelerator.gather(per_window)
                    clips_all = accelerator.gather(batch["clip"].to(accelerator.device))
                    state.tracker.record(clips_all.tolist(), losses_all.float().tolist())
                    losses.append(losses_all.float().mean())
                    state.epoch, state.position = batch["epoch"], batch["position"]
                self.scheduler.step()
                if self.ema is not None:
                    self.ema.update()
                state.step += 1
                loss = float(torch.stack(losses).mean())
                monitor.update(state.step, loss, self.scheduler.get_last_lr()[0], self.grad_norm)
                if self._maybe_prune():
                    batches = self._loader_iter()
                if config.validation.every and state.step % config.validation.every == 0:
                    self.validate()
                if state.step % config.checkpoint.every == 0 or state.step == config.max_steps:
                    self.save()
        finally:
            monitor.close()
            accelerator.end_training()
        return FitResult(self.output, state.step, monitor.history, self.resumed_from)

    def _maybe_prune(self) -> bool:
        pruning, state = self.config.pruning, self.state
        if not pruning.enabled or state.pruned_at is not None or state.step < pruning.at_step:
            return False
        state.active = prune(state.tracker, state.active, pruning.drop_fraction, pruning.min_visits, state.clip_ids)
        state.pruned_at = state.step
        state.epoch, state.position = state.epoch + 1, 0  # a new epoch over the remaining clips
        return True

    # ---- checkpoints ----------------------------------------------------------------------

    def save(self) -> Path:
        accelerator, state = self.accelerator, self.state
        full_state = accelerator.get_state_dict(self.wrapped)  # gathered where sharded (all processes)
        ema_state = None
        if self.ema is not None:
            ema_state = {name: t for name, t in self.ema.shadow.items()}
        temporal_config = self.model.video_unet.temporal.config

        def write_state(folder: Path) -> None:
            accelerator.save_state(str(folder), safe_serialization=True)

        def write_extras(folder: Path) -> None:
            write_weights(folder, self.config, temporal_config, state.step, full_state, ema_state,
                          self.model.parts.unet.config, scheduler_config=self.model.parts.scheduler_config)
            write_config(folder, self.config)
            write_trainer_state(folder, {**state.summary(), "seed": self.config.seed, "time": time.time()}, STATE_FILE)

        try:
            return save_checkpoint(self.output, state.step, write_state, write_extras, accelerator.is_main_process,
                                   accelerator.wait_for_everyone, self.config.checkpoint.keep)
        except CheckpointError:
            logger.error("checkpoint at step %d failed; stopping (resume with --resume latest)", state.step)
            raise

    # ---- validation -------------------------------------------------------------------------

    @torch.no_grad()
    def validate(self) -> Path | None:
        config, accelerator = self.config, self.accelerator
        parts = self.model.parts
        if parts.vae is None:
            return None
        clip = self.dataset.clips[0]
        frames = min(config.window.frames, clip.frames)
        latents = self.dataset.reader.read_frames(clip, list(range(frames))).to(accelerator.device)  # [F, 4, h, w]
        prompt = config.validation.prompt or clip.caption or config.data.prompt
        text, uncond = self.prompts([prompt]), self.prompts([""])
        gen = generator(accelerator.device, config.seed, VALIDATION_STREAM, self.state.step)
        self.wrapped.eval()

        def denoise(*args):
            with self._autocast():
                return self.wrapped(*args)

        try:
            if self.ema is not None and config.validation.use_ema:
                with self.ema.swapped_in():
                    sampled = self._sample(denoise, latents, frames, text, uncond, gen)
            else:
                sampled = self._sample(denoise, latents, frames, text, uncond, gen)
        finally:
            self.wrapped.train()
        if not accelerator.is_main_process:
            return None
        scale = parts.vae_scale
        path = self.output / "validation" / f"step_{self.state.step:07d}.mp4"
        return write_side_by_side(path, decode_frames(parts.vae, sampled, scale), decode_frames(parts.vae, latents, scale),
                                  config.validation.fps)

    def _sample(self, denoise, latents, frames, text, uncond, gen) -> torch.Tensor:
        config = self.config
        return sample_starter(denoise, latents[0], frames, text, uncond, self.model.parts.scheduler_config,
                              config.validation.steps, config.validation.guidance_scale, gen,
                              config.model.max_positions, config.window.anchor_gap)


def _hparams(config: TrainConfig) -> dict:
    from .config import flatten, to_dict

    return {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in flatten(to_dict(config)).items()}


def fit(config: TrainConfig, resume: str | None = None, allow_config_change: bool = False) -> FitResult:
    """Train to `config.max_steps` (resuming from `resume`: None, "latest" or a checkpoint path)."""
    try:
        run = Fit(config, resume, allow_config_change)
        try:
            return run.run()
        finally:
            run.model.video_unet.eject()
    finally:
        _release_accelerate_state()


def _release_accelerate_state() -> None:
    """accelerate keeps process-wide singletons; reset them so another `fit` can run in this process
    (tests, notebooks) with other settings."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(True)
    GradientState._reset_state()
