"""Old home of a research probe (the loss rise when a caption names the wrong word), kept for one release: the code is now
research/probes/reliance.py in the repository, which is not installed (run it as python -m research.probes.reliance).

From a clone's root its names still answer here, through the module's `__getattr__`, with a DeprecationWarning;
in an installed package they raise ImportError saying where the probe went.
"""

from ..moved import moved_to

__getattr__ = moved_to(__name__, "research.probes.reliance", outside="research/probes/reliance.py in the repository")
