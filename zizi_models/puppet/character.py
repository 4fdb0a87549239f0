"""Puppet characters: a colour scheme (RGB uint8 tuples) and a limb-thickness scale.

Colours are RGB (not BGR). "Left"/"right" are the subject's own sides, as in OpenPose; the left
limbs are a slightly darker shade of the right ones so the two sides stay distinguishable.
Backgrounds are chosen far (in RGB) from every body colour of their character.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

logger = logging.getLogger(__name__)

RGB = tuple[int, int, int]

# Names used by ``character_caption`` (nearest colour in RGB wins).
_COLOUR_NAMES: dict[str, RGB] = {
    "black": (20, 20, 20),
    "dark grey": (70, 70, 70),
    "grey": (140, 140, 140),
    "light grey": (200, 200, 200),
    "white": (245, 245, 245),
    "cream": (235, 225, 200),
    "beige": (240, 205, 165),
    "red": (200, 30, 40),
    "orange": (245, 130, 30),
    "yellow": (250, 220, 60),
    "green": (40, 180, 80),
    "dark green": (30, 80, 40),
    "teal": (40, 170, 170),
    "sky blue": (100, 170, 230),
    "blue": (40, 70, 190),
    "navy": (25, 30, 60),
    "purple": (110, 50, 170),
    "magenta": (200, 40, 160),
    "brown": (130, 80, 50),
}


BODY_PARTS: tuple[str, ...] = (
    "head", "torso", "upper_arm_left", "upper_arm_right", "lower_arm_left", "lower_arm_right",
    "upper_leg_left", "upper_leg_right", "lower_leg_left", "lower_leg_right",
)


@dataclass(frozen=True)
class Character:
    """A puppet's look. Every colour is an RGB uint8 tuple; ``limb_thickness`` scales all limb radii and
    ``head_scale`` the head's. The background is ``background``, or with ``pattern`` (one of
    ``appearance.PATTERNS``) a static pattern of ``background`` and ``pattern_colour`` whose period is
    ``pattern_period`` times the frame height."""

    name: str
    background: RGB
    head: RGB
    torso: RGB
    upper_arm_left: RGB
    upper_arm_right: RGB
    lower_arm_left: RGB
    lower_arm_right: RGB
    upper_leg_left: RGB
    upper_leg_right: RGB
    lower_leg_left: RGB
    lower_leg_right: RGB
    limb_thickness: float = 1.0
    head_scale: float = 1.0
    pattern: str = "flat"
    pattern_colour: RGB | None = None
    pattern_period: float = 0.2

    def body_colours(self) -> tuple[RGB, ...]:
        """Every colour drawn on the puppet (not the background), in ``BODY_PARTS`` order."""
        return tuple(getattr(self, part) for part in BODY_PARTS)


def shade_colour(rgb: RGB, factor: float) -> RGB:
    return tuple(int(max(0, min(255, round(v * factor)))) for v in rgb)  # type: ignore[return-value]


LEFT_SHADE = 0.78  # left limbs are this shade of the right ones, so the two sides differ


def make_character(name: str, background: RGB, head: RGB, torso: RGB, upper_arm: RGB, lower_arm: RGB,
                   upper_leg: RGB, lower_leg: RGB, left_shade: float = LEFT_SHADE, **looks) -> Character:
    """A character whose left limbs are ``left_shade`` times the right ones; ``looks`` are the other
    Character fields (limb_thickness, head_scale, pattern, ...)."""
    return Character(
        name=name, background=background, head=head, torso=torso,
        upper_arm_left=shade_colour(upper_arm, left_shade), upper_arm_right=upper_arm,
        lower_arm_left=shade_colour(lower_arm, left_shade), lower_arm_right=lower_arm,
        upper_leg_left=shade_colour(upper_leg, left_shade), upper_leg_right=upper_leg,
        lower_leg_left=shade_colour(lower_leg, left_shade), lower_leg_right=lower_leg,
        **looks,
    )


CHARACTERS: dict[str, Character] = {
    c.name: c
    for c in (
        make_character("ruby", (150, 150, 150), (240, 205, 165), (200, 30, 40), (245, 130, 30), (250, 175, 70),
              (40, 70, 190), (30, 50, 140)),
        make_character("mint", (25, 30, 60), (245, 220, 190), (40, 180, 80), (235, 235, 235), (200, 200, 200),
              (180, 115, 60), (150, 95, 50), limb_thickness=0.9),
        make_character("sunny", (100, 170, 230), (250, 220, 60), (245, 130, 30), (200, 40, 160), (230, 90, 190),
              (70, 70, 70), (40, 40, 40), limb_thickness=1.1),
        make_character("violet", (235, 225, 200), (130, 80, 50), (110, 50, 170), (40, 170, 170), (60, 200, 200),
              (30, 30, 30), (80, 80, 80)),
        make_character("forest", (30, 80, 40), (245, 245, 245), (250, 220, 60), (220, 60, 60), (240, 110, 110),
              (100, 170, 230), (60, 120, 200), limb_thickness=1.2),
    )
}


def colour_name(rgb: RGB) -> str:
    """The nearest named colour (squared RGB distance)."""
    return min(_COLOUR_NAMES, key=lambda n: sum((a - b) ** 2 for a, b in zip(_COLOUR_NAMES[n], rgb, strict=True)))


def character_caption(character: Character) -> str:
    """A short text prompt, e.g. "a puppet with a beige head, a red torso, orange arms and blue legs
    on a light grey background"."""
    c = character

    def a(word: str) -> str:
        return f"an {word}" if word[0] in "aeiou" else f"a {word}"

    return (
        f"a puppet with {a(colour_name(c.head))} head, {a(colour_name(c.torso))} torso, "
        f"{colour_name(c.upper_arm_right)} arms and {colour_name(c.upper_leg_right)} legs "
        f"on {a(colour_name(c.background))} background"
    )
