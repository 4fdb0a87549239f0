"""Progress bar (loss, it/s, memory) and tensorboard scalars (loss, lr, grad norm, it/s, memory)."""

from __future__ import annotations

import logging
import resource
import sys
import time

import torch
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)


def memory_gb(device: torch.device) -> float:
    """Peak accelerator memory (CUDA) or peak resident memory of this process (CPU), in GiB."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss_kb / 2**20 if sys.platform != "darwin" else rss_kb / 2**30


class Monitor:
    def __init__(self, accelerator, start_step: int, max_steps: int, log_every: int, progress_bar: bool) -> None:
        self.accelerator = accelerator
        self.log_every = max(1, log_every)
        self.bar = tqdm(total=max_steps, initial=start_step, desc="fit", unit="step", dynamic_ncols=True,
                        disable=not (progress_bar and accelerator.is_main_process))
        self.smoothed: float | None = None
        self._last_time = time.perf_counter()
        self._last_step = start_step
        self.history: list[float] = []  # loss per optimizer step (this process's run only)

    def update(self, step: int, loss: float, lr: float, grad_norm: float | None) -> None:
        self.history.append(loss)
        self.smoothed = loss if self.smoothed is None else 0.9 * self.smoothed + 0.1 * loss
        device = self.accelerator.device
        memory = memory_gb(device)
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{self.smoothed:.4f}", lr=f"{lr:.2e}", mem=f"{memory:.2f}G", refresh=False)
        if step % self.log_every == 0:
            now = time.perf_counter()
            rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
            self._last_time, self._last_step = now, step
            scalars = {"train/loss": loss, "train/loss_smoothed": self.smoothed, "train/lr": lr,
                       "train/it_per_s": rate, "train/memory_gb": memory}
            if grad_norm is not None:
                scalars["train/grad_norm"] = grad_norm
            self.accelerator.log(scalars, step=step)
            # without a progress bar (headless runs, logs to a file) these lines are the progress report
            headless = self.bar.disable and self.accelerator.is_main_process
            level = logging.INFO if headless else logging.DEBUG
            logger.log(level, "step %d loss %.5f (smoothed %.5f) lr %.3e grad_norm %s %.2f it/s", step, loss,
                       self.smoothed, lr, grad_norm, rate)

    def close(self) -> None:
        self.bar.close()
