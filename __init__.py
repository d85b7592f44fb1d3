"""AIPROD v2 ComfyUI node pack. ComfyUI imports this folder from custom_nodes/; the library is aiprod_core."""

import os
import sys

# aiprod_core ships inside the pack, so a plain clone into custom_nodes works without a pip install;
# the pack's own copy comes first so the nodes and the library always match.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

WEB_DIRECTORY = "./web"

if __package__:  # imported as a package, as ComfyUI does; pytest imports this file alone when the folder's name
    # is not a Python name (custom_nodes/aiprod-v2), and then there are no nodes to register
    from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
