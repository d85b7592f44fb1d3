"""Bad requests are refused before the work: one line, exit code 2, no model loaded and no file written.

Each refused command asks for 500 sampling steps: run past its checks, it would spend minutes generating
(that is how these requests failed before), so a refusal within seconds shows that the check came first.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from aiprod_core.cli import main
from aiprod_core.model import default_model_path

SLOW = ["--steps", "500", "-q"]  # minutes of work if a check let it through


def refused(capsys, argv: list[str], *expected: str, prefix: str = "aiprod generate") -> str:
    """Run the CLI; it must exit with 2 within seconds, printing one line that holds each of `expected`."""
    t0 = time.perf_counter()
    rc = main(argv)
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2, (rc, err)
    assert err.startswith(f"{prefix}: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    for text in expected:
        assert text in err, (text, err)
    assert seconds < 10, f"refused only after {seconds:.0f} s: the work ran first"
    return err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


@pytest.fixture
def unwritable(tmp_path_factory) -> Path:
    """A folder this process cannot write into: read-only by mode, or (as root, whom modes do not stop) /sys."""
    ro = tmp_path_factory.mktemp("ro")
    ro.chmod(0o555)
    for folder in (ro, Path("/sys")):
        try:
            fd, probe = tempfile.mkstemp(dir=folder)
        except OSError:
            yield folder
            break
        os.close(fd)
        os.unlink(probe)
    else:
        pytest.skip("no folder here refuses this process's writes")
    ro.chmod(0o755)


def test_output_in_a_read_only_folder(capsys, unwritable):
    out = unwritable / "clip.mp4"
    refused(capsys, ["generate", "a red circle", "-o", str(out), *SLOW], f"-o {out}: cannot write into {unwritable}")
    assert not out.exists()


@pytest.mark.parametrize(("name", "expected"), [
    ("x.avi", "unknown extension '.avi'; use one of .mp4"),
    ("", "is a folder; name a file in it"),
    ("clip", "has no extension, and the extension picks the format"),
])  # fmt: skip
def test_output_name_and_extension(capsys, tmp_path, name, expected):
    out = tmp_path / name
    refused(capsys, ["generate", "a red circle", "-o", str(out) + ("/" if not name else ""), *SLOW], expected)
    assert leftovers(tmp_path) == []


def test_output_folders_are_created_but_not_under_a_file(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    refused(capsys, ["generate", "a red circle", "-o", str(tmp_path / "file" / "sub" / "c.mp4"), *SLOW],
            "is a file, so no folder can be made there")
    assert leftovers(tmp_path) == ["file"]


@pytest.mark.parametrize(("args", "expected"), [
    (["--cfg", "-1"], "--cfg -1 is out of range; expected at least 0"),
    (["--cfg", "nan"], "--cfg nan is not a finite number"),
    (["--steps", "0"], "--steps 0 is out of range"),
    (["--flow-strength", "1.5"], "--flow-strength 1.5 is out of range; expected 0..1"),
    (["--vram", "0"], "--vram 0 is out of range; expected more than 0"),
    (["--frames", "16"], "frames=16 is not 1 + 4k for this VAE; use 17 or 13"),
    (["--width", "60"], "width=60 is not a multiple of 8"),
    (["--camera", "pan-sideways"], "camera preset 'pan-sideways' is unknown"),
    (["--image", "none.png"], "--image none.png: no such file"),
    (["--image", "a.png", "--extend", "b.mp4"], "--image and --extend both"),
    (["--lora", "x.safetensors:strong"], "strength 'strong' is not a number"),
])  # fmt: skip
def test_numbers_and_inputs(capsys, tmp_path, args, expected):
    refused(capsys, ["generate", "a red circle", "-o", str(tmp_path / "c.mp4"), *SLOW, *args], expected)
    assert leftovers(tmp_path) == []


def test_model_naming_a_folder(capsys, tmp_path):
    (tmp_path / "m.safetensors").write_bytes(b"")
    refused(capsys, ["generate", "x", "--model", str(tmp_path), "-o", str(tmp_path / "c.mp4"), *SLOW],
            f"--model {tmp_path} is a folder; expected a .safetensors file, e.g. {tmp_path / 'm.safetensors'}")


def test_pickle_named_safetensors_is_refused_and_never_opened(capsys, tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "m.safetensors")  # a zip holding a pickle
    refused(capsys, ["generate", "x", "--model", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "c.mp4"),
                     *SLOW], "is a zip archive", "never opened")
    (tmp_path / "l.safetensors").write_bytes(b"\x80\x04K\x01.")  # pickle.dumps(1)
    refused(capsys, ["generate", "x", "--lora", str(tmp_path / "l.safetensors"), "-o", str(tmp_path / "c.mp4"),
                     *SLOW], f"--lora {tmp_path / 'l.safetensors'} is a pickle file")


def test_safetensors_named_ckpt_loads(capsys, tmp_path):
    shipped = default_model_path()
    if shipped is None:
        pytest.skip("this install has no embedded model")
    (tmp_path / "tiny.ckpt").write_bytes(shipped.read_bytes())
    out = tmp_path / "c.mp4"
    assert main(["generate", "a red circle", "--model", str(tmp_path / "tiny.ckpt"), "-o", str(out),
                 "--steps", "1", "--frames", "5", "-q"]) == 0
    assert out.is_file() and capsys.readouterr().err == ""


def test_invalid_utf8_in_argv_names_the_byte_as_typed(tmp_path):
    """Through the real console entry: Python keeps argv bytes that are not UTF-8 as surrogates."""
    out = tmp_path / "c.mp4"
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}  # shown by `python -m`, not by `aiprod`
    r = subprocess.run([sys.executable, "-m", "aiprod_core.cli", "generate", b"a red circ\xe9le moving left",
                        "-o", str(out), *SLOW], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr == ("aiprod generate: error: the prompt is not valid UTF-8: byte 11 is 0xe9, after 'a red circ'; "
                        "the terminal or file is in another encoding (e.g. Latin-1): set it to UTF-8 or retype "
                        "the text\n")
    assert not out.exists()


def test_empty_prompt_is_the_unconditional_clip_and_says_so(capsys, tmp_path):
    out = tmp_path / "c.mp4"
    assert main(["generate", "", "-o", str(out), "--steps", "1", "--frames", "5", "-q"]) == 0
    err = capsys.readouterr().err
    assert err == ("aiprod generate: note: the prompt is empty: the model draws its unconditional clip, what it "
                   "makes of no text\n")
    assert out.is_file()


@pytest.mark.skipif(torch.cuda.is_available(), reason="--vram applies on a machine with a CUDA GPU")
def test_vram_without_a_gpu_says_it_does_not_apply(capsys, tmp_path):
    assert main(["generate", "a red circle", "--vram", "0.1", "-o", str(tmp_path / "c.mp4"), "--steps", "1",
                 "--frames", "5", "-q"]) == 0
    assert capsys.readouterr().err == ("aiprod generate: note: --vram 0.1 does not apply: there is no CUDA GPU here, "
                                       "so the run uses the CPU and its memory\n")


# ---------------------------------------------------------------- the other commands that write files


def test_flow_extract_outputs(capsys, tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"checked for existence only: the refusals come first")
    base = ["flow", "extract", str(video)]
    refused(capsys, [*base, "--preview", str(tmp_path / "p.avi")], "--preview", "unknown extension '.avi'",
            prefix="aiprod flow extract")
    refused(capsys, [*base, "-o", str(tmp_path / "f.pt")], "-o", "unknown extension '.pt'; use one of .safetensors",
            prefix="aiprod flow extract")
    refused(capsys, ["flow", "extract", str(tmp_path / "none.mp4")], "the video", "no such file",
            prefix="aiprod flow extract")
    assert leftovers(tmp_path) == ["v.mp4"]


def test_train_out(capsys, tmp_path, unwritable):
    (tmp_path / "file").write_text("x")
    refused(capsys, ["train", "--out", str(tmp_path / "file"), "-q"], "--out", "is a file, not a folder",
            prefix="aiprod train")
    refused(capsys, ["train", "--out", str(unwritable / "run"), "-q"], f"cannot create {unwritable / 'run'}",
            prefix="aiprod train")
    refused(capsys, ["train", "--out", str(tmp_path / "run"), "--steps-scale", "0", "-q"], "--steps-scale 0",
            prefix="aiprod train")
    assert leftovers(tmp_path) == ["file"]


def test_train_keeps_an_earlier_runs_state(capsys, tmp_path):
    """A new run in a folder that holds a training state would delete it: refused unless it is resumed."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "state.safetensors").write_bytes(b"earlier")
    refused(capsys, ["train", "--out", str(run), "-q"], "holds a training state", "--resume", prefix="aiprod train")
    assert (run / "state.safetensors").read_bytes() == b"earlier"


def test_export_output(capsys, tmp_path, unwritable):
    model = tmp_path / "m.safetensors"
    save_file({"x": torch.zeros(1)}, str(model))
    refused(capsys, ["export", str(model), "-o", str(tmp_path / "m16.ckpt")], "use one of .safetensors",
            prefix="aiprod export")
    refused(capsys, ["export", str(model), "-o", str(unwritable / "m16.safetensors")], "cannot write into",
            prefix="aiprod export")
    refused(capsys, ["export", str(tmp_path), "-o", str(tmp_path / "m16.safetensors")], "is a folder",
            prefix="aiprod export")
    assert leftovers(tmp_path) == ["m.safetensors"]


def test_run_workflow_output_folder(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    workflow = tmp_path / "w.json"
    workflow.write_text("{}")
    # no server listens on port 9: the refusal comes before any request is sent
    refused(capsys, ["run-workflow", str(workflow), "--server", "http://127.0.0.1:9", "-o", str(tmp_path / "file")],
            "-o", "is a file, not a folder", prefix="aiprod run-workflow")
