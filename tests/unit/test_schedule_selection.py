"""Which noise schedule the temporal loader gives the MODEL: selection logic, the trainer's record, and the
sigmas of the MODEL clone the node returns (in-process ComfyUI)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from devtools.random_addons import animatediff_state
from devtools.random_sd15 import TINY_UNET_CONFIG, TINY_VAE_CONFIG, build_unet
from zizi_models.sd15_configs import SD15_SCHEDULER_CONFIG
from zizi_models.sd15_keys import to_ldm
from zizi_models.temporal import (
    ANIMATEDIFF_SCHEDULE,
    SD15_SCHEDULE,
    NoiseSchedule,
    ZiziTemporalModel,
    save_temporal_model,
    schedule_record,
    select_schedule,
    temporal_config_for_unet,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def reference_sigmas(kind: str, start: float = 0.00085, end: float = 0.012, steps: int = 1000) -> np.ndarray:
    """Written from the definitions: diffusers 'linear' = linspace of betas, 'scaled_linear' = linspace of sqrt."""
    if kind == "linear":
        betas = np.linspace(start, end, steps, dtype=np.float64)
    else:
        betas = np.linspace(start ** 0.5, end ** 0.5, steps, dtype=np.float64) ** 2
    alphas_cumprod = np.cumprod(1.0 - betas)
    return np.sqrt((1 - alphas_cumprod) / alphas_cumprod)


def test_selection_logic() -> None:
    record = {"noise_schedule": schedule_record(SD15_SCHEDULER_CONFIG)}
    assert select_schedule("auto", "animatediff", {}) == ANIMATEDIFF_SCHEDULE
    assert select_schedule("auto", "diffusers-motion-adapter", {}) == ANIMATEDIFF_SCHEDULE
    assert select_schedule("auto", "zizi-temporal", record) == SD15_SCHEDULE
    assert select_schedule("auto", "zizi-temporal", {}) is None  # no record: the MODEL's own
    linear = {"noise_schedule": {"beta_schedule": "linear", "beta_start": 0.001, "beta_end": 0.02}}
    assert select_schedule("auto", "zizi-temporal", linear) == NoiseSchedule("linear", 0.001, 0.02)
    for source, meta in (("animatediff", {}), ("zizi-temporal", record)):
        assert select_schedule("use existing", source, meta) is None
        assert select_schedule("AnimateDiff linear", source, meta) == ANIMATEDIFF_SCHEDULE
        assert select_schedule("SD1.5 scaled linear", source, meta) == SD15_SCHEDULE
    with pytest.raises(ValueError, match=r"^beta_schedule: 'karras' is not a schedule; expected one of auto, "):
        select_schedule("karras", "animatediff", {})
    with pytest.raises(ValueError, match=r"m.safetensors: metadata 'noise_schedule'.*not supported"):
        select_schedule("auto", "zizi-temporal", {"noise_schedule": {"beta_schedule": "sigmoid"}}, "m.safetensors")
    assert ANIMATEDIFF_SCHEDULE.comfy_name == "sqrt_linear" and SD15_SCHEDULE.comfy_name == "linear"


def test_trainer_records_its_schedule() -> None:
    from train.artifacts import training_metadata
    from train.config import TrainConfig

    meta = training_metadata(TrainConfig(), step=3, ema=False, scheduler_config=SD15_SCHEDULER_CONFIG)
    assert meta["noise_schedule"] == {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                                      "num_train_timesteps": 1000}
    assert "noise_schedule" not in training_metadata(TrainConfig(), step=3, ema=False)


@pytest.fixture(scope="module")
def setup(comfy_pack, tmp_path_factory):
    import folder_paths

    zizi = tmp_path_factory.mktemp("zizi-sched")
    animatediff = tmp_path_factory.mktemp("ad-sched")
    folder_paths.add_model_folder_path("zizi", str(zizi))
    folder_paths.add_model_folder_path("animatediff_models", str(animatediff))
    bridge = comfy_pack.nodes.comfy
    unet = build_unet(TINY_UNET_CONFIG, seed=1).float()
    base = bridge.sd15_model_from_state_dict(to_ldm(unet.state_dict(), {}, {}, TINY_UNET_CONFIG, TINY_VAE_CONFIG),
                                             dtype=torch.float32)
    temporal = ZiziTemporalModel(temporal_config_for_unet(unet))
    save_temporal_model(temporal, zizi / "sched_plain.safetensors")
    save_temporal_model(temporal, zizi / "sched_linear.safetensors", metadata={
        "noise_schedule": {"beta_schedule": "linear", "beta_start": 0.001, "beta_end": 0.02}})
    torch.save(animatediff_state(load_file(str(zizi / "sched_plain.safetensors")), "v3"), animatediff / "sched_v3.ckpt")
    return comfy_pack.nodes.temporal_nodes.ZiziTemporalModelLoader(), base


def sigmas(model) -> np.ndarray:
    return model.get_model_object("model_sampling").sigmas.double().numpy()


@pytest.mark.parametrize(("name", "choice", "expected"), [
    ("animatediff_models/sched_v3.ckpt", "auto", ("linear",)),
    ("animatediff_models/sched_v3.ckpt", "use existing", ("scaled_linear",)),
    ("animatediff_models/sched_v3.ckpt", "SD1.5 scaled linear", ("scaled_linear",)),
    ("sched_plain.safetensors", "auto", ("scaled_linear",)),  # no record: the MODEL's own
    ("sched_plain.safetensors", "AnimateDiff linear", ("linear",)),
    ("sched_linear.safetensors", "auto", ("linear", 0.001, 0.02)),
    ("sched_linear.safetensors", "use existing", ("scaled_linear",)),
])
def test_loader_gives_the_clone_the_selected_schedule(setup, name: str, choice: str, expected: tuple) -> None:
    node, base = setup
    before = sigmas(base)
    np.testing.assert_allclose(before, reference_sigmas("scaled_linear"), rtol=1e-5)  # SD1.5's own
    (inflated,) = node.load(base, name, beta_schedule=choice)
    np.testing.assert_allclose(sigmas(inflated), reference_sigmas(*expected), rtol=1e-5)
    np.testing.assert_array_equal(sigmas(base), before)  # the MODEL passed in keeps its schedule
    sampling = inflated.get_model_object("model_sampling")
    assert "EPS" in [k.__name__ for k in type(sampling).__mro__]  # SD1.5's prediction type is kept


def test_bad_schedule_and_missing_file_messages(setup) -> None:
    node, base = setup
    message = node.VALIDATE_INPUTS("sched_plain.safetensors", beta_schedule="cosine")
    assert isinstance(message, str) and message.startswith("beta_schedule: 'cosine' is not a schedule; expected one of")
    with pytest.raises(ValueError, match=r"^beta_schedule: 'cosine'"):
        node.load(base, "sched_plain.safetensors", beta_schedule="cosine")
    missing = node.VALIDATE_INPUTS("animatediff_models/v3_sd15_mm.ckpt")
    assert isinstance(missing, str) and "\n" not in missing
    assert "'v3_sd15_mm.ckpt' not found" in missing and "available:" in missing
    assert "animatediff_models/sched_v3.ckpt" in missing and "sched_plain.safetensors" in missing
