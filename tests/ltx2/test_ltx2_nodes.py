"""Every AIPROD node on an LTX-2 model, run as ComfyUI runs them but without ComfyUI: tiny random files in the
released layouts (ltx2_model_files.py) put in the model folders under the names the templates use, and what the
nodes make compared with what the library's pipeline makes from the same files."""

from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.model import LTX2, load_model
from aiprod_core.pipeline import generate

pytest.importorskip("ltx_core", reason="the files are written from ltx-core 1.0.0's modules")
from ltx2_model_files import GEMMA_DIM, write_model
from text_files import tiny_gemma3, train_spm, write_hf_folder

CKPT = "ltx-2-19b-dev-fp8.safetensors"
GEMMA = "gemma_3_12B_it_fp8_scaled.safetensors"
UPSCALER = "ltx-2-spatial-upscaler-x2-1.0.safetensors"
SPLIT = {"ckpt_name": "ltx-2-19b-dev_transformer_only.safetensors", "vae": "ltx-2-19b-dev_video_vae.safetensors",
         "text_projection": "ltx-2-19b-text_projection.safetensors"}
PROMPT = "a red ball rolls to the left"


@pytest.fixture(scope="module")
def models(pack, tmp_path_factory):
    """Model folders of their own holding the LTX-2 files where ComfyUI users keep them."""
    layouts = write_model(tmp_path_factory.mktemp("ltx2_files"))
    root = tmp_path_factory.mktemp("ltx2_models")
    s, sp = layouts.single, layouts.split
    for src, folder, name in ((s["path"], "checkpoints", CKPT), (s["text_encoder"], "text_encoders", GEMMA),
                              (s["upscaler"], "latent_upscale_models", UPSCALER),
                              (sp["path"], "diffusion_models", SPLIT["ckpt_name"]), (sp["vae"], "vae", SPLIT["vae"]),
                              (sp["text_projection"], "text_encoders", SPLIT["text_projection"])):
        (root / folder).mkdir(exist_ok=True)
        shutil.copy(src, root / folder / name)
    (root / "loras").mkdir()
    mp = pytest.MonkeyPatch()
    mp.setenv("AIPROD_MODELS_DIR", str(root))
    yield root
    mp.undo()


@pytest.fixture(scope="module")
def loaded(models, node):
    return node("AIPRODLTX2Loader").load(CKPT, GEMMA, "none", "none", UPSCALER)


@pytest.fixture(scope="module")
def library(models):
    """The same files through the library, as the CLI loads them."""
    return load_model(models / "checkpoints" / CKPT, text_encoder=models / "text_encoders" / GEMMA,
                      upscaler=models / "latent_upscale_models" / UPSCALER)


def prompts(node, text_encoder):
    pos = node("AIPRODTextEncode").encode(text_encoder, PROMPT)["result"][0]
    neg = node("AIPRODTextEncode").encode(text_encoder, "")["result"][0]
    return pos, neg


def decoded(node, vae, latent):
    return node("AIPRODVAEDecode").decode(vae, latent, 0, 0)["result"][0]


def test_the_loader_lists_ltx2_files_where_comfyui_users_keep_them(models, pack):
    hf = models / "text_encoders" / "gemma-3-12b-it"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    save_file({"x": torch.zeros(1)}, str(hf / "model-00001-of-00005.safetensors"))
    inputs = pack[0].NODE_CLASS_MAPPINGS["AIPRODLTX2Loader"].INPUT_TYPES()
    names = inputs["required"]["ckpt_name"][0]
    assert CKPT in names and SPLIT["ckpt_name"] in names, "checkpoints/ and diffusion_models/ both"
    assert "aiprod-v2-tiny.safetensors" not in names, "only LTX-2's files"
    assert {GEMMA, SPLIT["text_projection"], "gemma-3-12b-it/"} <= set(inputs["required"]["text_encoder"][0])
    opt = inputs["optional"]
    assert opt["vae"][0] == ["none", SPLIT["vae"]] and opt["upscaler"][0] == ["none", UPSCALER]
    assert all(spec[1]["default"] == "none" for spec in opt.values()), "the single file needs none of them"
    shutil.rmtree(hf)


