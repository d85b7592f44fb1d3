import copy
import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from aiprod_core.checkpoint import load_checkpoint, read_safetensors
from aiprod_core.config import preset
from aiprod_core.model import build_model, load_model
from aiprod_core.models.lora import load_lora
from aiprod_core.train.data import WorldData
from aiprod_core.train.folder import VideoFolderData
from aiprod_core.train.objectives import flow_loss
from aiprod_core.train.options import LoRAOptions, RunOptions, TrainOptions, TrainPlacement
from aiprod_core.train.phases import Phase, load_phases, save_phases, tiny_recipe
from aiprod_core.train.trainer import Trainer
from aiprod_core.video_io import write_video


def phases(batch=2):
    return [
        Phase("vae", stage="vae", steps=2, batch=batch, warmup=1, world={"frames": 5, "height": 32, "width": 32}),
        Phase("still", steps=3, batch=batch, warmup=1, world={"frames": 5, "height": 32, "width": 32, "motions": ["still"]}),
        Phase("moving", steps=2, batch=batch, warmup=1, world={"frames": 9, "height": 32, "width": 32}),
    ]


def opts(out, lora=None, placement=None, **run):
    return TrainOptions(RunOptions(out, validate=False, progress=False, checkpoint_every=0, **run), lora=lora,
                        placement=placement or TrainPlacement())


def weights(path):
    return read_safetensors(path)[0]


def test_resume_reaches_the_same_weights(tmp_path):
    straight = Trainer(build_model(preset("tiny")), phases(), opts(tmp_path / "a")).run()
    assert Trainer(build_model(preset("tiny")), phases(), opts(tmp_path / "b", stop_after=3)).run() is None
    state = json.loads(read_safetensors(tmp_path / "b" / "state.safetensors")[1]["aiprod.train_state"])
    assert state["position"] == {"phase": 1, "step": 1, "global_step": 3}
    # a fresh process: a new model object, the state file, nothing else
    resumed = Trainer(build_model(preset("tiny"), seed=123), phases(), opts(tmp_path / "b")).run(resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys()
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-6
    rows = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert [r["global_step"] for r in rows] == sorted({r["global_step"] for r in rows})  # no duplicated rows


def test_what_a_run_draws_depends_on_its_seed_alone(tmp_path):
    """The attribute heads start from the run's seed, whatever the process drew before (loading a model file, say)."""
    models = [build_model(preset("tiny")) for _ in range(2)]
    heads = []
    for i, m in enumerate(models):
        torch.rand(3 + i)
        heads.append(Trainer(m, phases(), opts(tmp_path / str(i))).heads.state_dict())
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])


def test_a_pooled_phase_encodes_each_scene_once_and_resumes_to_the_same_weights(tmp_path):
    def ph():
        return [Phase("pooled", steps=6, batch=2, warmup=1, world={"frames": 5, "height": 32, "width": 32}, world_pool=3)]

    model, data, encoded = build_model(preset("tiny")), WorldData(0), []
    encode = model.vae.encode

    def counting(video, *a, **kw):  # the real encode, counted
        encoded.append(video.shape[0])
        return encode(video, *a, **kw)

    model.vae.encode = counting
    straight = Trainer(model, ph(), opts(tmp_path / "a"), data=data).run()
    assert sorted(data.latents) == [0, 1, 2] and sum(encoded) == 3  # 12 samples of 3 scenes, each encoded once
    frames = {s.pool_key: s.video for s in (WorldData(0).sample(ph()[0], 0, st, i) for st in range(6) for i in range(2))}
    with torch.no_grad():
        for key, z in data.latents.items():
            assert torch.allclose(z, encode(frames[key][None])[0].float(), atol=1e-5)
    # a resumed run starts with an empty pool and encodes what it needs again
    assert Trainer(build_model(preset("tiny")), ph(), opts(tmp_path / "b", stop_after=3)).run() is None
    resumed = Trainer(build_model(preset("tiny"), seed=1), ph(), opts(tmp_path / "b")).run(resume=True)
    a, b = weights(straight), weights(resumed)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-5


