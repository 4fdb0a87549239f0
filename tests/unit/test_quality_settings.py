"""bench/quality_settings.py: the settings a quality sweep runs, and their names in the table."""

from __future__ import annotations

import sys

import pytest

from tests.unit.test_quality_metrics import load_bench_module


@pytest.fixture(scope="module")
def settings():
    yield load_bench_module("quality_settings")
    sys.modules.pop("bench_quality_settings", None)


def test_sweep_adds_the_other_noise_inits_outside_the_grid(settings) -> None:
    runs = settings.sweep([0.66, 2.0], [True], [0.0, 1.0], 0.66, ["zeros"], [3, 1], 1.0, ("anchor", "noise"))
    grid = [r for r in runs if r.in_grid]
    assert [(r.snr, r.reference) for r in grid] == [(0.66, 0.0), (0.66, 1.0), (2.0, 0.0), (2.0, 1.0)]
    assert all(r.noise_init == "anchor" for r in runs[:-2])
    starts = runs[-2:]
    assert [(r.noise_init, r.reference, r.snr, r.interpolate) for r in starts] == [
        ("noise", 0.0, 0.66, True), ("noise", 1.0, 0.66, True)]
    assert starts[1].name == "snr 0.66, interp on, ref 1, start: noise"
    assert not any(r.in_grid for r in starts)
    assert len({r.name for r in runs}) == len(runs)  # every row of the table is told apart


def test_shipped_reference_strength_follows_the_module(settings) -> None:
    trained = {"config": '{"reference_attention": true, "max_positions": 32}'}
    plain = {"config": '{"max_positions": 32}'}
    assert settings.trained_with_reference(trained) and not settings.trained_with_reference(plain)
    assert not settings.trained_with_reference({})  # an AnimateDiff file: no recorded config
    assert settings.shipped_setting("0.66,on,auto", True) == settings.Setting(0.66, True, 1.0)
    assert settings.shipped_setting("0.66,on,auto", False) == settings.Setting(0.66, True, 0.0)
    assert settings.shipped_setting("off,off,0.5", True) == settings.Setting(settings.SNR_OFF, False, 0.5)
