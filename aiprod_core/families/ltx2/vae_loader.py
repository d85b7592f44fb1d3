"""Load the LTX-2 video VAE from the files as released.

- The single-file checkpoint (`ltx-2-19b-dev.safetensors` and its kin) holds the VAE under `vae.`
  (`vae.encoder.*`, `vae.decoder.*`, `vae.per_channel_statistics.*`) beside the transformer, the audio VAE and
  the vocoder, with the config as JSON in the metadata key `config` (its `"vae"` section).
- A split VAE file (ComfyUI's `models/vae`) holds the same keys without the prefix, with or without metadata;
  without a config the released LTX-2 structure is assumed, and the key check below says if that was wrong.

Only the VAE's tensors are read from a multi-gigabyte checkpoint.
"""

from __future__ import annotations

import logging
import os

import torch
from safetensors import SafetensorError, safe_open

from ...checkpoint import check_keys, check_safetensors
from ...config import ConfigError
from .files import COMPONENT_PREFIXES, CONFIG_KEY, LTX2FileError, config_object
from .vae import LTX2VideoVAE
from .vae_config import LTX2_VIDEO_VAE, LTX2VAEConfig

logger = logging.getLogger(__name__)

PREFIXES = (*COMPONENT_PREFIXES["video_vae"], "")  # single-file checkpoint ("vae."), split VAE file
# Statistics the release carries but nothing reads (only mean-of-means and std-of-means are used).
SPARE_STATISTICS = ("channel", "mean-of-stds", "mean-of-stds_over_std-of-means")


def _vae_prefix(keys: list[str]) -> str | None:
    for prefix in PREFIXES:
        if any(k.startswith(f"{prefix}encoder.") or k.startswith(f"{prefix}decoder.") for k in keys):
            return prefix
    return None


def read_vae_config(meta: dict[str, str], path: str = "") -> LTX2VAEConfig:
    """The config in a file's metadata (`config` -> `"vae"`); the released LTX-2 VAE when the file has none."""
    full = config_object(meta[CONFIG_KEY], path) if CONFIG_KEY in meta else {}
    if "vae" in full:
        try:
            return LTX2VAEConfig.from_dict(full["vae"])
        except ConfigError as e:
            raise LTX2FileError(f"{path}: its video VAE config cannot be built: {e}") from e
    logger.info("%s carries no video VAE config; assuming the released LTX-2 video VAE", path)
    return LTX2VAEConfig.from_dict(LTX2_VIDEO_VAE)


def load_ltx2_video_vae(path: str | os.PathLike, config: LTX2VAEConfig | None = None, encoder: bool = True,
                        decoder: bool = True, device: str | torch.device = "cpu",
                        dtype: torch.dtype | None = None) -> LTX2VideoVAE:
    """The video VAE of an LTX-2 single-file checkpoint or split VAE file, in eval mode.

    config: overrides the file's metadata. encoder/decoder: leave a half out (its weights are not read).
    dtype: cast the weights (default: as stored, e.g. bfloat16).
    """
    path = str(check_safetensors(path))
    try:
        with safe_open(path, framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            keys = list(f.keys())
            prefix = _vae_prefix(keys)
            if prefix is None:
                raise LTX2FileError(
                    f"{path}: holds no LTX-2 video VAE; expected keys starting with 'vae.encoder.' / 'vae.decoder.' "
                    f"(a single-file checkpoint) or 'encoder.' / 'decoder.' (a split VAE file); found e.g. "
                    f"{keys[:3]}. Pick the LTX-2 checkpoint or its video VAE file."
                )
            if prefix == "" and any(".resnets." in k or ".upsamplers." in k or ".downsamplers." in k for k in keys):
                raise LTX2FileError(
                    f"{path}: is a video VAE in the diffusers layout (e.g. Lightricks/LTX-2's "
                    "vae/diffusion_pytorch_model.safetensors: 'resnets', 'mid_block', 'latents_mean'); expected "
                    "Lightricks' own layout ('res_blocks', 'per_channel_statistics'). Use the single-file "
                    "checkpoint (ltx-2-19b-*.safetensors) or ComfyUI's split video VAE file instead."
                )
            cfg = config or read_vae_config(meta, path)
            with torch.device("meta"):
                vae = LTX2VideoVAE(cfg, encoder=encoder, decoder=decoder)
            expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
            halves = tuple(h for h, keep in (("encoder.", encoder), ("decoder.", decoder)) if keep)
            spare = {f"per_channel_statistics.{s}" for s in SPARE_STATISTICS}
            found = {}
            for k in keys:
                if not k.startswith(prefix):
                    continue
                name = k[len(prefix):]
                if prefix == "" and not name.startswith(("encoder.", "decoder.", "per_channel_statistics.")):
                    continue  # another component sharing an unprefixed file
                if name in spare or (name.startswith(("encoder.", "decoder.")) and not name.startswith(halves)):
                    continue
                found[name] = tuple(f.get_slice(k).get_shape())
            check_keys(expected, found, f"{path}: the LTX-2 video VAE weights do not match its config",
                       "Use the VAE released with this model (or the checkpoint it came in), or pass the config that "
                       "matches the file.", prefix, LTX2FileError)
            state = {k: f.get_tensor(prefix + k) for k in expected}
    except (SafetensorError, OSError) as e:
        raise LTX2FileError(f"{path}: could not be read as safetensors ({e}); copy or download it again") from e
    vae.load_state_dict(state, strict=True, assign=True)
    vae.to(device=device)
    if dtype is not None:
        vae.to(dtype=dtype)
    return vae.eval().requires_grad_(False)
