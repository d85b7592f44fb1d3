"""Old home of the synthetic world's scenes and rendering, kept for one release: it is now
aiprod_core.world.scenes and aiprod_core.world.clips.

Each name still answers here, through the module's `__getattr__`, with a DeprecationWarning naming its new home.
"""

from ..moved import moved_to

__getattr__ = moved_to(__name__, "aiprod_core.world.scenes", "aiprod_core.world.clips")