class InterruptingWorld(WorldData):
    """The synthetic world, but the user presses Ctrl-C when a given step's data is being made."""

    def __init__(self, at_phase, at_step):
        super().__init__(0)
        self.at = (at_phase, at_step)

    def sample(self, phase, phase_index, step, item):
        if (phase_index, step) == self.at:
            raise KeyboardInterrupt
        return super().sample(phase, phase_index, step, item)


def test_ctrl_c_saves_a_state_that_resumes(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        Trainer(build_model(preset("tiny")), phases(), opts(tmp_path / "c"), data=InterruptingWorld(1, 2)).run()
    state = json.loads(read_safetensors(tmp_path / "c" / "state.safetensors")[1]["aiprod.train_state"])
    assert state["position"] == {"phase": 1, "step": 2, "global_step": 4}
    resumed = Trainer(build_model(preset("tiny")), phases(), opts(tmp_path / "c")).run(resume=True)
    straight = Trainer(build_model(preset("tiny")), phases(), opts(tmp_path / "d")).run()
    a, b = weights(straight), weights(resumed)
    assert max((a[k].float() - b[k].float()).abs().max().item() for k in a) < 1e-6


def test_full_run_writes_model_log_curve_and_validation(tmp_path):
    ph = [*phases()[:2], Phase("up", stage="upscaler", steps=1, batch=2, warmup=1,
                               world={"frames": 5, "height": 64, "width": 64})]
    o = TrainOptions(RunOptions(tmp_path, progress=False, validation_steps=2, checkpoint_every=2))
    out = Trainer(build_model(preset("tiny")), ph, o).run()
    config, parts = load_checkpoint(out, require=("backbone", "vae", "text_encoder", "upscaler"))
    assert config == preset("tiny")
    vae = parts["vae"]
    assert not torch.equal(vae["latent_std"], torch.ones_like(vae["latent_std"]))  # fitted after the VAE phase
    assert (tmp_path / "loss.png").stat().st_size > 1000
    assert len(list((tmp_path / "validation" / "2-still").glob("*.mp4"))) == 4
    assert (tmp_path / "validation" / "1-vae" / "reconstruction.mp4").is_file()
    model = load_model(out)
    assert model.trained


def test_decoder_stage_trains_the_decoder_alone(tmp_path):
    """A decoder phase (a new shape in the VAE) keeps the encoder and its latent statistics, so the latent
    space a trained backbone works in does not move."""
    model = build_model(preset("tiny"))
    before = {k: v.clone() for k, v in model.vae.state_dict().items()}
    ph = [Phase("dec", stage="decoder", steps=2, batch=2, warmup=1,
                world={"frames": 5, "height": 32, "width": 32, "shapes": ["star"], "sizes": ["large"]})]
    out = Trainer(model, ph, opts(tmp_path)).run()
    after = load_checkpoint(out)[1]["vae"]
    changed = {k for k in before if not torch.equal(before[k], after[k].to(before[k].dtype))}
    assert changed and all(k.startswith("decoder.") for k in changed), changed
    assert any(k.startswith("decoder.") and k.endswith("weight") for k in changed)


def test_a_phase_can_keep_the_text_encoder_frozen(tmp_path):
    model = build_model(preset("tiny"))
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)  # a zero head passes no gradient back
    text, backbone = (copy.deepcopy(m.state_dict()) for m in (model.text_encoder, model.backbone))
    ph = [Phase("cam", steps=2, batch=2, warmup=1, train_text_encoder=False,
                world={"frames": 5, "height": 32, "width": 32, "motions": ["still"], "camera": 1.0})]
    out = Trainer(model, ph, opts(tmp_path)).run()
    parts = load_checkpoint(out)[1]
    assert all(torch.equal(v, parts["text_encoder"][k].to(v.dtype)) for k, v in text.items())
    assert any(not torch.equal(v, parts["backbone"][k].to(v.dtype)) for k, v in backbone.items())


