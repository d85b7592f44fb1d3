import json

from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.eval.adherence import prompt_adherence
from aiprod_core.model import build_model


def test_adherence_report_has_floor_ceiling_and_every_language():
    model = build_model(preset("tiny"))
    r = prompt_adherence(model, per_language=2, steps=2, languages=("en", "zh", "ar"), progress=False)
    assert r["clips"] == 6 and set(r["per_language"]) == {"en", "zh", "ar"}
    assert r["ceiling_world_clips"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0}
    assert set(r["ceiling_through_vae"]) == {"colour", "shape", "direction"}
    for k in ("generated", "floor_shuffled_prompts", "worst_language"):
        assert set(r[k]) == {"colour", "shape", "direction"} and all(0 <= v <= 1 for v in r[k].values())
    assert [e["language"] for e in r["examples"]] == ["en", "zh", "ar"]
    for a in ("colour", "shape", "direction"):  # the confusion counts add up to the clips and agree with the score
        rows = r["confusion"][a]
        assert sum(n for row in rows.values() for n in row.values()) == 6
        assert sum(row.get(t, 0) for t, row in rows.items()) == round(6 * r["generated"][a])
    assert r["objects_drawn"]["world_clips"] == {"none": 0.0, "one": 1.0, "more": 0.0}  # the prompts' own scenes
    assert abs(sum(r["objects_drawn"]["generated"].values()) - 1) < 1e-9
    json.dumps(r, ensure_ascii=False)


def test_eval_command_prints_json(capsys):
    assert main(["eval", "adherence", "--preset", "tiny", "--per-language", "1", "--steps", "1", "--json", "-q"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["clips"] == 12 and len(r["per_language"]) == 12 and "star" not in r["shape_candidates"]
    assert main(["eval", "adherence", "--preset", "tiny", "--per-language", "1", "--steps", "1", "--languages", "en",
                 "--candidates", "circle", "square", "triangle", "star", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["shape_candidates"] == ["circle", "square", "triangle", "star"]
    assert main(["eval", "adherence", "--preset", "tiny", "--per-language", "2", "--steps", "1", "--languages", "en",
                 "de", "--frames", "plain", "--json", "-q"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["caption_frames"] == "plain" and r["clips"] == 4
    assert all(e["caption"] == e["caption"].lower()[:1] + e["caption"][1:] for e in r["examples"])
    assert not any(e["caption"].endswith(".") for e in r["examples"]), r["examples"]


def test_star_prompts_are_judged_among_all_shapes():
    model = build_model(preset("tiny"))
    r = prompt_adherence(model, per_language=2, steps=1, languages=("en", "fr"), shapes=("star",), progress=False)
    assert r["shape_candidates"] == ["circle", "square", "triangle", "star"]
    assert all(e["truth"]["shape"] == "star" for e in r["examples"])
    assert r["ceiling_world_clips"]["shape"] == 1.0  # the classifier knows the world's stars


def test_through_vae_ceiling_uses_the_models_vae():
    from aiprod_core.model import load_model

    kw = dict(per_language=2, steps=1, languages=("en", "de"), progress=False)
    trained = prompt_adherence(load_model(), **kw)["ceiling_through_vae"]
    random = prompt_adherence(build_model(preset("tiny")), **kw)["ceiling_through_vae"]
    assert trained["colour"] == 1.0 and random["colour"] < 1.0  # a random VAE does not keep colours


def test_lora_comparison_samples_without_then_with_the_lora(tmp_path):
    import torch

    from aiprod_core.eval.adherence import lora_adherence
    from aiprod_core.models.lora import LoRA

    model = build_model(preset("tiny"))
    torch.manual_seed(0)
    lora = LoRA.create(model.backbone, rank=2)
    for n, p in lora.named_parameters():
        if "lora_B" in n:
            p.data.normal_(0, 0.5)
    outputs = []
    # the backbone's output layer starts at zero, so watch the attention module that holds the first adapted layer
    watched = model.backbone.get_submodule(lora.paths[0].rsplit(".", 1)[0])
    hook = watched.register_forward_hook(lambda m, a, out: outputs.append(out.detach().clone()))
    try:
        r = lora_adherence(model, lora, 1.0, per_language=1, steps=1, languages=("en",), progress=False)
    finally:
        hook.remove()
    assert r["without_lora"]["shape_candidates"] == ["circle", "square", "triangle", "star"]
    assert set(r["change"]) == {"colour", "shape", "direction"}
    half = len(outputs) // 2
    assert half and len(outputs) == 2 * half
    assert not torch.allclose(outputs[0], outputs[half])  # the same inputs, changed by the LoRA
    r2 = lora_adherence(model, lora, 0.0, per_language=1, steps=1, languages=("en",), progress=False)
    assert r2["with_lora"]["examples"] == r2["without_lora"]["examples"]  # strength 0 is the base model


def test_eval_command_with_a_lora_file(tmp_path, capsys):
    from aiprod_core.models.lora import LoRA, save_lora

    model = build_model(preset("tiny"))
    path = tmp_path / "star.safetensors"
    save_lora(path, LoRA.create(model.backbone, rank=2))
    argv = ["eval", "adherence", "--preset", "tiny", "--lora", str(path), "--shapes", "star", "--per-language", "1",
            "--steps", "1", "--languages", "en", "fr", "zh", "--json", "-q"]
    assert main(argv) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["with_lora"]["clips"] == 3 and r["without_lora"]["prompt_shapes"] == ["star"]
    assert set(r["with_lora"]["per_language"]) == {"en", "fr", "zh"}
