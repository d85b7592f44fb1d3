"""research/probes/words.py (once `aiprod eval words`): a training state's text encoder and attribute heads, read on
held-out sentence frames."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import torch

from aiprod_core.checkpoint import read_safetensors
from aiprod_core.cli import main as aiprod
from aiprod_core.config import preset
from aiprod_core.model import build_model
from aiprod_core.train.data import item_seed
from aiprod_core.train.options import RunOptions, TrainOptions
from aiprod_core.train.phases import Phase
from aiprod_core.train.trainer import Trainer
from aiprod_core.world import BASIC_MOTIONS, COLOURS, EASY, heldout_frames, sample_scene
from research.probes.words import load_text_state, main, read_attributes


def test_reads_the_states_encoder_and_scores_each_frame(tmp_path):
    phase = Phase("still", steps=2, batch=2, warmup=1, world={"frames": 5, "height": 32, "width": 32})
    Trainer(build_model(preset("tiny")), [phase], TrainOptions(RunOptions(tmp_path, validate=False, progress=False))).run()
    state = tmp_path / "state.safetensors"
    encoder, heads = load_text_state(state)
    saved = read_safetensors(state)[0]
    for k, v in encoder.state_dict().items():
        torch.testing.assert_close(v, saved[f"text_encoder.{k}"].float())
    torch.testing.assert_close(heads.heads["colour"].weight, saved["heads.heads.colour.weight"])

    # heads that always answer "red": the colour score is the share of red scenes, whatever the encoder says
    with torch.no_grad():
        head = heads.heads["colour"]
        head.weight.zero_()
        head.bias.copy_(torch.nn.functional.one_hot(torch.tensor(COLOURS.index("red")), len(COLOURS)).float())
    n, seed = 24, 5
    result = read_attributes(encoder, heads, per_language=n, seed=seed, languages=("en", "ja"))
    spec = dataclasses.replace(EASY, motions=BASIC_MOTIONS)
    for li, lang in ((0, "en"), (8, "ja")):
        red = np.mean([sample_scene(np.random.default_rng([item_seed(seed, li, i), 0]), spec).objects[0].colour == "red"
                       for i in range(n)])
        for split in ("train", "heldout"):
            assert result["per_language"][lang][split]["colour"] == red
        frames = result["heldout_frames"][lang]
        assert {int(f) for f in frames} <= set(heldout_frames(lang))
        assert sum(row["captions"] for row in frames.values()) == n
        assert all(all(k.endswith("-> red") for k in row["wrong"] if k.startswith("colour")) for row in frames.values())
    assert result["worst_heldout"]["colour"] == min(r["heldout"]["colour"] for r in result["per_language"].values())


def test_the_probes_command_prints_what_it_read_and_aiprod_eval_says_where_it_went(tmp_path, capsys):
    phase = Phase("still", steps=1, batch=2, warmup=1, world={"frames": 5, "height": 32, "width": 32})
    Trainer(build_model(preset("tiny")), [phase], TrainOptions(RunOptions(tmp_path, validate=False, progress=False))).run()
    state = str(tmp_path / "state.safetensors")
    assert main([state, "--per-language", "4", "--languages", "en", "fr", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["per_language"]) == {"en", "fr"} and {"train", "heldout"} <= set(result["mean"])
    assert main([str(tmp_path / "none.safetensors")]) == 2
    assert "the state" in capsys.readouterr().err

    assert aiprod(["eval", "words", state, "--json"]) == 2
    assert capsys.readouterr().err == ("aiprod eval words: error: words is a research probe and no longer part of the "
                                       "installed command; from a clone of the repository run: python -m "
                                       f"research.probes.words {state} --json\n")
