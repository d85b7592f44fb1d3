"""Old home of the peak-memory measurement that the benchmarks and the tests use, kept for one release: it is now
bench/measure.py in the repository, which is not installed.

From a clone's root its names still answer here, through the module's `__getattr__`, with a DeprecationWarning;
in an installed package they raise ImportError saying where the code went.
"""

import importlib
import warnings

_MOVED = ("measure_peak", "profiler_peak", "MATMUL_OPS")


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        measure = importlib.import_module("bench.measure")
    except ModuleNotFoundError as e:
        if not (e.name or "").startswith("bench"):
            raise
        raise ImportError(f"aiprod_core.memory.measure.{name} moved out of the installed package to bench/measure.py "
                          "in the repository; from a clone's root, import it from bench.measure") from e
    warnings.warn(f"aiprod_core.memory.measure.{name} moved to bench.measure.{name} (bench/ in the repository, not "
                  "installed); import it from there", DeprecationWarning, stacklevel=2)
    return getattr(measure, name)
