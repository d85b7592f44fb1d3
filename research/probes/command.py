"""What the probes' commands share: the model options of `aiprod eval`, its checks before the model loads, and its
one-line errors with exit code 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from aiprod_core.cli.args import add_model_args, add_precision_arg, load_for_inference
from aiprod_core.cli.checks import check_model
from aiprod_core.config import ConfigError


def run_probe(parser: argparse.ArgumentParser, argv: list[str] | None,
              probe: Callable[[argparse.Namespace, object], None], model: bool = True,
              check: Callable[[argparse.Namespace], None] | None = None) -> int:
    """Parse argv, check it, load --model / --preset (model=True; on the CPU, as `aiprod eval` does) and run
    probe(args, model)."""
    if model:
        add_model_args(parser)
        add_precision_arg(parser)
    args = parser.parse_args(argv)
    try:
        if model:
            check_model(args.model)
        if check:
            check(args)
        probe(args, load_for_inference(args, "none") if model else None)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    return 0
