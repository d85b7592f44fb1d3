import json

import pytest

from aiprod_core.config import PRESETS, BackboneConfig, ConfigError, ModelConfig, VAEConfig, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_round_trip_through_json(name):
    cfg = preset(name)
    again = ModelConfig.from_json(cfg.to_json())
    assert again == cfg
    assert json.loads(again.to_json()) == json.loads(cfg.to_json())


def test_base_preset_is_the_design():
    b = preset("base").backbone
    assert len(b.pattern) == 48 and b.attention_blocks == 30 and b.conv_blocks == 18
    assert b.width == 1536
    v = preset("base").vae
    assert (v.spatial_compression, v.temporal_compression, v.latent_channels) == (32, 8, 128)
    t = preset("tiny").vae
    assert (t.spatial_compression, t.temporal_compression, t.latent_channels) == (8, 4, 16)


def test_latent_shape_and_frame_rule():
    v = preset("tiny").vae
    assert v.latent_shape(17, 64, 64) == (16, 5, 8, 8)
    assert v.latent_shape(1, 8, 16) == (16, 1, 1, 2)
    with pytest.raises(ConfigError, match=r"frames=16 is not 1 \+ 4k for this VAE; use 17 or 13"):
        v.check_clip(16, 64, 64)
    with pytest.raises(ConfigError, match=r"height=60 is not a multiple of 8 for this VAE; use 56 or 64"):
        v.check_clip(17, 60, 64)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"backbone": {"pattern": "AXC"}}, "pattern='AXC'"),
        ({"backbone": {"pattern": "CCC"}}, "no 'A' block"),
        ({"backbone": {"width": 130}}, "not divisible by heads"),
        ({"backbone": {"in_channels": 8}}, "backbone.in_channels=8 differs from vae.latent_channels=16"),
        ({"vae": {"down": ["all"]}}, "one entry per level"),
        ({"vae": {"down": ["all", "up"]}}, "'all', 'space' or 'time'"),
        ({"text": {"kind": "gpt"}}, "text.kind='gpt'"),
        ({"backbone": {"colour": 1}}, "unknown keys ['colour'] in config.backbone"),
        ({"frames": 10}, "frames=10 is not 1 + 4k"),
    ],
)
def test_invalid_configs_say_what_to_do(change, message):
    d = preset("tiny").to_dict()
    for k, v in change.items():
        if isinstance(v, dict):
            d[k].update(v)
        else:
            d[k] = v
    with pytest.raises(ConfigError) as e:
        ModelConfig.from_dict(d)
    assert message in str(e.value)


def test_bad_json_and_unknown_preset():
    with pytest.raises(ConfigError, match="not valid JSON"):
        ModelConfig.from_json("{nope")
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")


def test_derived_properties():
    assert VAEConfig(patch_size=4, channels=(1, 1, 1, 1, 1), down=("space", "time", "all", "all")).spatial_compression == 32
    assert BackboneConfig(width=1536, heads=24).head_dim == 64
