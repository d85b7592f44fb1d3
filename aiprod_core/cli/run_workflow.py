"""`aiprod run-workflow`: run a saved ComfyUI workflow on a ComfyUI server and download its outputs."""

from __future__ import annotations

import argparse
import sys

from ..outputs import check_output_folder
from .checks import check_input, check_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    w = sub.add_parser("run-workflow", help="run a saved ComfyUI workflow on a ComfyUI server and download its outputs")
    w.add_argument("workflow", help="a workflow JSON, API format (workflows/api/) or as saved by the editor")
    w.add_argument("--server", default="http://127.0.0.1:8188", help="ComfyUI's address")
    w.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE",
                   help="change an input first; NODE is a node id, title or class name (repeatable)")
    w.add_argument("-o", "--out", default="aiprod-out", help="folder for the downloaded outputs")
    w.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    w.add_argument("--quiet", action="store_true", help="no progress bars")
    w.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    check_input(args.workflow, "the workflow")
    check_output_folder(args.out, "-o")
    check_number("--timeout", args.timeout, 0, above=True)
    return []


def run(args: argparse.Namespace) -> int:
    # Imported when the command runs (start-up time: see args.load_for_inference).
    from ..remote import WorkflowError, object_info, run_workflow
    from ..workflow import is_ui_format, load_json, set_input, ui_to_api

    graph, ui = load_json(args.workflow), None
    try:
        if is_ui_format(graph):  # a graph saved from the editor: convert with the server's node definitions
            ui = graph
            graph = ui_to_api(ui, object_info(args.server))
        for assignment in args.set:
            set_input(graph, assignment)
        files = run_workflow(args.server, graph, args.out, ui=ui, timeout=args.timeout, progress=not args.quiet)
    except WorkflowError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for f in files:
        print(f)
    return 0
