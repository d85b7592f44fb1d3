"""Old home of the synthetic world's scenes and rendering, kept for one release: it is now
aiprod_core.world.scenes and aiprod_core.world.clips.

Each name still answers here, through the module's `__getattr__`, with a DeprecationWarning naming its new home.
"""

from __future__ import annotations

import importlib
import warnings

_HOMES = ("aiprod_core.world.scenes", "aiprod_core.world.clips")


def __getattr__(name: str):
    for home in _HOMES:
        module = importlib.import_module(home)
        if hasattr(module, name):
            warnings.warn(f"aiprod_core.train.world.{name} moved to {home}.{name}", DeprecationWarning, stacklevel=2)
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
