"""ComfyUI workflow files: the editor's UI format turned into the API format, and both checked against node
definitions in the shape ComfyUI's `/object_info` returns them ({class: {"input": ..., "input_order": ...,
"output": [...]}}). Plain JSON work: nothing here imports ComfyUI."""

from __future__ import annotations

import json
import os
from pathlib import Path

WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN", "COMBO")
UI_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}  # editor helpers that never run
MUTED, BYPASSED = 2, 4  # LiteGraph node modes that the editor leaves out of a run


def load_json(path: str | os.PathLike) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable workflow JSON ({e})") from e


def is_ui_format(graph: dict) -> bool:
    return isinstance(graph.get("nodes"), list) and "links" in graph


def _inputs(spec: dict) -> list[tuple[str, object, dict, bool]]:
    """(name, type, options, required) of a node definition, in the order the editor shows them."""
    order = spec.get("input_order") or {k: list(v) for k, v in spec["input"].items()}
    out = []
    for group in ("required", "optional"):
        for name in order.get(group, []):
            entry = spec["input"][group][name]
            opts = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            out.append((name, entry[0], opts, group == "required"))
    return out


def _is_widget(kind) -> bool:
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _has_control(name: str, kind, opts: dict) -> bool:
    """Whether the editor puts a "control after generate" widget (and its saved value) after this input: an INT
    that asks for one, or, when it does not say, an INT named seed or noise_seed (the frontend's old convention)."""
    if kind != "INT":
        return False
    return bool(opts.get("control_after_generate", name in ("seed", "noise_seed")))


def ui_to_api(ui: dict, node_defs: dict) -> dict:
    """A UI-format graph (what the editor saves) -> the API format that POST /prompt takes."""
    links = {link[0]: link for link in ui.get("links", [])}
    api = {}
    for n in ui["nodes"]:
        if n["type"] in UI_ONLY or n.get("mode", 0) in (MUTED, BYPASSED):
            continue
        if n["type"] not in node_defs:
            raise ValueError(f"node {n['id']} is a {n['type']!r}, which this ComfyUI does not have; install the "
                             "pack that provides it")
        linked = {i["name"]: links[i["link"]] for i in n.get("inputs", []) if i.get("link") is not None}
        values = list(n.get("widgets_values") or [])
        inputs: dict = {}
        for name, kind, opts, _ in _inputs(node_defs[n["type"]]):
            if _is_widget(kind) and values:
                inputs[name] = values.pop(0)
                if _has_control(name, kind, opts) and values:
                    values.pop(0)  # the editor's "fixed/randomize" setting, not an input
            if name in linked:
                link = linked[name]
                inputs[name] = [str(link[1]), link[2]]
        api[str(n["id"])] = {"class_type": n["type"], "inputs": inputs, "_meta": {"title": n.get("title") or n["type"]}}
    return api


def _check_value(where: str, kind, opts: dict, value) -> str | None:
    if isinstance(kind, list) or kind == "COMBO":
        choices = kind if isinstance(kind, list) else opts.get("options", [])
        if value not in choices:
            return f"{where}: {value!r} is not one of {choices}"
        return None
    ok = {"INT": lambda v: isinstance(v, int) and not isinstance(v, bool),
          "FLOAT": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          "STRING": lambda v: isinstance(v, str), "BOOLEAN": lambda v: isinstance(v, bool)}[kind]
    if not ok(value):
        return f"{where}: {value!r} is not a {kind}"
    if kind in ("INT", "FLOAT"):
        lo, hi = opts.get("min", float("-inf")), opts.get("max", float("inf"))
        if not lo <= value <= hi:
            return f"{where}: {value} is outside {lo}..{hi}"
    return None


