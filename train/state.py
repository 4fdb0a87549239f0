"""The trainer's own resumable state (registered with accelerate, so it lives in every checkpoint)."""

from __future__ import annotations

from typing import Any

from .pruning import ClipLossTracker


class TrainerState:
    """Optimizer step count, data position, active clip set, per-clip losses, config-change history."""

    def __init__(self, clip_ids: list[str]) -> None:
        self.clip_ids = list(clip_ids)
        self.step = 0
        self.epoch = 0
        self.position = 0  # next sample of this process's share of `epoch`
        self.active = list(range(len(clip_ids)))
        self.pruned_at: int | None = None
        self.tracker = ClipLossTracker(len(clip_ids))
        self.config_changes: list[dict[str, Any]] = []

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.epoch,
            "position": self.position,
            "active_ids": [self.clip_ids[i] for i in self.active],
            "clip_ids": list(self.clip_ids),
            "pruned_at": self.pruned_at,
            "tracker": self.tracker.state_dict(),
            "config_changes": list(self.config_changes),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if list(state["clip_ids"]) != self.clip_ids:
            raise ValueError(
                f"the checkpoint was trained on {len(state['clip_ids'])} clips that differ from the dataset's "
                f"{len(self.clip_ids)}; resume with the same preprocessed dataset and window config"
            )
        where = {cid: i for i, cid in enumerate(self.clip_ids)}
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.position = int(state["position"])
        self.active = [where[cid] for cid in state["active_ids"]]
        self.pruned_at = state["pruned_at"]
        self.tracker.load_state_dict(state["tracker"])
        self.config_changes = list(state.get("config_changes", []))

    def summary(self) -> dict[str, Any]:
        return {"step": self.step, "epoch": self.epoch, "position": self.position,
                "active_clips": len(self.active), "total_clips": len(self.clip_ids), "pruned_at": self.pruned_at,
                "config_changes": self.config_changes}
