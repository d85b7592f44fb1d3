"""The one place that talks to ComfyUI: model folders, progress, interrupt, memory, messages.

Every function degrades to plain behaviour when ComfyUI is absent, so the node classes also run in
tests and scripts. Model folders then live under $AIPROD_MODELS_DIR (default: ./models).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch

from aiprod_core.memory.engine import on_device

log = logging.getLogger(__name__)

try:  # inside ComfyUI
    import comfy.model_management as mm
    import comfy.utils
    import folder_paths

    IN_COMFY = True
except ImportError:
    IN_COMFY = False

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "aiprod_core" / "weights"
FOLDERS = ("checkpoints", "diffusion_models", "vae", "text_encoders", "loras", "latent_upscale_models")
EXTENSIONS = {".safetensors", ".sft"}  # never pickle


def register_folders() -> None:
    """Add `latent_upscale_models` where core lacks it, and the pack's bundled model to diffusion_models."""
    if not IN_COMFY:
        return
    if "latent_upscale_models" not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(
            "latent_upscale_models", os.path.join(folder_paths.models_dir, "latent_upscale_models"), is_default=True
        )
    if BUNDLED_DIR.is_dir():
        folder_paths.add_model_folder_path("diffusion_models", str(BUNDLED_DIR))


EXAMPLE_INPUT = "aiprod_example.mp4"  # the reference clip the video-to-video and motion-transfer templates load
EXAMPLE_IMAGE = "aiprod_example.png"  # its first frame, which the image-to-video template starts from


def write_example_input() -> None:
    """Put the templates' example clip and picture in ComfyUI's input folder when they are not there, so that
    every shipped workflow runs as loaded: one object of the synthetic world moving up (a motion to transfer), and
    its first frame. A folder that cannot be written only costs the examples."""
    if not IN_COMFY:
        return
    clip, image = input_dir() / EXAMPLE_INPUT, input_dir() / EXAMPLE_IMAGE
    if clip.exists() and image.exists():
        return
    try:
        from PIL import Image

        from aiprod_core.video_io import to_uint8, write_video
        from aiprod_core.world import WorldSpec, make_clip

        frames = make_clip(4, WorldSpec()).frames
        if not clip.exists():
            write_video(clip, frames, fps=8)
        if not image.exists():
            tmp = image.with_name(f".{image.name}.tmp.png")
            Image.fromarray(to_uint8(frames[:1])[0]).save(tmp)
            os.replace(tmp, image)
    except OSError as e:
        log.warning("could not write the templates' examples to %s (%s); pick your own in their Load Video and Load "
                    "Image nodes", input_dir(), e)


def folder_dirs(kind: str) -> list[Path]:
    if kind not in FOLDERS:
        raise ValueError(f"unknown model folder {kind!r}; expected one of {FOLDERS}")
    if IN_COMFY:
        return [Path(p) for p in folder_paths.get_folder_paths(kind)]
    root = Path(os.environ.get("AIPROD_MODELS_DIR", "models"))
    dirs = [root / kind]
    if kind == "diffusion_models" and BUNDLED_DIR.is_dir():
        dirs.append(BUNDLED_DIR)
    return dirs


def list_files(kind: str) -> list[str]:
    """Safetensors files in a model folder, as names relative to it (ComfyUI's widget values)."""
    names = set()
    for d in folder_dirs(kind):
        if d.is_dir():
            for p in d.rglob("*"):
                if p.is_file() and p.suffix in EXTENSIONS:
                    names.add(p.relative_to(d).as_posix())
    return sorted(names)


def list_model_folders(kind: str) -> list[str]:
    """Hugging Face model folders (config.json beside safetensors weights) in a model folder, as names relative to
    it ending in "/": Gemma 3 as google/gemma-3-12b-it ships, kept in text_encoders/."""
    names = set()
    for d in folder_dirs(kind):
        if d.is_dir():
            for config in d.rglob("config.json"):
                if any(p.suffix in EXTENSIONS for p in config.parent.iterdir()):
                    names.add(config.parent.relative_to(d).as_posix() + "/")
    return sorted(names)


