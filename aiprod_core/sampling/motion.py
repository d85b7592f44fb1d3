"""Motion guidance settings: one value that carries a guidance flow and how it steers the sampling loop.

The loop (sampling.loop) reads it; the CLI, the sampler node and the evaluations build it, and it is checked
once, here, when it is made. `aiprod_core.conditioning` offers it beside the other inputs of the loop.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch

from .noise_guidance import check_step_range

Flow = torch.Tensor | list[torch.Tensor | None] | tuple[torch.Tensor | None, ...]


@dataclass(frozen=True)
class MotionGuidance:
    """How a flow steers the motion of a sampled clip.

    flow: the clip's pixel FLOW [N,H,W,2] (any size: resized to the clip), or one per batch item (None: that
      item unguided); None: no motion guidance, and the other settings change nothing.
    flow_strength: 0..1, how much of the noise is warped along the flow (flow.warp.warp_noise; 0 = plain noise).
    flow_start, flow_end: the steps with flow_start <= i / steps < flow_end (after the first) pull the running
      noise estimate back onto the warped noise (sampling.noise_guidance); the initial noise is the warped noise
      when flow_start == 0.
    flow_pull: 0..1, the fraction of the way each of those steps pulls.
    warp_guidance: 0..1, how far the steps with i / steps < warp_end move the clean-latent estimate along the
      flow (sampling.warp_guidance; 0 = off).
    """

    flow: Flow | None = None
    flow_strength: float = 1.0
    flow_start: float = 0.0
    flow_end: float = 0.0
    flow_pull: float = 1.0
    warp_guidance: float = 1.0
    warp_end: float = 0.75

    def __post_init__(self) -> None:
        if not 0.0 <= self.flow_strength <= 1.0:
            raise ValueError(f"flow strength={self.flow_strength} must be in 0..1 (0 = plain noise, 1 = fully warped)")
        check_step_range(self.flow_start, self.flow_end)
        if not 0.0 <= self.flow_pull <= 1.0:
            raise ValueError(f"flow_pull={self.flow_pull}; expected 0..1 (the fraction of the way each guided step "
                             "pulls the noise)")
        if not 0.0 <= self.warp_guidance <= 1.0:
            raise ValueError(f"warp_guidance={self.warp_guidance}; expected 0..1 (how far each frame is pulled onto "
                             "the warped one)")
        check_step_range(0.0, self.warp_end)
        if self.flow is not None and not isinstance(self.flow, (torch.Tensor, list, tuple)):
            raise TypeError(f"flow is a {type(self.flow).__name__}; expected a FLOW tensor [N,H,W,2], one per batch "
                            "item in a list, or None")

    def with_flow(self, flow: Flow | None) -> MotionGuidance:
        """The same settings steering along another flow (None: unguided)."""
        return replace(self, flow=flow)

    def settings(self) -> dict[str, float]:
        """The six numbers without the flow, for a report."""
        out = asdict(replace(self, flow=None))
        del out["flow"]
        return out
