"""Low-VRAM engine: planner estimates against measured peaks, block streaming, fp8 storage, OOM messages."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from aiprod_core.cli import main
from aiprod_core.config import BackboneConfig, VAEConfig, preset
from aiprod_core.memory import plan as P
from aiprod_core.memory.engine import StageOutOfMemoryError
from aiprod_core.memory.fp8 import FP8, Fp8Tensor, quantize_fp8
from aiprod_core.memory.placement import BlockPlacement, Placement, vae_decode_room
from aiprod_core.memory.streaming import stream_blocks
from aiprod_core.model import build_model
from aiprod_core.models.backbone import HybridBackbone
from aiprod_core.models.lora import LoRA, apply_loras
from aiprod_core.models.vae import CausalVideoVAE
from aiprod_core.pipeline import generate
from bench.measure import measure_peak
from research.fp8_files import load_fp8_file, save_fp8_file

# The planner's activation formulas must stay within this factor of the measured peak (CPU, fp32 and bf16).
TOLERANCE = 0.15


def _inputs(cfg: BackboneConfig, batch: int, grid: tuple[int, int, int], text: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, cfg.in_channels, *grid, generator=g)
    sigma = torch.rand(batch, generator=g)
    ctx = torch.randn(batch, text, cfg.text_dim, generator=g)
    mask = torch.ones(batch, text, dtype=torch.bool)
    mask[-1, text // 2 :] = False  # a padded row, as real batches have
    return x, sigma, ctx, mask


@pytest.fixture(scope="module")
def backbone(one_thread):
    torch.manual_seed(0)
    bb = HybridBackbone(preset("tiny").backbone).eval()
    torch.nn.init.normal_(bb.proj_out.weight, std=0.05)  # zero-init output would hide differences
    return bb


# -- planner vs measurement ----------------------------------------------------------------------------


@pytest.mark.parametrize("grid", [(5, 8, 8), (5, 16, 16)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_sampling_estimate_matches_measured_peak(backbone, grid, dtype):
    bb = backbone.to(dtype)
    try:
        x, s, ctx, m = (t.to(dtype) if t.is_floating_point() else t for t in _inputs(bb.cfg, 2, grid))
        with torch.no_grad():
            bb(x, s, ctx, m)  # warm-up: one-time buffers (RoPE tables) are not activations
            # the plan is for a GPU: without the float32 scratchpads of a CPU without native bf16
            _, measured = measure_peak(lambda: bb(x, s, ctx, m), matmul_scratch=False)
    finally:
        backbone.float()
    est = P.sampling_activation_bytes(bb.cfg, 2, grid[0] * grid[1] * grid[2], dtype.itemsize)
    assert measured > 1e6
    assert abs(est / measured - 1) <= TOLERANCE, (est, measured)


@pytest.mark.parametrize("checkpointing", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_lora_training_estimate_matches_measured_peak(one_thread, dtype, checkpointing):
    """bf16 too, as on a GPU: rms_norm's float32 copies for backward lift the peak above the fp32 formula halved."""
    torch.manual_seed(0)
    bb = HybridBackbone(preset("tiny").backbone).train().requires_grad_(False).to(dtype)
    bb.gradient_checkpointing = checkpointing
    lora = LoRA.create(bb, 4)
    x, s, ctx, m = (t.to(dtype) if t.is_floating_point() else t for t in _inputs(bb.cfg, 1, (5, 16, 16)))

    def step():
        with apply_loras(bb, [(lora, 1.0)]):
            bb(x, s, ctx, m).float().pow(2).mean().backward()

    step()
    _, measured = measure_peak(step, matmul_scratch=False)  # as in sampling: the peak a GPU would see
    est = P.training_activation_bytes(bb.cfg, 1, 5 * 16 * 16, dtype.itemsize, checkpointing)
    assert abs(est / measured - 1) <= 0.1, (est, measured)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_matmuls_own_scratchpad_is_all_that_is_left_out(one_thread, dtype):
    """On a CPU without native bf16 (no AVX512-BF16 or AMX) a bf16 product takes a float32 scratchpad of its output's
    size inside the call (oneDNN's gemm), which a GPU does not: 3x the output's bytes at the peak. The planner's
    tests leave it out; the product's output, and all the rest, still count."""
    a, w, b = (torch.randn(*shape, dtype=dtype) for shape in ((512, 128), (1024, 128), (1024,)))
    torch.nn.functional.linear(a, w, b)
    y, without = measure_peak(lambda: torch.nn.functional.linear(a, w, b), matmul_scratch=False)
    _, counted = measure_peak(lambda: torch.nn.functional.linear(a, w, b))
    out = y.numel() * y.element_size()
    assert without == out
    assert counted == out or (dtype == torch.bfloat16 and out + y.numel() * 4 <= counted <= out + y.numel() * 4 + 4096)


