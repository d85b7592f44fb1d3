import json

from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.eval.adherence import prompt_adherence
from aiprod_core.pipeline import build_model


def test_adherence_report_has_floor_ceiling_and_every_language():
    model = build_model(preset("tiny"))
    r = prompt_adherence(model, per_language=2, steps=2, languages=("en", "zh", "ar"), progress=False)
    assert r["clips"] == 6 and set(r["per_language"]) == {"en", "zh", "ar"}
    assert r["ceiling_world_clips"] == {"colour": 1.0, "shape": 1.0, "direction": 1.0}
    for k in ("generated", "floor_shuffled_prompts", "worst_language"):
        assert set(r[k]) == {"colour", "shape", "direction"} and all(0 <= v <= 1 for v in r[k].values())
    assert [e["language"] for e in r["examples"]] == ["en", "zh", "ar"]
    json.dumps(r, ensure_ascii=False)


def test_eval_command_prints_json(capsys):
    assert main(["eval", "adherence", "--preset", "tiny", "--per-language", "1", "--steps", "1", "--json", "-q"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["clips"] == 12 and len(r["per_language"]) == 12
