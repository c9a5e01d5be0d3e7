"""`lmtailor rag index|query|eval`: index documents, retrieve passages for questions, measure retrieval."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import TaskID
from rich.table import Table

from lmtailor.cli.shared import (
    ColumnsOpt,
    ProgressOpt,
    console,
    fail,
    names,
    on_error_option,
    one_of,
    out_option,
    renames,
    reported,
)

app = typer.Typer(
    help="Retrieval-augmented generation: index documents (BM25 and all-MiniLM-L6-v2 vectors), retrieve passages "
    "for questions (bm25, dense, or hybrid by reciprocal rank fusion), and measure retrieval on labelled questions.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
MODES = ("bm25", "dense", "hybrid")  # search.MODES, spelled here so that --help does not load the index modules
IndexArg = Annotated[Path, typer.Argument(help="An index folder written by `lmtailor rag index`.")]
ModeOpt = Annotated[str, typer.Option(help="bm25, dense or hybrid (search: mode).", callback=one_of("--mode", MODES))]
KOpt = Annotated[int, typer.Option("--k", "-k", help="Chunks retrieved per question (search: k).")]
Bm25WeightOpt = Annotated[float, typer.Option(help="BM25's weight in hybrid fusion (search: bm25_weight).")]
DenseWeightOpt = Annotated[float, typer.Option(help="Dense search's weight in hybrid fusion (search: dense_weight).")]
DepthOpt = Annotated[int, typer.Option(help="Candidates each retriever gives hybrid fusion (search: depth).")]


@app.command(
    "index",
    epilog="Example:  lmtailor rag index ../shared/data/rag/covid_qa/200423_covidQA.json --out runs/covid_index\n\n"
    "          lmtailor rag index ../shared/data/rag/pubmedqa/ori_pqal.json --out runs/pubmed_index",
)
def index(
    docs: Annotated[
        list[Path],
        typer.Argument(help="Documents: JSONL/JSON/Parquet/CSV, SQuAD or PubMedQA JSON, text files, folders."),
    ],
    out: Annotated[Path, out_option("Index folder (created, or updated in place).")] = Path("runs/rag_index"),
    columns: ColumnsOpt = None,
    unit: Annotated[
        str,
        typer.Option(
            help="Chunk by sentences or tokens (chunking: unit).", callback=one_of("--unit", ("sentences", "tokens"))
        ),
    ] = "sentences",
    chunk_size: Annotated[int, typer.Option(help="Most word pieces per chunk (chunking: size).")] = 200,
    overlap: Annotated[
        int, typer.Option(help="Word pieces a chunk repeats from the one before (chunking: overlap).")
    ] = 40,
    dense: Annotated[
        bool, typer.Option(help="Embed the chunks for dense and hybrid search (--no-dense: BM25 only).")
    ] = True,
    fresh: Annotated[bool, typer.Option(help="Forget the folder's index and stored vectors; build anew.")] = False,
    on_error: Annotated[str, on_error_option("fail (default), or skip documents that cannot be indexed.")] = "fail",
    progress: ProgressOpt = True,
) -> None:
    """Chunk documents and index them for BM25 and dense search. Reindexing embeds only chunks whose text changed,
    drops those of deleted documents, and a killed run resumes without embedding again what it finished."""
    from lmtailor.core.io import DataError
    from lmtailor.core.progress import make_progress
    from lmtailor.prompting.retrieval.chunking import ChunkConfig
    from lmtailor.prompting.retrieval.documents import read_documents
    from lmtailor.prompting.retrieval.index import IndexConfig, build_index
    from lmtailor.prompting.retrieval.sources import skipped_files

    skipped: list[str] = []

    def skip(e: DataError) -> None:
        skipped.append(str(e))

    with reported():
        cfg = IndexConfig(chunking=ChunkConfig(unit=unit, size=chunk_size, overlap=overlap), dense=dense)  # type: ignore[arg-type]
        documents = read_documents(docs, renames(columns), skip if on_error == "skip" else None)
        with make_progress(progress, unit="chunk") as bars:
            tasks: list[TaskID] = []  # the bar appears with the first batch: there may be nothing to embed

            def embedded(done: int, total: int) -> None:
                tasks[:] = tasks or [bars.add_task("embed", total=total)]
                bars.update(tasks[0], completed=done)

            manifest = build_index(documents, out, cfg, inputs=docs, skipped=skipped, fresh=fresh, on_embedded=embedded)
    c = manifest.counts
    console.print(
        f"indexed {c.documents:,} documents as {c.chunks:,} chunks ({escape(cfg.chunking.describe())}) into "
        f"{escape(str(out))}; embedded {c.embedded:,}, reused {c.reused:,}, forgot {c.forgotten:,}",
        highlight=False,
    )
    for line in skipped[:10]:
        console.print(f"skipped: {escape(line)}", highlight=False)
    for path in [f for p in docs for f in skipped_files(p)][:10]:
        console.print(f"not read (neither text nor data): {escape(str(path))}", highlight=False)


def _search(mode: str, k: int, bm25_weight: float, dense_weight: float, depth: int) -> Any:
    from lmtailor.prompting.retrieval.search import SearchConfig

    return SearchConfig(mode=mode, k=k, bm25_weight=bm25_weight, dense_weight=dense_weight, depth=depth)  # type: ignore[arg-type]


@app.command(
    "query",
    epilog='Example:  lmtailor rag query runs/covid_index "What is the incubation period of SARS-CoV-2?"\n\n'
    "          lmtailor rag query runs/covid_index --questions questions.jsonl --out hits.jsonl",
)
def query(
    index: IndexArg,
    question: Annotated[str | None, typer.Argument(help="A question; or --questions for a file of them.")] = None,
    questions: Annotated[
        Path | None, typer.Option(help="Questions: SQuAD, PubMedQA, or records with a `question` field.")
    ] = None,
    out: Annotated[Path | None, out_option("JSONL file for the hits of --questions.", short=False)] = None,
    columns: ColumnsOpt = None,
    mode: ModeOpt = "hybrid",
    k: KOpt = 5,
    bm25_weight: Bm25WeightOpt = 1.0,
    dense_weight: DenseWeightOpt = 1.0,
    depth: DepthOpt = 100,
) -> None:
    """Retrieve the best chunks for a question (printed), or for every question of a file (written to --out, one
    line per question with its citations, the chunk ids, and the hits)."""
    from lmtailor.core.io import write_jsonl
    from lmtailor.prompting.retrieval.index import open_index
    from lmtailor.prompting.retrieval.queries import read_queries
    from lmtailor.prompting.retrieval.search import search

    if (question is None) == (questions is None):
        fail("give one question, or --questions FILE (with --out FILE)")
    if questions is not None and out is None:
        fail("--questions writes its hits to a JSONL file: give --out FILE")
    with reported():
        cfg = _search(mode, k, bm25_weight, dense_weight, depth)
        opened = open_index(index)
        if question is not None:
            (hits,) = search(opened, [question], cfg)
            table = Table("rank", "chunk", "score", "text")
            for h in hits:
                table.add_row(str(h.rank), escape(h.id), f"{h.score:.4f}", escape(h.text[:300]))
            console.print(table)
            return
        asked = list(read_queries(questions, renames(columns)))  # type: ignore[arg-type]
        found = search(opened, [q.text for q in asked], cfg)
        rows = (
            {"id": q.id, "question": q.text, "citations": [h.id for h in hits], "hits": [h.to_json() for h in hits]}
            for q, hits in zip(asked, found, strict=True)
        )
        n = write_jsonl(out, rows)  # type: ignore[arg-type]
    console.print(f"retrieved {k} chunks ({mode}) for each of {n:,} questions into {escape(str(out))}", highlight=False)


@app.command(
    "eval",
    epilog="Example:  lmtailor rag eval runs/covid_index ../shared/data/rag/covid_qa/200423_covidQA.json\n\n"
    "          lmtailor rag eval runs/pubmed_index ../shared/data/rag/pubmedqa/ori_pqal.json --out runs/pubmed_eval",
)
def eval_(
    index: IndexArg,
    questions: Annotated[Path, typer.Argument(help="Labelled questions: SQuAD, PubMedQA, or records with gold.")],
    out: Annotated[
        Path | None, out_option("Folder for summary.json and questions.jsonl (each question's ranks).", short=False)
    ] = None,
    columns: ColumnsOpt = None,
    modes: Annotated[str, typer.Option(help="Comma-separated modes to measure.")] = "bm25,dense,hybrid",
    ks: Annotated[str, typer.Option(help="Comma-separated k of recall@k.")] = "1,5,20",
    bm25_weight: Bm25WeightOpt = 1.0,
    dense_weight: DenseWeightOpt = 1.0,
    depth: DepthOpt = 100,
    answers: Annotated[
        int,
        typer.Option(
            help="Also answer the first N questions with the embedded model and hybrid passages "
            "(SQuAD F1, or PubMedQA's labels); needs --out."
        ),
    ] = 0,
) -> None:
    """Retrieval quality on labelled questions: recall@k, MRR and nDCG@10 per mode. A chunk is relevant when it
    holds the gold answer span (SQuAD), a gold answer text, or comes from the gold document (PubMedQA). With
    --answers, end-to-end answer quality too, through `lmtailor eval` (its run in OUT/answers)."""
    import json

    from lmtailor.core.io import atomic_path, write_jsonl
    from lmtailor.prompting.retrieval.index import open_index
    from lmtailor.prompting.retrieval.metrics import evaluate
    from lmtailor.prompting.retrieval.queries import read_queries

    chosen = names("--modes", modes)
    if bad := [m for m in chosen if m not in MODES]:
        fail(f"--modes takes {', '.join(MODES)}; got {', '.join(map(repr, bad))}")
    try:
        cutoffs = [int(k) for k in names("--ks", ks)]
    except ValueError:
        fail(f"--ks takes comma-separated whole numbers, e.g. 1,5,20; got {ks!r}")
    if min(cutoffs) < 1:
        fail(f"--ks takes numbers of 1 or more; got {ks!r}")
    with reported():
        cfg = _search("hybrid", max(cutoffs), bm25_weight, dense_weight, depth)
        opened = open_index(index)
        asked = list(read_queries(questions, renames(columns)))
        if not any(q.gold for q in asked):
            fail(f"{questions}: no question has gold (answers, answer spans or a gold document) to judge retrieval by")
        result = evaluate(opened, asked, chosen, cutoffs, cfg)  # type: ignore[arg-type]
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            write_jsonl(out / "questions.jsonl", result.rows)
            with atomic_path(out / "summary.json") as tmp:
                tmp.write_text(json.dumps(result.summary, indent=2) + "\n", encoding="utf-8")
    _print_eval(result.summary)
    if answers:
        if out is None:
            fail("--answers writes an eval run into --out; give --out")
        _answer(index, asked[:answers], cfg, out / "answers")


def _answer(index: Path, asked: list[Any], search: Any, out: Path) -> None:
    """The questions answered with their passages, scored by `lmtailor eval`'s evaluation."""
    from lmtailor.cli.evaluate import print_eval_summary
    from lmtailor.core.io import write_jsonl
    from lmtailor.evaluate.qa import qa_examples
    from lmtailor.evaluate.system import EvalRunConfig, evaluate
    from lmtailor.llm.types import BackendError

    examples, task = qa_examples(asked)
    if not examples:
        fail("no question has an answer text or a PubMedQA decision to score the model's answers by")
    data = out.parent / "answers.jsonl"
    write_jsonl(data, ({"id": ex.id, "messages": ex.messages, **ex.metadata} for ex in examples))
    with reported(ValueError, BackendError):
        rag = {"index": index, "search": search.model_copy(update={"k": 5})}
        cfg = EvalRunConfig.model_validate(
            {"data": [{"path": data, "format": "openai"}], "out": out, "task": task, "rag": rag}
        )
        print_eval_summary(evaluate(cfg))


def _print_eval(summary: dict[str, Any]) -> None:
    modes = summary["modes"]
    metrics = [m for m in next(iter(modes.values())) if m not in ("questions", "no_relevant_chunk", "partial_span")]
    table = Table("mode", *metrics)
    for mode, figures in modes.items():
        table.add_row(mode, *(f"{figures[m]:.3f}" for m in metrics))
    console.print(table)
    first = next(iter(modes.values()))
    console.print(
        f"{first['questions']:,} questions with gold ({summary['without_gold']:,} without, left out); "
        f"{first['no_relevant_chunk']:,} have no relevant chunk in the index, {first['partial_span']:,} only chunks "
        "holding part of their answer span",
        highlight=False,
    )
