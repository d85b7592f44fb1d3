"""The checks every `aiprod` command makes before any model loads: a bad request costs a second, not a clip.

Each subcommand's `check(args)` refuses what cannot work with a RequestError (the CLI prints it as one line and
exits with 2; OutputError and CheckpointError, both ValueErrors, are printed the same way) and returns notes for
what will run but may surprise (an empty prompt, a --vram with no GPU to apply it to). They share the helpers
here: output paths and write permission (outputs.py), model files by their content
(checkpoint.check_safetensors), numbers, and text from argv.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from ..checkpoint import check_safetensors

SAFETENSORS = (".safetensors",)


class RequestError(ValueError):
    """An argument that cannot work; the message says what was given, what was expected and what to do."""


def check_text(text: str, what: str) -> None:
    """Refuse text that came from argv as bytes that are not UTF-8 (Python keeps them as lone surrogates, and
    the encoder would fail on them later), naming the byte as the user typed it."""
    try:
        text.encode("utf-8")
        return
    except UnicodeEncodeError as e:
        bad = e.start
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes as they came in
        raw.decode("utf-8")
    except UnicodeDecodeError as e:
        before = raw[: e.start].decode("utf-8", "replace")[-24:]
        raise RequestError(f"{what} is not valid UTF-8: byte {e.start + 1} is 0x{raw[e.start]:02x}, after {before!r}; "
                           "the terminal or file is in another encoding (e.g. Latin-1): set it to UTF-8 or retype "
                           "the text") from None
    except UnicodeEncodeError:
        pass
    raise RequestError(f"{what} holds an unpaired surrogate at character {bad + 1}, which is not text; retype it")


def check_number(name: str, value: float | int | None, lo: float | None = None, hi: float | None = None,
                 above: bool = False, hint: str = "") -> None:
    """value (None: not given) is finite and in [lo, hi] (above: strictly more than lo)."""
    if value is None:
        return
    if not math.isfinite(value):
        raise RequestError(f"{name} {value} is not a finite number" + (f" ({hint})" if hint else ""))
    low_ok = lo is None or (value > lo if above else value >= lo)
    if low_ok and (hi is None or value <= hi):
        return
    if lo is not None and hi is not None:
        want = f"{lo:g}..{hi:g}"
    elif lo is not None:
        want = f"{'more than' if above else 'at least'} {lo:g}"
    else:
        want = f"at most {hi:g}"
    raise RequestError(f"{name} {value:g} is out of range; expected {want}" + (f" ({hint})" if hint else ""))


def check_model(path: str | None, what: str = "--model") -> None:
    if path is not None:
        check_safetensors(path, what)


def check_input(path: str | None, what: str) -> None:
    """An input file exists and is a file."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise RequestError(f"{what} {path} is a folder; expected a file")
    if not p.is_file():
        raise RequestError(f"{what} {path}: no such file")


def lora_arg(text: str, flag: str = "--lora") -> tuple[str, float]:
    """"star.safetensors" or "star.safetensors:0.8" -> (path, strength); `flag` names the option in an error."""
    path, sep, strength = text.rpartition(":")
    if sep and not strength.startswith(("/", "\\")):  # not the colon of a Windows drive
        try:
            return path, float(strength)
        except ValueError as e:
            raise RequestError(f"{flag} {text!r}: strength {strength!r} is not a number; write e.g. {path}:0.8") from e
    return text, 1.0


def vram_note(vram: float | None) -> list[str]:
    """A note when --vram is given on a machine it cannot apply to."""
    if vram is None or torch.cuda.is_available():
        return []
    return [f"--vram {vram:g} does not apply: there is no CUDA GPU here, so the run uses the CPU and its memory"]


def check_request(args: argparse.Namespace) -> list[str]:
    """Every check of the parsed command (the `check` its subparser set); returns notes to print, raises
    RequestError for what cannot work."""
    check = getattr(args, "check", None)
    return check(args) if check else []


def command_name(args: argparse.Namespace) -> str:
    """"aiprod generate", "aiprod flow extract": how an error line starts, as argparse's own errors do."""
    sub = getattr(args, "what", None) if args.command in ("flow", "eval") else None
    return " ".join(["aiprod", args.command, *([sub] if sub else [])])


def prompt_warnings(text_encoder, prompts: dict[str, str]) -> list[str]:
    """One warning per prompt (named by its key, e.g. "the prompt") that the encoder reads only in part."""
    return [t.warning(what) for what, text in prompts.items() if (t := text_encoder.truncation(text)).cut]