def test_single_and_split_files_load_the_model_the_library_loads(loaded, library, node):
    model, vae, text_encoder, _ = loaded
    assert model.family is LTX2 and model.in_channels == 8 and model.text_dim == text_encoder.dim
    want = library.backbone.state_dict()
    assert all(torch.equal(v, want[k]) for k, v in model.backbone.state_dict().items())
    split = node("AIPRODLTX2Loader").load(SPLIT["ckpt_name"], GEMMA, SPLIT["vae"], SPLIT["text_projection"], "none")
    assert split[3] is None, "no upscaler named, none given"
    ctx = text_encoder.encode([PROMPT])[0]
    assert torch.allclose(split[2].encode([PROMPT])[0], ctx), "the split text projection reads prompts the same way"
    assert all(torch.equal(a, b) for a, b in zip(split[1].state_dict().values(), vae.state_dict().values(), strict=True))


def test_gemma_from_a_hugging_face_folder_in_text_encoders(models, loaded, node):
    write_hf_folder(models / "text_encoders" / "google" / "gemma-3-12b-it",
                    tiny_gemma3(3, hidden_size=GEMMA_DIM), train_spm())  # the single file's Gemma
    try:
        assert "google/gemma-3-12b-it/" in node("AIPRODLTX2Loader").INPUT_TYPES()["required"]["text_encoder"][0]
        assert type(node("AIPRODLTX2Loader")).VALIDATE_INPUTS(CKPT, "google/gemma-3-12b-it/") is True
        text_encoder = node("AIPRODLTX2Loader").load(CKPT, "google/gemma-3-12b-it/")[2]
        got, want = text_encoder.encode([PROMPT])[0], loaded[2].encode([PROMPT])[0]
        assert (got - want).abs().max() / want.abs().max() < 1e-5, "the same Gemma as ComfyUI's single file"
        with pytest.raises(ValueError, match="no absolute path"):
            node("AIPRODLTX2Loader").load(CKPT, "../text_encoders/google/gemma-3-12b-it/")
    finally:
        shutil.rmtree(models / "text_encoders" / "google")


def test_text_to_video_is_the_pipelines_clip(loaded, library, node):
    model, vae, text_encoder, _ = loaded
    pos, neg = prompts(node, text_encoder)
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    assert latent["samples"].shape == (1, 8, 2, 2, 2)
    (with_stg,) = node("AIPRODSpatioTemporalGuidance").apply(model, 1.0)
    (out,) = node("AIPRODSampler").sample(with_stg, pos, neg, latent, 3, 2, 3.0, "euler", 0.0, 1.0)
    assert out["fps"] == 24.0, "LTX-2's frame rate, which the transformer places frames by"
    frames = decoded(node, vae, out)
    want = generate(library, PROMPT, frames=9, height=64, width=64, steps=2, cfg=3.0, stg=1.0, seed=3,
                    progress=False)
    other = generate(library, PROMPT, frames=9, height=64, width=64, steps=2, cfg=3.0, stg=1.0, seed=4,
                     progress=False)
    err = (frames - want).abs().max().item()
    print(f"node chain vs generate: max abs error {err:.2e} (another seed: {(other - want).abs().max():.2f})")
    assert frames.shape == want.shape == (9, 64, 64, 3) and err < 1e-4


def test_upscale_and_refine(loaded, library, node):
    model, vae, text_encoder, upscaler = loaded
    pos, neg = prompts(node, text_encoder)
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    (out,) = node("AIPRODSampler").sample(model, pos, neg, latent, 1, 2, 3.0, "euler", 0.0, 1.0)
    (big,) = node("AIPRODLatentUpscale").upscale(upscaler, vae, out)
    assert torch.allclose(big["samples"], LTX2.upsample(library, out["samples"]), atol=1e-6), "the pipeline's upscale"
    sampler = node("AIPRODSampler")
    (refined,) = sampler.sample(model, pos, neg, big, 1, 2, 3.0, "euler", 0.0, 0.4)
    (anew,) = sampler.sample(model, pos, neg, big, 1, 2, 3.0, "euler", 0.0, 1.0)
    assert refined["samples"].shape == (1, 8, 2, 4, 4)
    kept, ignored = ((x["samples"] - big["samples"]).abs().mean().item() for x in (refined, anew))
    print(f"mean change from the upscaled latent: denoise 0.4 {kept:.3f}, denoise 1 {ignored:.3f}")
    assert kept < ignored / 2, "denoise < 1 continues from the upscaled latent"
    assert decoded(node, vae, refined).shape == (9, 128, 128, 3)


