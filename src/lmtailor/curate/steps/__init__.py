"""Curation steps: each one is a recipe entry (`step: <name>`) with a streaming `run`."""
