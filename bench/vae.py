"""VAE decode benchmark: peak memory and time of whole vs chunked (and tiled) decoding. Prints JSON.

Each case runs in a fresh subprocess so that one case's allocations cannot hide another's. Peak
memory on CPU is the growth of the process's peak resident set (VmHWM in /proc/self/status) over
the resident set just before the decode call; the peak is reset first by writing 5 to
/proc/self/clear_refs. Model weights and the input latent are allocated before the reset, so they
are not counted; the output video is, and is also reported on its own so it can be subtracted.

    python bench/vae.py                      # tiny preset, 64x64, 17/65/129 frames, plus 128x128 tiled
    python bench/vae.py --quick              # 64x64 only
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not found in /proc/self/status; this benchmark needs Linux procfs")


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        return True
    except OSError:
        return False


def run_case(case: dict) -> dict:
    """Run one decode case in this process and return its figures."""
    import torch

    from aiprod_core.config import preset
    from aiprod_core.models.vae import CausalVideoVAE

    torch.manual_seed(0)
    cfg = preset(case["preset"]).vae
    vae = CausalVideoVAE(cfg).eval()
    _, t, h, w = cfg.latent_shape(case["frames"], case["height"], case["width"])
    z = torch.randn(1, cfg.latent_channels, t, h, w)
    kwargs = {"temporal_chunk": case["chunk"], "spatial_tile": case["tile"], "tile_overlap": case["overlap"]}
    with torch.inference_mode():
        # Warm-up on one latent frame so one-time kernel and thread-pool setup is not counted.
        vae.decode(z[:, :, :1], **kwargs)
        reset = _reset_peak()
        base_rss = _status_kib("VmRSS")
        base_hwm = _status_kib("VmHWM")
        t0 = time.perf_counter()
        out = vae.decode(z, **kwargs)
        first_s = time.perf_counter() - t0
        peak_hwm = _status_kib("VmHWM")
        out_mib = out.numel() * out.element_size() / 2**20
        del out
        times = [first_s]
        for _ in range(case["repeats"] - 1):
            t0 = time.perf_counter()
            vae.decode(z, **kwargs)
            times.append(time.perf_counter() - t0)
    peak_mib = (peak_hwm - base_rss) / 1024
    return {
        **case,
        "latent": [1, cfg.latent_channels, t, h, w],
        "peak_growth_mib": round(peak_mib, 2),
        "output_mib": round(out_mib, 2),
        "peak_growth_excl_output_mib": round(peak_mib - out_mib, 2),
        "peak_reset_ok": reset and base_hwm <= base_rss + 64,
        "time_s_median": round(statistics.median(times), 3),
        "time_s_all": [round(x, 3) for x in times],
    }


def _spawn(case: dict) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True, check=False
    )
    if res.returncode:
        raise RuntimeError(f"case {case} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="64x64 cases only")
    ap.add_argument("--chunk", type=int, default=2, help="latent frames per chunk for chunked cases")
    ap.add_argument("--repeats", type=int, default=3, help="timed decodes per case (median reported)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return

    import torch

    def case(frames: int, size: int, chunk: int, tile: int = 0) -> dict:
        return {
            "preset": "tiny", "frames": frames, "height": size, "width": size,
            "chunk": chunk, "tile": tile, "overlap": 2, "repeats": args.repeats,
        }  # fmt: skip

    cases = [case(f, 64, c) for f in (17, 65, 129) for c in (0, args.chunk)]
    if not args.quick:
        cases += [case(f, 128, c, tile) for f in (17, 129) for c, tile in ((0, 0), (args.chunk, 0), (args.chunk, 8))]
    results = [_spawn(c) for c in cases]

    def ratio(size: int, chunk: int, tile: int, key: str) -> float | None:
        pick = {
            r["frames"]: r[key]
            for r in results
            if (r["height"], r["chunk"], r["tile"]) == (size, chunk, tile)
        }
        if 17 in pick and 129 in pick and pick[17] > 0:
            return round(pick[129] / pick[17], 3)
        return None

    summary = {
        "chunked_64px_peak_ratio_129_over_17_excl_output": ratio(64, args.chunk, 0, "peak_growth_excl_output_mib"),
        "chunked_64px_peak_ratio_129_over_17_incl_output": ratio(64, args.chunk, 0, "peak_growth_mib"),
        "whole_64px_peak_ratio_129_over_17_excl_output": ratio(64, 0, 0, "peak_growth_excl_output_mib"),
        "goal": "chunked peak (excl. output) grows <= 1.25x from 17 to 129 frames",
    }
    if not args.quick:
        summary["chunked_tiled_128px_peak_ratio_129_over_17_excl_output"] = ratio(
            128, args.chunk, 8, "peak_growth_excl_output_mib"
        )
    print(
        json.dumps(
            {
                "benchmark": "vae_decode",
                "memory_method": "peak RSS growth per case in a fresh subprocess: VmHWM after decode minus "
                "VmRSS before, VmHWM reset via /proc/self/clear_refs; weights and input excluded, output "
                "video included in peak_growth_mib and excluded in peak_growth_excl_output_mib",
                "torch": torch.__version__,
                "threads": torch.get_num_threads(),
                "device": "cpu",
                "summary": summary,
                "cases": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