def test_first_frame_conditioning_shows_frame_0_clean_and_scores_the_rest():
    x0, noise = torch.randn(2, 4, 3, 2, 2), torch.randn(2, 4, 3, 2, 2)
    sigma = torch.tensor([0.9, 0.5])
    seen = []

    def backbone(x, s, ctx, m, spoil=0.0):
        seen.append(x)
        v = noise - x0
        v[:, :, 0] += spoil  # a wrong answer on frame 0 only
        return v + 0.1

    def loss(generate, spoil):
        return flow_loss(lambda *a: backbone(*a, spoil=spoil), x0, None, None, sigma, noise, generate)

    keep_first = torch.ones(2, 1, 3, 1, 1)
    keep_first[0, :, 0] = 0  # item 0 conditioned on its first frame, item 1 not
    loss(keep_first, 0.0)
    assert torch.equal(seen[-1][0, :, 0], x0[0, :, 0]) and not torch.equal(seen[-1][1, :, 0], x0[1, :, 0])
    # frame 0 of item 0 is not scored, that of item 1 is; each scored position counts once
    assert torch.isclose(loss(keep_first, 0.0), torch.tensor(0.01))
    assert loss(keep_first, 5.0) > 1 and torch.isclose(loss(torch.ones(2, 1, 3, 1, 1), 0.0), loss(None, 0.0))
    spoiled_first_only = torch.ones(2, 1, 3, 1, 1)
    spoiled_first_only[:, :, 0] = 0
    assert torch.isclose(loss(spoiled_first_only, 5.0), torch.tensor(0.01))
    with pytest.raises(ValueError, match="first_frame=2"):
        Phase("bad", first_frame=2)


def test_a_phase_trains_with_first_frames_given(tmp_path):
    model = build_model(preset("tiny"))
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    world = {"frames": 5, "height": 32, "width": 32}
    runs = {}
    for share in (0.0, 1.0):  # the same model, data and noise; only the first frames differ
        t = Trainer(copy.deepcopy(model), [Phase("p", steps=2, batch=2, warmup=1, first_frame=share, world=world)],
                    opts(tmp_path / str(share), log_every=1))
        t.run()
        runs[share] = [r["flow"] for r in t.history]
    assert all(a == a for a in runs[1.0]) and runs[1.0] != runs[0.0]


def test_phase_files_round_trip_and_errors(tmp_path):
    p = tmp_path / "phases.json"
    save_phases(p, tiny_recipe())
    assert load_phases(p) == tiny_recipe()
    p.write_text(json.dumps([{"name": "x", "stepz": 3}]))
    with pytest.raises(ValueError, match=r"unknown keys \['stepz'\]"):
        load_phases(p)
    with pytest.raises(ValueError, match="frames=10 is not 1 \\+ 4k"):
        Phase("bad", world={"frames": 10})
    with pytest.raises(ValueError, match="stage='audio'"):
        Phase("bad", stage="audio")
    # every recipe loads: the shipped model's chain and lora.json, and the research runs'
    root = Path(__file__).parent.parent
    recipes = sorted([*(root / "recipes").glob("*.json"), *(root / "research" / "recipes").glob("*.json")])
    assert len(recipes) >= 20 and all(load_phases(r) for r in recipes)


def star_folder(tmp_path, n=4):
    import dataclasses

    from aiprod_core.world import EASY, make_clip

    spec = dataclasses.replace(EASY, shapes=("star",), frames=9, height=48, width=64)
    folder = tmp_path / "stars"
    folder.mkdir()
    captions = ["a red star moving left", "une étoile bleue qui monte", "一颗黄色的星星向右移动"]
    for i in range(n):
        clip = make_clip(i, spec, language="en")
        write_video(folder / f"{i}.mp4", clip.frames, fps=8)
        (folder / f"{i}.txt").write_text(captions[i % 3], encoding="utf-8")
    (folder / "broken.mp4").write_bytes(b"\x00not a video")
    (folder / "broken.txt").write_text("broken")
    short = make_clip(99, dataclasses.replace(spec, frames=1))
    write_video(folder / "short.mp4", short.frames, fps=8)
    (folder / "short.txt").write_text("a single frame")
    (folder / "nocaption.mp4").write_bytes((folder / "0.mp4").read_bytes())
    return folder


