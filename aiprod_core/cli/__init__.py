"""The `aiprod` command: one module per subcommand, each with its `add_parser(subparsers)`, the `check(args)`
it makes before any model loads, and its `run(args)`; argument groups several share are in args.py, the
checks' shared helpers in checks.py.

A subcommand imports the library's upper layers (the model, the sampler, the trainer, the evals) inside its
`check` and `run`, not at the top of its module: building the parser imports every subcommand's module, and
`aiprod --help`, a refused request and `aiprod generate` on the tiny model then start without importing what
the other commands use.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from ..config import ConfigError
from ..memory.engine import StageOutOfMemoryError
from . import eval, export, flow, generate, hybridize, info, run_workflow, train
from .checks import check_request, command_name

COMMANDS = (generate, train, hybridize, eval, flow, export, run_workflow, info)  # in the order `aiprod --help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aiprod", description="AIPROD v2 multilingual text-to-video")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if sys.platform == "linux":
        # grow allocations in place instead of caching fixed blocks: measured 1.3-1.5 GB less reserved at the
        # same speed at 768x512x121 (docs/low-vram.md); set before the first CUDA allocation, and only if the
        # user has not
        os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    name = command_name(args)
    try:
        for note in check_request(args):  # before any model loads: a bad request costs a second, not a clip
            print(f"{name}: note: {note}", file=sys.stderr)
        return args.func(args)
    except (ConfigError, ValueError, FileNotFoundError, StageOutOfMemoryError) as e:
        print(f"{name}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a write that failed (disk full, permission): one line that names the file
        print(f"{name}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
