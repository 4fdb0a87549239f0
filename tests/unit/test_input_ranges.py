"""with_declared_ranges: the VALIDATE_INPUTS it builds, as ComfyUI reads and calls it."""

from __future__ import annotations

import inspect
import math

import pytest


class Node:
    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {"required": {"image": ("IMAGE",), "mode": (["a", "b"],),
                             "size": ("INT", {"default": 8, "min": 8, "max": 64}),
                             "gain": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 2.0})},
                "optional": {"linked": ("INT", {"forceInput": True, "min": 0})}}

    @classmethod
    def VALIDATE_INPUTS(cls, mode: str, size: int = 8) -> bool | str:
        return True if size is None or size % 8 == 0 else f"size: {size} is not a multiple of 8"


@pytest.fixture()
def ranges(comfy_pack):
    return comfy_pack.nodes.input_ranges


def checked(ranges):
    return ranges.with_declared_ranges(type("Checked", (Node,), {"VALIDATE_INPUTS": Node.__dict__["VALIDATE_INPUTS"]}))


def test_comfyui_sees_every_numeric_widget_and_the_nodes_own_inputs(ranges) -> None:
    cls = checked(ranges)
    # ComfyUI: argspec.args are the inputs it stops checking; no **kwargs (that would stop them all)
    spec = inspect.getfullargspec(cls.VALIDATE_INPUTS)
    assert spec.varkw is None
    assert set(spec.args) - {"node_class"} == {"mode", "size", "gain"}  # "mode": the node names it; never the forceInput socket


@pytest.mark.parametrize(("values", "expected"), [
    ({"mode": "a", "size": 7, "gain": 1.0}, "size: 7 is smaller than the minimum 8"),
    ({"mode": "a", "size": 72, "gain": 1.0}, "size: 72 is bigger than the maximum 64"),
    ({"mode": "a", "size": 8, "gain": math.nan}, "gain: nan is not a number"),
    ({"mode": "a", "size": 8, "gain": math.inf}, "gain: inf is bigger than the maximum 2.0"),
    ({"mode": "a", "size": 12, "gain": 1.0}, "size: 12 is not a multiple of 8"),  # the node's own check still runs
    ({"mode": "a", "size": 16, "gain": 2.0}, True),
    ({"mode": "a", "size": None, "gain": None}, True),  # fed by links: checked when the node runs
])
def test_declared_ranges_then_the_nodes_own_check(ranges, values, expected) -> None:
    assert checked(ranges).VALIDATE_INPUTS(**values) == expected


def test_a_missing_required_input_is_left_to_comfyui(ranges) -> None:
    assert checked(ranges).VALIDATE_INPUTS(size=16) is True


def test_kwargs_validators_are_refused(ranges) -> None:
    def validate(cls, **_: object) -> bool:
        return True

    with pytest.raises(TypeError, match="switches off every ComfyUI input check"):
        ranges.with_declared_ranges(type("Loose", (Node,), {"VALIDATE_INPUTS": classmethod(validate)}))


def test_every_registered_node_refuses_nan_in_each_float(comfy_pack) -> None:
    mappings = comfy_pack.nodes.NODE_CLASS_MAPPINGS
    floats = 0
    for name, cls in mappings.items():
        for input_name in comfy_pack.nodes.input_ranges.numeric_widget_inputs(cls.INPUT_TYPES()):
            spec = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}[input_name]
            if spec[0] == "FLOAT":
                floats += 1
                answer = cls.VALIDATE_INPUTS(**{input_name: math.nan})
                assert answer == f"{input_name}: nan is not a number", (name, input_name, answer)
    assert floats >= 10