def test_lora_on_a_folder_of_clips(tmp_path):
    folder = star_folder(tmp_path)
    model = build_model(preset("tiny"))
    # a LoRA adapts a trained model; a fresh one has a zero output layer that passes no gradient back
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    data = VideoFolderData(folder, model, cache_dir=tmp_path / "cache")
    assert len(data.clips) == 5 and [os.path.basename(p) for p, _ in data.skipped] == ["broken.mp4"]
    ph = [Phase("lora", steps=3, batch=2, warmup=1, world={"frames": 9, "height": 32, "width": 32})]
    out = Trainer(model, ph, opts(tmp_path / "run", lora=LoRAOptions(4), name="star"), data=data).run()
    assert out.name == "star.safetensors"
    assert all(torch.equal(before[k], v) for k, v in model.backbone.state_dict().items())  # base frozen
    lora, meta = load_lora(out, model.backbone)
    assert meta["aiprod.rank"] == "4" and any(p.endswith("attn1.to_q") for p in lora.paths)
    assert any(p.abs().sum() > 0 for n, p in lora.named_parameters() if "lora_B" in n)  # it learned something
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) >= 1  # latents cached on disk
    # the same clips with their first frames given (an image-to-video LoRA): cached latents, other adapters
    ph_i2v = [Phase("lora", steps=3, batch=2, warmup=1, first_frame=1.0, world=ph[0].world)]
    out_i2v = Trainer(model, ph_i2v, opts(tmp_path / "run_i2v", lora=LoRAOptions(4), name="star"), data=data).run()
    lora_i2v, _ = load_lora(out_i2v, model.backbone)
    assert any(not torch.equal(a, b) for a, b in zip(lora.parameters(), lora_i2v.parameters()))


def test_a_planned_lora_run_encodes_every_clip_before_placing_the_backbone(tmp_path):
    """On a GPU the encoder should have the memory to itself: a run that plans memory (here on the CPU, with a
    budget) caches every clip's latent before the first step, where one step of batch 1 alone would use one."""
    model = build_model(preset("tiny"))
    torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)
    data = VideoFolderData(star_folder(tmp_path, n=6), model, cache_dir=tmp_path / "cache")
    ph = [Phase("lora", steps=1, batch=1, warmup=0, world={"frames": 9, "height": 32, "width": 32})]
    Trainer(model, ph, opts(tmp_path / "plain", lora=LoRAOptions(2)), data=data).run()
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1  # unplanned: encoded when drawn
    Trainer(model, ph, opts(tmp_path / "planned", lora=LoRAOptions(2), placement=TrainPlacement(offload="auto", vram_gb=1.0)), data=data).run()
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 6  # the 6 clips (one bucket), before the step


def test_world_only_phase_option_on_a_users_clips_is_named(tmp_path, caplog):
    model = build_model(preset("tiny"))
    data = VideoFolderData(star_folder(tmp_path), model, cache_dir=tmp_path / "cache")
    ph = [Phase("words", steps=1, world={"frames": 9, "height": 32, "width": 32}, caption_distractors=0.5)]
    with caplog.at_level("WARNING"):
        Trainer(model, ph, opts(tmp_path / "run", lora=LoRAOptions(2)), data=data)
    assert "phase words: caption_distractors applies to the synthetic world's captions only" in caplog.text


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no usable clips"):
        VideoFolderData(tmp_path / "empty", build_model(preset("tiny")))


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    p = tmp_path / "phases.json"
    save_phases(p, phases(batch=4)[:2])
    common = ["--phases", str(p), "--preset", "tiny", "--no-validation", "-q", "--checkpoint-every", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "aiprod_core.cli", "train", "--out", str(tmp_path / "one"), *common],
                   check=True, env=env, capture_output=True)
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                        "-m", "aiprod_core.cli", "train", "--out", str(tmp_path / "two"), *common],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    a = weights(tmp_path / "one" / "aiprod-v2-tiny.safetensors")
    b = weights(tmp_path / "two" / "aiprod-v2-tiny.safetensors")
    diff = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert diff < 1e-4, diff


def test_steps_scale_keeps_each_phases_share_and_warmup_shape():
    from aiprod_core.train.phases import scale_steps

    scaled = scale_steps(load_phases(os.path.join(os.path.dirname(__file__), "..", "research", "recipes", "ablation-curriculum.json")), 0.05)
    assert [p.steps for p in scaled] == [50, 125, 75, 60, 50]
    assert [p.warmup for p in scaled] == [2, 2, 2, 2, 2]  # 50 * 0.05 = 2.5, rounded to even
    with pytest.raises(ValueError, match="must be positive"):
        scale_steps(tiny_recipe(), 0)


