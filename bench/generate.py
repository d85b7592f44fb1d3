"""Wall time of `aiprod generate` (17 frames, 64x64, 20 steps) on this machine, as JSON.

Two figures: the whole command in a fresh process (imports and model load included), and the
in-process generate() call alone (median of repeats after a warm-up).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    from aiprod_core.pipeline import generate, load_model

    model = load_model()
    out = {"bench": "aiprod generate, 17x64x64, 20 steps, cfg 3", "model": model.source, "threads": torch.get_num_threads()}
    generate(model, "a red circle moving left", steps=20, progress=False)  # warm-up
    times = []
    for i in range(3):
        t = time.perf_counter()
        generate(model, "un carré bleu qui monte", steps=20, seed=i, progress=False)
        times.append(time.perf_counter() - t)
    out["generate_call_s"] = round(statistics.median(times), 3)
    with tempfile.TemporaryDirectory() as d:
        walls = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "aiprod_core.cli", "generate", "a green triangle moving up",
                            "-o", str(Path(d) / "c.mp4"), "-q"], check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
    out["command_wall_s"] = round(min(walls), 3)
    out["goal_s"] = 5.0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
