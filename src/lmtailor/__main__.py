"""`python -m lmtailor` runs the CLI."""

from lmtailor.cli import app

app()
