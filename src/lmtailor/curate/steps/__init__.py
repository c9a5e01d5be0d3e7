"""Curation steps: each one is a recipe entry (`step: <name>`), registered in `lmtailor.curate.registry`."""