def resolve(kind: str, name: str, folders: bool = False) -> Path:
    """The file `name` inside one of the `kind` folders (with `folders`, also a model folder that
    list_model_folders lists); never a path outside them."""
    if not name or Path(name).is_absolute() or ".." in Path(name).parts:
        raise ValueError(f"{kind} file {name!r} must be a name inside the {kind} folder (no absolute path, no '..')")
    for d in folder_dirs(kind):
        p = (d / name).resolve()
        if folders and name.endswith("/") and p.is_dir() and d.resolve() in p.parents and (p / "config.json").is_file():
            return p
        if p.is_file() and d.resolve() in p.parents:
            if p.suffix not in EXTENSIONS:
                raise ValueError(f"{name}: only .safetensors files are loaded (pickle files can run code)")
            return p
    where = ", ".join(str(d) for d in folder_dirs(kind))
    raise FileNotFoundError(f"{kind} file {name!r} not found in {where}; put it there and refresh the node list")


def output_dir() -> Path:
    """ComfyUI's output folder (where run folders of the trainer go), or $AIPROD_OUTPUT_DIR (default ./output)."""
    return Path(folder_paths.get_output_directory() if IN_COMFY else os.environ.get("AIPROD_OUTPUT_DIR", "output"))


def temp_dir() -> Path:
    """ComfyUI's temp folder (previews, emptied at start), or $AIPROD_OUTPUT_DIR/temp."""
    return Path(folder_paths.get_temp_directory()) if IN_COMFY else output_dir() / "temp"


def input_dir() -> Path:
    """ComfyUI's input folder (where datasets are looked up), or $AIPROD_INPUT_DIR (default ./input)."""
    return Path(folder_paths.get_input_directory() if IN_COMFY else os.environ.get("AIPROD_INPUT_DIR", "input"))


def inside(root: Path, name: str, what: str) -> Path:
    """`root / name`, refusing names that would leave `root`."""
    p = (root / name).resolve()
    if not name or Path(name).is_absolute() or ".." in Path(name).parts or root.resolve() not in p.parents:
        raise ValueError(f"{what} {name!r} must be a name inside {root} (no absolute path, no '..')")
    return p


def torch_device() -> torch.device:
    return mm.get_torch_device() if IN_COMFY else torch.device("cpu")


def weight_dtype(kind: str) -> torch.dtype:
    """The dtype ComfyUI's memory manager gives a model's weights on its device: "diffusion" (the backbone and
    upscaler) or "vae". bf16 on GPUs that have it, float32 on the CPU and older GPUs; --bf16-unet, --fp32-vae and
    the like decide instead. A forced fp16 or fp8 gives bf16 where the device has it and float32 elsewhere, as
    ComfyUI does for LTX-Video (fp16 overflows; fp8 storage is the engine planner's choice). Outside ComfyUI: float32."""
    if not IN_COMFY:
        return torch.float32
    dev, allowed = mm.get_torch_device(), [torch.bfloat16, torch.float32]
    dt = mm.vae_dtype(dev, allowed) if kind == "vae" else mm.unet_dtype(dev, supported_dtypes=allowed)
    if dt in allowed:
        return dt
    return torch.bfloat16 if mm.should_use_bf16(dev) else torch.float32


def total_memory_gb() -> float | None:
    """ComfyUI's device's memory in GB; None on the CPU and outside ComfyUI."""
    if not IN_COMFY or getattr(mm.get_torch_device(), "type", "cpu") != "cuda":
        return None
    return mm.get_total_memory(mm.get_torch_device()) / 2**30


def free_memory(nbytes: int) -> None:
    """Ask ComfyUI's memory manager to unload other models until `nbytes` fit (honours --reserve-vram)."""
    if IN_COMFY:
        mm.free_memory(nbytes, mm.get_torch_device())


@dataclass(frozen=True)
class MemoryBudget:
    """What the low-VRAM engine may use: `vram_gb` (None: what is free when a stage starts) and the mode."""

    vram_gb: float | None
    offload: str  # "auto" | "stream" | "none"
    source: str


