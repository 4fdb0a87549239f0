"""Load the shipped API-format workflows and set their inputs (tests, demo, benchmarks)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"


def load_api_workflow(name: str) -> dict:
    """A fresh copy of ``workflows/<name>`` (API format: node id -> {class_type, inputs})."""
    prompt = json.loads((WORKFLOWS_DIR / name).read_text())
    if not all(isinstance(node, dict) and "class_type" in node for node in prompt.values()):
        raise ValueError(f"{name} is not an API-format workflow (node id -> {{class_type, inputs}})")
    return copy.deepcopy(prompt)


def node_ids(prompt: dict, class_type: str) -> list[str]:
    return [node_id for node_id, node in prompt.items() if node["class_type"] == class_type]


def set_inputs(prompt: dict, class_type: str, **values: object) -> str:
    """Set widget inputs of the single node of ``class_type``; returns its id."""
    ids = node_ids(prompt, class_type)
    if len(ids) != 1:
        raise KeyError(f"expected exactly one {class_type} node, found {len(ids)}: {ids}")
    inputs = prompt[ids[0]]["inputs"]
    unknown = sorted(set(values) - set(inputs))
    if unknown:
        raise KeyError(f"{class_type} has no inputs {unknown}; it has {sorted(inputs)}")
    inputs.update(values)
    return ids[0]