def test_image_to_video_is_the_pipelines_clip(loaded, library, node):
    model, vae, text_encoder, _ = loaded
    pos, neg = prompts(node, text_encoder)
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(5))
    (latent,) = node("AIPRODImageToVideo").make(vae, image, 64, 64, 9, 1, 1.0)
    (out,) = node("AIPRODSampler").sample(model, pos, neg, latent, 2, 2, 1.0, "euler", 0.0, 1.0)
    want = generate(library, PROMPT, frames=9, height=64, width=64, steps=2, cfg=1.0, seed=2, image=image,
                    progress=False)
    assert torch.equal(out["samples"][:, :, :1], latent["samples"][:, :, :1]), "the first latent frame is kept"
    assert (decoded(node, vae, out) - want).abs().max() < 1e-4


def test_extension_continues_the_clip(loaded, node):
    model, vae, text_encoder, _ = loaded
    pos, neg = prompts(node, text_encoder)
    clip = torch.rand(17, 64, 64, 3, generator=torch.Generator().manual_seed(6))
    latent, resized, overlap = node("AIPRODExtendVideo").make(vae, clip, 64, 64, 17, 1, 0, 1.0)
    assert overlap == 1 and latent["noise_mask"][0, 0, :, 0, 0].tolist() == [0.0, 1.0, 1.0]
    (out,) = node("AIPRODSampler").sample(model, pos, neg, latent, 2, 2, 1.0, "euler", 0.0, 1.0)
    assert torch.equal(out["samples"][:, :, :1], latent["samples"][:, :, :1])
    (joined,) = node("AIPRODJoinClips").join(resized, decoded(node, vae, out), overlap)
    assert joined.shape == (17 + 17 - 1, 64, 64, 3) and torch.equal(joined[:17], resized)


def test_camera_motion_and_warp_guidance_steer_the_sampler(loaded, node):
    model, vae, text_encoder, _ = loaded
    pos, neg = prompts(node, text_encoder)
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    (flow,) = node("AIPRODCameraMotion").make("pan-left", 4.0, 9, 64, 64)
    sampler = node("AIPRODSampler")
    plain = sampler.sample(model, pos, neg, latent, 1, 2, 1.0, "euler", 0.0, 1.0)[0]["samples"]
    guided = sampler.sample(model, pos, neg, latent, 1, 2, 1.0, "euler", 0.0, 1.0, flow, 1.0, 0.0, 0.0, 1.0,
                            0.75)[0]["samples"]
    off = sampler.sample(model, pos, neg, latent, 1, 2, 1.0, "euler", 0.0, 1.0, flow, 0.0, 0.0, 0.0, 0.0,
                         0.75)[0]["samples"]
    assert torch.equal(off, plain), "guidance at strength 0 is the plain run"
    assert (guided - plain).abs().max() > 1e-3


def test_an_ltx2_lora_in_the_published_layout_applies(loaded, models, node):
    model, vae, text_encoder, _ = loaded
    g = torch.Generator().manual_seed(1)
    layer = "transformer_blocks.0.attn1.to_q"
    w = model.backbone.get_submodule(layer).weight
    save_file({f"diffusion_model.{layer}.lora_A.weight": torch.randn(4, w.shape[1], generator=g),
               f"diffusion_model.{layer}.lora_B.weight": torch.randn(w.shape[0], 4, generator=g),
               f"diffusion_model.{layer}.alpha": torch.tensor(4.0)}, str(models / "loras" / "ltx2_style.safetensors"))
    adapted, te = node("AIPRODLoraLoader").load(model, "ltx2_style.safetensors", 1.0, text_encoder)
    assert te is text_encoder, "LTX-2's LoRAs leave Gemma as it is"
    off, _ = node("AIPRODLoraLoader").load(model, "ltx2_style.safetensors", 0.0, text_encoder)
    pos, neg = prompts(node, text_encoder)
    (latent,) = node("AIPRODEmptyLatentVideo").make(vae, 64, 64, 9, 1)
    sampler = node("AIPRODSampler")
    plain, with_lora, zero = (sampler.sample(m, pos, neg, latent, 1, 2, 1.0, "euler", 0.0, 1.0)[0]["samples"]
                              for m in (model, adapted, off))
    assert (with_lora - plain).abs().max() > 1e-4 and torch.allclose(zero, plain, atol=1e-6)
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in adapted.backbone.state_dict().items())


