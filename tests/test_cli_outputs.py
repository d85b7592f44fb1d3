"""Files the commands write get the process umask's mode, as any other tool's, and a failed write is one
line that names the file."""

from __future__ import annotations

import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from aiprod_core.checkpoint import save_checkpoint, save_safetensors_atomic
from aiprod_core.cli import main
from aiprod_core.config import preset
from aiprod_core.model import build_model
from aiprod_core.outputs import WriteError
from aiprod_core.text import EmbeddingCache
from aiprod_core.video_io import read_video, write_video


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o027])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def moving_square(frames: int = 9) -> torch.Tensor:
    video = torch.zeros(frames, 32, 32, 3)
    for t in range(frames):
        video[t, 10:18, 4 + 2 * t : 12 + 2 * t] = 1
    return video


def test_generated_and_exported_files_follow_the_umask(tmp_path, umask, capsys):
    expected = 0o666 & ~umask
    clip = tmp_path / "c.gif"
    assert main(["generate", "a red circle", "--preset", "tiny", "-o", str(clip), "--steps", "1", "--frames", "5",
                 "-q"]) == 0
    assert mode(clip) == expected and read_video(clip)[0].shape[0] == 5
    model = build_model(preset("tiny"))
    src = tmp_path / "m.safetensors"
    save_checkpoint(src, model.config, {"backbone": model.backbone, "vae": model.vae,
                                        "text_encoder": model.text_encoder})
    assert mode(src) == expected
    assert main(["export", str(src), "-o", str(tmp_path / "m16.safetensors")]) == 0
    assert mode(tmp_path / "m16.safetensors") == expected
    video = write_video(tmp_path / "v.mp4", moving_square())
    assert mode(video) == expected
    assert main(["flow", "extract", str(video), "-o", str(tmp_path / "f.safetensors"),
                 "--preview", str(tmp_path / "p.webm")]) == 0
    assert mode(tmp_path / "f.safetensors") == expected and mode(tmp_path / "p.webm") == expected
    cache = EmbeddingCache(directory=tmp_path / "cache")
    cache.put("k", "a prompt", torch.zeros(3, 4))
    (entry,) = (tmp_path / "cache").iterdir()
    assert mode(entry) == expected
    capsys.readouterr()


def test_a_failed_write_names_the_file_and_leaves_nothing(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        fd, probe = tempfile.mkstemp(dir=folder)
        os.close(fd)
        os.unlink(probe)
        folder = Path("/sys")  # root: modes do not stop it, a kernel file system does
    except OSError:
        pass
    try:
        for write in (lambda p: write_video(p, moving_square()),
                      lambda p: save_safetensors_atomic({"x": torch.zeros(2)}, p, {})):
            target = folder / "out.mp4"
            with pytest.raises(WriteError) as e:
                write(target)
            assert str(e.value).startswith(f"could not write {target}: ") and "\n" not in str(e.value)
            assert ".tmp" not in str(e.value) and not target.exists()
    finally:
        if folder != Path("/sys"):
            folder.chmod(0o755)


def _small_files_only():
    """In the child: files over 1000 bytes cannot be written (EFBIG), as on a full disk."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))


def test_cli_write_failure_is_one_line_naming_the_file(tmp_path):
    out = tmp_path / "c.mp4"
    # `python -m` shows deprecation warnings that the `aiprod` entry point does not: leave them out here
    env = {**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"}
    r = subprocess.run([sys.executable, "-m", "aiprod_core.cli", "generate", "a red circle", "-o", str(out),
                        "--steps", "1", "--frames", "5", "-q"], capture_output=True, text=True, timeout=300,
                       preexec_fn=_small_files_only, env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"aiprod generate: error: could not write {out}: File too large")
    assert r.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []  # neither the clip nor its temporary file
