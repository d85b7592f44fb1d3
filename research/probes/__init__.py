"""Probes of what a model reads, used to explain the experiments' figures rather than to check a model:
`reliance` (the loss rise when a caption names the wrong colour, shape or direction) and `words` (what a training
state's text encoder alone reads). Each runs from a clone's root as `python -m research.probes.<name>`."""
