"""The editor in headless Chromium (Debian's /usr/bin/chromium driven by Playwright; no browser download):
the shipped templates open from the template browser with no missing nodes, load exactly as saved (the
frontend's own graphToPrompt gives their API twins), lay out without overlaps inside a 1600x1000 window, runs
complete, and the web extension loads once and its inline player, notes and live loss curve appear.
AIPROD_SCREENSHOT=path saves the editor for the README."""

import json
import math
import os
import shutil
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
OPEN_AND_MEASURE = (Path(__file__).parent / "template_in_editor.js").read_text()
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def node_defs(comfy) -> dict:
    return comfy.get("/object_info")


@pytest.fixture(scope="module")
def page(comfy):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}; apt-get install chromium or set CHROMIUM")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.console_lines = []  # what the editor logged from its first line on
        # the pack's folder in custom_nodes: the template browser lists the templates under its name
        page.pack = next(f for f, names in comfy.get("/workflow_templates").items() if "aiprod_t2v" in names)
        page.on("console", lambda m: page.console_lines.append(f"{m.type}: {m.text}"))
        page.scripts = []  # the extension scripts it fetched
        page.on("request", lambda r: "/extensions/" in r.url and r.url.endswith(".js") and page.scripts.append(r.url))
        page.goto(comfy.url, timeout=120_000)  # the editor's scripts take a while on a busy 2-core machine
        page.wait_for_function("window.app && window.app.graph && window.LiteGraph", timeout=120_000)
        page.wait_for_timeout(2000)
        yield page
        browser.close()


def open_template(page, name):
    pack = page.get_by_role("option", name=page.pack, exact=True)
    if not pack.is_visible():  # the template browser opens by itself only on a first visit
        page.locator(".side-bar-button").filter(has_text="Templates").click()
    pack.click()
    page.locator(".p-dialog").get_by_text(name, exact=True).first.click()  # not a workflow tab of that name
    page.wait_for_function(f"window.app.graph._nodes.length > 0 && window.app.graph.extra && "
                           f"document.title.includes('{name}')", timeout=30_000)
    page.wait_for_timeout(1000)


def set_widget(page, node_id, name, value):
    page.evaluate("([id, name, value]) => { const w = window.app.graph.getNodeById(id).widgets.find(w => w.name === name);"
                  " w.value = value; w.callback?.(value); }", [node_id, name, value])


def assert_no_missing_nodes(page):
    missing = page.evaluate("() => window.app.graph._nodes.filter(n => !LiteGraph.registered_node_types[n.type])"
                            ".map(n => n.type)")
    assert missing == []
    assert not page.get_by_text("missing", exact=False).filter(visible=True).count(), "a missing-node warning is shown"


def run_and_wait(page, timeout_ms):
    page.evaluate("() => { window.__aiprodDone = null; const api = window.app.api;"
                  " for (const t of ['execution_success', 'execution_error', 'execution_interrupted'])"
                  "   api.addEventListener(t, () => { window.__aiprodDone = t; }); }")
    page.get_by_role("button", name="Run", exact=True).first.click()
    page.wait_for_function("window.__aiprodDone !== null", timeout=timeout_ms)
    assert page.evaluate("window.__aiprodDone") == "execution_success"


def test_text_to_video_template_runs_and_plays_inline(page, tmp_path):
    open_template(page, "aiprod_t2v")
    assert_no_missing_nodes(page)
    set_widget(page, 5, "steps", 4)
    run_and_wait(page, 300_000)
    player = page.locator("video.aiprod-player").first
    page.wait_for_function("() => { const v = document.querySelector('video.aiprod-player'); "
                           "return v && v.src.includes('/view') && v.readyState >= 2 && v.videoWidth === 64; }",
                           timeout=30_000)
    assert player.is_visible()
    notes = page.locator(".aiprod-note").all_inner_texts()
    assert "Latin" in notes  # the prompt encoder shows the script it detected
    shot = tmp_path / "editor.png"
    page.screenshot(path=shot)
    if os.environ.get("AIPROD_SCREENSHOT"):
        shutil.copy(shot, os.environ["AIPROD_SCREENSHOT"])


def test_lora_training_template_draws_a_live_loss_curve(page):
    open_template(page, "aiprod_lora_train")
    assert_no_missing_nodes(page)
    for name, value in (("frames", 9), ("width", 32), ("height", 32)):
        set_widget(page, 4, name, value)
    set_widget(page, 5, "steps", 6)
    set_widget(page, 5, "name", "browser_star")
    set_widget(page, 8, "steps", 2)
    run_and_wait(page, 400_000)
    points = page.evaluate("() => Number(document.querySelector('canvas.aiprod-loss-curve')?.dataset.points || 0)")
    assert points == 6


def test_hybridize_template_draws_a_live_loss_curve(page):
    open_template(page, "aiprod_hybridize")
    assert_no_missing_nodes(page)
    set_widget(page, 2, "steps_blockwise", 3)
    set_widget(page, 2, "steps_end_to_end", 3)
    set_widget(page, 2, "name", "browser_hybrid")
    set_widget(page, 7, "steps", 2)
    run_and_wait(page, 400_000)
    points = page.evaluate("() => Number(document.querySelector('canvas.aiprod-loss-curve')?.dataset.points || 0)")
    assert points == 6


def test_image_to_video_template_starts_from_the_example_picture(page):
    open_template(page, "aiprod_i2v")
    assert_no_missing_nodes(page)
    # Load Image shows the picture the pack wrote into ComfyUI's input folder
    assert page.evaluate("() => window.app.graph.getNodeById(4).widgets.find(w => w.name === 'image').value") \
        == "aiprod_example.png"
    page.wait_for_function("() => window.app.graph.getNodeById(4).imgs?.[0]?.naturalWidth === 64", timeout=30_000)
    set_widget(page, 6, "steps", 4)
    run_and_wait(page, 300_000)


