"""Benchmarks that print JSON figures, each run as a script (`python bench/<name>.py`); measure.py, the peak memory
of a call, is also imported by the tests as bench.measure (from a clone's root: bench/ is not installed)."""
