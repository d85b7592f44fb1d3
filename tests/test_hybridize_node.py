"""The Hybridize node, run as ComfyUI runs it: real distillation of the pack's tiny model, a real file in
models/diffusion_models, the student sampled, an interrupt that keeps the state and a resume that finishes."""

import dataclasses
import json

import pytest
import torch
import torch.nn.functional as F

from aiprod_core.model import DEFAULT_MODEL, LTX2, WEIGHTS_DIR, load_model, read_model_config
from aiprod_core.train.hybridize import build_student, replaced_blocks

STEPS = (6, 6)


class InterruptProcessingError(Exception):
    """What ComfyUI raises from its progress hook after POST /interrupt."""


@pytest.fixture(scope="module")
def loaded(pack, one_thread, node):
    model, vae, te, _ = node("AIPRODCheckpointLoader").load("tiny.safetensors")
    return pack[0], model, vae, te


def hybridize(node, model, vae, te, name, pattern=None, steps=STEPS, **kw):
    pattern = pattern or node("AIPRODHybridize").INPUT_TYPES()["required"]["pattern"][1]["default"]
    return node("AIPRODHybridize").hybridize(model, vae, te, pattern, steps[0], steps[1], 2e-3, 1, name, True, **kw)


def run_folder(pkg, name):
    return pkg.nodes.host.output_dir() / "aiprod-hybridize" / name


def test_the_default_pattern_is_one_the_shipped_model_can_be_distilled_to(node):
    default = node("AIPRODHybridize").INPUT_TYPES()["required"]["pattern"][1]["default"]
    shipped = read_model_config(WEIGHTS_DIR / DEFAULT_MODEL).backbone.pattern
    assert len(replaced_blocks(shipped, default)) == 1  # one more attention block turned into a conv block
    assert default.count("C") == shipped.count("C") + 1


def test_the_student_matches_the_teacher_better_and_samples(loaded, pack, node):
    pkg, model, vae, te = loaded
    student, name, curve = hybridize(node, model, vae, te, "student")["result"]
    path = pack[1] / "diffusion_models" / name
    assert name == "student.safetensors" and path.is_file()
    assert name in pkg.NODE_CLASS_MAPPINGS["AIPRODCheckpointLoader"].INPUT_TYPES()["required"]["ckpt_name"][0]
    assert curve.ndim == 4 and curve.shape[0] == 1 and curve.shape[-1] == 3 and curve.std() > 0  # a drawn plot
    log = [json.loads(r) for r in (run_folder(pkg, "student") / "log.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in log] == list(range(sum(STEPS) + 1))

    # the written student, against the teacher, on inputs the run never saw: closer than the untrained student
    written = load_model(path)
    pattern = written.config.backbone.pattern
    assert pattern == student.config.backbone.pattern != model.config.backbone.pattern
    untrained, _ = build_student(load_model(pack[1] / "diffusion_models" / "tiny.safetensors"), pattern, seed=1)
    gen = torch.Generator().manual_seed(11)
    x0 = torch.randn(2, model.in_channels, 3, 4, 4, generator=gen)
    sigma = torch.tensor([0.3, 0.7])
    x = (1 - sigma.view(-1, 1, 1, 1, 1)) * x0 + sigma.view(-1, 1, 1, 1, 1) * torch.randn(x0.shape, generator=gen)
    context, mask = te.encode(["a red circle moving to the right", "a blue square moving up"])
    with torch.no_grad():
        target = model.backbone(x, sigma, context, mask)
        before = F.mse_loss(untrained.backbone(x, sigma, context, mask), target).item()
        after = F.mse_loss(written.backbone(x, sigma, context, mask), target).item()
        returned = student.backbone(x, sigma, context, mask)
    print(f"velocity error vs the teacher on unseen inputs: {before:.5f} untrained -> {after:.5f} distilled")
    assert after < 0.7 * before
    torch.testing.assert_close(returned, written.backbone(x, sigma, context, mask))

    # the sampler takes the student as it takes any AIPROD model
    (cond,) = node("AIPRODTextEncode").encode(te, "a red circle moving to the right")["result"]
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 32, 32, 5, 1)
    out = node("AIPRODSampler").sample(student, cond, cond, latent, 0, 2, 1.0, "euler", 0.0, 1.0)[0]["samples"]
    assert out.shape == latent["samples"].shape and torch.isfinite(out).all()


def test_interrupt_keeps_the_state_and_resume_finishes_as_an_uninterrupted_run(loaded, pack, node, monkeypatch):
    pkg, model, vae, te = loaded
    hybridize(node, model, vae, te, "whole")
    calls = {"n": 0}

    def interrupt_at_eighth_step():
        calls["n"] += 1
        if calls["n"] == 8:  # in stage 2, with stage 1 done
            raise InterruptProcessingError

    monkeypatch.setattr(pkg.nodes.host, "check_interrupt", interrupt_at_eighth_step)
    with pytest.raises(InterruptProcessingError):
        hybridize(node, model, vae, te, "split")
    run = run_folder(pkg, "split")
    assert (run / "state.safetensors").is_file() and (run / "loss.png").is_file()
    assert not (pack[1] / "diffusion_models" / "split.safetensors").exists()
    assert max(json.loads(r)["global_step"] for r in (run / "log.jsonl").read_text().splitlines()) == 8
    monkeypatch.undo()
    hybridize(node, model, vae, te, "split")  # queued again: resumes after step 8
    whole, split = (load_model(pack[1] / "diffusion_models" / f"{n}.safetensors").backbone.state_dict()
                    for n in ("whole", "split"))
    for k in whole:
        torch.testing.assert_close(split[k], whole[k], rtol=1e-4, atol=1e-6)


def test_what_cannot_be_hybridized_is_refused_in_one_line(loaded, node):
    _, model, vae, te = loaded
    ltx2 = dataclasses.replace(model, family=LTX2, source="/models/ltx-2-19b-dev.safetensors")
    with pytest.raises(ValueError, match=r"ltx-2-19b-dev.safetensors is an LTX-2 model, which this node does not distil.*aiprod hybridize") as e:
        hybridize(node, ltx2, vae, te, "refused")
    assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match="has 3 blocks but the teacher has"):
        hybridize(node, model, vae, te, "short", pattern="ACA")
    with pytest.raises(ValueError, match="letters, digits"):
        hybridize(node, model, vae, te, "../escape")
