"""ComfyUI nodes: thin adapters over aiprod_core, one file per stage."""

NODE_CLASS_MAPPINGS: dict[str, type] = {}
NODE_DISPLAY_NAME_MAPPINGS: dict[str, str] = {}
