"""Every INT/FLOAT input of every Zizi node keeps its declared range over HTTP, NaN and infinities included.

The test walks ``/object_info``: for each Zizi node and each numeric widget input it queues the node
with that input below its min, above its max and (FLOAT) NaN / +inf / -inf, every other widget at its
default, and expects ``/prompt`` to answer 400 with an error that names the input. Nothing is executed,
so the walk costs a few hundred validations, not runs.
"""

from __future__ import annotations

import math

import pytest

from devtools.comfy_client import ComfyClient, PromptRejected

pytestmark = pytest.mark.server

RANGE_ERRORS = {"value_smaller_than_min", "value_bigger_than_max"}


def zizi_nodes(object_info: dict) -> dict[str, dict]:
    return {name: info for name, info in object_info.items() if name.startswith("Zizi")}


def widget_defaults(info: dict) -> dict[str, object]:
    """Every widget input at its default (COMBO: the first choice); sockets are left unconnected."""
    values = {}
    for group in ("required", "optional"):
        for name, spec in info["input"].get(group, {}).items():
            kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
            if options.get("forceInput"):
                continue
            if isinstance(kind, list):
                if kind:
                    values[name] = options.get("default", kind[0])
            elif kind in ("INT", "FLOAT", "STRING", "BOOLEAN"):
                values[name] = options.get("default", {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}[kind])
    return values


def bad_values(spec: list) -> list[float]:
    kind, options = spec[0], (spec[1] if len(spec) > 1 else {})
    values = []
    if "min" in options:
        values.append(options["min"] - (1 if kind == "INT" else max(1.0, abs(options["min"]))))
    if "max" in options:
        values.append(options["max"] + (1 if kind == "INT" else max(1.0, abs(options["max"]))))
    if kind == "FLOAT":
        values += [math.nan, math.inf, -math.inf]
    return values


def numeric_cases(object_info: dict) -> list[tuple[str, str, float]]:
    cases = []
    for node, info in sorted(zizi_nodes(object_info).items()):
        for group in ("required", "optional"):
            for name, spec in info["input"].get(group, {}).items():
                if spec[0] in ("INT", "FLOAT") and not (len(spec) > 1 and spec[1].get("forceInput")):
                    cases += [(node, name, value) for value in bad_values(spec)]
    return cases


def names_the_input(error: dict, name: str) -> bool:
    if error.get("type") in RANGE_ERRORS:
        return error.get("extra_info", {}).get("input_name") == name
    # a node's own check: "<input named in VALIDATE_INPUTS> - <message>", the message naming the input
    return error.get("type") == "custom_validation_failed" and f"{name}:" in error.get("details", "")


def test_every_numeric_input_keeps_its_declared_range(comfy: ComfyClient) -> None:
    object_info = comfy.object_info()
    nodes = zizi_nodes(object_info)
    assert len(nodes) >= 10, sorted(nodes)
    cases = numeric_cases(object_info)
    assert len(cases) >= 100  # the walk really covers the pack
    escaped = []
    for node, name, value in cases:
        info = nodes[node]
        prompt = {"1": {"class_type": node, "inputs": {**widget_defaults(info), name: value}}}
        if info["output"] and not info.get("output_node"):
            prompt["2"] = {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}
        try:
            comfy.queue(prompt)
        except PromptRejected as rejected:
            errors = rejected.details.get("node_errors", {}).get("1", {}).get("errors", [])
            if not any(names_the_input(e, name) for e in errors):
                escaped.append(f"{node}.{name}={value}: rejected without naming it: {errors}")
            continue
        escaped.append(f"{node}.{name}={value}: accepted")
    assert not escaped, "\n".join(escaped[:40])


def test_the_walk_sees_what_comfyui_alone_would_let_through(comfy: ComfyClient) -> None:
    # NaN passes ComfyUI's own min/max comparison; the pack's check is what refuses it
    info = comfy.object_info()["ZiziPoseSmooth"]
    prompt = {"1": {"class_type": "ZiziPoseSmooth", "inputs": {**widget_defaults(info), "fps": math.nan}},
              "2": {"class_type": "PreviewAny", "inputs": {"source": ["1", 0]}}}
    with pytest.raises(PromptRejected) as rejected:
        comfy.queue(prompt)
    errors = rejected.value.details["node_errors"]["1"]["errors"]
    assert any(e["type"] == "custom_validation_failed" and "fps: nan is not a number" in e["details"] for e in errors)
