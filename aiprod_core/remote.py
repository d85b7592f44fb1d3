"""A client of a running ComfyUI server: submit a graph to /prompt, follow it over the websocket, and download
every file it made through /history and /view."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

from tqdm.auto import tqdm


class WorkflowError(RuntimeError):
    """The server rejected the graph, a node failed, or the run was interrupted; the message is the server's."""


def _request(server: str, path: str, body: dict | None = None, timeout: float = 60):
    url = server.rstrip("/") + path
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        text = e.read().decode(errors="replace")
        try:
            raise WorkflowError(_rejection(json.loads(text))) from None
        except json.JSONDecodeError:
            raise WorkflowError(f"{url}: HTTP {e.code}: {text[:2000]}") from None
    except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
        raise WorkflowError(f"could not reach ComfyUI at {server} ({e}); start it, e.g. "
                            "`python main.py --listen 127.0.0.1 --port 8188`, and check --server") from None


def object_info(server: str) -> dict:
    """The server's node definitions (GET /object_info)."""
    return json.loads(_request(server, "/object_info"))


def _rejection(body: dict) -> str:
    """ComfyUI's validation answer as readable lines."""
    err = body.get("error", {})
    lines = [f"the server rejected the workflow: {err.get('message', 'no reason given')}"
             + (f" ({err['details']})" if err.get("details") else "")]
    for nid, ne in (body.get("node_errors") or {}).items():
        for e in ne.get("errors", []):
            lines.append(f"  node {nid} ({ne.get('class_type', '?')}): {e.get('message')}"
                         + (f": {e['details']}" if e.get("details") else ""))
    return "\n".join(lines)


def _ws_url(server: str, client_id: str) -> str:
    u = urllib.parse.urlsplit(server)
    scheme = "wss" if u.scheme == "https" else "ws"
    return f"{scheme}://{u.netloc}/ws?clientId={client_id}"


def run_workflow(server: str, api: dict, out_dir: str | os.PathLike, ui: dict | None = None,
                 timeout: float | None = None, progress: bool = True) -> list[Path]:
    """Run an API-format graph on `server` and save its output files into `out_dir`; returns their paths.
    Raises WorkflowError with the server's own text when the graph is rejected, a node fails or the run is
    interrupted. `ui`, when given, is stored with the outputs as the editor does (so they reopen as a graph)."""
    import websocket  # websocket-client

    client_id = uuid.uuid4().hex
    try:
        ws = websocket.create_connection(_ws_url(server, client_id), timeout=30)
    except (OSError, websocket.WebSocketException) as e:
        raise WorkflowError(f"could not open the websocket of {server} ({e}); is ComfyUI running there?") from None
    try:
        body = {"prompt": api, "client_id": client_id}
        if ui is not None:
            body["extra_data"] = {"extra_pnginfo": {"workflow": ui}}
        answer = json.loads(_request(server, "/prompt", body))
        if answer.get("node_errors"):
            raise WorkflowError(_rejection(answer))
        prompt_id = answer["prompt_id"]
        _follow(ws, prompt_id, api, timeout, progress)
    finally:
        ws.close()
    history = _history(server, prompt_id)
    status = history.get("status", {})
    if status.get("status_str") == "error":
        raise WorkflowError(f"the run failed: {json.dumps(status.get('messages'))[:2000]}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    for items in (history.get("outputs") or {}).values():
        for item in (x for v in items.values() if isinstance(v, list) for x in v):
            if not (isinstance(item, dict) and "filename" in item):
                continue
            query = urllib.parse.urlencode({k: item.get(k, "") for k in ("filename", "subfolder", "type")})
            target = out / Path(item["filename"]).name
            target.write_bytes(_request(server, f"/view?{query}", timeout=300))
            saved.append(target)
    return saved


def _history(server: str, prompt_id: str, wait: float = 60) -> dict:
    """The prompt's /history entry. The server sends its last websocket message before it files the history,
    so poll until the entry is there."""
    deadline = time.monotonic() + wait
    while True:
        entry = json.loads(_request(server, f"/history/{prompt_id}")).get(prompt_id)
        if entry is not None and entry.get("status", {}).get("completed") is not None:
            return entry
        if time.monotonic() > deadline:
            raise WorkflowError(f"the run finished but /history has no entry for prompt {prompt_id} after {wait:.0f} s")
        time.sleep(0.2)


def _follow(ws, prompt_id: str, api: dict, timeout: float | None, progress: bool) -> None:
    """Read the websocket until this prompt finishes; raise on an error or an interrupt."""
    start = time.monotonic()
    bar, node = None, None
    ws.settimeout(5)
    try:
        while True:
            if timeout is not None and time.monotonic() - start > timeout:
                raise WorkflowError(f"the run did not finish within {timeout:.0f} s")
            try:
                raw = ws.recv()
            except Exception as e:  # a recv timeout: keep waiting (sampling a step can take a while)
                if type(e).__name__ == "WebSocketTimeoutException":
                    continue
                raise WorkflowError(f"the websocket closed before the run finished ({e})") from None
            if not isinstance(raw, str):
                continue  # a binary latent preview
            msg = json.loads(raw)
            kind, data = msg.get("type"), msg.get("data", {})
            if data.get("prompt_id") not in (None, prompt_id):
                continue
            if kind == "execution_error":
                raise WorkflowError(f"node {data.get('node_id')} ({data.get('node_type')}) failed: "
                                    f"{data.get('exception_type', '')}: {data.get('exception_message', '').strip()}")
            if kind == "execution_interrupted":
                raise WorkflowError(f"the run was interrupted at node {data.get('node_id')} ({data.get('node_type')})")
            if kind == "execution_success" or (kind == "executing" and data.get("node") is None
                                               and data.get("prompt_id") == prompt_id):
                return
            if kind == "progress" and progress:
                if bar is None or data.get("node") != node:
                    if bar is not None:
                        bar.close()
                    node = data.get("node")
                    title = api.get(str(node), {}).get("class_type", node)
                    bar = tqdm(total=data["max"], desc=f"node {node} {title}", unit="step")
                bar.n = data["value"]
                bar.refresh()
            if kind == "aiprod.train" and bar is not None:
                bar.set_postfix(loss=f"{data['loss']:.4f}", phase=data.get("phase"))
    finally:
        if bar is not None:
            bar.close()
