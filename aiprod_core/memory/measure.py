"""Old home of the peak-memory measurement that the benchmarks and the tests use, kept for one release: it is now
bench/measure.py in the repository, which is not installed.

From a clone's root its names still answer here, through the module's `__getattr__`, with a DeprecationWarning;
in an installed package they raise ImportError saying where the code went.
"""

from ..moved import moved_to

__getattr__ = moved_to(__name__, "bench.measure", outside="bench/measure.py in the repository")
