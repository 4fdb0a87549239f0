"""Exponential moving average of the trainable weights (fp32 shadow copies, keyed by name)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn


class EMA:
    def __init__(self, named_parameters: Iterator[tuple[str, nn.Parameter]], decay: float, warmup: bool = True) -> None:
        self.params = {name: p for name, p in named_parameters if p.requires_grad}
        self.shadow = {name: p.detach().clone().float() for name, p in self.params.items()}
        self.decay = decay
        self.warmup = warmup
        self.updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        decay = self.current_decay()
        for name, p in self.params.items():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)
        self.updates += 1

    @contextmanager
    def swapped_in(self):
        """Temporarily put the EMA weights into the live parameters (exactly restored afterwards)."""
        backup = {name: p.detach().clone() for name, p in self.params.items()}
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.shadow[name].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(backup[name])

    def state_dict(self) -> dict[str, Any]:
        return {"decay": self.decay, "updates": self.updates,
                "shadow": {name: t.detach().cpu().clone() for name, t in self.shadow.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = sorted(set(self.shadow) - set(state["shadow"]))
        if missing:
            raise ValueError(f"EMA state lacks {len(missing)} weights, e.g. {missing[:3]}")
        self.updates = int(state["updates"])
        for name in self.shadow:
            self.shadow[name] = state["shadow"][name].to(device=self.shadow[name].device, dtype=torch.float32).clone()
