"""The `lmtailor` command line: each verb is a thin shell over a library function."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax
from rich.text import Text

from lmtailor.audit.finding import SEVERITIES
from lmtailor.core import rundir
from lmtailor.core.io import ON_ERROR, DataError, ReadOptions, read_examples, write_examples
from lmtailor.core.records import FORMATS, RecordError
from lmtailor.curate.recipe import Recipe, RecipeError, default_step

app = typer.Typer(
    help="lmtailor: adapt an open LLM to your task on limited hardware. Start with the data: "
    "`lmtailor curate` cleans a fine-tuning set and accounts for every record it drops.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def _fail(message: str) -> NoReturn:
    """One line on stderr (not wrapped, so a log keeps it whole) and exit 2. The message is printed as written,
    never read as markup: it holds paths and record text, whose square brackets rich would take for tags."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def _reported(*expected: type[Exception]) -> Iterator[None]:
    """Turn the errors a verb can meet (bad data or settings, a file it cannot read or write, and `expected`)
    into one clear line and exit 2 instead of a traceback."""
    try:
        yield
    except ValidationError as e:
        _fail("; ".join(f"{'.'.join(map(str, d['loc'])) or 'value'}: {d['msg']}" for d in e.errors()))
    except (RecipeError, DataError, RecordError, *expected) as e:
        _fail(str(e))
    except OSError as e:  # PermissionError, NotADirectoryError, IsADirectoryError, a full disk, ...
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        _fail(f"{where}: {e.strerror}" if where and e.strerror else str(e))


