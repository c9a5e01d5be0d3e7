"""`lmtailor demo`: a text-to-SQL dataset with known defects, curated, and every defect checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmtailor.cli.shared import ProgressOpt, out_option, reported
from lmtailor.core import rundir

EPILOG = "Example:  lmtailor demo --out demo_out"


def demo(
    out: Annotated[Path, out_option("Folder for the generated data and the run.", short=False)] = Path("demo_out"),
    progress: ProgressOpt = True,
) -> None:
    """Generate a text-to-SQL dataset with known defects, curate it, and check every defect was caught."""
    from lmtailor.demo.shop import run_demo

    with reported():
        passed = run_demo(rundir.prepare(out), progress=progress)
    if not passed:
        raise typer.Exit(1)
