"""A test-only ComfyUI custom node pack for tests/server/test_server_faults.py (never shipped, never collected).

``ZiziTestFaultyModel`` takes a MODEL and returns a clone whose model function wrapper counts the UNet
calls of this run and raises ``RuntimeError`` on call number ``fail_after`` + 1 (0: never fails, a plain
pass-through). It always runs again (``IS_CHANGED`` is NaN), so every prompt through it re-executes the
nodes downstream (the loop controller, the saver) while the loaders above stay cached, as in a studio
queueing the same workflow again and again.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

FAULT_MESSAGE = "fault_pack: injected failure"


class ZiziTestFaultyModel:
    CATEGORY = "Zizi Video/testing"
    RETURN_TYPES = ("MODEL",)
    FUNCTION = "wrap"

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"model": ("MODEL",),
                             "fail_after": ("INT", {"default": 0, "min": 0, "max": 1_000_000})}}

    @classmethod
    def IS_CHANGED(cls, **_: object) -> float:
        return float("nan")  # never equal to itself: the node (and everything after it) runs every time

    def wrap(self, model, fail_after: int):
        patched = model.clone()
        previous = patched.model_options.get("model_function_wrapper")
        calls = [0]

        def wrapper(apply_model, args: dict):
            calls[0] += 1
            if fail_after and calls[0] > fail_after:
                log.info("%s after %d model calls", FAULT_MESSAGE, fail_after)
                raise RuntimeError(f"{FAULT_MESSAGE} after {fail_after} model calls")
            if previous is not None:
                return previous(apply_model, args)
            return apply_model(args["input"], args["timestep"], **args["c"])

        patched.set_model_unet_function_wrapper(wrapper)
        return (patched,)


NODE_CLASS_MAPPINGS = {"ZiziTestFaultyModel": ZiziTestFaultyModel}
NODE_DISPLAY_NAME_MAPPINGS = {"ZiziTestFaultyModel": "Zizi test: faulty model (raises after N calls)"}
