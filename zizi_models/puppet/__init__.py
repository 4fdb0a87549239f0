"""The puppet world: a deterministic synthetic ground truth for pose-driven video.

A stick puppet (3D skeleton driven by joint angles, projected orthographically) performs a few
motion kinds (``MOTIONS``: walk, dance, turn, idle; ``mixed_motion`` chains them with blended
transitions). Its poses are strict POSE_KEYPOINT sequences (canvas pixels, one person with
``person_id`` 0), and ``render_puppet`` draws them as a flat-coloured puppet (head circle,
torso quadrilateral, capsule limbs, per-segment colours, left limbs darker than right) in one of
the ``CHARACTERS``, or (world v2, what the shipped model trains on) in an appearance drawn from a seed
(``random_appearance``: part colours, limb thickness, head size, a patterned background) with a held-out
"unseen" split disjoint from "train" by construction. Same arguments always give the same poses and pixels, so the frames are an
exact target for training a small video model and for measuring drift in long generations.

Pure Python + NumPy + OpenCV; no torch, never ComfyUI.
"""

from __future__ import annotations

from .appearance import APPEARANCE_CAPTION, SPLITS, appearance_split, random_appearance
from .character import BODY_PARTS, CHARACTERS, Character, character_caption
from .clips import PuppetClip, demo_clip, demo_sequence, make_clip, random_clip
from .motion import MOTIONS, generate_motion, mixed_motion
from .render import render_clip, render_part_labels, render_puppet

__all__ = [
    "APPEARANCE_CAPTION",
    "BODY_PARTS",
    "CHARACTERS",
    "SPLITS",
    "appearance_split",
    "demo_clip",
    "random_appearance",
    "render_part_labels",
    "MOTIONS",
    "Character",
    "PuppetClip",
    "character_caption",
    "demo_sequence",
    "generate_motion",
    "make_clip",
    "mixed_motion",
    "random_clip",
    "render_clip",
    "render_puppet",
]
