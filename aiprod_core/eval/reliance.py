"""Old home of a research probe (the loss rise when a caption names the wrong word), kept for one release: the code is now
research/probes/reliance.py in the repository, which is not installed.

From a clone's root this module still imports, re-exporting the probe's names with a DeprecationWarning (a
warnings.warn when the module is imported); in an installed package it raises ImportError saying where the
probe went.
"""

import importlib
import warnings

try:
    _probe = importlib.import_module("research.probes.reliance")
except ModuleNotFoundError as e:
    if not (e.name or "").startswith("research"):
        raise
    raise ImportError("aiprod_core.eval.reliance moved out of the installed package to research/probes/reliance.py in the "
                      "repository; from a clone's root, import research.probes.reliance or run "
                      "python -m research.probes.reliance") from e
warnings.warn("aiprod_core.eval.reliance moved to research.probes.reliance (research/ in the repository, not installed); "
              "import it from there", DeprecationWarning, stacklevel=2)
ATTRIBUTES, text_reliance = _probe.ATTRIBUTES, _probe.text_reliance