def check_api(api: dict, node_defs: dict) -> list[str]:
    """Every problem that would make ComfyUI reject the graph: unknown nodes, missing or invalid widget values,
    links to missing nodes or outputs, and links whose types do not match."""
    errors = []
    for nid, node in api.items():
        cls = node.get("class_type")
        if cls not in node_defs:
            errors.append(f"node {nid}: unknown node type {cls!r}")
            continue
        given = node.get("inputs", {})
        known = {name for name, *_ in _inputs(node_defs[cls])}
        errors += [f"node {nid} ({cls}): unknown input {k!r}" for k in given if k not in known]
        for name, kind, opts, required in _inputs(node_defs[cls]):
            where = f"node {nid} ({cls}) input {name!r}"
            if name not in given:
                if required:
                    errors.append(f"{where}: missing")
                continue
            value = given[name]
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                src = api.get(value[0])
                if src is None or src.get("class_type") not in node_defs:
                    errors.append(f"{where}: linked to missing node {value[0]}")
                    continue
                outputs = node_defs[src["class_type"]]["output"]
                if not 0 <= value[1] < len(outputs):
                    errors.append(f"{where}: node {value[0]} has no output {value[1]}")
                elif not _types_match(outputs[value[1]], kind):
                    errors.append(f"{where}: takes {kind} but node {value[0]} output {value[1]} is {outputs[value[1]]}")
            elif _is_widget(kind):
                problem = _check_value(where, kind, opts, value)
                if problem:
                    errors.append(problem)
            else:
                errors.append(f"{where}: a {kind} input must be linked, not given the value {value!r}")
    return errors


def check_ui(ui: dict, node_defs: dict) -> list[str]:
    """Problems of a UI-format graph: unknown node types and links whose recorded type differs from either end."""
    nodes = {n["id"]: n for n in ui["nodes"]}
    errors = [f"node {n['id']}: unknown node type {n['type']!r}" for n in ui["nodes"]
              if n["type"] not in node_defs and n["type"] not in UI_ONLY]
    for link_id, src, src_slot, dst, dst_slot, kind in ui.get("links", []):
        a, b = nodes.get(src), nodes.get(dst)
        if a is None or b is None:
            errors.append(f"link {link_id}: joins a missing node ({src} -> {dst})")
            continue
        if a["type"] in node_defs:
            out = node_defs[a["type"]]["output"]
            if src_slot >= len(out) or not _types_match(out[src_slot], kind):
                errors.append(f"link {link_id}: {a['type']} output {src_slot} is not {kind}")
        if b["type"] in node_defs:
            dst_inputs = b.get("inputs", [])
            if dst_slot >= len(dst_inputs) or dst_inputs[dst_slot].get("link") != link_id:
                errors.append(f"link {link_id}: {b['type']} input {dst_slot} does not point back to it")
                continue
            name = dst_inputs[dst_slot]["name"]
            kinds = {nm: k for nm, k, *_ in _inputs(node_defs[b["type"]])}
            if name not in kinds or not _types_match(kind, kinds[name]):
                errors.append(f"link {link_id}: {b['type']} input {name!r} does not take {kind}")
    return errors


def _types_match(have, want) -> bool:
    if isinstance(want, list):
        want = "COMBO"
    if isinstance(have, list):
        have = "COMBO"
    return "*" in (have, want) or have == want


def set_input(api: dict, target: str) -> None:
    """`NODE.INPUT=VALUE` for `aiprod run-workflow --set`: NODE is a node id, a node title or a class name
    that names one node; VALUE is JSON when it parses as JSON, else a string."""
    lhs, eq, value_text = target.partition("=")
    node_ref, dot, name = lhs.rpartition(".")
    if not (eq and dot and node_ref and name):
        raise ValueError(f"--set {target!r}: expected NODE.INPUT=VALUE, e.g. 5.seed=7 or AIPRODSampler.steps=10")
    matches = [k for k, n in api.items() if node_ref in (k, n.get("class_type"), n.get("_meta", {}).get("title"))]
    if len(matches) != 1:
        raise ValueError(f"--set {target!r}: {node_ref!r} names {len(matches)} nodes; use a node id from "
                         f"{sorted(api, key=lambda k: int(k) if k.isdigit() else 0)}")
    try:
        parsed = json.loads(value_text)
    except json.JSONDecodeError:
        parsed = value_text
    api[matches[0]]["inputs"][name] = parsed
