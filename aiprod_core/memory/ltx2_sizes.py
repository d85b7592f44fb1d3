"""What LTX-2's modules take on the device: parameter bytes and the peak of their activations (ltx2_plan.py plans
with them).

Parameter bytes are read from the modules built on the meta device at the real config (the 19B video transformer,
its VAE decoder, the spatial upscaler, the text connector), so they cost nothing. Activations are not fitted
formulas: each is the traced peak (trace.py) of our own forward at the real width and clip size on meta tensors,
which equals the CPU's measured peak to the byte (tests/ltx2/test_ltx2_memory.py). A GPU adds its kernels'
workspaces (VAE_WORKSPACE for the decoder's convolutions) and runs attention fused (traced so). Gemma 3 12B runs
in transformers' code, which does not run on meta tensors, so its activations are counted from its shape: every
layer's hidden state (LTX-2 reads all 49) and one layer's working tensors.
"""

from __future__ import annotations

import dataclasses
import json
import math
from functools import lru_cache

import torch

from ..families.ltx2.config import LTX2TransformerConfig
from ..families.ltx2.connector import ConnectorConfig, TextConnector
from ..families.ltx2.lora import DEFAULT_LTX2_TARGETS
from ..families.ltx2.transformer import LTX2VideoTransformer
from ..families.ltx2.upscaler import LTX2LatentUpsampler, LTX2UpsamplerConfig, upsample_normalized
from ..families.ltx2.vae import LTX2VideoVAE
from ..families.ltx2.vae_config import LTX2VAEConfig
from ..families.ltx2.vae_tiling import space_tile_size, split_symmetric, split_time
from ..models.lora import LoRA, apply_loras
from .stages import VAE_WORKSPACE, BlockBytes, blocks_bytes
from .trace import traced_peak, traced_peaks

# Gemma 3 12B's language model (google/gemma-3-12b-it's text_config), the text encoder every LTX-2 release reads
GEMMA3_12B_SHAPE = {"vocab_size": 262208, "hidden_size": 3840, "num_hidden_layers": 48, "intermediate_size": 15360,
                    "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 256}
# LTX2VideoVAE.decode's default overlaps between tiles: latent frames, latent px
DECODE_OVERLAPS = (3, 2)


def _dtype(e: int) -> torch.dtype:
    return {4: torch.float32, 2: torch.bfloat16}[e]


# -- parameters ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def transformer_bytes(cfg: LTX2TransformerConfig) -> tuple[tuple[BlockBytes, ...], int]:
    """Per-block parameter counts of the video transformer and the count of everything outside its blocks."""
    with torch.device("meta"):
        model = LTX2VideoTransformer(cfg)
    rest = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("transformer_blocks."))
    return blocks_bytes(model.transformer_blocks), rest


def _params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def decoder_params(cfg: LTX2VAEConfig) -> int:
    """Parameters of the VAE's decoder and its latent statistics (the encoder stays off the device)."""
    return _decoder_params(_key(cfg))


def _key(cfg: LTX2VAEConfig) -> str:
    """A VAE config as a cache key (its block lists hold dicts, so the config itself is not hashable)."""
    return json.dumps(cfg.to_dict(), sort_keys=True)


def _decoder(key: str, e: int) -> LTX2VideoVAE:
    with torch.device("meta"):
        return LTX2VideoVAE(LTX2VAEConfig.from_dict(json.loads(key)), encoder=False).to(_dtype(e))


@lru_cache(maxsize=4)
def _decoder_params(key: str) -> int:
    return _params(_decoder(key, 4))


def gemma_bytes(shape: dict) -> tuple[tuple[BlockBytes, ...], int]:
    """Gemma 3's decoder layers (q/k/v/o and the gated MLP are Linear; four RMSNorms and q/k norms) and the
    embedding plus final norm, from its shape."""
    d, f, hd = shape["hidden_size"], shape["intermediate_size"], shape["head_dim"]
    q, kv = shape["num_attention_heads"] * hd, shape["num_key_value_heads"] * hd
    linears = ((q, d), (kv, d), (kv, d), (d, q), (f, d), (f, d), (d, f))
    layer = BlockBytes(sum(r * c for r, c in linears), 4 * d + 2 * hd, linears, max(r * c for r, c in linears))
    return (layer,) * shape["num_hidden_layers"], shape["vocab_size"] * d + d


# -- activations (traced on meta tensors) --------------------------------------------------------------------


