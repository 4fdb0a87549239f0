"""Every shipped workflow exists in API and UI format, and the two stay in sync with the server's nodes."""

from __future__ import annotations

import json

import pytest

from devtools.comfy_client import ComfyClient
from devtools.workflow_ui import api_to_ui, ui_path_for
from devtools.workflows import WORKFLOWS_DIR

pytestmark = pytest.mark.server

API_WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*_api.json"))


def test_there_are_shipped_workflows() -> None:
    assert API_WORKFLOWS


@pytest.mark.parametrize("api_path", API_WORKFLOWS, ids=lambda p: p.name)
def test_ui_twin_matches_api_workflow(comfy: ComfyClient, api_path) -> None:
    object_info = comfy.object_info()
    ui_path = ui_path_for(api_path)
    assert ui_path.is_file(), f"{ui_path.name} missing: run `python -m devtools.workflow_ui`"
    expected = api_to_ui(json.loads(api_path.read_text()), object_info)
    assert json.loads(ui_path.read_text()) == expected, f"{ui_path.name} is stale: run `python -m devtools.workflow_ui`"
    # every link in the UI file joins an output and an input of the same type
    ui = expected
    by_id = {n["id"]: n for n in ui["nodes"]}
    for link_id, src, src_slot, dst, dst_slot, kind in ui["links"]:
        assert by_id[src]["outputs"][src_slot]["type"] == kind
        assert by_id[dst]["inputs"][dst_slot]["link"] == link_id
        assert link_id in by_id[src]["outputs"][src_slot]["links"]