def test_the_trainer_trains_a_lora_for_an_ltx2_model_and_refuses_what_it_cannot(loaded, node):
    model, vae, text_encoder, _ = loaded
    trainer = node("AIPRODLoraTrainer")
    (dataset,) = node("AIPRODVideoDataset").load("synthetic world", "", "star", 9, 64, 64)
    out = trainer.train(model, vae, text_encoder, dataset, 2, 2, 1e-3, 0, "ltx2_lora", False)
    adapted, _, name, _ = out["result"]
    assert name == "ltx2_lora.safetensors" and len(adapted.loras) == len(model.loras) + 1
    assert any(".attn1.to_out.0" in p for p in adapted.loras[-1][0].paths)  # LTX-2's own layer names
    (odd,) = node("AIPRODVideoDataset").load("synthetic world", "", "star", 13, 64, 64)  # 1 + 4k, not 1 + 8k
    for data, extra, words in ((odd, {}, "do not fit this LTX-2 model's VAE"),
                               (dataset, {"train_text_encoder": True}, "takes no adapters")):
        with pytest.raises(ValueError) as e:
            trainer.train(model, vae, text_encoder, data, 2, 2, 1e-3, 0, "ltx2_bad", False, **extra)
        assert "\n" not in str(e.value) and words in str(e.value)


def test_missing_and_misplaced_files_are_named_before_anything_loads(models, node):
    cls = type(node("AIPRODLTX2Loader"))
    assert cls.VALIDATE_INPUTS(CKPT, GEMMA, "none", "none", UPSCALER) is True
    msg = cls.VALIDATE_INPUTS("ltx-2-19b-distilled-fp8.safetensors", "gemma_3_12B_it.safetensors", "none", "none",
                              UPSCALER)
    assert "ltx-2-19b-distilled-fp8.safetensors in models/checkpoints or models/diffusion_models" in msg
    assert "gemma_3_12B_it.safetensors in models/text_encoders" in msg and UPSCALER not in msg.split("(looked")[0]
    assert str(models / "checkpoints") in msg and "\n" not in msg
    with pytest.raises(FileNotFoundError, match=r"ltx-2-19b-distilled-fp8\.safetensors in models/checkpoints"):
        node("AIPRODLTX2Loader").load("ltx-2-19b-distilled-fp8.safetensors", GEMMA)
    wrong = cls.VALIDATE_INPUTS(CKPT, SPLIT["text_projection"], "none", "none", "none")
    assert "text_encoder" in wrong and "not Gemma" in wrong
    wrong = cls.VALIDATE_INPUTS(CKPT, GEMMA, "none", "none", GEMMA)
    assert "upscaler" in wrong, wrong
    split = cls.VALIDATE_INPUTS(SPLIT["ckpt_name"], GEMMA, "none", "none", "none")
    assert "holds no video VAE" in split and "vae" in split
    assert "is for LTX-2 models" in cls.VALIDATE_INPUTS("aiprod-v2-tiny.safetensors", GEMMA, "none", "none", "none")


def test_each_loader_sends_the_other_familys_files_to_the_other_loader(models, node):
    with pytest.raises(ValueError, match="is an LTX-2 file; load it with AIPROD LTX-2 Loader"):
        node("AIPRODCheckpointLoader").load(SPLIT["ckpt_name"])
    with pytest.raises(ValueError, match="is an AIPROD checkpoint, not LTX-2; load it with AIPROD Checkpoint Loader"):
        node("AIPRODLTX2Loader").load("aiprod-v2-tiny.safetensors", GEMMA)


def test_stg_is_refused_for_an_aiprod_model(node):
    model = node("AIPRODCheckpointLoader").load("aiprod-v2-tiny.safetensors")[0]
    with pytest.raises(ValueError, match="AIPROD's blocks cannot skip their self-attention"):
        node("AIPRODSpatioTemporalGuidance").apply(model, 1.0)
    assert node("AIPRODSpatioTemporalGuidance").apply(model, 0.0)[0].stg == 0.0
