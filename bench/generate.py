"""Wall time of `aiprod generate` (17 frames, 64x64, 20 steps) on this machine, as JSON.

Two figures: the whole command in a fresh process (imports and model load included), and the
in-process generate() call alone (median of repeats after a warm-up); both in float32 (the CPU's default)
and with `--precision bf16`, side by side, with their ratio.
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
    from aiprod_core.model import load_model
    from aiprod_core.pipeline import generate

    native = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)() or \
        getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    out = {"bench": "aiprod generate, 17x64x64, 20 steps, cfg 3", "threads": torch.get_num_threads(),
           "cpu_native_bf16": bool(native)}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        model = load_model(dtype=dtype)
        generate(model, "a red circle moving left", steps=20, progress=False)  # warm-up
        times = []
        for i in range(3):
            t = time.perf_counter()
            generate(model, "un carré bleu qui monte", steps=20, seed=i, progress=False)
            times.append(time.perf_counter() - t)
        out[f"generate_call_{name}_s"] = round(statistics.median(times), 3)
    out["model"] = model.source
    with tempfile.TemporaryDirectory() as d:
        for name in ("fp32", "bf16"):
            walls = []
            for _ in range(2):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "aiprod_core.cli", "generate", "a green triangle moving up",
                                "-o", str(Path(d) / "c.mp4"), "-q", "--precision", name], check=True, capture_output=True)
                walls.append(time.perf_counter() - t)
            out[f"command_wall_{name}_s"] = round(min(walls), 3)
    out["generate_call_bf16_over_fp32"] = round(out["generate_call_bf16_s"] / out["generate_call_fp32_s"], 2)
    out["goal_s"] = 5.0
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
