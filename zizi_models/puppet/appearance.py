"""Puppet world v2: a character's whole appearance drawn from a seed, with a held-out split.

Every clip's look comes from ``random_appearance(seed, split)``: a colour for every body part from a
continuous HSV range (left limbs a darker shade of the right ones), limb thickness, head size, and a
background (a colour far from every body colour, flat or with a static pattern: stripes or a checker
board in a shade of that colour). Nothing in the prompt (``APPEARANCE_CAPTION``) or the pose says what
the character looks like: only the first frame does.

The split is disjoint by construction: the torso's hue (of the RGB uint8 colour as drawn) falls into one
of ``HUE_BANDS`` equal bands, and the bands in ``UNSEEN_BANDS`` are reserved for the "unseen" split:
a "train" appearance never has its torso there, an "unseen" one always has. ``appearance_split`` reads
the split back from any character.
"""

from __future__ import annotations

import colorsys
import dataclasses
import random

from .character import RGB, Character, make_character, shade_colour

SPLITS = ("train", "unseen")
HUE_BANDS = 12  # 30 degrees each
UNSEEN_BANDS = frozenset({1, 5, 9})  # 30-60, 150-180 and 270-300 degrees: yellow-orange, green-cyan, violet
APPEARANCE_CAPTION = "a puppet"
PATTERNS = ("flat", "stripes_h", "stripes_v", "checker")
PATTERN_WEIGHTS = (0.4, 0.2, 0.2, 0.2)
MIN_SATURATION = 0.45  # the torso's hue is well defined (and its band with it)
_BACKGROUND_DISTANCE = 80.0  # RGB distance from every body colour
_SATURATION = (0.45, 0.95)
_VALUE = (0.45, 0.95)
LIMB_THICKNESS = (0.8, 1.3)
HEAD_SCALE = (0.8, 1.25)
PATTERN_PERIOD = (0.12, 0.25)  # fraction of the frame height
PATTERN_SHADE = (0.72, 0.85)  # the pattern's second colour: the background times this (or its inverse)


def hue_band(rgb: RGB) -> int:
    """The band (0..HUE_BANDS-1) of an RGB uint8 colour's hue."""
    h, _, _ = colorsys.rgb_to_hsv(*(v / 255.0 for v in rgb))
    return min(HUE_BANDS - 1, int(h * HUE_BANDS))


def _saturation(rgb: RGB) -> float:
    return colorsys.rgb_to_hsv(*(v / 255.0 for v in rgb))[1]


def appearance_split(character: Character) -> str:
    """'unseen' when the torso's hue is in a held-out band, else 'train'."""
    return "unseen" if hue_band(character.torso) in UNSEEN_BANDS else "train"


def _rgb(h: float, s: float, v: float) -> RGB:
    return tuple(int(round(c * 255)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))  # type: ignore[return-value]


def _random_colour(rng: random.Random) -> RGB:
    return _rgb(rng.random(), rng.uniform(*_SATURATION), rng.uniform(*_VALUE))


def _torso_colour(rng: random.Random, split: str) -> RGB:
    bands = sorted(UNSEEN_BANDS) if split == "unseen" else [b for b in range(HUE_BANDS) if b not in UNSEEN_BANDS]
    while True:  # the band is checked on the quantised colour, so rounding never crosses a band edge
        band = rng.choice(bands)
        colour = _rgb((band + rng.random()) / HUE_BANDS, rng.uniform(MIN_SATURATION, _SATURATION[1]),
                      rng.uniform(*_VALUE))
        if hue_band(colour) == band and _saturation(colour) >= MIN_SATURATION:
            return colour


def _distance(a: RGB, b: RGB) -> float:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) ** 0.5


def _background(rng: random.Random, body: tuple[RGB, ...]) -> RGB:
    """A colour at least _BACKGROUND_DISTANCE from every body colour (and from their pattern shades)."""
    for _ in range(1000):
        colour = _rgb(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95))
        if all(_distance(colour, c) >= _BACKGROUND_DISTANCE for c in body):
            return colour
    # a grey as far as possible from the body colours (never reached with this many parts in practice)
    return max(((g, g, g) for g in range(0, 256, 5)), key=lambda grey: min(_distance(grey, c) for c in body))


def random_appearance(seed: int, split: str = "train") -> Character:
    """The appearance of seed ``seed`` in ``split`` ("train" or "unseen"); a pure function of its arguments."""
    if split not in SPLITS:
        raise ValueError(f"split: expected one of {', '.join(SPLITS)}, got {split!r}")
    rng = random.Random(f"zizi-puppet-appearance/{split}/{int(seed)}")
    torso = _torso_colour(rng, split)
    head, upper_arm, lower_arm, upper_leg, lower_leg = (_random_colour(rng) for _ in range(5))
    body = make_character(f"{split}-{int(seed)}", (0, 0, 0), head, torso, upper_arm, lower_arm, upper_leg,
                          lower_leg)  # the background follows from the body colours
    pattern = rng.choices(PATTERNS, weights=PATTERN_WEIGHTS)[0]
    shade = rng.uniform(*PATTERN_SHADE)
    background = _background(rng, body.body_colours())
    # the pattern's second colour: darker, or lighter when the background is dark
    pattern_colour = shade_colour(background, shade) if max(background) > 110 else shade_colour(background, 1.0 / shade)
    if pattern == "flat":
        pattern_colour = background
    return dataclasses.replace(
        body, background=background, limb_thickness=round(rng.uniform(*LIMB_THICKNESS), 3), head_scale=round(rng.uniform(*HEAD_SCALE), 3),
        pattern=pattern, pattern_colour=pattern_colour, pattern_period=round(rng.uniform(*PATTERN_PERIOD), 3),
    )