def test_bf16_precision_on_the_cpu_trains_in_bf16(tmp_path):
    ph = [Phase("still", steps=2, batch=2, warmup=1, world={"frames": 5, "height": 32, "width": 32, "motions": ["still"]})]
    outs = {}
    for precision in ("fp32", "bf16"):
        model = build_model(preset("tiny"))
        torch.nn.init.normal_(model.backbone.proj_out.weight, std=0.02)  # a zero head passes no gradient back
        trainer = Trainer(model, ph, opts(tmp_path / precision, placement=TrainPlacement(precision=precision)))
        assert trainer.autocast == (precision == "bf16")
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message="Mismatch dtype")  # the QK norms take the fused kernel
            outs[precision] = load_checkpoint(trainer.run())[1]["backbone"]
    diff = max((outs["fp32"][k].float() - outs["bf16"][k].float()).abs().max().item() for k in outs["fp32"])
    assert 0 < diff < 1e-2  # the same step, at bf16's precision
    with pytest.raises(ValueError, match="precision"):
        Trainer(build_model(preset("tiny")), ph, opts(tmp_path / "x", placement=TrainPlacement(precision="fp16")))


def test_a_run_folder_continues_only_the_run_it_holds(tmp_path):
    """`aiprod train` and the LoRA trainer node get their folder ready alike: a run continues when asked and, given
    settings, only a run started with the same ones; a run that starts over leaves nothing of the one before."""
    from aiprod_core.train.run import RunFolder, run_name

    folder = RunFolder(tmp_path / "run")

    def earlier_run():
        for f in (folder.state, folder.log, folder.curve):
            f.write_text("from the run before")

    assert not folder.prepare(True, {"rank": 2}) and folder.path.is_dir()  # nothing there yet: settings recorded
    earlier_run()
    assert folder.prepare(True, {"rank": 2}) and folder.state.read_text() == "from the run before"
    assert not folder.prepare(True, {"rank": 4})  # other settings: starts over
    assert not any(f.exists() for f in (folder.state, folder.log, folder.curve))
    assert json.loads(folder.settings_file.read_text()) == {"rank": 4}
    earlier_run()
    assert folder.prepare(True) and folder.state.is_file()  # no settings to compare (the CLI): as asked
    assert not folder.prepare(False) and not folder.log.exists()
    folder.append_log({"global_step": 1, "loss": 1.0})
    folder.append_log({"global_step": 2, "loss": 0.5})
    folder.trim_log(1)
    assert folder.log_rows() == [{"global_step": 1, "loss": 1.0}]
    assert run_name(" star_v2.1 ") == "star_v2.1"
    for bad in ("../x", ".hidden", "a b", ""):
        with pytest.raises(ValueError, match="letters, digits"):
            run_name(bad)


def test_a_lora_state_holds_the_adapters_and_an_older_one_with_the_whole_model_resumes(tmp_path):
    """A LoRA run's state holds its adapters and optimizer only; one written when states held the frozen modules
    too resumes all the same, to the LoRA an uninterrupted run reaches."""
    from aiprod_core.checkpoint import save_safetensors_atomic

    def model():
        m = build_model(preset("tiny"))
        torch.nn.init.normal_(m.backbone.proj_out.weight, std=0.02)  # a zero head passes no gradient back
        return m

    ph = phases()[1:]
    straight = Trainer(model(), ph, opts(tmp_path / "a", lora=LoRAOptions(2))).run()
    m = model()
    assert Trainer(m, ph, opts(tmp_path / "b", lora=LoRAOptions(2), stop_after=2)).run() is None
    tensors, meta = read_safetensors(tmp_path / "b" / "state.safetensors")
    assert {k.split(".", 1)[0] for k in tensors} == {"lora", "optim"}
    frozen = {f"backbone.{k}": v for k, v in m.backbone.state_dict().items()}
    save_safetensors_atomic({**tensors, **frozen}, tmp_path / "b" / "state.safetensors", meta)  # the older layout
    resumed = Trainer(model(), ph, opts(tmp_path / "b", lora=LoRAOptions(2))).run(resume=True)
    a, b = weights(straight), weights(resumed)
    assert a.keys() == b.keys() and max((a[k] - b[k]).abs().max().item() for k in a) < 1e-6
