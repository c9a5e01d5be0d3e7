"""What the verbs share: how an error is reported, the options several verbs take (each written once here), and
the readers of the values those options hold."""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from lmtailor.core.config import ConfigError
from lmtailor.core.io import ON_ERROR, DataError
from lmtailor.core.records import FORMATS, RecordError

console = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


def fail(message: str) -> NoReturn:
    """One line on stderr (not wrapped, so a log keeps it whole) and exit 2. The message is printed as written,
    never read as markup: it holds paths and record text, whose square brackets rich would take for tags."""
    err.print(Text.assemble(("error:", "bold red"), " ", message), highlight=False, soft_wrap=True)
    raise typer.Exit(2)


@contextmanager
def reported(*expected: type[Exception]) -> Iterator[None]:
    """Turn the errors a verb can meet (bad data or settings, a file it cannot read or write, and `expected`)
    into one clear line and exit 2 instead of a traceback."""
    try:
        yield
    except ValidationError as e:
        fail("; ".join(f"{'.'.join(map(str, d['loc'])) or 'value'}: {d['msg']}" for d in e.errors()))
    except (ConfigError, DataError, RecordError, *expected) as e:
        fail(str(e))
    except OSError as e:  # PermissionError, NotADirectoryError, IsADirectoryError, a full disk, ...
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f is not None)
        fail(f"{where}: {e.strerror}" if where and e.strerror else str(e))


def one_of(flag: str, choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A callback that refuses a value outside `choices` while the command line is read, before any work."""

    def check(value: str | None) -> str | None:
        if value is not None and value not in choices:
            fail(f"{flag} takes {', '.join(choices)}; got {value!r}")
        return value

    return check


def names(flag: str, text: str) -> list[str]:
    """A comma-separated list of names; one that names nothing (`,`) is refused, not read as "none"."""
    found = [n.strip() for n in text.split(",") if n.strip()]
    if not found:
        fail(f"{flag} takes comma-separated names; got {text!r}")
    return found


def renames(pairs: list[str] | None) -> dict[str, str]:
    """`--columns response=output` pairs: rename source fields to a format's names."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        src, sep, dst = pair.partition("=")
        if not sep or not src.strip() or not dst.strip():
            fail(f"--columns takes SOURCE=FIELD, e.g. response=output; got {pair!r}")
        out[src.strip()] = dst.strip()
    return out


def input_specs(inputs: list[Path], format: str | None, columns: dict[str, str]) -> list[dict[str, Any]]:
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


def _folder(value: str) -> Path:
    """--out: a folder. An empty path (an unset shell variable) is refused rather than read as the current folder,
    whose files the run would replace."""
    if not value.strip():
        fail("--out takes a folder; got an empty path (to write into the current folder, say `--out .`)")
    return Path(value)


RUN_FOLDER = "Run folder for the data, ledger and manifest."


def out_option(help: str = RUN_FOLDER, short: bool = True) -> Any:
    """--out (and -o unless `short` is off): the folder a verb writes, in the verb's words."""
    return typer.Option("--out", *(["-o"] if short else []), parser=_folder, help=help)


def format_option(help: str = "Input format, auto-detected if unset.") -> Any:
    """--format: one of the formats lmtailor reads, refused before any work when it is not."""
    return typer.Option(help=help, callback=one_of("--format", FORMATS))


def on_error_option(help: str) -> Any:
    """--on-error: fail or skip, in the words of the verb (where the skipped records go)."""
    return typer.Option(help=help, callback=one_of("--on-error", ON_ERROR))


FormatOpt = Annotated[str | None, format_option()]
ColumnsOpt = Annotated[
    list[str] | None,
    typer.Option(help="Rename a source field, e.g. response=output (repeatable; recipe: inputs[].columns)."),
]
ProgressOpt = Annotated[bool, typer.Option(help="Show progress bars.")]
MaxTokensOpt = Annotated[int, typer.Option(help="Most tokens the model writes per answer (step: max_tokens).")]
# How a task is scored: train's before/after and eval take the same options (config: evaluate.task / task).
METRICS = ("exact_match", "sql", "squad", "choice")
MetricOpt = Annotated[
    str | None,
    typer.Option(help="Task metric: exact_match, sql, squad or choice (config: task.metric).",
                 callback=one_of("--metric", METRICS)),
]  # fmt: skip
DatabasesOpt = Annotated[
    Path | None, typer.Option(help="sql: folder of SQLite files or Defog dumps, for execution accuracy.")
]
MaxNewTokensOpt = Annotated[int | None, typer.Option(help="Longest answer generated when scoring.")]

BACKENDS = ("llamacpp", "openai", "transformers")


def backend_options(
    backend: Annotated[
        str,
        typer.Option(
            help="llamacpp (embedded Gemma 3 270M), openai or transformers.", callback=one_of("--backend", BACKENDS)
        ),
    ] = "llamacpp",
    model: Annotated[
        str | None, typer.Option(help="GGUF file, server model name or model folder (default: embedded).")
    ] = None,
    lora: Annotated[
        str | None, typer.Option(help="GGUF LoRA adapter served on top of the model (llamacpp backend).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible server, e.g. http://127.0.0.1:8000/v1.")
    ] = None,
    api_key_env: Annotated[str, typer.Option(help="Environment variable holding the API key.")] = "OPENAI_API_KEY",
    concurrency: Annotated[int, typer.Option(help="Requests in flight at once (openai backend).")] = 4,
    rate_limit: Annotated[
        float | None, typer.Option(help="At most this many requests per second (openai backend).")
    ] = None,
    cache: Annotated[bool, typer.Option(help="Reuse and store answers in the response cache.")] = True,
) -> dict[str, Any]:
    """The backend options of the LLM verbs (judge, synth), as the recipe's `backend` block: the flags `backend`'s
    config (llm.config) takes, and any other that was set, which that config then refuses rather than the run
    ignoring it."""
    from lmtailor.llm.config import BACKEND_CONFIGS, OpenAIConfig

    takes = BACKEND_CONFIGS[backend].model_fields
    server = OpenAIConfig.model_fields  # the flags' defaults: all but --lora are the server's settings
    flags = {"model": model, "lora": lora, "base_url": base_url, "api_key_env": api_key_env,
             "concurrency": concurrency, "rate_limit": rate_limit, "cache": cache}  # fmt: skip
    unset = {k for k, v in flags.items() if v is None or (k in server and v == server[k].default)}
    return {"kind": backend, **{k: v for k, v in flags.items() if k in takes or k not in unset}}


BACKEND = backend_options()  # the block the options give when none is set


def with_backend_options(verb: Callable[..., None]) -> Callable[..., None]:
    """Give a verb the backend options: its parameter `backend` is replaced, where it stands (so --help lists
    them there), by the parameters of `backend_options`, and receives the block they make."""
    signature = inspect.signature(verb, eval_str=True)
    block = list(inspect.signature(backend_options, eval_str=True).parameters.values())
    params = [q for p in signature.parameters.values() for q in (block if p.name == "backend" else [p])]

    @functools.wraps(verb)
    def run(**values: Any) -> None:
        chosen = {p.name: values.pop(p.name) for p in block}
        verb(**values, backend=backend_options(**chosen))

    run.__signature__ = signature.replace(parameters=params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    return run
