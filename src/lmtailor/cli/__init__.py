"""The `lmtailor` command line: each verb is a thin shell over a library function, in a module of its own;
shared.py holds the options several verbs take and how errors are reported."""

from __future__ import annotations

import typer

from lmtailor.cli import audit, convert, curate, demo, evaluate, explain, icl, judge, plan, rag, score, synth, train

app = typer.Typer(
    help="lmtailor: adapt an open LLM to your task on limited hardware. Start with the data: "
    "`lmtailor curate` cleans a fine-tuning set and accounts for every record it drops.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
app.command(epilog=curate.EPILOG)(curate.curate)
app.command(epilog=explain.EPILOG)(explain.explain)
app.command(epilog=convert.EPILOG)(convert.convert)
app.command(epilog=audit.EPILOG)(audit.audit)
app.command(epilog=score.EPILOG)(score.score)
app.add_typer(synth.app, name="synth")
app.add_typer(rag.app, name="rag")
app.command(epilog=judge.EPILOG)(judge.judge)
app.command(epilog=train.EPILOG)(train.train)
app.command(name="eval", epilog=evaluate.EPILOG)(evaluate.evaluate)
app.command(epilog=icl.EPILOG)(icl.icl)
app.command(epilog=plan.EPILOG)(plan.plan)
app.command(epilog=demo.EPILOG)(demo.demo)
