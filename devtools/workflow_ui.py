"""Generate the UI-format (litegraph) twin of each shipped API-format workflow.

The API format (what ``POST /prompt`` takes) is the source of truth in ``workflows/*_api.json``; the
web UI needs node positions, sockets, links and widget values in widget order, which come from the
server's ``/object_info``. ``python -m devtools.workflow_ui`` starts a ComfyUI server with the pack,
converts every ``*_api.json`` into ``*_ui.json``, and a test checks both files stay in sync.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from pathlib import Path

from devtools.workflows import WORKFLOWS_DIR

log = logging.getLogger(__name__)

COLUMN_WIDTH = 380
ROW_GAP = 40
NODE_WIDTH = 320
WIDGET_HEIGHT = 26


def _is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) and isinstance(value[1], int)


def _input_specs(info: dict) -> list[tuple[str, list]]:
    """(name, spec) of every input in the order the frontend creates widgets/sockets."""
    order = info.get("input_order") or {k: list(info["input"].get(k, {})) for k in ("required", "optional")}
    specs = []
    for section in ("required", "optional"):
        for name in order.get(section, []):
            specs.append((name, info["input"][section][name]))
    return specs


def _is_widget_type(spec: list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


def _has_control_after_generate(name: str, spec: list) -> bool:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return spec[0] == "INT" and (options.get("control_after_generate") or name in {"seed", "noise_seed"})


def _default_value(spec: list) -> object:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return options.get("default", spec[0][0] if isinstance(spec[0], list) and spec[0] else None)


def _depths(prompt: dict) -> dict[str, int]:
    depth: dict[str, int] = {}

    def visit(node_id: str, trail: tuple[str, ...] = ()) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in trail:
            raise ValueError(f"workflow has a cycle through node {node_id}")
        parents = [v[0] for v in prompt[node_id]["inputs"].values() if _is_link(v)]
        depth[node_id] = 1 + max((visit(p, (*trail, node_id)) for p in parents), default=-1)
        return depth[node_id]

    for node_id in prompt:
        visit(node_id)
    return depth


def api_to_ui(prompt: dict, object_info: dict) -> dict:
    """Convert an API-format prompt into a UI-format workflow using the server's node definitions."""
    missing = sorted({n["class_type"] for n in prompt.values()} - set(object_info))
    if missing:
        raise KeyError(f"node types unknown to the server: {missing}")
    depth = _depths(prompt)
    ordered = sorted(prompt, key=lambda i: (depth[i], int(i) if i.isdigit() else i))
    rows: dict[int, float] = {}
    nodes, links = [], []
    outputs_of: dict[str, list[dict]] = {}
    for node_id in ordered:
        api_node = prompt[node_id]
        info = object_info[api_node["class_type"]]
        outputs_of[node_id] = [
            {"name": name, "type": kind, "links": [], "slot_index": slot}
            for slot, (name, kind) in enumerate(zip(info.get("output_name", info["output"]), info["output"], strict=True))
        ]
    for order, node_id in enumerate(ordered):
        api_node = prompt[node_id]
        info = object_info[api_node["class_type"]]
        inputs, widgets = [], []
        for name, spec in _input_specs(info):
            value = api_node["inputs"].get(name)
            is_widget = _is_widget_type(spec)
            if _is_link(value):
                link_id = len(links) + 1
                source, slot = value
                kind = outputs_of[source][slot]["type"]
                links.append([link_id, int(source), slot, int(node_id), len(inputs), kind])
                outputs_of[source][slot]["links"].append(link_id)
                entry = {"name": name, "type": kind, "link": link_id}
                if is_widget:
                    entry["widget"] = {"name": name}
                inputs.append(entry)
            elif not is_widget:
                inputs.append({"name": name, "type": spec[0], "link": None})
            if is_widget:
                # a widget fed by a link keeps its slot in widgets_values, with its default value
                widgets.append(_default_value(spec) if value is None or _is_link(value) else value)
                if _has_control_after_generate(name, spec):
                    widgets.append("fixed")
        column = depth[node_id]
        y = rows.get(column, 0.0)
        height = 60 + WIDGET_HEIGHT * (len(widgets) + max(len(inputs), len(outputs_of[node_id])))
        rows[column] = y + height + ROW_GAP
        node = {
            "id": int(node_id),
            "type": api_node["class_type"],
            "pos": [column * COLUMN_WIDTH, y],
            "size": [NODE_WIDTH, height],
            "flags": {},
            "order": order,
            "mode": 0,
            "inputs": inputs,
            "outputs": outputs_of[node_id],
            "properties": {"Node name for S&R": api_node["class_type"]},
            "widgets_values": widgets,
        }
        title = api_node.get("_meta", {}).get("title")
        if title and title != info.get("display_name"):
            node["title"] = title
        nodes.append(node)
    return {
        "last_node_id": max(int(i) for i in prompt),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [40, 40]}},
        "version": 0.4,
    }


def ui_path_for(api_path: Path) -> Path:
    return api_path.with_name(api_path.name.replace("_api.json", "_ui.json"))


def main() -> int:
    from devtools.comfy_client import ComfyClient
    from devtools.comfy_server import ComfyServer
    from devtools.comfyui_provision import find_comfyui

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with tempfile.TemporaryDirectory() as scratch, ComfyServer(find_comfyui(), Path(scratch)) as server:
        object_info = ComfyClient(server.url).object_info()
    for api_path in sorted(WORKFLOWS_DIR.glob("*_api.json")):
        ui = api_to_ui(json.loads(api_path.read_text()), object_info)
        ui_path_for(api_path).write_text(json.dumps(ui, indent=2) + "\n")
        log.info("wrote %s", ui_path_for(api_path).name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
