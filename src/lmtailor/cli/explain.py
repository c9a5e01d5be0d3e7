"""`lmtailor explain`: one example's history through a curate run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.syntax import Syntax

from lmtailor.cli.shared import console, reported

EPILOG = "Example:  lmtailor explain alpaca_data_52k:1234 --run runs/alpaca"


def explain(
    example_id: Annotated[str, typer.Argument(help="An example id, `<file stem>:<record index>`.")],
    run: Annotated[Path, typer.Option(help="The curate run folder.")] = Path("runs/curate"),
) -> None:
    """Show one example's history through a curate run: its source record, each change and its fate."""
    from lmtailor.curate.explain import explain as collect

    with reported():
        h = collect(run, example_id)
    # ids, ledger reasons and details, and record text come from the data: escaped, never read as markup
    index = "?" if h.index is None else h.index
    console.print(f"[bold]{escape(h.id)}[/]  source: {escape(h.source or '?')}  record {index}", highlight=False)
    if h.original is not None:
        console.print(Syntax(json.dumps(h.original, ensure_ascii=False, indent=1)[:3000], "json", word_wrap=True))
    for e in h.events:
        what = f"[cyan]{escape(str(e['step']))}[/] {escape(str(e['action']))} [bold]{escape(str(e['reason']))}[/]"
        console.print(f"{what} {escape(str(e.get('detail', '')))}", highlight=False)
        for fld, (before, after) in e.get("changes", {}).items():
            console.print(
                f"    {escape(fld)}: [red]{escape(repr(before[:300]))}[/] -> [green]{escape(repr(after[:300]))}[/]",
                highlight=False,
            )
    if h.twin_of:
        names = ", ".join(e["id"] for e in h.twin_of[:10]) + (" ..." if len(h.twin_of) > 10 else "")
        console.print(f"kept in place of {len(h.twin_of)} duplicate(s): {escape(names)}", highlight=False)
    console.print(f"fate: [bold]{escape(h.fate)}[/]", highlight=False)
    if not h.known:
        raise typer.Exit(1)
