"""Old home of the world's plain prompt tables, kept for one release: it is now
aiprod_core.world.plain_captions.

Each name still answers here, through the module's `__getattr__`, with a DeprecationWarning naming its new home.
"""

from __future__ import annotations

import importlib
import warnings

_HOMES = ("aiprod_core.world.plain_captions",)


def __getattr__(name: str):
    for home in _HOMES:
        module = importlib.import_module(home)
        if hasattr(module, name):
            warnings.warn(f"aiprod_core.train.plain_captions.{name} moved to {home}.{name}", DeprecationWarning, stacklevel=2)
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
