"""Old import paths that keep answering for one release: a module `__getattr__` that finds each name in its new
home and warns (DeprecationWarning) with that home's name."""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable


def moved_to(old: str, *homes: str, outside: str = "") -> Callable[[str], object]:
    """`__getattr__` for module `old`, whose names now live in `homes` (searched in order).

    outside: where the code went when its home is not in the installed package (e.g. "bench/measure.py in the
    repository"); importing it from an installed package then raises ImportError saying so."""

    def lookup(name: str):
        if name.startswith("__"):  # the import system's and tools' probes (__path__...): nothing moved by that name
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        for home in homes:
            try:
                module = importlib.import_module(home)
            except ModuleNotFoundError as e:
                if not outside or not home.startswith(e.name or "\0"):
                    raise
                raise ImportError(f"{old}.{name} moved out of the installed package to {outside}; from a clone's "
                                  f"root, import it from {home}") from e
            if hasattr(module, name):
                warnings.warn(f"{old}.{name} moved to {home}.{name}; import it from there", DeprecationWarning,
                              stacklevel=2)
                return getattr(module, name)
        raise AttributeError(f"module {old!r} has no attribute {name!r}")

    return lookup
