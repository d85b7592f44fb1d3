"""A training run's folder: what it holds, and whether a run continues the one before it.

    runs/star/
      settings.json        what the run was started with (when its caller records them)
      state.safetensors    weights, optimizer moments and the position in the curriculum (train/state.py)
      log.jsonl            one row per logged step
      loss.png             the loss curve
      cache/               latents of the user's clips, text embeddings
      validation/          clips made at phase ends

`aiprod train --out DIR [--resume]` and the LoRA trainer node both get their folder ready with `RunFolder.prepare`.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import torch.distributed as dist

log = logging.getLogger(__name__)

RUN_NAME = re.compile(r"[A-Za-z0-9_.-]+")


def run_name(name: str) -> str:
    """A run's name, checked: it becomes a folder and a file name."""
    name = name.strip()
    if not RUN_NAME.fullmatch(name) or name.startswith("."):
        raise ValueError(f"run name {name!r}: use letters, digits, '-', '_' and '.' only (it becomes a file name)")
    return name


class RunFolder:
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    state = property(lambda self: self.path / "state.safetensors")
    log = property(lambda self: self.path / "log.jsonl")
    curve = property(lambda self: self.path / "loss.png")
    settings_file = property(lambda self: self.path / "settings.json")
    cache = property(lambda self: self.path / "cache")

    def validation(self, phase_index: int, phase_name: str) -> Path:
        return self.path / "validation" / f"{phase_index + 1}-{phase_name}"

    def prepare(self, resume: bool, settings: dict | None = None) -> bool:
        """Get the folder ready for a run; return whether it continues from the state there.

        It continues when asked to and, given `settings` (JSON values), when the run before was started with the same
        ones (recorded in settings.json): a run with other settings under this name starts over. A run that starts
        over leaves no state, log or curve of the one before, which it would mix with its own. Under torchrun every
        process calls it; the first one changes the files.
        """
        self.path.mkdir(parents=True, exist_ok=True)
        same = settings is None or self._settings() == settings
        rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        if world > 1:
            dist.barrier()  # every process has read the settings before the first one rewrites them
        if rank == 0:
            if resume and not same:
                log.warning("%s holds a run started with other settings: starting over", self.path)
            if not (resume and same):
                for f in (self.state, self.log, self.curve):
                    f.unlink(missing_ok=True)
            if settings is not None:
                self.settings_file.write_text(json.dumps(settings, indent=1))
        if world > 1:
            dist.barrier()
        return resume and same

    def _settings(self) -> dict | None:
        f = self.settings_file
        return json.loads(f.read_text()) if f.is_file() else None

    # -- the log --------------------------------------------------------------------------------------------------
    def log_rows(self) -> list[dict]:
        f = self.log
        return [json.loads(line) for line in f.read_text().splitlines() if line.strip()] if f.is_file() else []

    def append_log(self, row: dict) -> None:
        with open(self.log, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def trim_log(self, global_step: int) -> None:
        """Drop log rows written after the state being resumed (they will be written again)."""
        rows = [r for r in self.log_rows() if r["global_step"] <= global_step]
        self.log.write_text("".join(json.dumps(r) + "\n" for r in rows))
