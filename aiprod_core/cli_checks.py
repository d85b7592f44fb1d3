"""Old home of the `aiprod` command's checks, kept for one release: they are now in aiprod_core.cli.checks
(the shared helpers) and in each subcommand's module (`aiprod_core.cli.generate.check`...).

Each name still answers here, through the module's `__getattr__`, with a DeprecationWarning naming its new home.
"""

from __future__ import annotations

import importlib
import warnings

_HELPERS = ("RequestError", "SAFETENSORS", "check_text", "check_number", "check_model", "check_input", "lora_arg",
            "check_request", "command_name", "prompt_warnings")
_COMMANDS = {"check_generate": "generate", "check_flow": "flow", "check_train": "train", "check_export": "export",
             "check_run_workflow": "run_workflow", "check_eval": "eval", "check_info": "info"}


def _new_home(name: str) -> tuple[str, str]:
    if name in _HELPERS:
        return "aiprod_core.cli.checks", name
    if name == "_vram_note":
        return "aiprod_core.cli.checks", "vram_note"
    if name in _COMMANDS:
        return f"aiprod_core.cli.{_COMMANDS[name]}", "check"
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __getattr__(name: str):
    if name == "CHECKS":
        warnings.warn("aiprod_core.cli_checks.CHECKS moved: each subcommand's parser sets its check "
                      "(aiprod_core.cli.<command>.check)", DeprecationWarning, stacklevel=2)
        return {command.replace("_", "-"): importlib.import_module(f"aiprod_core.cli.{command}").check
                for command in _COMMANDS.values()}
    module, new = _new_home(name)
    warnings.warn(f"aiprod_core.cli_checks.{name} moved to {module}.{new}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(module), new)
