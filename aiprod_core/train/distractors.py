"""Old home of the made-up words mixed into training captions, kept for one release: it is now
aiprod_core.world.words.

Each name still answers here, through the module's `__getattr__`, with a DeprecationWarning naming its new home.
"""

from ..moved import moved_to

__getattr__ = moved_to(__name__, "aiprod_core.world.words")
