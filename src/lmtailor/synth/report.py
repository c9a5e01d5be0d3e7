"""Terminal summary of a synth run: what the model generated, what was dropped and why, what it cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from lmtailor.core.io import read_examples
from lmtailor.core.rundir import CurateFolder
from lmtailor.curate.manifest import Manifest
from lmtailor.curate.summary import steps_table

SHOWN = 2  # generated examples printed as a sample


def print_synth_summary(manifest: Manifest, out_dir: Path, console: Console) -> None:
    """Like curate's summary, without its warning about steps that drop most records: a generating step drops
    every candidate it rejects and, by default, its inputs."""
    console.print(steps_table(manifest))
    c = manifest.counts
    status = "[green]every record accounted for[/]" if c.accounted else "[red]records unaccounted for[/]"
    console.print(
        f"input {c.input:,} + generated {c.added:,} = kept {c.kept:,} + dropped {c.dropped:,} "
        f"+ rejected {c.rejected:,}: {status}"
    )
    where = escape(f"{out_dir}/{manifest.output.path}")
    console.print(f"wrote {where}, {CurateFolder.LEDGER}, {CurateFolder.INDEX}", highlight=False)
    step = manifest.step_stats[-1]
    metrics = step.metrics
    made, kept = metrics.get("candidates", 0), metrics.get("accepted", 0)
    drops = {k.removeprefix("drop:"): n for k, n in step.reasons.items() if k.startswith("drop:")}
    why = ", ".join(f"{reason} {n:,}" for reason, n in sorted(drops.items(), key=lambda kv: -kv[1]))
    console.print(f"generated {made:,} candidates, kept {kept:,}; dropped: {escape(why or 'none')}", highlight=False)
    if usage := metrics.get("usage"):
        cost = f", ${usage['cost_usd']:.4f}" if usage["cost_usd"] else ""
        console.print(
            f"LLM: {usage['calls']:,} calls ({usage['cached_calls']:,} from the cache), "
            f"{usage['prompt_tokens']:,} prompt + {usage['completion_tokens']:,} completion tokens in "
            f"{usage['seconds']:.1f} s, {_rate(usage):,.0f} tok/s{cost}",
            highlight=False,
        )
    if stopped := metrics.get("stopped"):
        console.print(f"[yellow]warning:[/] stopped early: {escape(stopped)}", highlight=False)
    if not manifest.output.records:
        return
    shown = 0
    for ex in read_examples(out_dir / manifest.output.path):
        origin = ex.metadata.get("extra", {}).get("provenance")
        if origin is None:
            continue
        sample = {"seed_ids": origin.get("seed_ids"), "instruction": ex.contents("user")[-1], "input": ex.input,
                  "output": ex.contents("assistant")[-1]}  # fmt: skip
        console.print(json.dumps(sample, ensure_ascii=False)[:600], highlight=False, markup=False)
        shown += 1
        if shown == SHOWN:
            break


def _rate(usage: dict[str, Any]) -> float:
    tokens = usage["prompt_tokens"] + usage["completion_tokens"]
    return tokens / usage["seconds"] if usage["seconds"] else 0.0