def _one_of(flag: str, choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A callback that refuses a value outside `choices` while the command line is read, before any work."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            _fail(f"{flag} takes {', '.join(choices)}; got {value!r}")
        return value

    return check


# Past this a limit means nothing, and the readers' byte count would overflow (inf, 1e300).
MAX_RECORD_MB = 2.0**20


def _record_mb(value: float | None) -> float | None:
    """--max-record-mb: a size in MB above 0 (a record cannot be smaller) and at most a terabyte."""
    if value is not None and not (0 < value <= MAX_RECORD_MB):
        _fail(f"--max-record-mb takes a size in MB above 0 and at most {MAX_RECORD_MB:,.0f}; got {value:g}")
    return value


def _names(flag: str, text: str) -> list[str]:
    """A comma-separated list of names; one that names nothing (`,`) is refused, not read as "none"."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        _fail(f"{flag} takes comma-separated names; got {text!r}")
    return names


def _folder(value: str) -> Path:
    """--out: a folder. An empty path (an unset shell variable) is refused rather than read as the current folder,
    whose files the run would replace."""
    if not value.strip():
        _fail("--out takes a folder; got an empty path (to write into the current folder, say `--out .`)")
    return Path(value)


FormatOpt = Annotated[
    str | None, typer.Option(help="Input format, auto-detected if unset.", callback=_one_of("--format", FORMATS))
]
OnErrorOpt = Annotated[
    str, typer.Option(help="fail or skip bad input records (on_error).", callback=_one_of("--on-error", ON_ERROR))
]


@app.command(
    epilog="Example:  lmtailor curate data.jsonl --out runs/clean --steps normalize,exact_dedup,near_dedup,filter\n\n"
    "          lmtailor curate --recipe recipes/spider_sql.yaml --out runs/spider"
)
def curate(
    inputs: Annotated[
        list[Path] | None, typer.Argument(help="Dataset files or `datasets` folders (recipe: inputs).")
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", parser=_folder, help="Run folder for the data, ledger and manifest.")
    ] = Path("runs/curate"),
    recipe: Annotated[Path | None, typer.Option(help="YAML recipe; the flags below override its fields.")] = None,
    steps: Annotated[
        str | None, typer.Option(help="Comma-separated steps with default settings (recipe: steps).")
    ] = None,
    format: Annotated[
        str | None,
        typer.Option(
            help="Input format, auto-detected if unset (recipe: inputs[].format).",
            callback=_one_of("--format", FORMATS),
        ),
    ] = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    output: Annotated[
        str | None, typer.Option(help="Output file name; its suffix picks JSONL/JSON/Parquet/CSV (recipe: output).")
    ] = None,
    output_format: Annotated[
        str | None,
        typer.Option(
            help="alpaca, sharegpt, openai or prompt_completion (recipe: output_format).",
            callback=_one_of("--output-format", FORMATS),
        ),
    ] = None,
    on_error: Annotated[
        str | None,
        typer.Option(
            help="fail (default) or skip bad records into rejects.jsonl (recipe: on_error).",
            callback=_one_of("--on-error", ON_ERROR),
        ),
    ] = None,
    max_record_mb: Annotated[
        float | None, typer.Option(help="Largest record accepted, in MB (recipe: max_record_mb).", callback=_record_mb)
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Ignore checkpoints of an earlier, interrupted run.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Clean a dataset: normalize, deduplicate (exact, near, semantic), filter, decontaminate, mix, select.

    Writes the curated data, [bold]ledger.jsonl[/] (every drop and change, with its reason and kept twin),
    [bold]rejects.jsonl[/], [bold]clusters.jsonl[/] and [bold]manifest.json[/]. Rerunning resumes at the last
    checkpoint and reproduces the same output byte for byte.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary

    overrides: dict[str, Any] = {}
    if inputs:
        overrides["inputs"] = _specs(inputs, format, _columns(columns))
    for key, value in (
        ("output", output),
        ("output_format", output_format),
        ("on_error", on_error),
        ("max_record_mb", max_record_mb),
    ):
        if value is not None:
            overrides[key] = value
    with _reported():
        if steps is not None:
            overrides["steps"] = [default_step(s) for s in _names("--steps", steps)]
        if recipe is not None:
            r = Recipe.load(recipe, overrides)
        elif inputs:
            overrides.setdefault(
                "steps", [default_step(s) for s in ("normalize", "exact_dedup", "near_dedup", "filter")]
            )
            r = Recipe.parse(overrides, "command line")
        else:
            _fail("give input files or --recipe")
        if not inputs:
            for spec in r.inputs:
                spec.format = format or spec.format  # type: ignore[assignment]
                spec.columns = _columns(columns) or spec.columns
        manifest = run_curate(r, out, fresh=fresh, progress=progress)
    print_summary(manifest, str(out), console)


@app.command(epilog="Example:  lmtailor explain alpaca_data_52k:1234 --run runs/alpaca")
def explain(
    example_id: Annotated[str, typer.Argument(help="An example id, `<file stem>:<record index>`.")],
    run: Annotated[Path, typer.Option(help="The curate run folder.")] = Path("runs/curate"),
) -> None:
    """Show one example's history through a curate run: its source record, each change and its fate."""
    from lmtailor.curate.explain import explain as collect

    with _reported():
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


@app.command(epilog="Example:  lmtailor convert lima.json lima.parquet --to openai")
def convert(
    source: Annotated[Path, typer.Argument(help="Input file or `datasets` folder.")],
    target: Annotated[
        Path,
        typer.Argument(
            help="Output path; its suffix picks .jsonl .json .parquet .csv; no suffix: a `datasets` folder."
        ),
    ],
    to: Annotated[
        str,
        typer.Option(
            help="Output format: alpaca, sharegpt, openai, prompt_completion.", callback=_one_of("--to", FORMATS)
        ),
    ] = "openai",
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    on_error: Annotated[
        str,
        typer.Option(
            help="fail or skip (skipped records are listed on stderr).", callback=_one_of("--on-error", ON_ERROR)
        ),
    ] = "fail",
) -> None:
    """Convert a dataset between formats and containers, losslessly where the formats allow."""
    _check_target(source, target)
    rejected: list[str] = []
    opts = ReadOptions(format=format, columns=_columns(columns), on_error=on_error)  # type: ignore[arg-type]
    with _reported():
        n = write_examples(
            target, read_examples(source, opts, lambda r: rejected.append(f"record {r.index}: {r.reason}")), to
        )  # type: ignore[arg-type]
    for line in rejected:
        err.print(f"skipped {source}: {line}", highlight=False, markup=False)
    console.print(f"wrote {n:,} records to {escape(str(target))} ({to}); skipped {len(rejected):,}", highlight=False)


def _check_target(source: Path, target: Path) -> None:
    """Refuse, before reading, a target under a file, a folder of other files, and one that is the source, holds
    it or lies in it: the write replaces the target whole once reading ends, destroying what was there."""
    if target.name in ("", ".."):  # '', '.', '/', 'a/..': a folder that holds others, never the output itself
        _fail(f"{str(target)!r}: names no output; give the converted file a name, e.g. out.jsonl")
    dst = target.resolve()
    blocker = next((p for p in dst.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        _fail(f"{target}: cannot be written: {blocker} is a file, not a folder")
    if source.exists():
        src = source.resolve()
        if (dst.exists() and dst.samefile(src)) or src in dst.parents or dst in src.parents:
            _fail(f"{target}: would overwrite the source {source}; write the conversion to another path")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / "state.json").is_file():  # save_to_disk writes state.json
        _fail(f"{target}: is a folder but not a saved `datasets` one; converting would replace it and all it holds")


def _columns(pairs: list[str] | None) -> dict[str, str]:
    """`--columns response=output` pairs: rename source fields to a format's names."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            _fail(f"--columns takes SOURCE=FIELD, e.g. response=output; got {pair!r}")
        out[src.strip()] = dst.strip()
    return out


COLUMNS_HELP = "Rename a source field, e.g. response=output (repeatable; recipe: inputs[].columns)."


def _specs(inputs: list[Path], format: str | None, columns: dict[str, str]) -> list[dict[str, Any]]:
    """Recipe `inputs` entries for paths given on the command line: absolute, because a recipe file's own
    relative paths are read from the recipe's folder, while these are relative to where the user stands."""
    return [
        {
            "path": str(p.absolute()),
            **({"format": format} if format else {}),
            **({"columns": columns} if columns else {}),
        }
        for p in inputs
    ]


# Backend options shared by the LLM verbs (judge, synth); each maps to a field of llm.config.BackendConfig.
BACKENDS = ("llamacpp", "openai", "transformers")
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="llamacpp (embedded Gemma 3 270M), openai or transformers.",
        callback=_one_of("--backend", BACKENDS),
    ),
]
ModelOpt = Annotated[
    str | None, typer.Option("--model", help="GGUF file, server model name or model folder (default: embedded).")
]
LoraOpt = Annotated[
    str | None, typer.Option("--lora", help="GGUF LoRA adapter served on top of the model (llamacpp backend).")
]
BaseUrlOpt = Annotated[str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")]
ApiKeyEnvOpt = Annotated[str, typer.Option(help="Environment variable holding the API key.")]
ConcurrencyOpt = Annotated[int, typer.Option(help="Requests in flight at once (openai backend).")]
RateLimitOpt = Annotated[float | None, typer.Option(help="At most this many requests per second (openai backend).")]
CacheOpt = Annotated[bool, typer.Option(help="Reuse and store answers in the response cache.")]


def _backend(
    kind: str,
    model: str | None,
    lora: str | None,
    base_url: str | None,
    api_key_env: str,
    concurrency: int,
    rate_limit: float | None,
    cache: bool,
) -> dict[str, Any]:
    """The recipe's `backend` block for the backend flags."""
    return {
        "kind": kind,
        "model": model,
        "lora": lora,
        "base_url": base_url,
        "api_key_env": api_key_env,
        "concurrency": concurrency,
        "rate_limit": rate_limit,
        "cache": cache,
    }


def _expectations(pairs: list[str]) -> dict[str, float]:
    """`--expect refusal=0.05` pairs: a name and a rate, a share from 0 to 1."""
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
        if not sep or not key.strip() or not 0 <= rate <= 1:
            _fail(f"--expect takes NAME=RATE with a rate from 0 to 1, e.g. refusal=0.05; got {pair!r}")
        out[key.strip()] = rate
    return out


@app.command(
    epilog="Example:  lmtailor audit ../shared/data/alpaca/alpaca_data_52k.jsonl --out runs/audit --expect refusal=0.05"
    "\n\n          lmtailor audit data.jsonl --out runs/audit --fail-on high --fix recipes/audit_fix.yaml"
)
def audit(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", parser=_folder, help="Folder for findings.jsonl, summary.json, report.html.")
    ] = Path("runs/audit"),
    checks: Annotated[str | None, typer.Option(help="Comma-separated checks to run (default: all).")] = None,
    expect: Annotated[list[str] | None, typer.Option(help="Expected rate, e.g. refusal=0.05 (repeatable).")] = None,
    eval: Annotated[
        list[Path] | None, typer.Option(help="Evaluation set to look for overlap with (repeatable).")
    ] = None,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    fail_on: Annotated[
        str,
        typer.Option(
            help="Exit 1 when a finding is at this severity or worse: info, low, medium, high, or never.",
            callback=_one_of("--fail-on", (*SEVERITIES, "never")),
        ),
    ] = "never",
    fix: Annotated[
        Path | None,
        typer.Option(
            help="Curate recipe to send flagged records through (a `findings` step drops or quarantines them)."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Debug a dataset like code: refusal balance, capability claims, grounding, formats, mechanical
    correctness, broken fields, duplicates, diversity and annotator agreement.

    Writes [bold]findings.jsonl[/] (one line per finding), [bold]summary.json[/] and a self-contained
    [bold]report.html[/]. With [bold]--fix[/], flagged records then go through curate with every decision in
    the ledger.
    """
    from lmtailor.audit.checks import build_checks
    from lmtailor.audit.run import audit as run_audit
    from lmtailor.curate.summary import print_audit_summary, print_summary

    names = _names("--checks", checks) if checks is not None else None
    with _reported(ValueError):
        selected = build_checks(names, _expectations(expect or []), eval or [])
        opts = ReadOptions(format=format, columns=_columns(columns))  # type: ignore[arg-type]
        summary = run_audit(inputs, selected, out, opts, progress=progress)
    print_audit_summary(summary, str(out), console)
    if fix is not None:
        from lmtailor.curate.pipeline import curate as run_curate
        from lmtailor.curate.steps.findings import Findings

        with _reported():
            recipe = Recipe.load(fix, {"inputs": _specs(inputs, format, _columns(columns))})
        acting = [s for s in recipe.steps if isinstance(s, Findings)]
        if not acting:
            acting = [Findings()]
            recipe.steps.insert(0, acting[0])
        for s in acting:
            s.path = s.path or out / "findings.jsonl"
        with _reported():
            manifest = run_curate(recipe, out / "fixed", fresh=True, progress=progress)
        print_summary(manifest, str(out / "fixed"), console)
    if fail_on != "never":
        results = summary["checks"].values()
        present = {s for c in results for s, n in c["by_severity"].items() if n}
        present |= {f["severity"] for c in results for f in c["dataset_findings"]}
        worst = max(present, key=SEVERITIES.index, default=None)
        if worst is not None and SEVERITIES.index(worst) >= SEVERITIES.index(fail_on):
            err.print(f"[bold red]audit failed:[/] findings at {worst} severity (--fail-on {fail_on})")
            raise typer.Exit(1)


@app.command(
    epilog="Example:  lmtailor score ../shared/data/alpaca/alpaca_data_52k.jsonl --classifier "
    "--good ../shared/data/lima/lima.json --unlabeled ../shared/data/alpaca/alpaca_data_52k.jsonl "
    "--out runs/score --top-fraction 0.2\n\n"
    "          lmtailor score new.jsonl --classifier --reuse runs/score/classifier.npz --out runs/score_new --top 500"
)
def score(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders to score.")],
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", parser=_folder, help="Run folder for the scored data, ledger, manifest, classifier."
        ),
    ] = Path("runs/score"),
    classifier: Annotated[
        bool, typer.Option("--classifier", help="Score with a quality classifier (embeddings + logistic regression).")
    ] = False,
    good: Annotated[list[Path] | None, typer.Option(help="Trusted good examples (repeatable; train: label good).")] = (
        None
    ),
    bad: Annotated[list[Path] | None, typer.Option(help="Known bad examples (repeatable; train: label bad).")] = None,
    unlabeled: Annotated[
        list[Path] | None, typer.Option(help="A pool of unknown quality, e.g. raw Alpaca (train: label unlabeled).")
    ] = None,
    labeled: Annotated[
        list[Path] | None, typer.Option(help="Examples labelled one by one in --label-field (train: label_field).")
    ] = None,
    label_field: Annotated[
        str | None, typer.Option(help="The field of --labeled records holding 0/1, true/false or good/bad.")
    ] = None,
    reuse: Annotated[
        Path | None, typer.Option(help="A classifier.npz saved by an earlier run, instead of training (classifier).")
    ] = None,
    threshold: Annotated[float | None, typer.Option(help="Keep scores >= this (threshold).")] = None,
    top: Annotated[int | None, typer.Option(help="Keep the N best (top).")] = None,
    top_fraction: Annotated[float | None, typer.Option(help="Keep this share, best first (top_fraction).")] = None,
    fields: Annotated[
        str | None, typer.Option(help="Comma-separated fields to embed (fields; default instruction,input,output).")
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds (folds).")] = 5,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    output: Annotated[str, typer.Option(help="Output file name in the run folder (output).")] = "scored.jsonl",
    on_error: OnErrorOpt = "fail",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Score a dataset with a cheap quality classifier trained on a small trusted set, and keep the good part.

    Reports the classifier's cross-validated quality, writes [bold]quality_score[/] and its provenance into each
    kept record, every dropped record with its score to [bold]ledger.jsonl[/], and the classifier to
    [bold]classifier.npz[/] for reuse.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary
    from lmtailor.score.classify import print_report

    if not classifier:
        _fail("choose a scorer: --classifier (LLM judging is `lmtailor judge`)")
    sets = {"good": good, "bad": bad, "unlabeled": unlabeled}
    train = [{"path": str(p.resolve()), "label": label} for label, paths in sets.items() for p in paths or []]
    train += [{"path": str(p.resolve()), "label_field": label_field} for p in labeled or []]
    if bool(labeled) != bool(label_field):
        _fail("--labeled files and --label-field (the field holding each record's label) go together")
    if reuse is not None and train:
        _fail("--reuse scores with a saved classifier; drop --good/--bad/--unlabeled/--labeled, or drop --reuse")
    if reuse is None and not (good and (bad or unlabeled)) and not labeled:
        _fail("train on --good with --bad or --unlabeled, or on --labeled with --label-field; or --reuse a classifier")
    step: dict[str, Any] = {"step": "classify", "folds": folds, "threshold": threshold, "top": top}
    step |= {"top_fraction": top_fraction, **({"fields": _names("--fields", fields)} if fields is not None else {})}
    if reuse is not None:
        step["classifier"] = str(reuse.resolve())
    else:
        step |= {"train": train, "save": str(out.resolve() / "classifier.npz")}
    specs = _specs(inputs, format, _columns(columns))
    with _reported(ValueError):
        data = {"inputs": specs, "steps": [step], "output": output, "on_error": on_error}
        recipe = Recipe.parse(data, "command line")
        manifest = run_curate(recipe, out, progress=progress)
    print_report(manifest["steps"][-1]["metrics"], console)
    print_summary(manifest, str(out), console)


synth_app = typer.Typer(
    help="Generate training data with an LLM: self-instruct, back-translation, paraphrase, failure targeting. "
    "Every new record carries its provenance (backend, model, template, seed ids) and goes through the ledger.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
app.add_typer(synth_app, name="synth")
SynthOutOpt = Annotated[
    Path, typer.Option("--out", "-o", parser=_folder, help="Run folder for the data, ledger and manifest.")
]
SeedOpt = Annotated[int, typer.Option(help="Sampling seed; part of the cache key, so a rerun is free.")]
MaxRougeOpt = Annotated[float, typer.Option(help="ROUGE-L F at or above which a text counts as a copy.")]
MaxTokensOpt = Annotated[int, typer.Option(help="Most tokens the model writes per answer (step: max_tokens).")]


def _synth(
    inputs: list[Path],
    step: dict[str, Any],
    out: Path,
    format: str | None,
    columns: list[str] | None,
    backend: dict[str, Any],
    progress: bool,
) -> None:
    """Run one generating step through curate (ledger, manifest) and print what it made, dropped and spent."""
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.llm.types import BackendError
    from lmtailor.synth.report import print_synth_summary

    with _reported(BackendError):
        recipe = Recipe.parse(
            {"inputs": _specs(inputs, format, _columns(columns)), "steps": [{**step, "backend": backend}]},
            "command line",
        )
        manifest = run_curate(recipe, out, progress=progress)
    print_synth_summary(manifest, out, console)


@synth_app.command(
    "self-instruct",
    epilog="Example:  lmtailor synth self-instruct ../shared/data/alpaca/seed_tasks.jsonl --n 20 --out runs/synth_si",
)
def synth_self_instruct(
    seeds: Annotated[list[Path], typer.Argument(help="Seed tasks: self-instruct's seed file, or any dataset.")],
    out: SynthOutOpt = Path("runs/synth_self_instruct"),
    n: Annotated[int, typer.Option(help="New examples wanted (step: n).")] = 20,
    max_rounds: Annotated[int, typer.Option(help="Give up after this many rounds (step: max_rounds).")] = 20,
    max_rouge: MaxRougeOpt = 0.7,
    temperature: Annotated[float, typer.Option(help="Sampling temperature for new instructions.")] = 0.8,
    prompts_per_round: Annotated[int, typer.Option(help="Task lists asked for per round.")] = 8,
    max_tokens: Annotated[int, typer.Option(help="Most tokens per task list (step: max_tokens).")] = 256,
    output_tokens: Annotated[int, typer.Option(help="Most tokens per input and output.")] = 256,
    keep_seeds: Annotated[bool, typer.Option(help="Write the seeds too (step: keep_inputs).")] = False,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    lora: LoraOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    rate_limit: RateLimitOpt = None,
    cache: CacheOpt = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """New tasks from seed tasks: the model continues numbered task lists, then writes an input and output for
    each new task. Near copies (ROUGE-L) of any instruction held, and tasks about images or files, are dropped.
    """
    from lmtailor.synth.self_instruct import convert_seed_tasks, is_seed_tasks

    readable = []
    for path in seeds:
        if is_seed_tasks(path):
            target = out / "inputs" / f"{path.stem}.jsonl"
            with _reported():
                rundir.prepare(out)  # the converted seeds go inside it: a file there is refused first
                count = convert_seed_tasks(path, target)
            console.print(
                f"read {count:,} seed tasks from {escape(str(path))} in self-instruct's format; "
                f"as alpaca: {escape(str(target))}",
                highlight=False,
            )
            readable.append(target)
        else:
            readable.append(path)
    step = {"step": "self_instruct", "n": n, "max_rounds": max_rounds, "max_rouge": max_rouge,
            "temperature": temperature, "prompts_per_round": prompts_per_round, "max_tokens": max_tokens,
            "output_tokens": output_tokens, "keep_inputs": keep_seeds, "seed": seed}  # fmt: skip
    kind = _backend(backend, model, lora, base_url, api_key_env, concurrency, rate_limit, cache)
    _synth(readable, step, out, format, columns, kind, progress)


@synth_app.command(
    "backtranslate",
    epilog="Example:  lmtailor synth backtranslate ../shared/data/lima/lima.json --field output --out runs/synth_bt",
)
def synth_backtranslate(
    docs: Annotated[list[Path], typer.Argument(help="Datasets whose --field holds the documents.")],
    out: SynthOutOpt = Path("runs/synth_backtranslate"),
    field: Annotated[str, typer.Option(help="Field holding the document (step: field).")] = "output",
    keep_inputs: Annotated[bool, typer.Option(help="Write the source records too (step: keep_inputs).")] = False,
    max_tokens: MaxTokensOpt = 64,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    lora: LoraOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    rate_limit: RateLimitOpt = None,
    cache: CacheOpt = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Instruction back-translation: each document becomes an answer, and the model writes the instruction it
    answers. Empty, cut-off or copied instructions are dropped."""
    step = {"step": "backtranslate", "field": field, "keep_inputs": keep_inputs, "max_tokens": max_tokens, "seed": seed}
    kind = _backend(backend, model, lora, base_url, api_key_env, concurrency, rate_limit, cache)
    _synth(docs, step, out, format, columns, kind, progress)


@synth_app.command(
    "paraphrase", epilog="Example:  lmtailor synth paraphrase ../shared/data/lima/lima.json --n 3 --out runs/synth_pp"
)
def synth_paraphrase(
    inputs: Annotated[list[Path], typer.Argument(help="Datasets whose instructions are reworded.")],
    out: SynthOutOpt = Path("runs/synth_paraphrase"),
    n: Annotated[int, typer.Option(help="Rewordings asked for per record (step: n).")] = 3,
    max_rouge: MaxRougeOpt = 0.8,
    min_similarity: Annotated[
        float, typer.Option(help="Least embedding cosine with the original: below it the meaning drifted (0: off).")
    ] = 0.75,
    keep_inputs: Annotated[bool, typer.Option(help="Keep the originals beside their rewordings.")] = True,
    max_tokens: MaxTokensOpt = 96,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    lora: LoraOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    rate_limit: RateLimitOpt = None,
    cache: CacheOpt = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """N rewordings of each instruction (input and answer kept), deduplicated against every original and each
    other (exact copies once folded, ROUGE-L near copies); rewordings whose meaning drifted are dropped too."""
    step = {"step": "paraphrase", "n": n, "max_rouge": max_rouge, "min_similarity": min_similarity,
            "keep_inputs": keep_inputs, "max_tokens": max_tokens, "seed": seed}  # fmt: skip
    kind = _backend(backend, model, lora, base_url, api_key_env, concurrency, rate_limit, cache)
    _synth(inputs, step, out, format, columns, kind, progress)


@synth_app.command(
    "failures",
    epilog="Example:  lmtailor synth failures cases.jsonl --per-case 3 --out runs/synth_fail\n\n"
    '          cases.jsonl: {"instruction": ..., "input": ..., "output": EXPECTED, "model_answer": WRONG}',
)
def synth_failures(
    cases: Annotated[list[Path], typer.Argument(help="Evaluation cases the model got wrong.")],
    out: SynthOutOpt = Path("runs/synth_failures"),
    per_case: Annotated[int, typer.Option(help="New examples asked for per case (step: per_case).")] = 3,
    wrong_field: Annotated[str, typer.Option(help="Field with the model's wrong answer.")] = "model_answer",
    max_rouge: MaxRougeOpt = 0.7,
    max_tokens: MaxTokensOpt = 192,
    seed: SeedOpt = 0,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    lora: LoraOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    rate_limit: RateLimitOpt = None,
    cache: CacheOpt = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Training examples aimed at evaluation failures: the same skill on new subjects. The cases never reach the
    output, and generated questions too close to any case (ROUGE-L) are dropped as leaks."""
    step = {"step": "failure_targets", "per_case": per_case, "wrong_field": wrong_field, "max_rouge": max_rouge,
            "max_tokens": max_tokens, "seed": seed}  # fmt: skip
    kind = _backend(backend, model, lora, base_url, api_key_env, concurrency, rate_limit, cache)
    _synth(cases, step, out, format, columns, kind, progress)


@app.command(
    epilog="Example:  lmtailor judge ../shared/data/alpaca/alpaca_data_52k.jsonl --out runs/judge --min-score 3\n\n"
    "          lmtailor judge ../shared/data/dolly/dolly_first6400.jsonl --columns response=output "
    "--pair output,flan_t5_base_output --preferred a --out runs/judge_pairs"
)
def judge(
    inputs: Annotated[list[Path], typer.Argument(help="Dataset files or `datasets` folders to judge.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", parser=_folder, help="Run folder for the data, ledger and manifest.")
    ] = Path("runs/judge"),
    rubric: Annotated[
        str, typer.Option(help="Comma-separated rubrics: helpfulness, correctness, groundedness or --rubrics-file's.")
    ] = "helpfulness,correctness",
    rubrics_file: Annotated[
        Path | None, typer.Option(help="YAML: rubric name -> criteria text, or -> {criteria, needs_input, demos}.")
    ] = None,
    field: Annotated[str, typer.Option(help="The answer judged: output, or a field the records carry.")] = "output",
    min_score: Annotated[
        float | None, typer.Option(help="Drop records whose mean grade is below this; unset: keep all, ranked.")
    ] = None,
    against: Annotated[
        Path | None, typer.Option(help="Pairwise: compare each answer with the matching record's in this file.")
    ] = None,
    match: Annotated[str, typer.Option(help="Match --against records by position or instruction.")] = "position",
    pair: Annotated[
        str | None, typer.Option(help="Pairwise: two fields of each record, e.g. output,flan_t5_base_output.")
    ] = None,
    labels: Annotated[
        str | None, typer.Option(help="Field with human grades 1-5 (pairwise: a, b or tie): report agreement.")
    ] = None,
    preferred: Annotated[
        str | None, typer.Option(help="Pairwise: the answer known to be better in every pair (a or b).")
    ] = None,
    method: Annotated[
        str, typer.Option(help="weighted: expected grade from P(1..5) (G-Eval); generate: the grade written.")
    ] = "weighted",
    reasons: Annotated[bool, typer.Option(help="Ask for a reason with each grade (--no-reasons is faster).")] = True,
    max_tokens: MaxTokensOpt = 160,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    output: Annotated[str, typer.Option(help="Output file name in the run folder.")] = "judged.jsonl",
    backend: BackendOpt = "llamacpp",
    model: ModelOpt = None,
    lora: LoraOpt = None,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = "OPENAI_API_KEY",
    concurrency: ConcurrencyOpt = 4,
    rate_limit: RateLimitOpt = None,
    cache: CacheOpt = True,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Grade records with an LLM against rubrics (1-5 with a reason), or compare two answers per instruction.

    Writes grades into each record (judge_<rubric>, judge_reason_<rubric>, judge_score; pairwise:
    judge_preferred, judge_p_a) with its provenance, and every drop to [bold]ledger.jsonl[/]. With [bold]--labels[/]
    it reports agreement with human grades. A killed run resumes from the response cache.
    """
    from lmtailor.curate.pipeline import curate as run_curate
    from lmtailor.curate.summary import print_summary
    from lmtailor.llm.types import BackendError
    from lmtailor.score.judge import print_judge_summary

    specs = _specs(inputs, format, _columns(columns))
    step: dict[str, Any] = {
        "step": "judge",
        "backend": _backend(backend, model, lora, base_url, api_key_env, concurrency, rate_limit, cache),
        "rubrics": _names("--rubric", rubric),
        "rubrics_file": str(rubrics_file.absolute()) if rubrics_file else None,
        "field": field,
        "method": method,
        "reasons": reasons,
        "min_score": min_score,
        "labels": labels,
        "preferred": preferred,
        "match": match,
        "max_tokens": max_tokens,
    }
    if against is not None:
        step["against"] = _specs([against], format, _columns(columns))[0]
    if pair is not None:
        step["pair"] = _names("--pair", pair)
    with _reported(BackendError, ValueError):
        recipe = Recipe.parse({"inputs": specs, "steps": [step], "output": output}, "command line")
        manifest = run_curate(recipe, out, progress=progress)
    print_summary(manifest, str(out), console)
    print_judge_summary(manifest, console)


@app.command(
    epilog="Example:  lmtailor train data.jsonl --method lora --out runs/lora\n\n"
    "          lmtailor train --config recipes/train_sql.yaml --method full --out runs/full"
)
def train(
    inputs: Annotated[list[Path] | None, typer.Argument(help="Training data files (config: train).")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML training config; the flags below override it.")] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", parser=_folder, help="Run folder (config: out).")] = None,
    model: Annotated[
        str | None, typer.Option(help="Hugging Face model folder, or 'embedded' for Gemma 3 270M (config: model).")
    ] = None,
    method: Annotated[str | None, typer.Option(help="lora, qlora, dora or full (config: method).")] = None,
    eval: Annotated[
        list[Path] | None, typer.Option("--eval", help="Held-out examples (repeatable; config: eval).")
    ] = None,
    format: FormatOpt = None,
    columns: Annotated[list[str] | None, typer.Option(help=COLUMNS_HELP)] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data (config: epochs).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps; overrides epochs.")] = None,
    learning_rate: Annotated[
        float | None, typer.Option(help="Peak learning rate; default 2e-4 for adapters, 2e-5 for full.")
    ] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (config: lora.r).")] = None,
    lora_alpha: Annotated[float | None, typer.Option(help="LoRA alpha (config: lora.alpha).")] = None,
    max_length: Annotated[int | None, typer.Option(help="Tokens per example; longer ones are cut.")] = None,
    packing: Annotated[
        bool | None, typer.Option(help="Pack examples into rows (default) or bucket them by length.")
    ] = None,
    row_length: Annotated[
        int | None, typer.Option(help="Packing: tokens per row (default max_length); shorter rows train faster.")
    ] = None,
    tokens_per_batch: Annotated[int | None, typer.Option(help="Packing: tokens per micro-batch.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Bucketing: examples per micro-batch.")] = None,
    grad_accum: Annotated[int | None, typer.Option(help="Micro-batches per optimizer step.")] = None,
    eval_every: Annotated[int | None, typer.Option(help="Steps between validation losses (0: each epoch).")] = None,
    save_every: Annotated[int | None, typer.Option(help="Steps between checkpoints.")] = None,
    early_stopping: Annotated[
        int | None, typer.Option(help="Stop after this many evaluations without improvement (0: off).")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the split, the order and the initialisation.")] = None,
    export: Annotated[
        list[str] | None, typer.Option(help="adapter, merged, gguf (repeatable; default per method).")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="Task metric: exact_match or sql (config: evaluate.task.metric).")
    ] = None,
    databases: Annotated[
        Path | None, typer.Option(help="sql: folder of SQLite files or Defog dumps, for execution accuracy.")
    ] = None,
    eval_fraction: Annotated[
        float | None, typer.Option(help="Share of the training data held out when there is no --eval (0.1).")
    ] = None,
    eval_limit: Annotated[int | None, typer.Option(help="Held-out examples answered for the task metric.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Longest answer generated when scoring.")] = None,
    general_texts: Annotated[
        int | None, typer.Option(help="General texts for the cross-entropy forgetting probe (0: off).")
    ] = None,
    mmlu: Annotated[int | None, typer.Option(help="MMLU questions for the accuracy forgetting probe (0: off).")] = None,
    restart: Annotated[bool, typer.Option(help="Discard an earlier run in --out instead of resuming it.")] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Fine-tune with LoRA, QLoRA, DoRA or full fine-tuning, and measure what the model learned and forgot.

    Before and after training it scores the held-out task and two forgetting probes (cross-entropy on general
    text, MMLU accuracy; their data is read from ../shared/data, config: evaluate.forgetting.data_root) and
    prints the changes. Writes [bold]metrics.jsonl[/], [bold]curves.png[/],
    [bold]manifest.json[/] and the exports. A killed run resumes from its last checkpoint when run again.
    """
    from lmtailor.train.config import TrainConfig

    fields = {"out": out, "model": model, "method": method, "epochs": epochs, "max_steps": max_steps,
              "learning_rate": learning_rate, "max_length": max_length, "packing": packing, "row_length": row_length,
              "tokens_per_batch": tokens_per_batch, "batch_size": batch_size, "grad_accum": grad_accum,
              "eval_every": eval_every, "save_every": save_every, "early_stopping": early_stopping, "seed": seed,
              "export": export, "eval_fraction": eval_fraction, "eval_limit": eval_limit,
              "progress": progress}  # fmt: skip
    overrides: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    task = {k: v for k, v in (("metric", metric), ("databases", databases), ("max_new_tokens", max_new_tokens))
            if v is not None}  # fmt: skip
    probes = {k: v for k, v in (("general_texts", general_texts), ("mmlu", mmlu)) if v is not None}
    spec = {"format": format, "columns": _columns(columns)}
    if inputs:
        overrides["train"] = [{"path": p, **spec} for p in inputs]
    if eval:
        overrides["eval"] = [{"path": p, **spec} for p in eval]
    lora = {k: v for k, v in (("r", lora_r), ("alpha", lora_alpha)) if v is not None}
    with _reported(ValueError):  # ValidationError, DataError and RecordError are ValueErrors
        if config is not None:
            base = TrainConfig.load(config).model_dump()
        elif inputs:
            base = {}
        else:
            _fail("give training data files or --config")
        evaluate = base.get("evaluate", {})
        overrides["lora"] = {**base.get("lora", {}), **lora}
        forgetting = {**evaluate.get("forgetting", {}), **probes}
        forgetting["data_root"] = forgetting.get("data_root") or Path("../shared/data")  # beside the repository
        overrides["evaluate"] = {"task": {**evaluate.get("task", {}), **task}, "forgetting": forgetting}
        cfg = TrainConfig.model_validate({**base, **overrides})
    probe_data = cfg.evaluate.forgetting.data_root
    if (cfg.evaluate.forgetting.general_texts or cfg.evaluate.forgetting.mmlu) and not probe_data.is_dir():
        _fail(f"the forgetting probes read lima/, dolly/ and mmlu/ from {probe_data} ({probe_data.resolve()}), "
              "which is not a folder: run from the repository root, set evaluate.forgetting.data_root in a "
              "--config, or turn the probes off with --general-texts 0 --mmlu 0")  # fmt: skip
    from lmtailor.train.model import TrainError  # torch and transformers load here, once the options hold
    from lmtailor.train.run import train as run_train

    with _reported(ValueError, TrainError):
        run_train(cfg, restart=restart)


@app.command(epilog="Example:  lmtailor demo --out demo_out")
def demo(
    out: Annotated[Path, typer.Option(parser=_folder, help="Folder for the generated data and the run.")] = Path(
        "demo_out"
    ),
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Generate a text-to-SQL dataset with known defects, curate it, and check every defect was caught."""
    from lmtailor.demo.shop import run_demo

    with _reported():
        passed = run_demo(rundir.prepare(out), progress=progress)
    if not passed:
        raise typer.Exit(1)
