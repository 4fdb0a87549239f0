"""bench/quality.py's ground truth: a held-out character by appearance seed, or a world-1 character by name."""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pytest

from tests.unit.test_quality_metrics import load_bench_module
from zizi_models.puppet import CHARACTERS, character_caption, demo_sequence, random_appearance


@pytest.fixture(scope="module")
def quality():
    yield load_bench_module("quality")
    sys.modules.pop("bench_quality", None)


def test_character_is_a_seed_or_a_world1_name(quality) -> None:
    assert quality.character_arg("3") == 3
    assert quality.character_arg("ruby") == "ruby"
    with pytest.raises(argparse.ArgumentTypeError, match="appearance seed or one of"):
        quality.character_arg("nobody")


def test_world1_truth_is_the_demo_sequence_in_that_characters_colours(quality) -> None:
    clip, appearance, line = quality.ground_truth(12, 32, 0, "ruby")
    assert np.array_equal(clip.frames, demo_sequence(12, 32, 0).frames)  # the first shipped model's demo clip
    assert appearance is CHARACTERS["ruby"] and clip.caption == character_caption(CHARACTERS["ruby"])
    assert "world-1 character `ruby`" in line
    held_out, unseen, text = quality.ground_truth(12, 32, 0, 3)
    assert unseen == random_appearance(3, "unseen") and "unseen-3" in text
    assert not np.array_equal(held_out.frames, clip.frames)  # same motion, another look