@pytest.mark.parametrize("chunk,tile", [(0, 0), (2, 0), (2, 8)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_vae_decode_estimate_matches_measured_peak(one_thread, chunk, tile, dtype):
    """bf16 too: the norms' float32 statistics must not lift the peak above the estimate in the compute dtype."""
    cfg = VAEConfig(latent_channels=16, patch_size=2, channels=(16, 32, 64, 64), down=("space", "time", "all"),
                    layers_per_level=2)
    vae = CausalVideoVAE(cfg).eval().to(dtype)
    _, t, h, w = cfg.latent_shape(33, 128, 128)
    z = torch.randn(1, 16, t, h, w, dtype=dtype)
    with torch.no_grad():
        vae.decode(z[:, :, :2], temporal_chunk=chunk, spatial_tile=tile)
        _, measured = measure_peak(lambda: vae.decode(z, temporal_chunk=chunk, spatial_tile=tile))
    est = P.vae_decode_bytes(cfg, (t, h, w), chunk, tile, dtype.itemsize, gpu=False)
    assert abs(est / measured - 1) <= TOLERANCE, (chunk, tile, est, measured)


def test_plan_base_on_8gb_and_choices_shrink_with_budget():
    base = preset("base")
    kw = dict(text_params=5_700_000_000)
    p8 = P.plan_memory(base, 512, 768, 121, 8, **kw)
    assert set(p8.stages) == {"text_encoding", "sampling", "upscaling", "vae_decode", "lora_training"}
    assert p8.peak_bytes <= p8.usable_bytes
    assert p8.stages["text_encoding"].where == "cpu"  # umT5-xxl does not fit beside anything
    p3 = P.plan_memory(base, 512, 768, 121, 3, **kw)
    s8, s3 = p8.stages["sampling"], p3.stages["sampling"]
    assert s3.blocks_streamed > s8.blocks_streamed and s3.prefetch >= 1
    assert s3.peak_bytes <= p3.usable_bytes
    d3 = p3.stages["vae_decode"]
    assert 0 < d3.vae_temporal_chunk <= p8.stages["vae_decode"].vae_temporal_chunk


def test_too_small_budget_names_the_smallest_that_works():
    base = preset("base")
    with pytest.raises(P.MemoryPlanError, match=r"--vram (\d+\.?\d*)") as e:
        P.plan_memory(base, 512, 768, 121, 1.2, text_params=1)
    smallest = float(e.value.args[0].split("--vram ")[1].split(",")[0])
    assert smallest > 1.2
    P.plan_memory(base, 512, 768, 121, smallest, text_params=1)  # and it does work


def test_no_fused_attention_chunks_queries_and_chunks_are_exact(backbone):
    plan = P.plan_memory(preset("base"), 512, 768, 121, 8, text_params=1, fused_attention=False)
    assert plan.stages["sampling"].attention_chunk > 0
    x, s, ctx, m = _inputs(backbone.cfg, 2, (3, 8, 8))
    with torch.no_grad():
        ref = backbone(x, s, ctx, m)
        backbone.set_attention_chunk(40)
        try:
            out = backbone(x, s, ctx, m)
        finally:
            backbone.set_attention_chunk(0)
    assert (out - ref).abs().max() <= 1e-5


def test_info_plan_cli(capsys):
    args = ["info", "--preset", "base", "--plan", "--vram", "8", "--height", "512", "--width", "768", "--frames", "121", "--json"]
    assert main(args) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["estimate"] is True and d["budget_gb"] == 8.0
    assert d["stages"]["sampling"]["where"] == "gpu" and d["stages"]["sampling"]["peak_gb"] <= d["usable_gb"]
    assert main([*args[:5], "0.5", *args[6:]]) == 2
    assert "smallest budget" in capsys.readouterr().err


# -- streaming -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prefetch,resident", [(1, 0), (2, 2), (0, 0)])
def test_streamed_sampling_equals_resident(backbone, prefetch, resident):
    x, s, ctx, m = _inputs(backbone.cfg, 2, (3, 8, 8))
    params = {n: p.clone() for n, p in backbone.state_dict().items()}
    with torch.no_grad():
        ref = backbone(x, s, ctx, m)
        with stream_blocks(backbone, "cpu", prefetch=prefetch, resident=resident) as st:
            out = backbone(x, s, ctx, m)
            out2 = backbone(x, s, ctx, m)  # the state between two forwards is clean
            assert st.block_bytes(0) > 0
    assert torch.equal(out, ref) and torch.equal(out2, ref)
    assert all(torch.equal(params[n], p) for n, p in backbone.state_dict().items())  # restored exactly


def test_streamed_lora_training_step_gives_the_same_adapter_grads(one_thread):
    torch.manual_seed(1)
    bb = HybridBackbone(preset("tiny").backbone).train().requires_grad_(False)
    torch.nn.init.normal_(bb.proj_out.weight, std=0.05)
    lora = LoRA.create(bb, 4)
    for a in lora.adapters.values():
        torch.nn.init.normal_(a.lora_B.weight, std=0.05)  # B = 0 would give A no gradient
    x, s, ctx, m = _inputs(bb.cfg, 1, (3, 8, 8))

    def step():
        lora.zero_grad(set_to_none=True)
        with apply_loras(bb, [(lora, 1.0)]):
            loss = bb(x, s, ctx, m).pow(2).mean()
            loss.backward()  # inside: checkpointed blocks re-run with the adapters
        return loss.item(), [p.grad.clone() for p in lora.parameters()]

    loss_ref, grads_ref = step()
    own = {(id(m), n): p for m in bb.blocks.modules() for n, p in m._parameters.items()}
    with stream_blocks(bb, "cpu", prefetch=1) as st:
        loss, grads = step()
        # backward's re-runs of the blocks put every weight back and let go of its copies
        assert not st._active
        assert all(p is own[id(m), n] for m in bb.blocks.modules() for n, p in m._parameters.items())
    assert loss == pytest.approx(loss_ref, rel=1e-6)
    assert len(grads) == len(grads_ref) and all(g.abs().sum() > 0 for g in grads_ref)
    for g, r in zip(grads, grads_ref, strict=True):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-7)
    assert not bb.gradient_checkpointing  # restored


def test_streaming_uses_every_weight_it_stores(backbone):
    """A stored weight (an fp8 file's) replaces the module's own in a streamed forward, a QK norm's gain too:
    the output is the resident model's with that weight."""
    x, s, ctx, m = _inputs(backbone.cfg, 1, (3, 8, 8))
    norm = backbone.blocks[0].attn1.norm_q
    new, old = torch.full_like(norm.weight, 3.0), norm.weight.detach().clone()
    with torch.no_grad():
        plain = backbone(x, s, ctx, m)
        with stream_blocks(backbone, "cpu", stored={"0.attn1.norm_q.weight": new}):
            streamed = backbone(x, s, ctx, m)
        norm.weight.copy_(new)
        try:
            ref = backbone(x, s, ctx, m)
        finally:
            norm.weight.copy_(old)
    assert torch.equal(streamed, ref) and not torch.allclose(streamed, plain)


def test_streaming_refuses_weights_that_train(backbone):
    x, s, ctx, m = _inputs(backbone.cfg, 1, (1, 4, 4))
    with stream_blocks(backbone, "cpu"), pytest.raises(RuntimeError, match="frozen"):
        backbone(x, s, ctx, m)


# -- fp8 -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("block", [0, 32])
def test_fp8_error_is_bounded(block):
    w = torch.randn(96, 80) * torch.logspace(-2, 0, 80)  # columns of very different scales
    q = quantize_fp8(w, block)
    assert q.data.dtype == FP8 and q.nbytes < w.numel() * 2
    err = (q.dequantize(torch.float32) - w).abs()
    # e4m3fn keeps 3 mantissa bits: relative rounding error <= 2^-4 for normal values; values below the
    # smallest normal (2^-6 * scale) are off by at most half of its subnormal step (2^-9 * scale)
    scale = q.scale if block == 0 else q.scale.repeat_interleave(block, 0)[:96].repeat_interleave(block, 1)[:, :80]
    assert bool((err <= w.abs() * 2**-4 + scale * 2**-10 + 1e-12).all())
    assert err.max() <= w.abs().max() * 2**-4


def test_fp8_block_scales_beat_a_tensor_scale_on_uneven_weights():
    w = torch.randn(64, 64) * 0.01
    w[0, 0] = 1e4  # one outlier: with one scale the small weights fall below fp8's subnormals
    rest = (slice(16, None), slice(None))  # the blocks away from the outlier
    e_tensor = (quantize_fp8(w, 0).dequantize() - w)[rest].pow(2).mean()
    e_block = (quantize_fp8(w, 16).dequantize() - w)[rest].pow(2).mean()
    assert e_block < e_tensor / 100


@pytest.mark.parametrize("block", [0, 16])
def test_fp8_file_round_trip_and_streamed_forward(backbone, tmp_path, block):
    sd = {k: v for k, v in backbone.state_dict().items() if k.startswith("blocks.")}  # a backbone file's keys
    path = tmp_path / "blocks_fp8.safetensors"
    save_fp8_file(path, sd, block_size=block)
    loaded, meta = load_fp8_file(path)
    assert meta["aiprod.fp8_block"] == str(block)
    fp8_keys = [k for k, v in loaded.items() if isinstance(v, Fp8Tensor)]
    assert fp8_keys and all(k.endswith("weight") and sd[k].ndim == 2 for k in fp8_keys)
    direct = quantize_fp8(sd[fp8_keys[0]], block)
    assert torch.equal(loaded[fp8_keys[0]].data.view(torch.uint8), direct.data.view(torch.uint8))
    assert torch.equal(loaded[fp8_keys[0]].scale, direct.scale)
    assert path.stat().st_size < sum(v.numel() * 2 for v in sd.values())

    x, s, ctx, m = _inputs(backbone.cfg, 2, (3, 8, 8))
    with torch.no_grad():
        ref = backbone(x, s, ctx, m)
        with stream_blocks(backbone, "cpu", stored=loaded):
            from_file = backbone(x, s, ctx, m)
        with stream_blocks(backbone, "cpu", weight_dtype="fp8", fp8_block_size=block):
            quantized = backbone(x, s, ctx, m)
    assert torch.equal(from_file, quantized)  # the file's weights are used as they are
    rel = (from_file - ref).norm() / ref.norm()
    assert 0 < rel < 0.05


# -- pipeline ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(one_thread):
    model = build_model(preset("tiny"))
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.05)  # zero-init output would hide fp8 errors
    return model


