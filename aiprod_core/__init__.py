"""AIPROD v2 core library: pure PyTorch, importable without ComfyUI."""

__version__ = "0.1.0"
