"""`aiprod flow extract`: the optical flow of a video, as a colour-wheel preview and/or a .safetensors file."""

from __future__ import annotations

import argparse
import time

from ..outputs import check_output_file
from .checks import SAFETENSORS, RequestError, check_input, check_number


def add_parser(sub: argparse._SubParsersAction) -> None:
    fl = sub.add_parser("flow", help="optical flow tools")
    fsub = fl.add_subparsers(dest="what", required=True)
    fx = fsub.add_parser("extract", help="optical flow of a video: a preview (colour wheel) and/or a .safetensors file")
    fx.add_argument("video", help="a video file (.mp4, .webm, .mov, .webp, .gif)")
    fx.add_argument("--method", default="dis-fast", help="dis-ultrafast, dis-fast, dis-medium, farneback or raft")
    fx.add_argument("--preview", help="write the colour-wheel view here (hue = direction, brightness = speed)")
    fx.add_argument("-o", "--output", help="write the flow [T-1,H,W,2] (and mask) as .safetensors")
    fx.add_argument("--consistency", action="store_true", help="also compute the forward-backward consistency mask")
    fx.add_argument("--max-frames", type=int, help="read at most this many frames")
    fx.set_defaults(func=run, check=check)


def check(args: argparse.Namespace) -> list[str]:
    # Imported when the command runs (start-up time: see args.load_for_inference).
    from ..flow import METHODS
    from ..video_io import check_video_output

    check_input(args.video, "the video")
    if args.method not in METHODS:
        raise RequestError(f"--method {args.method!r} is unknown; choose one of {', '.join(METHODS)}")
    check_number("--max-frames", args.max_frames, 2, hint="a flow needs two frames")
    if args.preview is not None:
        check_video_output(args.preview, "--preview")
    if args.output is not None:
        check_output_file(args.output, SAFETENSORS, "-o")
    return []


def run(args: argparse.Namespace) -> int:
    import torch

    from ..checkpoint import save_safetensors_atomic
    from ..flow import extract_flow_from_file, flow_to_image
    from ..video_io import write_video

    t0 = time.perf_counter()
    res, _frames, fps = extract_flow_from_file(args.video, args.method, args.max_frames, args.consistency)
    seconds = time.perf_counter() - t0
    if args.output:
        tensors = {"flow": res.flow} if res.valid is None else {"flow": res.flow, "valid": res.valid.to(torch.uint8)}
        save_safetensors_atomic(tensors, args.output, {"aiprod.flow_method": args.method, "aiprod.fps": str(fps)})
    if args.preview:
        write_video(args.preview, flow_to_image(res.flow), fps=fps)
    mag = res.flow.norm(dim=-1)
    n, h, w, _ = res.flow.shape
    print(f"{args.video}: {n} frame pairs of {w}x{h}, {args.method}, {n / seconds:.1f} pairs/s; "
          f"mean |flow| {float(mag.mean()):.2f} px, max {float(mag.max()):.2f} px"
          + (f"; {float(res.valid.float().mean()):.0%} forward-backward consistent" if res.valid is not None else "")
          + "".join(f"; wrote {p}" for p in (args.output, args.preview) if p))
    return 0