def test_generate_stream_equals_default_on_cpu(tiny_model, tmp_path):
    kw = dict(frames=5, steps=2, seed=3, progress=False)
    ref = generate(tiny_model, "a red circle", **kw)
    streamed = generate(tiny_model, "a red circle", offload="stream", **kw)
    assert torch.equal(ref, streamed)
    fp8 = generate(tiny_model, "a red circle", offload="stream", weight_dtype="fp8", **kw)
    assert 0 < (fp8 - ref).abs().mean() < 0.05


def test_out_of_memory_in_a_stage_names_the_stage_and_the_option(tiny_model):
    def oom(*_):
        raise torch.OutOfMemoryError(  # as torch words it on a CUDA device
            "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 7.63 GiB of which 1.10 GiB "
            "is free. Including non-PyTorch memory, this process has 6.51 GiB memory in use. Of the allocated memory "
            "5.76 GiB is allocated by PyTorch, and 248.00 KiB is reserved by PyTorch but unallocated. If reserved but "
            "unallocated memory is large try setting PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True")

    h = tiny_model.vae.decoder.register_forward_hook(oom)
    try:
        with pytest.raises(StageOutOfMemoryError, match=r"VAE decode.*temporal_chunk") as e:
            generate(tiny_model, "a red circle", frames=5, steps=1, progress=False)
    finally:
        h.remove()
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert "Tried to allocate 2.00 GiB" in str(e.value) and "PYTORCH_CUDA_ALLOC_CONF" not in str(e.value)
    h = tiny_model.backbone.blocks[1].register_forward_hook(oom)
    try:
        with pytest.raises(StageOutOfMemoryError, match=r"during sampling.*--vram"):
            generate(tiny_model, "a red circle", frames=5, steps=1, progress=False, offload="stream")
    finally:
        h.remove()


