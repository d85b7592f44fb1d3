"""Block streaming: a model's blocks live in (pinned) CPU memory and visit the GPU one at a time.

While block i computes on the current CUDA stream, blocks i+1 .. i+prefetch are copied host-to-device
on a side stream (as diffusers' group offloading with `use_stream`, kijai's `prefetch_blocks`, musubi's
block swap do); an event makes block i+1 wait for its own copy only. With prefetch 0 the copy runs on the
compute stream itself, so copy and compute take turns (synchronous offload). The host never runs more
than one block ahead of the GPU: a side-stream copy is only reused once the GPU is done with it, so a
host far ahead would keep many blocks' weights alive at once; at most prefetch + 2 streamed blocks are on
the device (one with prefetch 0, where the compute stream's own order frees each copy for the next).

Weights are only ever copied host-to-device: streamed blocks must be frozen (inference, or LoRA training
whose adapters live outside the blocks and stay on the GPU). Blocks that train (a hybrid's fresh conv blocks) are
`keep`: left out of streaming and moved to the device whole, like the parts outside the blocks. For training, each
streamed block runs under gradient checkpointing, so backward re-runs the block and fetches its weights again
instead of keeping them alive.

The swap happens in forward hooks, per layer: each module's parameters are replaced by the device copy
(upcast from fp8 to the compute dtype when stored in fp8) just before that module runs and put back
right after, so module paths, state-dict keys and LoRA hooks stay exactly as without streaming. On the
CPU the same code runs and the copy is a no-op.

A model's blocks are the ModuleList it registers under one of BLOCK_LISTS: `blocks` (AIPROD's backbone),
`transformer_blocks` (LTX-2's video transformer, the released name that LoRA files address) or `layers`
(Gemma 3's decoder layers, as transformers names them).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from .fp8 import Fp8Tensor, is_fp8_candidate, quantize_fp8

Stored = Tensor | Fp8Tensor

BLOCK_LISTS = ("blocks", "transformer_blocks", "layers")


def block_list(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """(name, ModuleList) of the blocks a model registers under one of BLOCK_LISTS."""
    for name in BLOCK_LISTS:
        blocks = model._modules.get(name)
        if isinstance(blocks, nn.ModuleList):
            return name, blocks
    children = ", ".join(model._modules) or "none"
    raise ValueError(f"{type(model).__name__} has no block list to stream: expected a ModuleList child named one of "
                     f"{BLOCK_LISTS}, found children {children}")


def _materialize(s: Stored, dtype: torch.dtype) -> Tensor:
    return s.dequantize(dtype) if isinstance(s, Fp8Tensor) else s.to(dtype)


def _nbytes(s: Stored) -> int:
    return s.nbytes if isinstance(s, Fp8Tensor) else s.numel() * s.element_size()


class BlockStreamer:
    """Runs `blocks` on `device` with their weights streamed from the host, or kept resident.

    resident: the first `resident` blocks are kept on the device (no copies); the rest stream.
    prefetch: how many blocks ahead are copied while one computes (0 = synchronous offload).
    weight_dtype: "fp8" stores Linear weights in fp8 e4m3fn (`fp8_block_size` > 0: block scales);
    None keeps them as they are. compute_dtype: what layers compute in (default: each weight's dtype).
    stored: fp8 weights as they are (Fp8Tensor, e.g. read from a file) keyed `<block index>.<path in block>` or
    `<list name>.<index>.<path>` (a whole model's state dict: `blocks.3.attn1.to_q.weight`,
    `transformer_blocks.3.attn1.to_q.weight`), used as they are instead of quantising the module's own weights.
    list_name: the blocks' name in the model (see BLOCK_LISTS), for those keys.
    keep: indices of blocks left alone (no copies, no hooks): blocks that train, which the caller puts on the device.
    """

    def __init__(
        self,
        blocks: nn.ModuleList,
        device: torch.device | str,
        *,
        resident: int = 0,
        prefetch: int = 1,
        weight_dtype: str | None = None,
        compute_dtype: torch.dtype | None = None,
        fp8_block_size: int = 0,
        stored: dict[str, Stored] | None = None,
        root: nn.Module | None = None,
        list_name: str = "blocks",
        keep: frozenset[int] = frozenset(),
    ):
        if prefetch < 0:
            raise ValueError(f"prefetch={prefetch} must be >= 0 (0 = copy each block when it is needed)")
        if weight_dtype not in (None, "fp8"):
            raise ValueError(f"weight_dtype={weight_dtype!r}; expected None (as loaded) or 'fp8'")
        self.device = torch.device(device)
        self.prefetch = prefetch
        self.n = len(blocks)
        self.resident = max(0, min(resident, self.n))
        cuda = self.device.type == "cuda"
        self.copy_stream = torch.cuda.Stream(self.device) if cuda and prefetch > 0 else None
        pin = cuda and torch.cuda.is_available()
        # per block: the slots (module, name, original parameter, compute dtype) and their stores
        self.slots: list[list[tuple[nn.Module, str, nn.Parameter, torch.dtype]]] = []
        self.stores: list[list[Stored]] = []
        self.handles = []
        for i, block in enumerate(blocks):
            slots, stores = [], []
            if i in keep:  # nothing to copy or swap: _acquire of a slot-less block changes nothing
                self.slots.append(slots)
                self.stores.append(stores)
                continue
            on_device = i < self.resident
            for mod_name, mod in block.named_modules():
                for pname, p in list(mod._parameters.items()):
                    if p is None:
                        continue
                    path = f"{mod_name}.{pname}" if mod_name else pname
                    key = next((k for k in (f"{i}.{path}", f"{list_name}.{i}.{path}") if stored and k in stored), None)
                    if key is not None:
                        s = stored[key]
                    elif weight_dtype == "fp8" and is_fp8_candidate(path, p):
                        s = quantize_fp8(p, fp8_block_size)
                    else:
                        s = p.detach()
                    if on_device:
                        s = s.to(self.device)
                    elif pin and not (isinstance(s, Tensor) and s.is_pinned()):
                        s = s.pin_memory()
                        if isinstance(s, Tensor) and s.dtype == p.dtype and s.shape == p.shape:
                            p.data = s  # pinned in place: no second host copy
                    slots.append((mod, pname, p, compute_dtype or p.dtype))
                    stores.append(s)
            self.slots.append(slots)
            self.stores.append(stores)
            self._hook(i, block)
        if root is not None:
            self.handles.append(root.register_forward_pre_hook(lambda *_: self._reset()))
        self._inflight: dict[int, tuple[object, list[Stored]]] = {}
        self._active: dict[int, list[Stored]] = {}
        self._entered: deque = deque()  # CUDA events: where the compute stream entered recent streamed blocks
        self._last = -1

    # -- bookkeeping ---------------------------------------------------------------------------------
    def block_bytes(self, i: int) -> int:
        """Bytes of block i's stored weights (what one copy moves)."""
        return sum(_nbytes(s) for s in self.stores[i])

    def device_bytes(self) -> int:
        """Bytes the resident blocks keep on the device."""
        return sum(self.block_bytes(i) for i in range(self.resident))

    def _reset(self) -> None:
        self._last = -1

    def _hook(self, i: int, block: nn.Module) -> None:
        by_module: dict[nn.Module, list[int]] = {}
        for j, (mod, *_rest) in enumerate(self.slots[i]):
            by_module.setdefault(mod, []).append(j)
        own = by_module.pop(block, [])

        def enter(_m, _args):
            self._acquire(i)
            self._swap_in(i, own)

        def leave(_m, _args, _out):
            self._swap_out(i, own)
            self._active.pop(i, None)

        self.handles.append(block.register_forward_pre_hook(enter))
        self.handles.append(block.register_forward_hook(leave))
        for mod, js in by_module.items():
            self.handles.append(mod.register_forward_pre_hook(lambda _m, _a, js=js: self._swap_in(i, js)))
            self.handles.append(mod.register_forward_hook(lambda _m, _a, _o, js=js: self._swap_out(i, js)))

    # -- copies --------------------------------------------------------------------------------------
    def _issue(self, i: int) -> None:
        """Start copying block i to the device (on the side stream when there is one)."""
        if not (self.resident <= i < self.n) or i in self._inflight or not self.stores[i]:  # none: a kept block
            return
        if self.copy_stream is None:  # the CPU, or prefetch 0: in order on the compute stream
            self._inflight[i] = (None, [s.to(self.device, non_blocking=True) for s in self.stores[i]])
            return
        with torch.cuda.stream(self.copy_stream):
            dev = [s.to(self.device, non_blocking=True) for s in self.stores[i]]
            event = torch.cuda.Event()
            event.record(self.copy_stream)
        self._inflight[i] = (event, dev)

    def _acquire(self, i: int) -> None:
        slots = self.slots[i]
        if torch.is_grad_enabled() and any(p.requires_grad for _, _, p, _ in slots):
            # gradients would land on the device copies, never on the parameters themselves
            raise RuntimeError(
                f"block {i} runs from copies of its weights but they require grad; weights are only copied "
                "host-to-device, so the blocks must be frozen: train a LoRA (adapters stay on the device) "
                "or use offload='none'"
            )
        step = 1 if i > self._last else -1  # backward re-runs blocks in reverse order, the last one first
        self._last = i
        if i < self.resident:
            self._active[i] = self.stores[i]
            return
        if self.copy_stream is not None:
            # entering block i means the blocks before it are done; wait for the GPU to enter the previous
            # streamed block, so the host stays one block ahead (backward: one block's re-run and gradients)
            entered = torch.cuda.Event()
            entered.record(torch.cuda.current_stream(self.device))
            self._entered.append(entered)
            while len(self._entered) > 1:
                self._entered.popleft().synchronize()
        self._issue(i)
        wrap = step > 0 and not torch.is_grad_enabled()  # sampling: the next step starts again at block 0
        for k in range(1, self.prefetch + 1):
            j = i + step * k
            if wrap and j >= self.n:
                j = self.resident + (j - self.n)
            self._issue(j)
        event, dev = self._inflight.pop(i)
        if event is not None:
            current = torch.cuda.current_stream(self.device)
            current.wait_event(event)
            for s in dev:
                s.record_stream(current)  # the allocator must not reuse these before compute is done
        self._active[i] = dev

    def _swap_in(self, i: int, js: list[int]) -> None:
        dev = self._active[i]
        for j in js:
            mod, name, _p, dtype = self.slots[i][j]
            mod._parameters[name] = _materialize(dev[j], dtype)

    def _swap_out(self, i: int, js: list[int]) -> None:
        for j in js:
            mod, name, p, _dtype = self.slots[i][j]
            mod._parameters[name] = p

    def remove(self) -> None:
        """Detach: hooks removed, every module holds its own parameters again."""
        for h in self.handles:
            h.remove()
        self.handles.clear()
        for slots in self.slots:
            for mod, name, p, _ in slots:
                mod._parameters[name] = p
        self._inflight.clear()
        self._active.clear()
        self._entered.clear()


@contextmanager
def stream_blocks(
    backbone: nn.Module,
    device: torch.device | str,
    *,
    resident: int = 0,
    prefetch: int = 1,
    weight_dtype: str | None = None,
    compute_dtype: torch.dtype | None = None,
    fp8_block_size: int = 0,
    stored: dict[str, Stored] | None = None,
    keep: frozenset[int] = frozenset(),
) -> Iterator[BlockStreamer]:
    """Run a model with a block list (see BLOCK_LISTS) on `device`: everything but the blocks moved there, blocks
    streamed but those in `keep`, which are moved there whole.

    Inside, `backbone(...)` works as usual (sampling, or LoRA training with gradient checkpointing turned
    on for the blocks); on exit the non-block parts go back where they were and the hooks are removed.
    """
    name, blocks = block_list(backbone)
    first = next((p for n, p in backbone.named_parameters() if not n.startswith(f"{name}.")), None)
    home = first.device if first is not None else torch.device("cpu")
    setattr(backbone, name, nn.ModuleList(blocks[i] for i in sorted(keep)))  # move the rest without the blocks
    try:
        backbone.to(device)
    finally:
        setattr(backbone, name, blocks)
    ckpt = getattr(backbone, "gradient_checkpointing", None)
    streamer = BlockStreamer(
        blocks, device, resident=resident, prefetch=prefetch, weight_dtype=weight_dtype,
        compute_dtype=compute_dtype, fp8_block_size=fp8_block_size, stored=stored, root=backbone, list_name=name,
        keep=keep,
    )
    if ckpt is not None and streamer.resident < streamer.n:
        backbone.gradient_checkpointing = True  # backward re-fetches streamed weights instead of keeping them
    try:
        yield streamer
    finally:
        streamer.remove()
        if ckpt is not None:
            backbone.gradient_checkpointing = ckpt
        setattr(backbone, name, nn.ModuleList(blocks[i] for i in sorted(keep)))
        try:
            backbone.to(home)
        finally:
            setattr(backbone, name, blocks)
