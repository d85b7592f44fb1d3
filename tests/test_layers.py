"""The library's layer rules ([tool.importlinter] in pyproject.toml), checked by import-linter on every test run."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_imports_keep_the_layers_and_have_no_cycles():
    exe = shutil.which("lint-imports")
    assert exe, "lint-imports is missing: pip install -e '.[dev]' installs import-linter"
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "0 broken" in r.stdout
