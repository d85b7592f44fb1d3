"""The LTX-2 video transformer's configuration, read from the `transformer` section of a released file's config.

Released single files keep the whole model's configuration as JSON in the safetensors metadata key `config`:
`{"transformer": {...}, "vae": {...}, "audio_vae": {...}, "vocoder": {...}, ...}`. The transformer section uses
diffusers-style names (`num_attention_heads`, `attention_head_dim`, `cross_attention_dim`, ...). Like
ltx-core's `LTXModelConfigurator`, keys the code does not read must hold the one value the code implements; any
other value is refused by name instead of being run wrongly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

ROPE_TYPES = ("split", "interleaved")

# Keys whose value is fixed by the architecture this code implements: (key, value when the key is present).
# An absent key means the default, which is the value listed.
_FIXED: tuple[tuple[str, Any], ...] = (
    ("dropout", 0.0),
    ("attention_bias", True),
    ("activation_fn", "gelu-approximate"),
    ("num_embeds_ada_norm", 1000),
    ("only_cross_attention", False),
    ("cross_attention_norm", True),
    ("double_self_attention", False),
    ("upcast_attention", False),
    ("standardization_norm", "rms_norm"),
    ("norm_elementwise_affine", False),
    ("qk_norm", "rms_norm"),
    ("positional_embedding_type", "rope"),
    ("use_middle_indices_grid", True),
)


class LTX2ConfigError(ValueError):
    """A configuration this code cannot run as Lightricks' reference would."""


@dataclass(frozen=True)
class LTX2TransformerConfig:
    """The video stream of LTX-2's transformer. Defaults are the released 19B model (LTX-2.0)."""

    num_layers: int = 48
    num_attention_heads: int = 32
    attention_head_dim: int = 128
    in_channels: int = 128
    out_channels: int = 128
    cross_attention_dim: int = 4096  # width of the text states the blocks attend to
    # Width of the connector's output that the caption projection (Linear-GELU-Linear) lifts to the model width.
    # None: no projection in the transformer (LTX-2.3 and later project inside the text encoder).
    caption_channels: int | None = 3840
    norm_eps: float = 1e-6
    positional_embedding_theta: float = 10000.0
    positional_embedding_max_pos: tuple[int, int, int] = field(default=(20, 2048, 2048))
    timestep_scale_multiplier: float = 1000.0
    rope_type: str = "split"
    # The frequency grid is computed in float64 before rounding to float32 ("frequencies_precision": "float64")
    double_precision_rope: bool = True
    apply_gated_attention: bool = False  # LTX-2.3: per-head gates on every attention output
    cross_attention_adaln: bool = False  # LTX-2.3: AdaLN on the text cross-attention, with a prompt timestep
    # AIPROD's hybrid of it (`aiprod hybridize`): one letter a block, A the released block, C a 3D-conv block in
    # its place; None: every block A, as released. Written to a hybrid's file as `aiprod_pattern`.
    pattern: str | None = None

    @property
    def width(self) -> int:
        return self.num_attention_heads * self.attention_head_dim

    @property
    def adaln_rows(self) -> int:
        """Modulation vectors per block: shift/scale/gate for self-attention and MLP, plus three for the
        cross-attention when it is modulated."""
        return 9 if self.cross_attention_adaln else 6

    def validate(self) -> None:
        if self.rope_type not in ROPE_TYPES:
            raise LTX2ConfigError(f"rope_type {self.rope_type!r} is not one of {ROPE_TYPES}")
        if len(self.positional_embedding_max_pos) != 3:
            raise LTX2ConfigError(
                f"positional_embedding_max_pos {list(self.positional_embedding_max_pos)} must have 3 values "
                "(time, height, width) for the video stream"
            )
        if min(self.num_layers, self.num_attention_heads, self.attention_head_dim) < 1:
            raise LTX2ConfigError(f"num_layers, num_attention_heads and attention_head_dim must be >= 1: {self}")
        if self.attention_head_dim % 2:
            raise LTX2ConfigError(f"attention_head_dim={self.attention_head_dim} must be even for rotary embedding")
        if self.pattern is not None and (len(self.pattern) != self.num_layers or set(self.pattern) - {"A", "C"}
                                         or "A" not in self.pattern):
            raise LTX2ConfigError(f"aiprod_pattern {self.pattern!r} must give each of the {self.num_layers} blocks a "
                                  "letter, A (attention) or C (3D conv), with at least one A")

    @property
    def block_kinds(self) -> str:
        """One letter a block: A attention, C 3D conv."""
        return self.pattern or "A" * self.num_layers

    def to_dict(self) -> dict[str, Any]:
        """The transformer section in the released files' names (the inverse of `from_metadata`)."""
        d = asdict(self)
        if d.pop("pattern") is not None:
            d["aiprod_pattern"] = self.pattern
        d["positional_embedding_max_pos"] = list(self.positional_embedding_max_pos)
        d["frequencies_precision"] = "float64" if d.pop("double_precision_rope") else "float32"
        d["caption_proj_before_connector"] = self.caption_channels is None
        if self.caption_channels is None:
            del d["caption_channels"]
        return d

    @classmethod
    def from_metadata(cls, config: dict[str, Any]) -> LTX2TransformerConfig:
        """Build from the parsed `config` metadata of a released file (the dict holding a `transformer` key)."""
        if "transformer" not in config or not isinstance(config["transformer"], dict):
            raise LTX2ConfigError(
                f"the file's config has sections {sorted(config)}; expected a 'transformer' section "
                "(LTX-2 single files keep the transformer's settings there)"
            )
        t = config["transformer"]
        for key, value in _FIXED:
            if key in t and t[key] != value:
                raise LTX2ConfigError(
                    f"transformer config {key}={t[key]!r} is not supported; this implementation of LTX-2 "
                    f"needs {key}={value!r} (the value of every released LTX-2 model)"
                )
        proj_in_encoder = bool(t.get("caption_proj_before_connector", False))
        if not proj_in_encoder and "caption_channels" not in t:
            raise LTX2ConfigError(
                "transformer config has no caption_channels and caption_proj_before_connector is false; "
                "expected caption_channels (e.g. 3840 for LTX-2 19B)"
            )
        precision = t.get("frequencies_precision", "float32")
        if precision not in ("float32", "float64", False):
            raise LTX2ConfigError(f"frequencies_precision {precision!r} is not 'float32' or 'float64'")
        cfg = cls(
            num_layers=int(t.get("num_layers", 48)),
            num_attention_heads=int(t.get("num_attention_heads", 32)),
            attention_head_dim=int(t.get("attention_head_dim", 128)),
            in_channels=int(t.get("in_channels", 128)),
            out_channels=int(t.get("out_channels", 128)),
            cross_attention_dim=int(t.get("cross_attention_dim", 4096)),
            caption_channels=None if proj_in_encoder else int(t["caption_channels"]),
            norm_eps=float(t.get("norm_eps", 1e-6)),
            positional_embedding_theta=float(t.get("positional_embedding_theta", 10000.0)),
            positional_embedding_max_pos=tuple(int(v) for v in t.get("positional_embedding_max_pos", (20, 2048, 2048))),
            timestep_scale_multiplier=float(t.get("timestep_scale_multiplier", 1000)),
            rope_type=str(t.get("rope_type", "interleaved")),
            double_precision_rope=precision == "float64",
            apply_gated_attention=bool(t.get("apply_gated_attention", False)),
            cross_attention_adaln=bool(t.get("cross_attention_adaln", False)),
            pattern=t.get("aiprod_pattern"),
        )
        cfg.validate()
        return cfg
