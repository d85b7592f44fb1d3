import importlib.util
from pathlib import Path

from aiprod_core.eval.classify import classify_clip
from aiprod_core.train.folder import list_clips
from aiprod_core.video_io import read_video

ROOT = Path(__file__).resolve().parents[1]


def load_example():
    spec = importlib.util.spec_from_file_location("star_clips", ROOT / "scripts" / "star_clips.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_star_folder_has_captioned_star_clips_and_prior_clips(tmp_path, one_thread):
    load_example().main(["--out", str(tmp_path / "clips"), "--stars", "3", "--sizes", "large", "--prior", "1", "--steps", "1"])
    pairs = list_clips(tmp_path / "clips")
    assert len(pairs) == 4
    stars = [(p, c) for p, c in pairs if p.name.startswith("star_")]
    assert [c for _, c in stars] and "star" in stars[0][1] and "étoile" in stars[1][1] and "星" in stars[2][1]
    for path, _ in stars:
        frames, _ = read_video(path)
        assert frames.shape[:3] == (17, 64, 64)
        assert classify_clip(frames, shapes=("circle", "square", "triangle", "star")).shape == "star"
    prior = [p for p, _ in pairs if p.name.startswith("prior_")]
    assert len(prior) == 1 and read_video(prior[0])[0].shape[0] == 17


def test_world_prior_clips_are_the_worlds_renders_of_the_old_vocabulary(tmp_path, one_thread):
    load_example().main(["--out", str(tmp_path / "clips"), "--stars", "1", "--prior", "3", "--prior-source", "world"])
    prior = [(p, c) for p, c in list_clips(tmp_path / "clips") if p.name.startswith("prior_")]
    assert len(prior) == 3
    for path, text in prior:
        frames, _ = read_video(path)
        label = classify_clip(frames, shapes=("circle", "square", "triangle", "star"))
        assert label.shape in ("circle", "square", "triangle") and text
        if path.name == "prior_000.mp4":  # captions cycle through the languages from English
            assert label.shape in text


def test_preservation_prompts_name_the_old_shapes_in_every_language(tmp_path):
    from aiprod_core.world import LANGUAGES, attribute_words

    load_example().main(["--out", str(tmp_path / "clips"), "--stars", "0", "--preserve-prompts",
                         str(tmp_path / "keep.txt"), "--preserve-count", "24"])
    lines = (tmp_path / "keep.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 24 and len(set(lines)) == 24
    assert list_clips(tmp_path / "clips") == []  # the prompts are not written where clips are read
    for i, text in enumerate(lines):
        shapes = attribute_words(LANGUAGES[i % len(LANGUAGES)])["shape"]
        assert not any(w in text for w in shapes["star"])
        assert any(w in text for s in ("circle", "square", "triangle") for w in shapes[s])
