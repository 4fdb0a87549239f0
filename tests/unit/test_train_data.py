"""Data order (resumable, sharded per process) and pruning bookkeeping."""

from __future__ import annotations

import itertools

import pytest

from train.data import ResumableBatchSampler
from train.pruning import ClipLossTracker, prune
from train.state import TrainerState


def _take(sampler: ResumableBatchSampler, count: int) -> list[list[tuple[int, int, int, int]]]:
    return [[(k.clip, k.seed, k.epoch, k.position) for k in batch] for batch in itertools.islice(iter(sampler), count)]


def test_sampler_resumes_where_it_stopped() -> None:
    active = list(range(10))
    straight = _take(ResumableBatchSampler(active, 3, seed=5), 9)  # 3 batches per epoch, crosses epochs
    last = straight[3][-1]  # after 4 batches: epoch 1, next position 3
    resumed = _take(ResumableBatchSampler(active, 3, seed=5, epoch=last[2], position=last[3] + 1), 5)
    assert resumed == straight[4:]
    assert {b[0][2] for b in straight} == {0, 1, 2}
    assert sorted(c for batch in straight[:3] for c, *_ in batch) == sorted(ResumableBatchSampler(active, 3, 5).share(0)[:9])


def test_sampler_shards_disjointly_and_reshuffles_each_epoch() -> None:
    active = list(range(20))
    shares = [ResumableBatchSampler(active, 2, seed=1, rank=r, world_size=3).share(0) for r in range(3)]
    assert all(len(s) == 6 for s in shares)
    assert len(set(itertools.chain(*shares))) == 18
    one = ResumableBatchSampler(active, 2, seed=1)
    assert one.share(0) != one.share(1) and sorted(one.share(1)) == active
    with pytest.raises(ValueError, match="cannot fill a batch"):
        ResumableBatchSampler(list(range(3)), 2, seed=0, world_size=2)


def test_pruning_drops_the_hardest_clips_with_enough_visits() -> None:
    tracker = ClipLossTracker(6)
    tracker.record([0, 1, 2, 3, 4], [0.1, 0.9, 0.5, 0.8, 2.0])
    tracker.record([0, 1, 2, 3], [0.1, 0.7, 0.5, 0.8])
    assert tracker.hardest(list(range(6)), 0.34, min_visits=2) == [1, 3]  # clip 4 is hard but seen once
    assert prune(tracker, list(range(6)), 0.34, 2, [f"c{i}" for i in range(6)]) == [0, 2, 4, 5]


def test_trainer_state_round_trip_checks_the_dataset() -> None:
    state = TrainerState(["a", "b", "c"])
    state.step, state.epoch, state.position, state.active, state.pruned_at = 7, 2, 1, [0, 2], 5
    state.tracker.record([0, 2], [0.5, 0.25])
    again = TrainerState(["a", "b", "c"])
    again.load_state_dict(state.state_dict())
    assert again.state_dict() == state.state_dict()
    with pytest.raises(ValueError, match="same preprocessed dataset"):
        TrainerState(["a", "b"]).load_state_dict(state.state_dict())