def memory_budget() -> MemoryBudget:
    """The budget ComfyUI's flags allow: --reserve-vram is kept free, --lowvram / --novram stream every block.

    Outside ComfyUI: the free memory at run time, planned ("auto"), which on a CPU changes nothing.
    """
    if not IN_COMFY:
        return MemoryBudget(None, "auto", "plain: free GPU memory, planned")
    dev = mm.get_torch_device()
    if getattr(dev, "type", "cpu") != "cuda":
        return MemoryBudget(None, "none", f"ComfyUI device {dev}: no offloading")
    try:
        from comfy.cli_args import args
    except ImportError:  # an older or newer layout: the memory manager's state alone
        args = None
    reserve = float(getattr(args, "reserve_vram", None) or 0.0)
    free_gb = mm.get_free_memory(dev) / 2**30
    state = getattr(mm, "vram_state", None)
    states = getattr(mm, "VRAMState", None)
    novram = bool(getattr(args, "novram", False)) or (states is not None and state == states.NO_VRAM)
    lowvram = bool(getattr(args, "lowvram", False)) or (states is not None and state == states.LOW_VRAM)
    budget = max(0.5, free_gb - reserve)
    if novram:
        return MemoryBudget(budget, "stream", f"--novram: every block streamed, {budget:.1f} GB free after --reserve-vram {reserve:g}")
    if lowvram:
        return MemoryBudget(budget, "stream", f"--lowvram: blocks streamed, {budget:.1f} GB free after --reserve-vram {reserve:g}")
    return MemoryBudget(budget, "auto", f"{budget:.1f} GB free after --reserve-vram {reserve:g}, planned")


def module_bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


@contextmanager
def placed(module: torch.nn.Module, parts: tuple[str, ...] | None = None, work_bytes: int = 0) -> Iterator[torch.device]:
    """`module` (or only its `parts`, with its own buffers: a VAE's decoder, say) on ComfyUI's device for the
    block, after asking the memory manager for room for the weights and `work_bytes` of activations; back where
    it was afterwards. Yields the device."""
    dev = torch_device()
    weights = module_bytes(module) if parts is None else sum(module_bytes(getattr(module, name)) for name in parts)
    if dev.type != "cpu":
        free_memory(weights + work_bytes)
    with on_device(module, dev, parts):
        yield dev


def check_interrupt() -> None:
    if IN_COMFY:
        mm.throw_exception_if_processing_interrupted()


class Progress:
    """ComfyUI's progress bar (which also checks the interrupt flag), or nothing outside ComfyUI."""

    def __init__(self, total: int):
        self.total = total
        self.bar = comfy.utils.ProgressBar(total) if IN_COMFY else None

    def update(self, value: int, preview: tuple | None = None) -> None:
        check_interrupt()
        if self.bar is not None:
            self.bar.update_absolute(value, self.total, preview)


def previews_shown() -> bool:
    """Whether ComfyUI draws latent previews (--preview-method other than none)."""
    if not IN_COMFY:
        return False
    from comfy.cli_args import LatentPreviewMethod, args

    return args.preview_method != LatentPreviewMethod.NoPreviews


def previewer(factors: tuple[torch.Tensor, torch.Tensor] | None) -> Callable[[torch.Tensor], tuple | None]:
    """latent [B,C,t,h,w] -> a preview for Progress.update, when ComfyUI shows latent previews (--preview-method)."""
    if not IN_COMFY or factors is None:
        return lambda x: None
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod, args

    if args.preview_method == LatentPreviewMethod.NoPreviews:
        return lambda x: None
    rgb = latent_preview.Latent2RGBPreviewer(factors[0].tolist(), factors[1].tolist())
    return lambda x: rgb.decode_latent_to_preview_image("JPEG", x.float().cpu())


def send(event: str, data: dict) -> None:
    """A message to the editor (the web extension listens for `aiprod.*` events)."""
    if not IN_COMFY:
        return
    try:
        from server import PromptServer

        PromptServer.instance.send_sync(event, data, PromptServer.instance.client_id)
    except Exception as e:  # a missing websocket client must not fail the run
        log.debug("could not send %s: %s", event, e)


class ModelCache:
    """Loaded models by (file, mtime): a workflow that runs again does not load them again. Bounded."""

    def __init__(self, max_items: int = 4):
        self.items: OrderedDict[tuple, object] = OrderedDict()
        self.max_items = max_items

    def get(self, path: Path, load: Callable[[Path], object], *extra) -> object:
        key = (str(path), path.stat().st_mtime_ns, *extra)
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = load(path)
        self.items[key] = value
        while len(self.items) > self.max_items:
            self.items.popitem(last=False)
        return value


CACHE = ModelCache()
