"""An exponential moving average of the trained weights (Polyak averaging), the result of a phase that asks for it.

The decay warms up as diffusers' EMAModel does, `min(decay, (1 + n) / (10 + n))` after n updates, so the average
spans about the last n / 9 steps until it reaches `decay` (0.999: about the last 1,000). Averaging the last
stretch of a run damps the step-to-step noise of the weights that the learning rate leaves in them.
"""

from __future__ import annotations

import torch


class WeightAverage:
    def __init__(self, params: dict[str, torch.nn.Parameter], decay: float,
                 state: dict[str, torch.Tensor] | None = None):
        self.params, self.decay = params, decay
        if state is not None and set(state) != set(params):
            raise ValueError(f"the saved weight average holds {len(state)} tensors for {len(params)} trained ones; "
                             "it was written for another recipe: resume with the phases it was started with")
        src = state if state is not None else {k: p.detach() for k, p in params.items()}
        self.average = {k: src[k].to(p.device, p.dtype, copy=True) for k, p in params.items()}

    def decay_at(self, n: int) -> float:
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, n: int) -> None:
        """After the n-th update of this phase (0-based), so that a resumed phase continues the same sequence."""
        w = 1.0 - self.decay_at(n)
        for k, p in self.params.items():
            self.average[k].lerp_(p.detach(), w)

    @torch.no_grad()
    def copy_to_params(self) -> None:
        for k, p in self.params.items():
            p.copy_(self.average[k])
