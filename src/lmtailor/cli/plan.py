"""`lmtailor plan`: which rungs of the ladder to try for a task, in what order, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lmtailor.cli.shared import console, reported

EPILOG = "Example:  lmtailor plan task.yaml\n\n          lmtailor plan task.yaml --json > plan.json"
ACTION = {"try": "[green]try[/]", "later": "[yellow]later[/]", "rule_out": "[red]ruled out[/]"}


def plan(
    task: Annotated[Path, typer.Argument(help="Task description (YAML): data, metric, goal, what you know.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the advice as JSON.")] = False,
) -> None:
    """Advise which ways of adapting the model to try for a task, cheapest first, each with the rules that
    placed it and where they come from; pretraining is always shown, with why it is out of reach."""
    from lmtailor.plan.advisor import plan as advise

    with reported():
        advice = advise(task)
    if as_json:
        print(json.dumps(advice.to_json(), indent=1, ensure_ascii=False))
        return
    console.print(f"[bold]goal[/] {escape(str(advice.task.goal))}", highlight=False)
    for line in advice.inferred:
        console.print(f"  inferred: {escape(line)}", highlight=False)
    table = Table("rung", "action", "why (rule; source)", show_lines=True)
    for p in advice.rungs:
        why = "\n".join(
            escape(v.why + (f" ({v.rule}; {v.source})" if v.source else f" ({v.rule})" if v.rule else ""))
            for v in p.verdicts
        )
        table.add_row(p.rung, ACTION[p.action], why)
    console.print(table)
    for line in advice.data:
        console.print(f"[bold]data[/] {escape(line)}", highlight=False)
