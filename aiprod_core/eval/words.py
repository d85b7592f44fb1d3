"""Old home of a research probe (what a training state's text encoder alone reads), kept for one release: the code is now
research/probes/words.py in the repository, which is not installed.

From a clone's root this module still imports, re-exporting the probe's names with a DeprecationWarning (a
warnings.warn when the module is imported); in an installed package it raises ImportError saying where the
probe went.
"""

import importlib
import warnings

try:
    _probe = importlib.import_module("research.probes.words")
except ModuleNotFoundError as e:
    if not (e.name or "").startswith("research"):
        raise
    raise ImportError("aiprod_core.eval.words moved out of the installed package to research/probes/words.py in the "
                      "repository; from a clone's root, import research.probes.words or run "
                      "python -m research.probes.words") from e
warnings.warn("aiprod_core.eval.words moved to research.probes.words (research/ in the repository, not installed); "
              "import it from there", DeprecationWarning, stacklevel=2)
load_text_state, read_attributes = _probe.load_text_state, _probe.read_attributes
