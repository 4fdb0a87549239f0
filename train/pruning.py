"""Data pruning (seed 001's prioritised training): record each clip's loss, drop the hardest once.

The tracker keeps a running sum and count of the per-window loss for every clip. At
`pruning.at_step` the clips with the highest mean loss (among those seen at least `min_visits`
times) are removed from the active set, `drop_fraction` of it. Everything lives in the checkpoint
(sums, counts, active set, when pruning happened), so a resumed run prunes the same clips at the
same step, unlike seed 001's mid-run hand edits. The decision is logged with the dropped clip ids.
"""

from __future__ import annotations

import logging
import math
from typing import Any

logger = logging.getLogger(__name__)


class ClipLossTracker:
    def __init__(self, num_clips: int) -> None:
        self.sums = [0.0] * num_clips
        self.counts = [0] * num_clips

    def record(self, clips: list[int], losses: list[float]) -> None:
        for clip, loss in zip(clips, losses, strict=True):
            if math.isfinite(loss):
                self.sums[clip] += float(loss)
                self.counts[clip] += 1

    def mean(self, clip: int) -> float:
        return self.sums[clip] / self.counts[clip] if self.counts[clip] else math.nan

    def hardest(self, active: list[int], fraction: float, min_visits: int) -> list[int]:
        """The `fraction` of `active` with the highest mean loss (ties broken by clip index)."""
        count = int(len(active) * fraction)
        eligible = [c for c in active if self.counts[c] >= max(1, min_visits)]
        ranked = sorted(eligible, key=lambda c: (-self.mean(c), c))
        return sorted(ranked[:count])

    def state_dict(self) -> dict[str, Any]:
        return {"sums": list(self.sums), "counts": list(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["sums"]) != len(self.sums):
            raise ValueError(
                f"the checkpoint tracked {len(state['sums'])} clips but the dataset has {len(self.sums)}; "
                "resume with the same preprocessed dataset"
            )
        self.sums = [float(v) for v in state["sums"]]
        self.counts = [int(v) for v in state["counts"]]


def prune(tracker: ClipLossTracker, active: list[int], fraction: float, min_visits: int,
          clip_ids: list[str]) -> list[int]:
    """Return the new active set without the hardest clips (logs what was dropped)."""
    dropped = tracker.hardest(active, fraction, min_visits)
    if not dropped:
        logger.warning("pruning: no clip dropped (%d active, fraction %.3f, min_visits %d)",
                       len(active), fraction, min_visits)
        return list(active)
    drop = set(dropped)
    logger.info(
        "pruning: dropping the %d hardest of %d clips (mean loss %.4f .. %.4f): %s",
        len(dropped), len(active), min(tracker.mean(c) for c in dropped), max(tracker.mean(c) for c in dropped),
        ", ".join(clip_ids[c] for c in dropped[:20]) + (" ..." if len(dropped) > 20 else ""),
    )
    return [c for c in active if c not in drop]
