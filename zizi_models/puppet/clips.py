"""Ready-made puppet clips: poses + rendered frames + caption, reproducible from their arguments.

Clips are square (``size`` x ``size``). ``kind`` is one of ``MOTIONS`` or "mixed" (``mixed_motion``,
which ignores ``speed``: each of its segments draws its own).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np

from ..pose.schema import PoseFrame
from .appearance import APPEARANCE_CAPTION, random_appearance
from .character import CHARACTERS, Character, character_caption
from .motion import MOTIONS, generate_motion, mixed_motion
from .render import render_clip

logger = logging.getLogger(__name__)

DEMO_CHARACTER = "ruby"  # demo_sequence's character (world 1) and make_clip's default
DEMO_APPEARANCE_SEED = 3  # make demo's and bench/quality.py's held-out character: random_appearance(3, "unseen")
SPEED_RANGE = (0.5, 2.0)


@dataclass
class PuppetClip:
    """One clip. ``frames``: uint8 RGB ``[T, H, W, 3]``; ``poses``: strict POSE_KEYPOINT (T frames)."""

    kind: str
    speed: float
    seed: int
    character: str
    caption: str
    poses: list[PoseFrame]
    frames: np.ndarray


def _character(character: str | Character) -> Character:
    if isinstance(character, Character):
        return character
    if character not in CHARACTERS:
        raise ValueError(f"character: unknown character {character!r}; valid values: {', '.join(CHARACTERS)}")
    return CHARACTERS[character]


def make_clip(kind: str, frames: int, size: int, speed: float = 1.0, character: str | Character = DEMO_CHARACTER,
              seed: int = 0, caption: str | None = None) -> PuppetClip:
    """Generate and render one clip of ``frames`` frames at ``size`` x ``size``; ``caption`` defaults to the
    character's description (``character_caption``)."""
    ch = _character(character)
    if kind == "mixed":
        poses = mixed_motion(frames, size, size, seed)
    elif kind in MOTIONS:
        poses = generate_motion(kind, frames, size, size, speed, seed)
    else:
        raise ValueError(f"kind: unknown motion {kind!r}; valid values: {', '.join((*MOTIONS, 'mixed'))}")
    video = render_clip(poses, ch, size, size)
    logger.debug("puppet clip: %s x%d, %s, speed %.2f, seed %d", kind, frames, ch.name, speed, seed)
    return PuppetClip(kind, float(speed), int(seed), ch.name, caption if caption is not None else character_caption(ch),
                      poses, video)


def random_clip(rng_seed: int, frames: int, size: int, world: int = 2, split: str = "train") -> PuppetClip:
    """A clip whose kind, speed and motion seed are drawn from ``random.Random(rng_seed)``, and its look:

    world 2: an appearance of ``split`` (``random_appearance``), captioned ``APPEARANCE_CAPTION`` for every
    clip (only the frames show the look); world 1: one of the named ``CHARACTERS``, captioned with its
    description (what the shipped weights were trained on)."""
    rng = random.Random(rng_seed)
    kind = rng.choice(MOTIONS)
    speed = round(rng.uniform(*SPEED_RANGE), 2)
    if world == 1:
        character = rng.choice(sorted(CHARACTERS))
        return make_clip(kind, frames, size, speed, character, rng.randrange(2**31 - 1))
    if world != 2:
        raise ValueError(f"world: expected 1 (named characters) or 2 (appearance from a seed), got {world!r}")
    appearance = random_appearance(rng.randrange(2**31 - 1), split)
    seed = rng.randrange(2**31 - 1)
    return make_clip(kind, frames, size, speed, appearance, seed, caption=APPEARANCE_CAPTION)


def demo_sequence(frames: int = 240, size: int = 64, seed: int = 0) -> PuppetClip:
    """The default demo clip: ``mixed_motion`` (all kinds, blended) drawn as the "ruby" character (world 1,
    what the shipped weights were trained on)."""
    return make_clip("mixed", frames, size, 1.0, DEMO_CHARACTER, seed)


def demo_clip(frames: int = 240, size: int = 64, seed: int = 0,
              appearance_seed: int = DEMO_APPEARANCE_SEED) -> PuppetClip:
    """``mixed_motion`` of motion seed ``seed`` drawn as ``random_appearance(appearance_seed, "unseen")``; the
    defaults are ``make demo``'s clip (held-out character unseen-3, what the shipped weights never saw)."""
    return make_clip("mixed", frames, size, 1.0, random_appearance(appearance_seed, "unseen"), seed,
                     caption=APPEARANCE_CAPTION)