def test_extension_template_opens_with_the_example_clip_and_runs(page):
    open_template(page, "aiprod_extend")
    assert_no_missing_nodes(page)
    assert page.evaluate("() => window.app.graph.getNodeById(4).widgets.find(w => w.name === 'file').value") \
        == "aiprod_example.mp4"
    # the join's overlap comes from the extension node through a link, not from its own widget
    assert page.evaluate("() => window.app.graph.getNodeById(11).inputs.find(i => i.name === 'overlap').link") == 21
    set_widget(page, 7, "steps", 4)
    run_and_wait(page, 300_000)


def test_the_pack_script_loads_once(page, comfy):
    """Whatever the pack's folder is called (the tests' is not the project's name), its script is served at one
    address and registered once: a second copy makes the editor log "Extension named 'aiprod.v2' already
    registered"."""
    served = [u for u in comfy.get("/extensions") if u.endswith("/aiprod.js")]
    assert len(served) == 1, served
    fetched = [u for u in page.scripts if u.endswith("/aiprod.js")]
    assert len(fetched) == 1, fetched
    assert not [line for line in page.console_lines if "aiprod" in line and "already registered" in line]


def open_and_measure(page, name) -> dict:
    page.keyboard.press("Escape")  # a dialog (the template browser on a first visit) would cover the graph
    page.wait_for_function("!document.querySelector('.p-dialog')", timeout=10_000)
    return page.evaluate(OPEN_AND_MEASURE, [page.pack, name])


def same(editor, saved) -> bool:
    """Numbers as numbers (8 == 8.0), links as [node id, output index], booleans and text exactly."""
    if isinstance(editor, list) and isinstance(saved, list):
        return len(editor) == len(saved) == 2 and str(editor[0]) == str(saved[0]) and editor[1] == saved[1]
    if isinstance(editor, bool) or isinstance(saved, bool):
        return type(editor) is type(saved) and editor == saved
    if isinstance(editor, (int, float)) and isinstance(saved, (int, float)):
        return math.isclose(editor, saved, rel_tol=1e-9, abs_tol=1e-12)
    return type(editor) is type(saved) and editor == saved


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_in_the_editor_equals_its_api_twin(page, node_defs, name):
    """The graph the editor makes of the template (its own graphToPrompt, as the Run button sends it) is the API
    twin, input by input: a widget value missing from the file shifts every later one into the wrong input.
    Widgets that are not inputs of the node (the editor's previews, control after generate) are not compared."""
    open_and_measure(page, name)
    editor = page.evaluate("async () => (await window.app.graphToPrompt()).output")
    twin = json.loads((ROOT / "workflows" / "api" / f"{name}.json").read_text(encoding="utf-8"))
    assert {k: v["class_type"] for k, v in editor.items()} == {k: v["class_type"] for k, v in twin.items()}
    wrong = []
    for nid, node in twin.items():
        spec = node_defs[node["class_type"]]["input"]
        declared = {*spec.get("required", {}), *spec.get("optional", {})}
        got, want = editor[nid]["inputs"], node["inputs"]
        for key in sorted(declared & (set(got) | set(want))):
            if key not in got or key not in want or not same(got[key], want[key]):
                wrong.append(f"node {nid} ({node['class_type']}) {key}: the editor has {got.get(key, 'nothing')!r}, "
                             f"the twin {want.get(key, 'nothing')!r}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_nodes_do_not_overlap_and_fit_the_window(page, name):
    """At the view the template opens with, no node (title bar included) overlaps another, no preview, menu or
    minimap is drawn over a node, every node lies inside the 1600x1000 window's canvas, and each node is as tall
    as its widgets need (else a preview spills out below it)."""
    seen = open_and_measure(page, name)
    nodes = seen["nodes"]
    problems = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1:]:
            (ax, ay, aw, ah), (bx, by, bw, bh) = a["bounds"], b["bounds"]
            if ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah:
                problems.append(f"{a['title']} ({a['id']}) and {b['title']} ({b['id']}) overlap")
    left, top, width, height = seen["area"]
    for n in nodes:
        x, y, w, h = n["screen"]
        if x < left or y < top or x + w > left + width or y + h > top + height:
            problems.append(f"{n['title']} ({n['id']}) at {[round(v) for v in n['screen']]} is not inside the canvas "
                            f"{[round(v) for v in seen['area']]}")
        if n["over"]:
            problems.append(f"{n['title']} ({n['id']}) is covered by {n['over']} (points sampled every 12 px)")
        if n["needs"][1] > n["size"][1] + 0.5:
            problems.append(f"{n['title']} ({n['id']}) is {n['size'][1]:.0f} px tall; its widgets need {n['needs'][1]:.0f}")
    assert not problems, f"view {seen['ds']}:\n" + "\n".join(problems)


def test_an_empty_negative_prompt_shows_no_note(page, comfy):
    """A prompt's note names the script it is written in; the empty negative prompt has none, and shows none
    (it used to read "Unknown")."""
    open_and_measure(page, "aiprod_t2v")
    set_widget(page, 5, "steps", 1)
    comfy.post("/free", {"free_memory": True})  # drop cached outputs so that both prompts are encoded again
    time.sleep(1)
    run_and_wait(page, 300_000)
    notes = page.evaluate("() => [2, 3].map(id => { const el = window.app.graph.getNodeById(id).aiprodNote;"
                          " return el && el.style.display !== 'none' ? el.textContent : null; })")
    assert notes == ["Latin", None]
