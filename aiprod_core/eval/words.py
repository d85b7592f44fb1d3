"""Old home of a research probe (what a training state's text encoder alone reads), kept for one release: the code is now
research/probes/words.py in the repository, which is not installed (run it as python -m research.probes.words).

From a clone's root its names still answer here, through the module's `__getattr__`, with a DeprecationWarning;
in an installed package they raise ImportError saying where the probe went.
"""

from ..moved import moved_to

__getattr__ = moved_to(__name__, "research.probes.words", outside="research/probes/words.py in the repository")
