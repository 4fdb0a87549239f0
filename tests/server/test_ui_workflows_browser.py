"""Every shipped UI-format workflow loads in the real ComfyUI web frontend, in headless Chromium.

The frontend is the one the test server serves (pip package ``comfyui-frontend-package``). Each
``workflows/*_ui.json`` goes through ``app.handleFile`` -- the code path of dropping the file on the
canvas -- and the test collects what a user would see or what the frontend itself reports:

* missing node types: the list ``app.loadGraphData`` hands to every extension's
  ``afterConfigureGraph`` hook (a probe extension records it), and the "missing nodes" dialog
  (``.comfy-missing-nodes``) or any other dialog the load opens;
* toasts (workflow validation warnings, "links fixed", alerts), through the toast store's actions;
* JS errors: ``console.error`` calls and uncaught exceptions (CDP ``Runtime.consoleAPICalled`` /
  ``Runtime.exceptionThrown``), and failed requests to the server; requests the closed network
  refuses (api.comfy.org, favicon, input-file previews absent from the test server) are only logged;
* the graph the frontend built: node ids and types, links (matched by input name: the frontend
  gives every widget its own input slot), and the API prompt its own ``app.graphToPrompt()`` makes of
  it, which must equal the API-format twin (inputs that file leaves out take their defaults).

Errors of the frontend's own start-up, before any workflow is loaded (1.32.9 logs a TypeError from a
render-mode setting), are logged, not failed on. The page opens as a returning user (the tutorial is
marked done through the server's settings API) so that no templates dialog covers the canvas.
A negative control loads a copy with one node type renamed and checks that the same checks fail; on a
failure the message names a screenshot in the test's tmp dir. Chromium is Debian's package
(``devtools/install_chromium.sh``, which the fixture runs when no Chromium is found); without it the
tests are skipped.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import subprocess
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from devtools.browser import Browser, find_chromium
from devtools.comfy_client import ComfyClient
from devtools.workflows import WORKFLOWS_DIR

pytestmark = pytest.mark.server

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
UI_WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*_ui.json"))
NO_SUCH_NODE = "ZiziNoSuchNode"

APP_READY = ("!!(window.app && window.app.graph && window.LiteGraph && window.app.extensionManager"
             " && window.app.extensionManager.workflow && window.app.extensionManager.workflow.activeWorkflow)")

# A probe extension: app.loadGraphData passes its list of missing node types to afterConfigureGraph.
INSTALL_PROBE = """
(() => {
  if (window.__ziziProbe) return true;
  const probe = window.__ziziProbe = {missing: [], toasts: []};
  app.registerExtension({
    name: 'zizi.test.probe',
    afterConfigureGraph(missing) {
      for (const m of missing || []) probe.missing.push(typeof m === 'string' ? m : m.type);
    },
  });
  app.extensionManager.toast.$onAction(({name, args}) => {
    if (name === 'add') probe.toasts.push(args[0]);
    if (name === 'addAlert') probe.toasts.push({severity: 'warn', summary: 'Alert', detail: args[0]});
  });
  return true;
})()
"""

CLOSE_DIALOGS = """
(() => {
  for (const d of document.querySelectorAll('.p-dialog')) d.querySelector('.p-dialog-close-button')?.click();
  app.extensionManager.toast.removeAll();
  window.__ziziProbe.missing = [];
  window.__ziziProbe.toasts = [];
  return [...document.querySelectorAll('.p-dialog')].map(d => d.innerText.slice(0, 500));
})()
"""

LOAD = """
(async (text, name) => {
  await app.handleFile(new File([text], name, {type: 'application/json'}), 'file_drop');
  return true;
})(%s, %s)
"""

STATE = """
(async () => {
  const links = app.graph.links instanceof Map ? [...app.graph.links.values()] : Object.values(app.graph.links || {});
  let prompt = null, prompt_error = null;
  try {
    prompt = (await app.graphToPrompt()).output;
  } catch (e) {
    prompt_error = String(e?.stack || e);
  }
  return {
    missing: window.__ziziProbe.missing,
    toasts: window.__ziziProbe.toasts.map(t => ({severity: t.severity, summary: t.summary, detail: String(t.detail ?? '')})),
    dialogs: [...document.querySelectorAll('.p-dialog')].map(d => d.innerText.slice(0, 500)),
    missing_dialog: [...document.querySelectorAll('.comfy-missing-nodes')].map(d => d.innerText),
    nodes: app.graph.nodes.map(n => ({
      id: n.id, type: n.type, has_errors: !!n.has_errors,
      inputs: (n.inputs || []).map(i => ({name: i.name, type: i.type, link: i.link ?? null})),
      outputs: (n.outputs || []).map(o => ({name: o.name, type: o.type, links: o.links || []})),
    })),
    links: links.filter(l => l).map(l => [l.id, l.origin_id, l.origin_slot, l.target_id, l.target_slot, l.type]),
    prompt, prompt_error,
  };
})()
"""


@dataclass
class LoadResult:
    name: str
    state: dict
    console_errors: list[str] = field(default_factory=list)
    exceptions: list[str] = field(default_factory=list)
    network_errors: list[str] = field(default_factory=list)
    ignored_network: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class Frontend:
    """The ComfyUI web app open in headless Chromium, with the probe installed."""

    def __init__(self, browser: Browser, url: str) -> None:
        self.browser = browser
        self.url = url
        self.startup_errors: list[str] = []

    def open(self) -> None:
        # A first visit opens the templates browser over the canvas; a returning user gets the default
        # graph instead. Mark the tutorial done through the server's settings API.
        request = urllib.request.Request(f"{self.url}/api/settings/Comfy.TutorialCompleted", data=b"true",
                                         method="POST", headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=30).close()
        self.browser.navigate(self.url)
        self.browser.wait_for(APP_READY, timeout=90)
        self.browser.pump(1.0)
        assert self.browser.evaluate(INSTALL_PROBE)
        # the checks rely on the frontend validating workflows and reporting missing nodes
        assert self.browser.evaluate("app.extensionManager.setting.get('Comfy.Validation.Workflows')") is True
        assert self.browser.evaluate("app.extensionManager.setting.get('Comfy.Workflow.ShowMissingNodesWarning')") is True
        self.startup_errors = ([m["text"] for m in self.browser.console_messages(kinds=("error", "assert"))]
                               + self.browser.exceptions())
        for text in self.startup_errors:  # errors of the frontend's own start-up, before any workflow
            log.warning("frontend start-up error (not from a workflow): %s", text.splitlines()[0])

    def load(self, workflow: dict, name: str) -> LoadResult:
        b = self.browser
        for _ in range(10):  # close dialogs left open (first-run templates, an earlier load's warning)
            open_before = b.evaluate(CLOSE_DIALOGS)
            if not open_before:
                break
            b.pump(0.2)
        mark = b.mark()
        b.evaluate(LOAD % (json.dumps(json.dumps(workflow)), json.dumps(name)), timeout=60)
        b.pump(1.0)  # dialogs render on the next ticks; late errors and requests arrive
        result = LoadResult(name=name, state=b.evaluate(STATE))
        new_dialogs = list(result.state["dialogs"])
        for text in open_before:  # only dialogs the load opened count
            if text in new_dialogs:
                new_dialogs.remove(text)
        result.state["dialogs"] = new_dialogs
        result.console_errors = [m["text"] for m in b.console_messages(mark, kinds=("error", "assert"))]
        result.exceptions = b.exceptions(mark)
        for entry in b.log_entries(mark, levels=("error",)):
            text = f"[{entry['source']}] {entry['text']} {entry.get('url') or ''}".strip()
            if entry["source"] in ("network", "security") and self._refused_by_closed_network(entry):
                result.ignored_network.append(text)
            elif entry["source"] in ("network", "security"):
                result.network_errors.append(text)
            else:
                result.console_errors.append(text)
        for failed in b.failed_requests(mark):
            log.info("%s: request failed (%s): %s", name, failed["error"] or "blocked", failed["url"])
        for text in result.ignored_network:
            log.info("%s: ignored (closed network / test server has no such file): %s", name, text)
        return result

    def screenshot(self, result: LoadResult, folder: Path) -> Path:
        result.screenshot = self.browser.screenshot(folder / f"{Path(result.name).stem}.png")
        return result.screenshot

    def _refused_by_closed_network(self, entry: dict) -> bool:
        """Requests that fail only because the test machine is offline or the test server is bare."""
        if entry["source"] == "security":  # CSP blocks connections outside the server (registry lookups)
            urls = re.findall(r"Connecting to '([^']+)'", entry["text"])
            return bool(urls) and all(not u.startswith(self.url) for u in urls)
        url = entry.get("url") or ""
        if not url.startswith(self.url):
            return True
        parsed = urllib.parse.urlparse(url)
        query = urllib.parse.parse_qs(parsed.query)
        not_found = "status of 404" in entry["text"]
        return not_found and (
            parsed.path in ("/favicon.ico", "/user.css", "/api/userdata/user.css")
            or parsed.path.startswith("/api/userdata")  # a fresh user has no user files yet
            or (parsed.path == "/api/view" and query.get("type") == ["input"])  # input previews
        )


def _ensure_chromium() -> str | None:
    binary = find_chromium()
    if binary is None:
        script = REPO_ROOT / "devtools" / "install_chromium.sh"
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=600)
        if proc.returncode != 0 or proc.stderr.strip():
            log.warning("install_chromium.sh (rc %s): %s", proc.returncode, proc.stderr.strip()[-2000:])
        binary = find_chromium()
    return binary


@pytest.fixture(scope="module")
def object_info(frontend: Frontend) -> dict:
    return ComfyClient(frontend.url).object_info()


@pytest.fixture(scope="module")
def frontend(comfy_server) -> Frontend:
    binary = _ensure_chromium()
    if binary is None:
        pytest.skip("no Chromium: `bash devtools/install_chromium.sh` could not install Debian's chromium "
                    "(needs apt-get and root), and $CHROMIUM names no Chromium binary")
    with Browser.launch(binary) as browser:
        page = Frontend(browser, comfy_server.url)
        try:
            page.open()
        except Exception as e:
            raise AssertionError(f"ComfyUI frontend did not start in Chromium: {e}\n"
                                 f"console: {browser.console_messages()}\nchromium: {browser.stderr_tail()}") from e
        yield page


def _default(spec: list) -> object:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    return options.get("default", spec[0][0] if isinstance(spec[0], list) and spec[0] else None)


def problems(result: LoadResult, workflow: dict, api_prompt: dict | None, object_info: dict) -> list[str]:
    """Everything wrong with one load; empty when the workflow loaded cleanly and completely."""
    state = result.state
    out = []
    if state["missing"]:
        out.append(f"frontend reports missing node types: {state['missing']}")
    if state["missing_dialog"]:
        out.append(f"'missing nodes' dialog lists: {state['missing_dialog']}")
    if state["dialogs"]:
        out.append(f"dialogs opened by the load: {state['dialogs']}")
    for toast in state["toasts"]:
        out.append(f"toast ({toast['severity']}) {toast['summary']}: {toast['detail'][:500]}")
    out += [f"console error: {e[:1500]}" for e in result.console_errors]
    out += [f"uncaught exception: {e[:1500]}" for e in result.exceptions]
    out += [f"failed request: {e}" for e in result.network_errors]

    # nodes: exactly the file's ids and types, none flagged by the frontend
    graph_nodes = {n["id"]: n for n in state["nodes"]}
    file_nodes = {n["id"]: n for n in workflow["nodes"]}
    want = sorted((i, n["type"]) for i, n in file_nodes.items())
    got = sorted((i, n["type"]) for i, n in graph_nodes.items())
    if got != want:
        out.append(f"graph nodes {got} != file nodes {want}")
    out += [f"node {n['id']} ({n['type']}) has errors" for n in state["nodes"] if n["has_errors"]]
    for node_id, node in file_nodes.items():
        graph_node = graph_nodes.get(node_id)
        if graph_node is None:
            continue
        outputs = [(o["name"], o["type"]) for o in node.get("outputs", [])]
        if [(o["name"], o["type"]) for o in graph_node["outputs"]] != outputs:
            out.append(f"node {node_id} ({node['type']}) outputs {graph_node['outputs']} != file {outputs}")

    # links: the frontend gives widget inputs their own slots, so inputs are matched by name
    def file_key(link: list) -> tuple:
        link_id, src, src_slot, dst, dst_slot, kind = link
        inputs = file_nodes.get(dst, {}).get("inputs", [])
        name = inputs[dst_slot]["name"] if dst_slot < len(inputs) else f"<no input slot {dst_slot}>"
        return link_id, src, src_slot, dst, name, kind

    def graph_key(link: list) -> tuple:
        link_id, src, src_slot, dst, dst_slot, kind = link
        target = graph_nodes.get(dst)
        if target is None or dst_slot >= len(target["inputs"]):
            return link_id, src, src_slot, dst, f"<no input slot {dst_slot}>", kind
        return link_id, src, src_slot, dst, target["inputs"][dst_slot]["name"], kind

    want_links = sorted(file_key(link) for link in workflow["links"])
    got_links = sorted(graph_key(link) for link in state["links"])
    if got_links != want_links:
        out.append(f"graph links {got_links} != file links {want_links}")
    for link_id, src, src_slot, dst, dst_slot, kind in state["links"]:
        source, target = graph_nodes.get(src), graph_nodes.get(dst)
        if source is None or target is None or src_slot >= len(source["outputs"]) or dst_slot >= len(target["inputs"]):
            out.append(f"link {link_id} has a dangling end: {src}:{src_slot} -> {dst}:{dst_slot}")
            continue
        if target["inputs"][dst_slot]["link"] != link_id or link_id not in source["outputs"][src_slot]["links"]:
            out.append(f"link {link_id} is not attached to node {src} output {src_slot} / node {dst} input {dst_slot}")
        if source["outputs"][src_slot]["type"] != kind:
            out.append(f"link {link_id} carries {kind} from an output of type {source['outputs'][src_slot]['type']}")
    graph_link_ids = {link[0] for link in state["links"]}
    for node in state["nodes"]:
        for slot in node["inputs"]:
            if slot["link"] is not None and slot["link"] not in graph_link_ids:
                out.append(f"node {node['id']} input {slot['name']} refers to link {slot['link']}, which the graph lacks")

    # the frontend's own API prompt of the loaded graph equals the API-format twin; inputs the API
    # file leaves out take their defaults
    if state["prompt_error"]:
        out.append(f"app.graphToPrompt() failed: {state['prompt_error'][:1500]}")
    elif api_prompt is not None:
        prompt = state["prompt"]
        if sorted(prompt) != sorted(api_prompt):
            out.append(f"graphToPrompt node ids {sorted(prompt)} != API file {sorted(api_prompt)}")
        for node_id, api_node in api_prompt.items():
            got_node = prompt.get(node_id)
            if got_node is None:
                continue
            if got_node["class_type"] != api_node["class_type"]:
                out.append(f"graphToPrompt node {node_id} is {got_node['class_type']}, API file {api_node['class_type']}")
                continue
            info = object_info.get(api_node["class_type"], {}).get("input", {})
            specs = {**info.get("required", {}), **info.get("optional", {})}
            for name in sorted(set(got_node["inputs"]) | set(api_node["inputs"])):
                if name not in specs and name not in api_node["inputs"]:
                    continue  # a frontend-only widget (e.g. the upload's "video-preview"), which the server drops
                got_value = got_node["inputs"].get(name, "<absent>")
                want_value = api_node["inputs"].get(name, _default(specs[name]) if name in specs else "<absent>")
                if got_value != want_value:
                    out.append(f"graphToPrompt node {node_id} ({api_node['class_type']}) input {name}: "
                               f"{got_value!r} != API file {want_value!r}")
    return out


def _report(result: LoadResult, issues: list[str], frontend: Frontend) -> str:
    lines = [f"{result.name} in the ComfyUI frontend:", *[f"  - {p}" for p in issues],
             f"screenshot: {result.screenshot}"]
    if result.ignored_network:
        lines += ["ignored network errors (closed network):", *[f"  {t}" for t in result.ignored_network]]
    if frontend.startup_errors:
        lines += ["frontend start-up errors (before the load):", *[f"  {t.splitlines()[0]}" for t in frontend.startup_errors]]
    return "\n".join(lines)


def test_there_are_ui_workflows() -> None:
    assert UI_WORKFLOWS


@pytest.mark.parametrize("ui_path", UI_WORKFLOWS, ids=lambda p: p.name)
def test_ui_workflow_loads_in_frontend(frontend: Frontend, object_info: dict, ui_path: Path, tmp_path: Path) -> None:
    workflow = json.loads(ui_path.read_text())
    api_path = ui_path.with_name(ui_path.name.replace("_ui.json", "_api.json"))
    api_prompt = json.loads(api_path.read_text()) if api_path.is_file() else None
    result = frontend.load(workflow, ui_path.name)
    issues = problems(result, workflow, api_prompt, object_info)
    if issues:
        frontend.screenshot(result, tmp_path)
    assert not issues, _report(result, issues, frontend)
    assert len(result.state["nodes"]) == len(workflow["nodes"]) > 0


def test_missing_node_type_is_reported(frontend: Frontend, object_info: dict, tmp_path: Path) -> None:
    """Negative control: the same checks catch a node type the server does not have."""
    ui_path = UI_WORKFLOWS[0]
    workflow = copy.deepcopy(json.loads(ui_path.read_text()))
    renamed = workflow["nodes"][0]
    renamed["type"] = NO_SUCH_NODE
    result = frontend.load(workflow, f"broken_{ui_path.name}")
    frontend.screenshot(result, tmp_path)  # shows the frontend's "missing nodes" dialog
    state = result.state
    issues = problems(result, workflow, None, object_info)
    report = _report(result, issues, frontend)
    assert state["missing"] == [NO_SUCH_NODE], report
    assert any(NO_SUCH_NODE in text for text in state["missing_dialog"]), report
    assert [n["has_errors"] for n in state["nodes"] if n["id"] == renamed["id"]] == [True], report
    assert any(f"missing node types: ['{NO_SUCH_NODE}']" in p for p in issues), report
    assert any("missing nodes' dialog" in p for p in issues), report
