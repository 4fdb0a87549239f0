"""A MODEL clone's noise schedule: the discrete beta schedule a temporal module was trained with.

The way ComfyUI's own ModelSamplingDiscrete node (comfy_extras/nodes_model_advanced.py) does it: a new
`ModelSamplingDiscrete` x <prediction type> object, set as the clone's "model_sampling" object patch. The
prediction type (eps, v) is kept from the MODEL; the betas come from the schedule (ComfyUI's names:
"sqrt_linear" is diffusers' plain "linear", AnimateDiff's; "linear" is SD1.5's scaled linear); no
zero-terminal-SNR rescale, 1000 training steps: what ComfyUI-AnimateDiff-Evolved's `autoselect` builds
for an AnimateDiff SD1.5 motion module.
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

import comfy.model_sampling

from ...zizi_models.temporal.schedules import NoiseSchedule

log = logging.getLogger(__name__)


def _prediction_type(current: object) -> type:
    """The prediction mixin (EPS, V_PREDICTION, ...) of a model_sampling object."""
    discrete = comfy.model_sampling.ModelSamplingDiscrete
    for klass in type(current).__mro__:
        if issubclass(klass, comfy.model_sampling.EPS) and not issubclass(klass, discrete):
            return klass
    raise ValueError(f"its model sampling {type(current).__name__} has no eps/v prediction type")


def model_sampling_for(model, schedule: NoiseSchedule) -> comfy.model_sampling.ModelSamplingDiscrete:
    """A model_sampling object for `model` (a ModelPatcher) with `schedule`'s sigmas."""
    current = model.get_model_object("model_sampling")
    if not isinstance(current, comfy.model_sampling.ModelSamplingDiscrete):
        raise ValueError(
            f"the model samples with {type(current).__name__}, not a discrete DDPM schedule; "
            f"a temporal module's beta schedule applies to SD1.5-style (discrete eps/v) models only"
        )
    prediction = _prediction_type(current)

    class ZiziModelSampling(comfy.model_sampling.ModelSamplingDiscrete, prediction):
        pass

    config = SimpleNamespace(sampling_settings={
        "beta_schedule": schedule.comfy_name,
        "linear_start": schedule.beta_start,
        "linear_end": schedule.beta_end,
        "timesteps": schedule.num_train_timesteps,
        "zsnr": False,
    })
    return ZiziModelSampling(config)


def set_noise_schedule(model, schedule: NoiseSchedule) -> None:
    """Give `model` (a ModelPatcher clone the caller owns) `schedule` as its model sampling."""
    sampling = model_sampling_for(model, schedule)
    model.add_object_patch("model_sampling", sampling)
    log.info("model sampling: %s (sigmas %.4f .. %.4f)", schedule.describe(), float(sampling.sigma_min),
             float(sampling.sigma_max))


def sigmas_of(model):
    """The sigma table a MODEL samples with (for tests and the printed summary)."""
    return model.get_model_object("model_sampling").sigmas