@lru_cache(maxsize=32)
def sampling_activation_bytes(cfg: LTX2TransformerConfig, grid: tuple[int, int, int], e: int, context: int,
                              fused_attention: bool = True, attention_chunk: int = 0) -> int:
    """Peak of one forward of batch 1 over a latent grid (t, h, w) with a `context`-token float32 context, weights
    in e bytes. Every block is alike, so two of them reach the peak of all 48."""
    small = dataclasses.replace(cfg, num_layers=min(cfg.num_layers, 2), pattern=None)  # attention blocks: the larger
    with torch.device("meta"):
        model = LTX2VideoTransformer(small).to(_dtype(e))
    model.set_attention_chunk(attention_chunk)
    x = torch.empty(1, cfg.in_channels, *grid, device="meta")
    sigma = torch.empty(1, device="meta")
    text = cfg.caption_channels if cfg.caption_channels is not None else cfg.cross_attention_dim
    ctx = torch.empty(1, context, text, device="meta")
    return traced_peak(lambda: model(x, sigma, ctx), fused_attention)


@lru_cache(maxsize=32)
def training_activation_bytes(cfg: LTX2TransformerConfig, grid: tuple[int, int, int], e: int, context: int,
                              batch: int = 1, rank: int = 16, targets: tuple[str, ...] = DEFAULT_LTX2_TARGETS,
                              fused_attention: bool = True) -> int:
    """Peak of one LoRA training step (forward, loss, backward) over `batch` clips of a latent grid, every block
    checkpointed, frozen weights in e bytes. One block is traced whole, its forward kept for its backward as a
    checkpointed block's re-run keeps it, with the adapters' gradients; each other block adds only the input it
    keeps for its re-run. Within 3% of the CPU's measured peak (tests/ltx2/test_ltx2_lora_training.py)."""
    one = dataclasses.replace(cfg, num_layers=1, pattern=None)
    with torch.device("meta"):
        model = LTX2VideoTransformer(one).to(_dtype(e)).requires_grad_(False)
        lora = LoRA.create(model, rank, float(rank), targets)
    x = torch.empty(batch, cfg.in_channels, *grid, device="meta")
    sigma = torch.empty(batch, device="meta")
    text = cfg.caption_channels if cfg.caption_channels is not None else cfg.cross_attention_dim
    ctx = torch.empty(batch, context, text, device="meta")

    def step() -> None:
        with apply_loras(model, [(lora, 1.0)]):
            model(x, sigma, ctx).float().pow(2).mean().backward()

    kept = batch * math.prod(grid) * cfg.width * e  # a block's input, held for its re-run
    return traced_peak(step, fused_attention, grad=True) + (cfg.num_layers - 1) * kept


@lru_cache(maxsize=8)
def lora_state_bytes(cfg: LTX2TransformerConfig, rank: int, targets: tuple[str, ...] = DEFAULT_LTX2_TARGETS) -> int:
    """The adapters' parameters, gradients and AdamW moments, all float32."""
    with torch.device("meta"):
        lora = LoRA.create(LTX2VideoTransformer(dataclasses.replace(cfg, num_layers=1, pattern=None)), rank, float(rank), targets)
    return sum(p.numel() for p in lora.parameters()) * cfg.num_layers * 4 * 4


def vae_tile_bytes(cfg: LTX2VAEConfig, grid: tuple[int, int, int], e: int, gpu: bool = False) -> int:
    """Peak of decoding one latent tile (t, h, w) whole, its frames included. gpu: cuDNN's convolutions take one
    more tensor of the largest size and a workspace (as plan.vae_decode_bytes counts for AIPROD's decoder)."""
    peak, largest = _vae_tile_bytes(_key(cfg), tuple(grid), e, not gpu)
    return peak + (largest + VAE_WORKSPACE if gpu else 0)


@lru_cache(maxsize=64)
def _vae_tile_bytes(key: str, grid: tuple[int, int, int], e: int, cpu: bool) -> tuple[int, int]:
    vae = _decoder(key, e)
    z = torch.empty(1, vae.cfg.latent_channels, *grid, device="meta", dtype=_dtype(e))
    return traced_peaks(lambda: vae.decode(z), conv_scratch=cpu)