# -- inside ComfyUI --------------------------------------------------------------------------------------


def _comfy_module():
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "nodes" / "host.py"
    spec = importlib.util.spec_from_file_location("aiprod_nodes_comfy_test", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_memory_budget_outside_and_inside_comfyui(monkeypatch):
    import enum
    import sys
    from types import ModuleType, SimpleNamespace

    mod = _comfy_module()
    assert mod.memory_budget() == mod.MemoryBudget(None, "auto", mod.memory_budget().source)

    class VRAMState(enum.Enum):  # ComfyUI's enum, as comfy.model_management defines it
        NO_VRAM = 1
        LOW_VRAM = 2
        NORMAL_VRAM = 3

    mm = SimpleNamespace(get_torch_device=lambda: torch.device("cuda", 0), get_free_memory=lambda dev: 6 * 2**30,
                         VRAMState=VRAMState, vram_state=VRAMState.NORMAL_VRAM)
    cli_args = ModuleType("comfy.cli_args")
    cli_args.args = SimpleNamespace(reserve_vram=1.5, lowvram=False, novram=False)
    monkeypatch.setitem(sys.modules, "comfy", ModuleType("comfy"))
    monkeypatch.setitem(sys.modules, "comfy.cli_args", cli_args)
    monkeypatch.setattr(mod, "IN_COMFY", True)
    monkeypatch.setattr(mod, "mm", mm, raising=False)
    b = mod.memory_budget()
    assert (b.vram_gb, b.offload) == (4.5, "auto") and "reserve-vram 1.5" in b.source
    cli_args.args.lowvram = True
    assert mod.memory_budget().offload == "stream"
    cli_args.args.lowvram, mm.vram_state = False, VRAMState.NO_VRAM  # --novram as the memory manager reports it
    assert mod.memory_budget().offload == "stream"
    mm.get_torch_device = lambda: torch.device("cpu")  # --cpu
    assert mod.memory_budget().offload == "none"


def test_weight_dtype_follows_comfyuis_memory_manager(monkeypatch):
    """The loaders' dtype: ComfyUI's unet_dtype / vae_dtype, offered bf16 and float32; a forced fp16 or fp8 falls
    back to bf16 where the device has it. (The real server with --bf16-unet is in tests/integration.)"""
    from types import SimpleNamespace

    mod = _comfy_module()
    assert mod.weight_dtype("diffusion") == torch.float32  # outside ComfyUI
    asked = {}

    def unet_dtype(dev, supported_dtypes):
        asked["unet"] = supported_dtypes
        return forced["unet"]

    def vae_dtype(dev, allowed):
        asked["vae"] = allowed
        return forced["vae"]

    mm = SimpleNamespace(get_torch_device=lambda: torch.device("cuda", 0), unet_dtype=unet_dtype, vae_dtype=vae_dtype,
                         should_use_bf16=lambda dev: bf16[0])
    monkeypatch.setattr(mod, "IN_COMFY", True)
    monkeypatch.setattr(mod, "mm", mm, raising=False)
    forced, bf16 = {"unet": torch.bfloat16, "vae": torch.float32}, [True]
    assert (mod.weight_dtype("diffusion"), mod.weight_dtype("vae")) == (torch.bfloat16, torch.float32)
    assert asked["unet"] == asked["vae"] == [torch.bfloat16, torch.float32]
    forced["unet"] = torch.float16  # --fp16-unet: LTX-style models overflow in fp16
    assert mod.weight_dtype("diffusion") == torch.bfloat16
    forced["unet"], bf16[0] = torch.float8_e4m3fn, False  # --fp8_e4m3fn-unet on a GPU without bf16
    assert mod.weight_dtype("diffusion") == torch.float32


def test_lora_training_with_gradient_checkpointing_learns_the_same(tmp_path, one_thread):
    from aiprod_core.checkpoint import read_safetensors
    from aiprod_core.models.lora import TEXT_TARGETS, load_lora
    from aiprod_core.train.options import LoRAOptions, RunOptions, TrainOptions, TrainPlacement
    from aiprod_core.train.phases import Phase
    from aiprod_core.train.trainer import Trainer

    def train(ckpt: bool, offload: str = "none", text: bool = False):
        model = build_model(preset("tiny"))
        torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
        ph = [Phase("lora", steps=2, batch=1, warmup=1, world={"frames": 5, "height": 32, "width": 32})]
        out = tmp_path / f"ckpt{int(ckpt)}-{offload}-{int(text)}"
        opts = TrainOptions(RunOptions(out, validate=False, progress=False, checkpoint_every=0, name="l"),
                            lora=LoRAOptions(2, text_targets=TEXT_TARGETS if text else ()),
                            placement=TrainPlacement("cpu", offload, gradient_checkpointing=ckpt))
        trainer = Trainer(model, ph, opts)
        path = trainer.run()
        if text:  # the whole file: backbone and text adapters
            assert trainer.text_device.type == "cpu"
            return read_safetensors(path)[0]
        return load_lora(path, model.backbone)[0]

    plain = train(False)
    ckpt = train(True)  # checkpointed blocks re-run through the adapters in backward
    streamed = train(False, "stream")  # the trainer's streaming path (copies are no-ops on the CPU)
    for other in (ckpt, streamed):
        for (n, a), (_, b) in zip(plain.named_parameters(), other.named_parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=n)
    assert any(p.abs().sum() > 0 for n, p in ckpt.named_parameters() if "lora_B" in n)
    # with text adapters, a streamed run encodes the captions where the text encoder stays (CPU memory) and
    # trains its adapters there, through the embeddings' move to the device
    plain, streamed = train(False, text=True), train(False, "stream", text=True)
    assert plain.keys() == streamed.keys() and any(k.startswith("text_encoder.") for k in plain)
    for k in plain:
        torch.testing.assert_close(plain[k], streamed[k], rtol=1e-5, atol=1e-6, msg=k)
    with pytest.raises(ValueError, match="LoRA runs"):
        TrainOptions(RunOptions(tmp_path / "x"), placement=TrainPlacement(offload="stream"))


def test_planned_lora_training_keeps_the_planned_blocks_resident_and_learns_the_same(tmp_path, one_thread, caplog):
    """offload='auto' with a budget: the phase's clips and batch are planned, as many frozen blocks stay resident as
    fit and the rest stream (a preset whose weights outweigh its activations, so the budget splits them)."""
    from aiprod_core.models.lora import load_lora
    from aiprod_core.train.options import LoRAOptions, RunOptions, TrainOptions, TrainPlacement
    from aiprod_core.train.phases import Phase
    from aiprod_core.train.trainer import Trainer

    ph = [Phase("lora", steps=2, batch=1, warmup=1, world={"frames": 9, "height": 64, "width": 64})]

    resident = []  # blocks the running phase keeps resident, seen from inside each step

    def train(offload: str, vram_gb: float | None = None):
        model = build_model(preset("small"))
        torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
        run = RunOptions(tmp_path / f"{offload}-{vram_gb}", validate=False, progress=False, checkpoint_every=0, name="l",
                         on_step=lambda _: resident.append(trainer.streamer and trainer.streamer.resident))
        opts = TrainOptions(run, lora=LoRAOptions(2), placement=TrainPlacement(offload=offload, vram_gb=vram_gb))
        trainer = Trainer(model, ph, opts)
        return load_lora(trainer.run(), model.backbone)[0]

    def lora_plan(phase):
        spec = phase.spec
        placement = Placement.for_training(preset("small"), (spec.frames, spec.height, spec.width), phase.batch, "cpu",
                                           vram_gb=0.12, lora_rank=2, compute=torch.float32, weights=torch.float32)
        return placement.stage("lora_training")

    lp = lora_plan(ph[0])
    n = len(preset("small").backbone.pattern)
    assert 0 < lp.blocks_resident < n and lp.blocks_streamed == n - lp.blocks_resident
    plain = train("none")
    assert resident == [None, None]
    with caplog.at_level(logging.INFO, logger="aiprod_core.train.trainer"):
        planned = train("auto", 0.12)
    assert resident[2:] == [lp.blocks_resident] * 2
    assert f"{lp.blocks_resident} blocks resident, {lp.blocks_streamed} streamed" in caplog.text
    for (name, a), (_, b) in zip(plain.named_parameters(), planned.named_parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    bigger = lora_plan(Phase("x", steps=1, batch=32, world=ph[0].world))
    assert bigger.blocks_resident < lp.blocks_resident  # 32 clips a step leave room for fewer blocks
    with pytest.raises(P.MemoryPlanError, match=r"lora training needs about .* the smallest budget that works"):
        train("auto", 0.03)


def test_plan_vae_decode_shrinks_with_the_budget():
    cfg = preset("base").vae
    latent = (16, 16, 24)
    big = P.plan_vae_decode(cfg, latent, 6 * P.GiB, 2)
    small = P.plan_vae_decode(cfg, latent, P.GiB // 2, 2)
    assert big[:2] == (4, 0) and small[2] <= P.GiB // 2 < big[2]
    assert small[0] <= 2 or small[1] > 0
    assert P.plan_vae_decode(cfg, latent, 1000, 2) is None


def test_a_decode_placement_keeps_the_decode_nodes_rules():
    """The decode node's choices: 4 latent frames at a time, tiles of 48 latent px above 64x64 latents, unless the
    budget measured with the decoder in place (less 0.5 GB) plans them; a value the user gives wins."""
    cfg = preset("base").vae

    def chunks(latent, vram_gb, given=(0, 0)):
        placement = Placement.for_vae_decode(cfg, latent, "cuda", vram_gb=vram_gb, offload="auto", dtype=torch.bfloat16)
        return placement.decode_chunks(*given)

    assert chunks((16, 16, 24), None) == (4, 0) and chunks((16, 80, 80), None) == (4, 48)
    assert chunks((16, 80, 80), None, (2, 0)) == (2, 48) and chunks((16, 16, 24), None, (0, 8)) == (4, 8)
    for vram_gb in (1.0, 2.0, 6.5):
        usable = int((vram_gb - 0.5) * P.GiB)
        assert chunks((16, 16, 24), vram_gb) == P.plan_vae_decode(cfg, (16, 16, 24), usable, 2)[:2]
    assert chunks((16, 16, 24), 0.5) == (4, 0)  # nothing fits: the unplanned rule
    assert chunks((16, 16, 24), 6.0, (2, 0)) == (2, 0)
    assert vae_decode_room(cfg, (16, 16, 24), torch.bfloat16) == P.vae_decode_bytes(cfg, (16, 16, 24), 4, 0, 2)


def test_a_placement_answers_every_stage_from_one_plan():
    base = preset("base")
    placement = Placement.build(base, (121, 512, 768), "cuda", vram_gb=3, offload="auto", compute=torch.bfloat16)
    sp = placement.stage("sampling")
    where = placement.blocks("sampling", len(base.backbone.pattern))
    assert where.streamed and (where.resident, where.prefetch) == (sp.blocks_resident, sp.prefetch)
    decode = placement.stage("vae_decode")
    assert placement.decode_chunks() == (decode.vae_temporal_chunk, decode.vae_spatial_tile)
    assert placement.decode_chunks(1, 0) == (1, 0)  # the caller's own values win
    assert placement.peak_bytes == placement.plan.peak_bytes and not placement.text_on_device
    # offload "stream" keeps every block streaming, at least one ahead, whatever fits
    stream = Placement.build(base, (121, 512, 768), "cuda", vram_gb=80, offload="stream", compute=torch.bfloat16)
    assert stream.blocks("sampling", 48).resident == 0 and stream.blocks("sampling", 48).prefetch >= 1
    # nothing is planned on the CPU: "auto" leaves the backbone where it is, "stream" streams it one block ahead
    assert Placement.build(base, (121, 512, 768), "cpu").blocks("sampling", 48) is None
    cpu_fp8 = Placement.build(base, (121, 512, 768), "cpu", offload="stream", weight_dtype="fp8")
    assert cpu_fp8.blocks("sampling", 48) == BlockPlacement(True, resident=0, prefetch=1, fp8=True)
    assert cpu_fp8.decode_chunks() == (0, 0)
    with pytest.raises(ValueError, match="offload='sometimes'"):
        Placement.build(base, (121, 512, 768), "cpu", offload="sometimes")
    with pytest.raises(ValueError, match="weight_dtype='int4'"):
        Placement("cpu", "auto", "int4")


def test_the_old_engine_names_still_answer_with_a_warning(backbone):
    from aiprod_core.memory import engine

    with pytest.warns(DeprecationWarning, match="Placement"):
        plan_for = engine.plan_for
    plan = plan_for(preset("base"), 121, 512, 768, torch.device("cuda"), 8, torch.bfloat16, None, "auto", True, False)
    assert plan.to_dict() == Placement.build(preset("base"), (121, 512, 768), "cuda", vram_gb=8,
                                             compute=torch.bfloat16).plan.to_dict()
    with pytest.warns(DeprecationWarning):
        stage = engine.backbone_stage
    x, s, ctx, m = _inputs(backbone.cfg, 2, (3, 8, 8))
    with torch.no_grad(), stage(backbone, torch.device("cpu"), None, "stream"):
        out = backbone(x, s, ctx, m)
    with torch.no_grad():
        assert torch.allclose(out, backbone(x, s, ctx, m), atol=1e-6)


def test_a_stage_plan_runs_as_planned(backbone):
    x, s, ctx, m = _inputs(backbone.cfg, 2, (3, 8, 8))
    sp = P.StagePlan("sampling", "gpu", blocks_resident=2, blocks_streamed=4, prefetch=1, weight_dtype="fp32",
                     attention_chunk=50)
    placement = Placement("cpu", "auto", plan=P.MemoryPlan("tiny", {}, P.GiB, P.GiB, {"sampling": sp}))
    assert placement.blocks("sampling", 6) == BlockPlacement(True, resident=2, prefetch=1, attention_chunk=50)
    chunks = []
    h = backbone.blocks[0].attn1.register_forward_pre_hook(lambda mod, _a: chunks.append(mod.query_chunk))
    try:
        with torch.no_grad():
            ref = backbone(x, s, ctx, m)
            with placement.backbone(backbone, "sampling") as streamer:
                assert streamer.resident == 2
                planned = backbone(x, s, ctx, m)
            sp.weight_dtype = "fp8"
            with placement.backbone(backbone, "sampling"):
                fp8 = backbone(x, s, ctx, m)
    finally:
        h.remove()
    assert chunks == [0, 50, 50] and backbone.blocks[0].attn1.query_chunk == 0
    assert (planned - ref).abs().max() <= 1e-5  # query chunks change the summation order only
    assert 0 < (fp8 - ref).norm() / ref.norm() < 0.05


def test_a_vae_decodes_with_its_decoder_alone_on_the_device():
    """The plan counts the decoder's weights for decoding; the encoder must not travel with it."""
    from aiprod_core.memory.engine import on_device

    vae = CausalVideoVAE(preset("tiny").vae)
    meta = torch.device("meta")  # a second device on any machine; nothing is computed on it
    with on_device(vae, meta, ("decoder",)):
        assert {p.device.type for p in vae.decoder.parameters()} == {"meta"}
        assert {p.device.type for p in vae.encoder.parameters()} == {"cpu"}
        assert vae.latent_mean.is_meta and vae.latent_std.is_meta
    with on_device(vae, meta, ()):  # the latent upscaler: the statistics only
        assert vae.latent_mean.is_meta and {p.device.type for p in vae.parameters()} == {"cpu"}
    assert {t.device.type for t in [*vae.parameters(), *vae.buffers()]} == {"cpu"}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: Module.to swaps .data in place there")
def test_a_vae_decoder_visits_a_cuda_device_and_comes_back_as_it_was():
    from aiprod_core.memory.engine import on_device

    vae = CausalVideoVAE(preset("tiny").vae)
    before = {n: (p, p.data_ptr()) for n, p in vae.named_parameters()}
    with on_device(vae, torch.device("cuda"), ("decoder",)):
        assert {p.device.type for p in vae.decoder.parameters()} == {"cuda"}
    after = dict(vae.named_parameters())  # the same parameters, holding the same host memory again
    assert all(after[n] is p and p.device.type == "cpu" and p.data_ptr() == ptr for n, (p, ptr) in before.items())


def test_a_stages_out_of_memory_error_stays_one_for_hosts_and_outer_stages():
    """ComfyUI unloads its models on torch's out-of-memory error, so ours is one too; an outer stage keeps the
    inner stage's name."""
    from aiprod_core.memory.engine import stage_guard

    match = r"during VAE decode: CUDA out of memory\. Tried to allocate 1\.00 GiB\. "
    with pytest.raises(StageOutOfMemoryError, match=match) as e, stage_guard("sampling"), stage_guard("vae_decode"):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.00 GiB. GPU 0 has a total capacity of 8 GiB")
    assert isinstance(e.value, torch.cuda.OutOfMemoryError)


def test_the_command_grows_cuda_allocations_in_place_unless_told_otherwise(monkeypatch, capsys):
    import os
    import sys

    monkeypatch.delenv("PYTORCH_CUDA_ALLOC_CONF", raising=False)
    main(["info", "--preset", "tiny"])
    expected = "expandable_segments:True" if sys.platform == "linux" else None
    assert os.environ.get("PYTORCH_CUDA_ALLOC_CONF") == expected
    monkeypatch.setenv("PYTORCH_CUDA_ALLOC_CONF", "backend:cudaMallocAsync")  # the user's own setting stays
    main(["info", "--preset", "tiny"])
    assert os.environ["PYTORCH_CUDA_ALLOC_CONF"] == "backend:cudaMallocAsync"


def test_upscale_on_a_model_without_an_upscaler_that_does_not_fit_names_the_smallest_budget():
    """upscale=True makes the upscaling stage required; a model without an upscaler has no such stage, so a budget too
    small for the rest raises the plan's error, not a KeyError for the missing stage."""
    import dataclasses

    no_upscaler = dataclasses.replace(preset("base"), upscaler=None)
    with pytest.raises(P.MemoryPlanError, match=r"smallest budget that works is --vram (\d+\.?\d*)") as e:
        P.plan_memory(no_upscaler, 512, 768, 121, 1.2, upscale=True, text_params=1)
    smallest = float(e.value.args[0].split("--vram ")[1].split(",")[0])
    plan = P.plan_memory(no_upscaler, 512, 768, 121, smallest, upscale=True, text_params=1)
    assert "upscaling" not in plan.stages and plan.stages["sampling"].where == "gpu"
