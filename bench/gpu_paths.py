"""The shipped model's user paths on a CUDA GPU, checked end to end, as JSON (`OUT/gpu_paths.json`).

    python bench/gpu_paths.py OUT        # about 2 minutes on one H200; PyAV needed (pip install av)

- first call: a fresh process's CUDA start, model load, and the seconds of its first and later generations
  (cProfile of the first in OUT/first_call_profile.txt); where the VAE and backbone are afterwards, and
  which heavy modules got imported (transformers, torch's compiler stack);
- generation: `aiprod generate` with the defaults (bf16, planned), in float32 on the CPU, with every block
  streamed, and streamed in fp8: frames written losslessly (.webp) and compared with the default's;
- an out-of-memory error (the process limited to a sliver of the GPU): the message names the stage;
- LoRA training on four generated clips: resident, planned for a tight budget, and every block streamed;
  the losses and the adapters compared, and the resident LoRA applied to a generation.
Each command runs in its own process, as a user runs it. On a machine without CUDA (E2E_CPU=1) the same
steps run on the CPU, for checking the script itself.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = [("a red ball moves to the right", 1), ("a blue cube moves up", 2), ("a green star moves left", 3),
           ("a yellow ball moves down", 4)]


def first_call(out: Path, clips: Path) -> None:
    """In this (fresh) process: the timings of a first generation and of later ones; writes the LoRA clips."""
    r = {}
    t = time.perf_counter()
    import torch

    r["import_torch_s"] = time.perf_counter() - t
    cuda = torch.cuda.is_available()
    t = time.perf_counter()
    torch.zeros(1, device="cuda" if cuda else "cpu")
    if cuda:
        torch.cuda.synchronize()
    r["cuda_init_s"] = time.perf_counter() - t
    t = time.perf_counter()
    from aiprod_core.memory.engine import compute_device, precision_dtype
    from aiprod_core.model import load_model
    from aiprod_core.pipeline import generate
    from aiprod_core.video_io import write_video

    model = load_model(dtype=precision_dtype("auto", compute_device("auto")))
    r["import_load_s"] = time.perf_counter() - t
    r["generate_s"] = []
    for i, (prompt, seed) in enumerate([*PROMPTS, PROMPTS[0]]):  # the last: the first prompt again
        prof = cProfile.Profile() if i == 0 else None
        t = time.perf_counter()
        if prof:
            prof.enable()
        video = generate(model, prompt, seed=seed, progress=False)
        if cuda:
            torch.cuda.synchronize()
        if prof:
            prof.disable()
            s = io.StringIO()
            stats = pstats.Stats(prof, stream=s)
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(40)
            (out / "first_call_profile.txt").write_text(s.getvalue())
        r["generate_s"].append(round(time.perf_counter() - t, 3))
        if i < len(PROMPTS):
            write_video(clips / f"c{i}.mp4", video, fps=8)
            (clips / f"c{i}.txt").write_text("a zorblat " + prompt.split(" ", 2)[2])
    r["vae_devices_after"] = sorted({str(t.device) for t in [*model.vae.parameters(), *model.vae.buffers()]})
    r["backbone_device_after"] = str(next(model.backbone.parameters()).device)
    r["heavy_imports"] = [m for m in ("transformers", "torch._dynamo", "sympy", "sklearn") if m in sys.modules]
    print(json.dumps(r))


class Runner:
    def __init__(self, out: Path):
        self.out, self.res = out, {}

    def __call__(self, name: str, args: list[str], code: str | None = None, script: bool = False) -> int:
        """`aiprod ARGS` (or python -c CODE ARGS, or python ARGS) in a fresh process; its exit code."""
        t = time.perf_counter()
        cmd = [sys.executable, *args] if script else [sys.executable, "-c", code, *args] if code else \
            [sys.executable, "-m", "aiprod_core.cli", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=ROOT)
        self.res[name] = {"rc": p.returncode, "s": round(time.perf_counter() - t, 1),
                          "stdout": p.stdout[-600:], "stderr": p.stderr[-1500:]}
        print(name, p.returncode, self.res[name]["s"], p.stdout[-200:].strip(), p.stderr[-400:].strip(), flush=True)
        self.save()
        return p.returncode

    def save(self) -> None:
        (self.out / "gpu_paths.json").write_text(json.dumps(self.res, indent=2))


def frame_diff(a: Path, b: Path) -> dict:
    from aiprod_core.video_io import read_video

    try:
        fa, fb = (read_video(str(p))[0].astype(np.float32) for p in (a, b))
        return {"mean_abs_255": round(float(np.abs(fa - fb).mean()), 3), "max_abs_255": float(np.abs(fa - fb).max())}
    except Exception as e:  # a failed step leaves no file; its own entry says why
        return {"error": repr(e)}


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--first-call":
        first_call(Path(sys.argv[2]), Path(sys.argv[3]))
        return
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "aiprod_gpu_paths"
    clips = tmp / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    run = Runner(out)
    if run("first_call", [str(Path(__file__).resolve()), "--first-call", str(out), str(clips)], script=True) == 0:
        run.res["first_call"]["result"] = json.loads(run.res["first_call"]["stdout"].strip().splitlines()[-1])

    g = ["generate", PROMPTS[0][0], "--seed", "0", "-q"]
    run("gen_auto", [*g, "-o", str(tmp / "auto.webp")])
    run("gen_cpu_fp32", [*g, "-o", str(tmp / "cpu.webp"), "--offload", "none", "--precision", "fp32"])
    run("gen_stream", [*g, "-o", str(tmp / "stream.webp"), "--offload", "stream"])
    run("gen_fp8", [*g, "-o", str(tmp / "fp8.webp"), "--offload", "stream", "--weight-dtype", "fp8"])
    run("gen_upscale", [*g, "-o", str(tmp / "up.webp"), "--upscale"])
    run.res["diffs_vs_auto"] = {k: frame_diff(tmp / "auto.webp", tmp / f"{k}.webp") for k in ("cpu", "stream", "fp8")}
    if not os.environ.get("E2E_CPU"):  # a sliver of a GPU: the plan fits, the allocation does not
        run("oom_message", [*g, "-o", str(tmp / "oom.webp"), "--vram", "8"], code=(
            "import sys, torch; torch.cuda.set_per_process_memory_fraction(2e-4); "
            "from aiprod_core.cli import main; sys.exit(main(sys.argv[1:]))"))

    device = "cpu" if os.environ.get("E2E_CPU") else "cuda"
    lora = ["train", "--data", str(clips), "--lora-rank", "8", "--steps-scale", "0.05", "--no-validation", "-q",
            "--device", device, "--seed", "0"]
    run("lora_resident", [*lora, "--out", str(tmp / "lr"), "--offload", "none"])
    if run("lora_planned_tight", [*lora, "--out", str(tmp / "lt"), "--vram", "0.026"]) == 2:
        m = re.search(r"--vram ([0-9.]+)", run.res["lora_planned_tight"]["stderr"])  # the smallest budget it names
        if m:
            run("lora_planned_tight_retry", [*lora, "--out", str(tmp / "lt"), "--vram", m.group(1)])
    run("lora_stream", [*lora, "--out", str(tmp / "ls"), "--offload", "stream"])
    from safetensors.torch import load_file

    runs = {k: tmp / k for k in ("lr", "lt", "ls") if (tmp / k / "lora.safetensors").exists()}
    adapters = {k: load_file(str(d / "lora.safetensors")) for k, d in runs.items()}
    for k, d in runs.items():
        rows = [json.loads(x) for x in (d / "log.jsonl").read_text().splitlines()]
        run.res[f"losses_{k}"] = [round(x["loss"], 5) for x in rows if "loss" in x]
        if k != "lr" and "lr" in adapters:
            run.res[f"adapter_max_diff_lr_{k}"] = max(
                float((adapters["lr"][n].float() - adapters[k][n].float()).abs().max()) for n in adapters["lr"])
    if "lr" in runs:
        run("gen_lora", ["generate", "a zorblat moves to the right", "--seed", "0", "-q", "-o", str(tmp / "lora.webp"),
                         "--lora", str(runs["lr"] / "lora.safetensors")])
    run.save()


if __name__ == "__main__":
    main()
