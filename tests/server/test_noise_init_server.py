"""noise_init over HTTP on the shipped puppet model: where generated frames start changes them, and
starting from the first frame's latent (what training's last timestep holds) keeps the video closer to
the truth than pure noise.

Frames are compared losslessly (SaveImage PNGs of the controller's IMAGE output).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devtools.comfy_client import ComfyClient
from devtools.demo import PUPPET_BASE, PUPPET_SIZE, PUPPET_TEMPORAL, PUPPET_WORKFLOW, write_puppet_inputs
from devtools.workflows import load_api_workflow, set_inputs
from tests.server.saved_frames import frames_of, mean_difference, with_reference
from zizi_models.puppet import demo_sequence

pytestmark = pytest.mark.server

REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"
FRAMES = 16


@pytest.fixture(scope="module")
def clip():
    return demo_sequence(frames=40, size=PUPPET_SIZE, seed=0)


@pytest.fixture(scope="module")
def puppet_prompt(comfy_server, clip, tmp_path_factory) -> dict:
    if not all((REPO_WEIGHTS / name).is_file() for name in (PUPPET_BASE, PUPPET_TEMPORAL)):
        pytest.skip("the shipped puppet model is not built")
    folder = tmp_path_factory.mktemp("noise-init-inputs")
    write_puppet_inputs(folder, clip)
    client = ComfyClient(comfy_server.url)
    for name in sorted(p.name for p in folder.iterdir()):
        client.upload(folder / name)
    prompt = load_api_workflow(PUPPET_WORKFLOW)
    set_inputs(prompt, "ZiziLoopController", total_frames=FRAMES, steps=4)
    return prompt


def test_noise_init_changes_the_frames_and_the_anchor_start_is_closer_to_the_truth(
        comfy: ComfyClient, puppet_prompt: dict, clip) -> None:
    runs = {}
    for mode in ("anchor", "nearest", "noise"):
        prompt = with_reference(puppet_prompt, None, f"zizi_test/noise_init_{mode}")
        set_inputs(prompt, "ZiziLoopController", noise_init=mode)
        runs[mode] = frames_of(comfy, prompt)
    assert runs["anchor"].shape == (FRAMES, PUPPET_SIZE, PUPPET_SIZE, 3)
    for a, b in (("anchor", "noise"), ("anchor", "nearest"), ("nearest", "noise")):
        assert np.array_equal(runs[a][0], runs[b][0])  # frame 0 is the hint in every mode
        assert mean_difference(runs[a][1:], runs[b][1:]) > 0.5, (a, b)
    truth = clip.frames[:FRAMES]
    error = {mode: mean_difference(frames[1:], truth[1:]) for mode, frames in runs.items()}
    assert error["anchor"] < error["noise"], error
