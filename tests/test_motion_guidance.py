"""MotionGuidance: the seven motion-guidance settings as one value, checked once; generate() takes it, and the
loose keywords it replaced still work for one release, with a warning."""

import dataclasses
import warnings

import pytest
import torch

from aiprod_core.conditioning import MotionGuidance
from aiprod_core.flow.camera import camera_flow
from aiprod_core.model import load_model
from aiprod_core.pipeline import generate


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.mark.parametrize(("settings", "message"), [
    (dict(flow_strength=1.5), r"flow strength=1.5 must be in 0..1"),
    (dict(flow_start=0.6, flow_end=0.2), r"guidance step range \(0.6, 0.2\)"),
    (dict(flow_end=1.2), r"guidance step range \(0.0, 1.2\)"),
    (dict(flow_pull=-0.1), r"flow_pull=-0.1; expected 0..1"),
    (dict(warp_guidance=2.0), r"warp_guidance=2.0; expected 0..1"),
    (dict(warp_end=1.5), r"guidance step range \(0.0, 1.5\)"),
    (dict(flow_strength=float("nan")), r"flow strength=nan"),
])
def test_each_setting_is_checked_when_the_value_is_made(settings, message):
    with pytest.raises(ValueError, match=message):
        MotionGuidance(**settings)


def test_a_flow_that_is_no_tensor_is_refused():
    with pytest.raises(TypeError, match=r"FLOW tensor \[N,H,W,2\]"):
        MotionGuidance(flow="pan-left")


def test_the_value_is_frozen_and_reports_its_settings():
    flow = camera_flow("pan-left", 17, 64, 64)
    m = MotionGuidance(flow=flow, flow_end=0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.flow_end = 0.9
    assert m.with_flow(None).flow is None and m.with_flow(None).flow_end == 0.5 and m.flow is flow
    assert m.settings() == {"flow_strength": 1.0, "flow_start": 0.0, "flow_end": 0.5, "flow_pull": 1.0,
                            "warp_guidance": 1.0, "warp_end": 0.75}


def test_generate_old_motion_keywords_give_the_same_clip_with_a_warning(shipped):
    flow = camera_flow("pan-right", 9, 64, 64)
    kw = dict(frames=9, steps=3, seed=4, progress=False)
    new = generate(shipped, "a red circle", motion=MotionGuidance(flow=flow, flow_end=0.5, warp_guidance=0.5), **kw)
    with pytest.warns(DeprecationWarning, match=r"motion=MotionGuidance"):
        old = generate(shipped, "a red circle", flow=flow, flow_end=0.5, warp_guidance=0.5, **kw)
    assert torch.equal(new, old)
    plain = generate(shipped, "a red circle", **kw)
    assert not torch.equal(new, plain)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new form warns about nothing
        assert torch.equal(generate(shipped, "a red circle", motion=None, **kw), plain)


def test_generate_refuses_motion_given_twice_or_unknown_keywords(shipped):
    flow = camera_flow("pan-right", 9, 64, 64)
    with pytest.raises(TypeError, match="give the motion guidance once"):
        generate(shipped, "x", frames=9, steps=1, motion=MotionGuidance(flow=flow), flow_end=0.5, progress=False)
    with pytest.raises(TypeError, match="unexpected keyword argument 'flow_speed'"):
        generate(shipped, "x", frames=9, steps=1, flow_speed=2.0, progress=False)
    with pytest.raises(TypeError, match="expected MotionGuidance"):
        generate(shipped, "x", frames=9, steps=1, motion=flow, progress=False)
