"""Fixtures shared by the unit tests (the session-wide ones are in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def train_dataset(tmp_path_factory: pytest.TempPathFactory, tiny_sd15_path: Path) -> Path:
    """The trainer's synthetic dataset (4 moving-squares clips, preprocessed with the tiny SD1.5's VAE).

    Built once per session in the base temp folder: `ensure_dataset` finds it complete and returns it."""
    from train.synthetic import ensure_dataset

    return ensure_dataset(tmp_path_factory.getbasetemp() / "zizi_train_dataset", tiny_sd15_path)
