"""VAE benchmark: peak memory and time of whole vs chunked (and tiled) decoding, and of whole vs chunked
encoding. Prints JSON.

Each case runs in a fresh subprocess so that one case's allocations cannot hide another's. Peak
memory on CPU is measured two ways: (1) the growth of the process's peak resident set (VmHWM in
/proc/self/status, reset by writing 5 to /proc/self/clear_refs) over the resident set just before
the decode call, which includes allocator overhead; (2) the peak of live tensor bytes during the
decode from torch.profiler's allocation events. Model weights and the input latent exist before
either measurement starts, so they are not counted; the output video is, and is also reported on
its own so it can be subtracted.

    python bench/vae.py            # tiny preset, 64x64 at 17/65/129 frames, plus 128x128 chunked+tiled; encodes
    python bench/vae.py --quick    # 64x64 only
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
    from measure import profiler_peak  # bench/measure.py: a script's own folder is on sys.path
    from torch.profiler import ProfilerActivity, profile

    from aiprod_core.config import preset
    from aiprod_core.models.vae import CausalVideoVAE

    torch.set_num_threads(case["threads"])
    torch.manual_seed(0)
    cfg = preset(case["preset"]).vae
    vae = CausalVideoVAE(cfg).eval()
    _, t, h, w = cfg.latent_shape(case["frames"], case["height"], case["width"])
    encode = case.get("op") == "encode"
    if encode:  # a clip in [-1, 1] in, its latent out
        z = torch.rand(1, 3, case["frames"], case["height"], case["width"]) * 2 - 1
        kwargs = {"temporal_chunk": case["chunk"]}
    else:
        z = torch.randn(1, cfg.latent_channels, t, h, w)
        kwargs = {"temporal_chunk": case["chunk"], "spatial_tile": case["tile"], "tile_overlap": case["overlap"]}
    warm = z[:, :, :1]
    run = vae.encode if encode else vae.decode
    with torch.inference_mode():
        # Warm-up on one (latent) frame so one-time kernel and thread-pool setup is not counted.
        run(warm, **kwargs)
        reset = _reset_peak()
        base_rss = _status_kib("VmRSS")
        base_hwm = _status_kib("VmHWM")
        t0, c0 = time.perf_counter(), time.process_time()
        out = run(z, **kwargs)
        wall, cpu = [time.perf_counter() - t0], [time.process_time() - c0]
        peak_hwm = _status_kib("VmHWM")
        out_mib = out.numel() * out.element_size() / 2**20
        del out
        for _ in range(case["repeats"] - 1):
            t0, c0 = time.perf_counter(), time.process_time()
            run(z, **kwargs)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            run(z, **kwargs)
    rss_mib = (peak_hwm - base_rss) / 1024
    tensor_mib = profiler_peak(prof) / 2**20
    return {
        **case,
        "latent": [1, cfg.latent_channels, t, h, w],
        "output_mib": round(out_mib, 2),
        "rss_peak_growth_mib": round(rss_mib, 2),
        "rss_peak_growth_excl_output_mib": round(rss_mib - out_mib, 2),
        "rss_peak_reset_ok": reset and base_hwm <= base_rss + 64,
        "tensor_peak_mib": round(tensor_mib, 2),
        "tensor_peak_excl_output_mib": round(tensor_mib - out_mib, 2),
        "wall_s_median": round(statistics.median(wall), 3),
        "cpu_s_median": round(statistics.median(cpu), 3),
    }


def _spawn(case: dict) -> dict:
    res = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(case)], capture_output=True, text=True, check=False
    )
    if res.returncode:
        raise RuntimeError(f"case {case} failed:\n{res.stderr[-2000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def _run_case_median(case: dict, runs: int) -> dict:
    """Run a case in `runs` fresh processes; RSS figures are the median (page-level RSS is noisy)."""
    results = [_spawn(case) for _ in range(runs)]
    merged = dict(results[0])
    for key in ("rss_peak_growth_mib", "rss_peak_growth_excl_output_mib", "wall_s_median", "cpu_s_median"):
        merged[key] = round(statistics.median(r[key] for r in results), 3)
    merged["rss_peak_growth_excl_output_mib_all_runs"] = [
        r["rss_peak_growth_excl_output_mib"] for r in results
    ]
    merged["rss_peak_reset_ok"] = all(r["rss_peak_reset_ok"] for r in results)
    return merged


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="64x64 cases only")
    ap.add_argument("--chunk", type=int, default=2, help="latent frames per chunk for chunked cases")
    ap.add_argument("--repeats", type=int, default=3, help="timed decodes per case (median reported)")
    ap.add_argument("--runs", type=int, default=3, help="fresh processes per case (median RSS reported)")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads per case (1 is steadiest on a shared machine)",
    )
    return ap.parse_args()


def cases_for(args: argparse.Namespace) -> list[dict]:
    """Decodes at 64x64 whole and chunked (and at 128x128 tiled too, unless --quick), then encodes."""

    def case(frames: int, size: int, chunk: int, tile: int = 0, op: str = "decode") -> dict:
        return {
            "op": op, "preset": "tiny", "frames": frames, "height": size, "width": size,
            "chunk": chunk, "tile": tile, "overlap": 2, "repeats": args.repeats, "threads": args.threads,
        }  # fmt: skip

    cases = [case(f, 64, c) for f in (17, 65, 129) for c in (0, args.chunk)]
    if not args.quick:
        cases += [
            case(f, 128, c, tile) for f in (17, 129) for c, tile in ((0, 0), (args.chunk, 0), (args.chunk, 8))
        ]
    cases += [case(f, 64, c, op="encode") for f in (17, 129) for c in (0, args.chunk)]
    return cases


def summarize(results: list[dict], args: argparse.Namespace) -> dict:
    """How the peaks grow from 17 to 129 frames per decode setting, and chunked over whole encoding."""

    def ratio(size: int, chunk: int, tile: int, key: str) -> float | None:
        pick = {
            r["frames"]: r[key]
            for r in results
            if (r["op"], r["height"], r["chunk"], r["tile"]) == ("decode", size, chunk, tile)
        }
        if 17 in pick and 129 in pick and pick[17] > 0:
            return round(pick[129] / pick[17], 3)
        return None

    keys = (
        "tensor_peak_excl_output_mib",
        "tensor_peak_mib",
        "rss_peak_growth_excl_output_mib",
        "rss_peak_growth_mib",
    )
    enc = {(r["frames"], r["chunk"]): r["tensor_peak_excl_output_mib"] for r in results if r["op"] == "encode"}
    return {
        "goal": "chunked peak (excl. output) grows <= 1.25x from 17 to 129 frames",
        f"encode_chunk{args.chunk}_over_whole": {f: round(enc[f, args.chunk] / enc[f, 0], 3) for f in (17, 129)},
        "peak_ratio_129_over_17": {
            label: {k: ratio(size, chunk, tile, k) for k in keys}
            for label, size, chunk, tile in (
                (f"64px_chunk{args.chunk}", 64, args.chunk, 0),
                ("64px_whole", 64, 0, 0),
                *(() if args.quick else ((f"128px_chunk{args.chunk}_tile8", 128, args.chunk, 8),)),
            )
        },
    }


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(run_case(json.loads(args.child))))
        return

    import torch

    results = [_run_case_median(c, args.runs) for c in cases_for(args)]
    print(
        json.dumps(
            {
                "benchmark": "vae_decode",
                "memory_method": {
                    "rss": "each case in a fresh subprocess; VmHWM after the decode minus VmRSS before it, "
                    "VmHWM reset by writing 5 to /proc/self/clear_refs after a 1-latent-frame warm-up; "
                    "includes allocator overhead; median of --runs fresh processes",
                    "tensor": "torch.profiler(profile_memory=True): peak of live tensor bytes allocated "
                    "during the decode, from allocation events in time order",
                    "both": "weights and input latent excluded; the output video is included in *_mib "
                    "and subtracted in *_excl_output_mib",
                },
                "time": "wall_s and cpu_s (process CPU time, all threads) medians; the machine may be shared",
                "torch": torch.__version__,
                "device": "cpu",
                "summary": summarize(results, args),
                "cases": results,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