def decode_tiles(latent: tuple[int, int, int], temporal_chunk: int, spatial_tile: int) -> tuple[int, list[int], int]:
    """(number of tiles, the largest tile's (t, h, w), latent voxels decoded) of LTX2VideoVAE.decode's tiling of a
    latent grid (overlaps are decoded by both their tiles)."""
    t, h, w = latent
    t_overlap, s_overlap = DECODE_OVERLAPS
    times = [s.end - s.start for s in split_time(t, temporal_chunk, t_overlap)] if temporal_chunk else [t]
    axes = [[s.end - s.start for s in split_symmetric(n, space_tile_size(spatial_tile, s_overlap, n, max(h, w)),
                                                       s_overlap)] if spatial_tile else [n] for n in (h, w)]
    work = sum(times) * sum(axes[0]) * sum(axes[1])
    return len(times) * len(axes[0]) * len(axes[1]), [max(times), max(axes[0]), max(axes[1])], work


def vae_decode_bytes(cfg: LTX2VAEConfig, latent: tuple[int, int, int], temporal_chunk: int, spatial_tile: int,
                     e: int, gpu: bool = True) -> int:
    """Peak of LTX2VideoVAE.decode over a latent grid: whole, or the output and its blend weights plus the largest
    tile's decode and its weighted copy. gpu: with cuDNN's extra tensor and workspace (vae_tile_bytes); False: the
    CPU's peak, with its convolutions' columns."""
    t, h, w = latent
    tc, sc = cfg.temporal_compression, cfg.spatial_compression
    if not temporal_chunk and not spatial_tile:
        return vae_tile_bytes(cfg, latent, e, gpu)
    _, (tt, th, tw), _ = decode_tiles(latent, temporal_chunk, spatial_tile)
    frames, tile_frames = 1 + (t - 1) * tc, 1 + (tt - 1) * tc
    out = cfg.out_channels * frames * h * sc * w * sc * e + frames * h * sc * w * sc * 4  # the video, its weights
    tile_out = cfg.out_channels * tile_frames * th * sc * tw * sc * e
    blend = 2 * tile_out + tile_frames * th * sc * tw * sc * (4 + e)  # the tile, its weighted copy, the weights
    return out + max(vae_tile_bytes(cfg, (tt, th, tw), e, gpu), blend)


@lru_cache(maxsize=16)
def upscaler_bytes(cfg: LTX2UpsamplerConfig, latent: tuple[int, int, int], e: int, gpu: bool = True) -> tuple[int, int]:
    """(weights, activations) of the spatial upscaler on a latent grid, normalisation included. gpu: with cuDNN's
    extra tensor and workspace, as for the decoder; False: the CPU's peak, with its convolutions' columns."""
    with torch.device("meta"):
        up = LTX2LatentUpsampler(cfg).to(_dtype(e))
    z = torch.empty(1, cfg.in_channels, *latent, device="meta", dtype=_dtype(e))
    stats = torch.empty(cfg.in_channels, device="meta")
    peak, largest = traced_peaks(lambda: upsample_normalized(up, z, stats, stats), conv_scratch=not gpu)
    return _params(up) * e, peak + (largest + VAE_WORKSPACE if gpu else 0)


@lru_cache(maxsize=4)
def connector_bytes(cfg: ConnectorConfig, batch: int, length: int, e: int) -> tuple[int, int]:
    """(weights, activations) of the feature extractor and connector over Gemma's states: the extractor traced, the
    connector's blocks (attention and a 4x MLP over `length` tokens) counted from their width."""
    with torch.device("meta"):
        connector = TextConnector(cfg).to(_dtype(e))
    states = tuple(torch.empty(batch, length, cfg.gemma_dim, device="meta", dtype=_dtype(e))
                   for _ in range(cfg.gemma_states))
    mask = torch.ones(batch, length, dtype=torch.bool, device="meta")
    extract = traced_peak(lambda: connector.feature_extractor(states, mask))
    blocks = batch * length * cfg.width * e * 12  # x, residual, q, k, v, attention out and the 4x hidden
    return _params(connector) * e, max(extract, blocks)


def gemma_activation_bytes(shape: dict, batch: int, length: int, e: int) -> int:
    """Every hidden state LTX-2 reads (layers + 1 of [B, T, D]) and one layer's working tensors: q, k, v, the
    attention output, the MLP's gate, up and product, norms and residual, and the causal and sliding masks."""
    d, f, hd = shape["hidden_size"], shape["intermediate_size"], shape["head_dim"]
    q, kv = shape["num_attention_heads"] * hd, shape["num_key_value_heads"] * hd
    states = (shape["num_hidden_layers"] + 1) * batch * length * d * e
    layer = batch * length * (2 * q + 2 * kv + 3 * f + 4 * d) * e + 2 * batch * length * length * e
    return states + layer
