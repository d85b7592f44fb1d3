"""The project's own experiments, next to their logs (*.md): the pilot and ablation recipes (recipes/), the probes
that explained their figures (probes/), and code that only the tests reach (fp8_files.py).

Not installed: pyproject's packages.find takes aiprod_core alone. It imports from a clone's root, where
`python -m pytest` and `python -m research.probes.words ...` put the root on sys.path.
"""
