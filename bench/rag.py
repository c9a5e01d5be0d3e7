"""Retrieval: quality on COVID-QA and PubMedQA, speed against peers, reindexing, and the PubMedQA RAG row.

    python bench/rag.py                          # everything (about an hour on 2 shared cores: embedding, the LLM)
    python bench/rag.py --rag-questions 0        # retrieval only, no LLM
    python bench/rag.py --work runs/bench_rag    # keep the indexes: a rerun reuses their vectors (build times then
                                                 # show reuse, and say so)

What runs, in one process, one section after another:

1. Quality. Each corpus is indexed as `lmtailor rag index` does (sentences packed to 200 all-MiniLM word pieces,
   40 of overlap; BM25 by bm25s; all-MiniLM-L6-v2 unit vectors, exact inner-product search), into a fresh
   folder with a fresh embedding cache, so the build time is the whole cost. COVID-QA: the 98 articles are the
   documents, a chunk is relevant to a question when it contains the gold answer span whole (COVID-QA's
   `answer_start` misses its answer by a few characters for 234 answers; the answer is placed at its nearest
   occurrence), or, where no chunk does (a long answer across a boundary), the chunks holding part of it.
   PubMedQA (PQA-L, 1,000 questions): the 1,000 abstracts (CONTEXTS joined; never LONG_ANSWER) are the
   documents, the relevant chunks are those of the question's own abstract. Questions are split in halves by
   a hash of their id; hybrid's BM25 weight (dense weight 1) is chosen on the validation half by recall@5
   (MRR breaks ties) and every figure is reported on the other half. The chunking is fixed: choosing it on the
   validation half would mean embedding each corpus once per candidate (`--chunk-size` runs another).
2. Speed. BM25: bm25s (lmtailor's `lexical`) against rank-bm25's BM25Okapi on the same tokens (bm25s's
   tokenizer, English stop words, Snowball stems), index build and queries/s (top 20; rank-bm25 scores every
   chunk per query in Python, then numpy picks the top 20). Dense: lmtailor's numpy search against faiss's
   IndexFlatIP (both exact, both on the machine's cores), the questions as one batch and one at a time (the
   prompter's path), on the COVID-QA vectors and on `--synthetic` random unit vectors of the same width.
   Synthetic corpus: Alpaca's outputs and instructions (with their inputs) as documents, one chunk each or
   more, indexed lexically only (embedding 100k chunks with MiniLM on 2 cores would take hours); its dense
   figures use the random vectors.
3. Reindexing: 1% of each corpus's documents edited (a sentence inserted mid-document), indexed again in place:
   chunks embedded and seconds, against the first, full build.
4. The PubMedQA RAG row (`--rag-questions`, from the test half): the embedded Gemma 3 270M (llama.cpp, no
   response cache) chooses yes/no/maybe by the log-likelihood of each label (`score_task`, metric `choice`),
   asked with no context, with hybrid-retrieved chunks from the index of all 1,000 abstracts (k=5, at most
   `--budget` Gemma tokens), and with the gold abstract. Accuracy with its 95% bootstrap interval, prompt
   tokens, and how often retrieval put a chunk of the gold abstract in the prompt.

Everything is printed as markdown tables under the command that made them; the figures also go to
bench/out/rag.json with the machine, load average and package versions.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from machine import machine

from lmtailor.core.records import Example
from lmtailor.llm.types import Prompt
from lmtailor.prompting.prompter import Asked, Prompter
from lmtailor.prompting.retrieval import dense, lexical
from lmtailor.prompting.retrieval.chunking import ChunkConfig, sentence_spans
from lmtailor.prompting.retrieval.documents import Document, read_documents
from lmtailor.prompting.retrieval.index import Index, IndexConfig, IndexManifest, build_index, open_index
from lmtailor.prompting.retrieval.metrics import evaluate
from lmtailor.prompting.retrieval.prompter import RetrievalPrompter, render, with_context
from lmtailor.prompting.retrieval.queries import Query, read_queries
from lmtailor.prompting.retrieval.search import Hit, SearchConfig
from lmtailor.text.embeddings import DIM, embed

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
COVID = DATA / "rag" / "covid_qa" / "200423_covidQA.json"
PUBMED = DATA / "rag" / "pubmedqa" / "ori_pqal.json"
ALPACA = DATA / "alpaca" / "alpaca_data_52k.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "rag.json"
KS = (1, 5, 20)
BM25_WEIGHTS = (0.25, 0.5, 1.0, 2.0, 4.0)  # hybrid's BM25 weight, dense weight 1, chosen on the validation half
LABELS = ["yes", "no", "maybe"]


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


@contextmanager
def fresh_embedding_cache() -> Iterator[None]:
    """Embeddings computed, not found in the user's cache: a build's time is then its whole cost."""
    before = os.environ.get("LMTAILOR_CACHE")
    with tempfile.TemporaryDirectory(prefix="bench-rag-cache-") as folder:
        os.environ["LMTAILOR_CACHE"] = folder
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("LMTAILOR_CACHE", None)
            else:
                os.environ["LMTAILOR_CACHE"] = before


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def half(query: Query) -> str:
    """validation or test, by a hash of the question's id: the same split on every run."""
    return "validation" if hashlib.blake2b(query.id.encode(), digest_size=4).digest()[0] % 2 == 0 else "test"


# ---------------------------------------------------------------- 1. quality


def build(name: str, docs: list[Document], work: Path, cfg: IndexConfig) -> tuple[Index, IndexManifest, float]:
    with fresh_embedding_cache():
        manifest, seconds = timed(lambda: build_index(docs, work / name, cfg))
    return open_index(work / name), manifest, seconds


def quality(name: str, index: Index, queries: list[Query]) -> dict[str, Any]:
    """Hybrid's BM25 weight chosen on the validation half; every mode measured on the test half."""
    validation = [q for q in queries if half(q) == "validation"]
    test = [q for q in queries if half(q) == "test"]
    tuning = {}
    for weight in BM25_WEIGHTS:
        figures = evaluate(index, validation, ["hybrid"], KS, SearchConfig(bm25_weight=weight)).summary
        tuning[weight] = figures["modes"]["hybrid"]
    best = max(BM25_WEIGHTS, key=lambda w: (tuning[w]["recall@5"], tuning[w]["mrr@20"], w == 1.0))
    modes = evaluate(index, test, ["bm25", "dense", "hybrid"], KS).summary["modes"]
    tuned = evaluate(index, test, ["hybrid"], KS, SearchConfig(bm25_weight=best)).summary["modes"]["hybrid"]
    return {
        "corpus": name,
        "validation": len(validation),
        "test": len(test),
        "bm25_weight": best,
        "tuning": {str(w): f for w, f in tuning.items()},
        "modes": {**modes, f"hybrid (bm25 {best:g}:1)": tuned},
    }


# ---------------------------------------------------------------- 2. speed


def bm25_speed(texts: list[str], questions: list[str], rank_bm25_queries: int) -> list[dict[str, Any]]:
    """bm25s against rank-bm25 on the same tokens: build seconds and top-20 queries per second."""
    from rank_bm25 import BM25Okapi

    ours, built = timed(lambda: lexical.build(texts))
    _, searched = timed(lambda: lexical.top(ours, questions, 20))
    tokens, tokenized = timed(lambda: lexical.tokenize(texts))
    theirs, theirs_built = timed(lambda: BM25Okapi(tokens))
    asked = lexical.tokenize(questions[:rank_bm25_queries])
    _, theirs_searched = timed(lambda: [np.argpartition(-theirs.get_scores(q), 20)[:20] for q in asked])
    return [
        {"library": f"bm25s {metadata.version('bm25s')}", "chunks": len(texts), "build_s": built,
         "queries": len(questions), "queries_per_s": len(questions) / searched},
        {"library": f"rank-bm25 {metadata.version('rank-bm25')}", "chunks": len(texts),
         "build_s": tokenized + theirs_built, "queries": len(asked), "queries_per_s": len(asked) / theirs_searched},
    ]  # fmt: skip


def dense_speed(vectors: np.ndarray, queries: np.ndarray, label: str, singles: int) -> list[dict[str, Any]]:
    """numpy against faiss IndexFlatIP: a batch of queries, and queries one at a time; top 20 both."""
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    flat, faiss_built = timed(lambda: _flat(faiss, vectors))
    ours, batch = timed(lambda: dense.top(vectors, queries, 20))
    (_, theirs), faiss_batch = timed(lambda: flat.search(queries, 20))
    one = queries[:singles]
    _, single = timed(lambda: [dense.top(vectors, q[None], 20) for q in one])
    _, faiss_single = timed(lambda: [flat.search(q[None], 20) for q in one])
    agree = np.mean([len({r for r, _ in a} & set(b.tolist())) / 20 for a, b in zip(ours, theirs, strict=True)])
    return [
        {"search": "numpy (lmtailor)", "corpus": label, "vectors": len(vectors), "build_s": 0.0,
         "batch_queries_per_s": len(queries) / batch, "single_queries_per_s": len(one) / single, "top20_agree": 1.0},
        {"search": f"faiss {faiss.__version__} IndexFlatIP", "corpus": label, "vectors": len(vectors),
         "build_s": faiss_built, "batch_queries_per_s": len(queries) / faiss_batch,
         "single_queries_per_s": len(one) / faiss_single, "top20_agree": float(agree)},
    ]  # fmt: skip


def _flat(faiss: Any, vectors: np.ndarray) -> Any:
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat


def alpaca_docs(n: int) -> list[Document]:
    """Alpaca's outputs and instructions (with their inputs) as `n` documents."""
    docs: list[Document] = []
    with ALPACA.open() as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            for field, text in (("output", r["output"]), ("instruction", f"{r['instruction']}\n{r['input']}".strip())):
                if text.strip() and len(docs) < n:
                    docs.append(Document(f"alpaca:{i}:{field}", text, f"{ALPACA}: record {i}"))
            if len(docs) >= n:
                break
    return docs


def unit_vectors(n: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM), dtype=np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


# ---------------------------------------------------------------- 3. reindexing


def edited(docs: list[Document], share: float) -> tuple[list[Document], int]:
    """The documents with `share` of them (evenly spread) given a sentence in their middle."""
    step = max(1, round(1 / share))
    out, n = [], 0
    for i, doc in enumerate(docs):
        if i % step == 0:
            spans = sentence_spans(doc.text)
            at = spans[len(spans) // 2][0]
            doc = Document(
                doc.id, f"{doc.text[:at]}This sentence was added by the benchmark. {doc.text[at:]}", doc.where
            )
            n += 1
        out.append(doc)
    return out, n


# ---------------------------------------------------------------- 4. the PubMedQA RAG row


class GoldAbstract(Prompter):
    """The question with its own abstract before it, shown as the retrieval prompter shows passages."""

    def __init__(self, inner: Prompter, abstracts: dict[str, str], count_tokens: Callable[[str], int]):
        self.inner, self.abstracts, self.count_tokens = inner, abstracts, count_tokens

    def prompt(self, example: Example) -> Prompt:
        return self.ask(example).prompt

    def ask(self, example: Example) -> Asked:
        text = self.abstracts[example.id]
        context = render([Hit(example.id, example.id, 0, len(text), text, 1.0, 1)])
        notes = {"citations": [example.id], "context": context, "context_tokens": self.count_tokens(context)}
        return Asked(self.inner.prompt(with_context(example, context)), notes)


def rag_row(index: Index, queries: list[Query], n: int, budget: int) -> list[dict[str, Any]]:
    from lmtailor.evaluate.task import TaskConfig, score_task
    from lmtailor.llm.config import LlamaCppConfig, open_llm
    from lmtailor.prompting.template import Turns

    asked = [q for q in queries if half(q) == "test"][:n]
    examples = [
        Example(
            q.id,
            [{"role": "user", "content": f"Question: {q.text}\nAnswer yes, no or maybe."},
             {"role": "assistant", "content": q.record["final_decision"]}],
            metadata={"question": q.text},
        )
        for q in asked
    ]  # fmt: skip
    abstracts = {q.id: "\n".join(q.record["CONTEXTS"]) for q in asked}
    llm = open_llm(LlamaCppConfig(cache=False))
    cfg = TaskConfig(metric="choice", labels=LABELS)
    systems = {
        "no context": Turns(),
        "retrieved (hybrid, k=5)": RetrievalPrompter(index, Turns(), llm.count_tokens, SearchConfig(k=5), budget),
        "gold abstract": GoldAbstract(Turns(), abstracts, llm.count_tokens),
    }
    rows = []
    try:
        for name, prompter in systems.items():
            result, seconds = timed(lambda p=prompter: score_task(llm, p, examples, cfg))
            s, preds = result.summary, result.predictions
            cited = [any(c.split("#")[0] == p["id"] for c in p.get("citations", [])) for p in preds]
            rows.append({
                "system": name, "questions": s["n"], "accuracy": s["score"], "ci95": s["ci95"],
                "prompt_tokens_p50": s["cost"]["prompt_tokens"]["p50"],
                "context_tokens_mean": float(np.mean([p.get("context_tokens", 0) for p in preds])),
                "gold_abstract_in_prompt": float(np.mean(cited)) if name != "no context" else None,
                "seconds": seconds,
            })  # fmt: skip
    finally:
        llm.backend.close()
    return rows


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=None, help="where the indexes go (default: a temporary folder)")
    p.add_argument("--chunk-size", type=int, default=200)
    p.add_argument("--overlap", type=int, default=40)
    p.add_argument("--synthetic", type=int, default=100_000, help="documents of the synthetic Alpaca corpus")
    p.add_argument("--rank-bm25-queries", type=int, default=100, help="queries asked of rank-bm25 (it is slow)")
    p.add_argument("--single-queries", type=int, default=200, help="queries timed one at a time")
    p.add_argument("--edit-share", type=float, default=0.01)
    p.add_argument("--rag-questions", type=int, default=30, help="PubMedQA test questions for the RAG row (0: none)")
    p.add_argument("--budget", type=int, default=512, help="most Gemma tokens of retrieved context")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    command = "python bench/rag.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    print(f"`{command}`\n", flush=True)
    load_before = os.getloadavg()
    cfg = IndexConfig(chunking=ChunkConfig(size=args.chunk_size, overlap=args.overlap))
    tables: list[str] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as tmp:
        work = args.work or Path(tmp)
        corpora = {"COVID-QA": COVID, "PubMedQA": PUBMED}
        docs = {name: list(read_documents([path])) for name, path in corpora.items()}
        queries = {name: list(read_queries(path)) for name, path in corpora.items()}
        built: dict[str, tuple[Index, IndexManifest, float]] = {}
        for name in corpora:
            built[name] = build(name, docs[name], work, cfg)
            _, manifest, seconds = built[name]
            results.setdefault("builds", {})[name] = {**manifest.counts.model_dump(), "seconds": seconds}
        tables.append(table(
            f"Index builds ({cfg.chunking.describe()}; a fresh embedding cache)",
            ["corpus", "documents", "chunks", "embedded", "reused", "seconds", "chunks embedded/s"],
            [[n, b["documents"], b["chunks"], b["embedded"], b["reused"], b["seconds"],
              b["embedded"] / b["seconds"]] for n, b in results["builds"].items()],
        ))  # fmt: skip

        for name in corpora:
            q = quality(name, built[name][0], queries[name])
            results.setdefault("quality", {})[name] = q
            first = next(iter(q["modes"].values()))
            tables.append(table(
                f"{name}: retrieval on the test half ({q['test']} questions; hybrid's BM25 weight "
                f"{q['bm25_weight']:g} chosen on the {q['validation']} validation questions; "
                f"{first['no_relevant_chunk']} without a relevant chunk, {first['partial_span']} relevant by part "
                "of their answer span)",
                ["mode", "recall@1", "recall@5", "recall@20", "MRR@20", "nDCG@10"],
                [[m, f["recall@1"], f["recall@5"], f["recall@20"], f["mrr@20"], f["ndcg@10"]]
                 for m, f in q["modes"].items()],
            ))  # fmt: skip

        covid_index = built["COVID-QA"][0]
        questions = [q.text for q in queries["COVID-QA"]]
        alpaca, read_s = timed(lambda: alpaca_docs(args.synthetic))
        lexical_cfg = IndexConfig(chunking=cfg.chunking, dense=False)
        manifest, synthetic_s = timed(lambda: build_index(alpaca, work / "alpaca", lexical_cfg))
        synthetic = open_index(work / "alpaca")
        results["synthetic"] = {"documents": len(alpaca), "chunks": manifest.counts.chunks, "read_s": read_s,
                                "index_s": synthetic_s, "stages_s": manifest.seconds}  # fmt: skip
        tables.append(table(
            f"Lexical index of {len(alpaca):,} Alpaca documents (`build_index`, --no-dense): chunk, BM25, write",
            ["chunks", "chunk s", "BM25 s", "whole build s"],
            [[manifest.counts.chunks, manifest.seconds["chunk"], manifest.seconds["bm25"], synthetic_s]],
        ))  # fmt: skip
        bm25_rows = bm25_speed(covid_index.chunks.texts, questions, len(questions))
        bm25_rows += bm25_speed(synthetic.chunks.texts, questions, args.rank_bm25_queries)
        results["bm25_speed"] = bm25_rows
        tables.append(table(
            "BM25: bm25s against rank-bm25 (same tokens; top 20; build includes tokenizing)",
            ["library", "chunks", "build s", "queries", "queries/s"],
            [[r["library"], r["chunks"], r["build_s"], r["queries"], r["queries_per_s"]] for r in bm25_rows],
        ))  # fmt: skip
        with fresh_embedding_cache():
            question_vectors = embed(questions)
        dense_rows = dense_speed(covid_index.vectors, question_vectors, "COVID-QA", args.single_queries)
        synthetic_vectors = unit_vectors(manifest.counts.chunks, 0)
        dense_rows += dense_speed(synthetic_vectors, unit_vectors(len(questions), 1), "random", args.single_queries)
        results["dense_speed"] = dense_rows
        tables.append(table(
            f"Dense exact search: numpy against faiss (top 20; batch of {len(questions):,} queries; "
            f"{args.single_queries} one at a time)",
            ["search", "vectors", "build s", "batch queries/s", "single queries/s", "top-20 agreement"],
            [[r["search"], f"{r['vectors']:,} ({r['corpus']})", r["build_s"], r["batch_queries_per_s"],
              r["single_queries_per_s"], r["top20_agree"]] for r in dense_rows],
        ))  # fmt: skip

        reindex_rows = []
        for name in corpora:
            changed, n_edited = edited(docs[name], args.edit_share)
            with fresh_embedding_cache():
                manifest, seconds = timed(lambda c=changed, n=name: build_index(c, work / n, cfg))
            full = results["builds"][name]
            reindex_rows.append({"corpus": name, "edited": n_edited, "documents": len(changed),
                                 "embedded": manifest.counts.embedded, "forgotten": manifest.counts.forgotten,
                                 "seconds": seconds, "full_embedded": full["embedded"],
                                 "full_seconds": full["seconds"]})  # fmt: skip
        results["reindex"] = reindex_rows
        tables.append(table(
            f"Reindexing with {args.edit_share:.0%} of the documents edited, against the full build",
            ["corpus", "edited", "chunks embedded", "vectors dropped", "seconds", "full build: embedded", "seconds"],
            [[r["corpus"], f"{r['edited']} of {r['documents']:,}", r["embedded"], r["forgotten"], r["seconds"],
              r["full_embedded"], r["full_seconds"]] for r in reindex_rows],
        ))  # fmt: skip

        if args.rag_questions:
            pubmed = open_index(work / "PubMedQA")
            rows = rag_row(pubmed, queries["PubMedQA"], args.rag_questions, args.budget)
            results["rag_row"] = rows
            tables.append(table(
                f"PubMedQA yes/no/maybe, Gemma 3 270M by label log-likelihood ({rows[0]['questions']} test "
                f"questions; retrieval from the index of all 1,000 abstracts, at most {args.budget} tokens)",
                ["system", "accuracy", "95% CI", "prompt tokens p50", "context tokens (mean)",
                 "gold abstract in prompt", "seconds"],
                [[r["system"], r["accuracy"], f"{r['ci95'][0]:.3f}–{r['ci95'][1]:.3f}", r["prompt_tokens_p50"],
                  r["context_tokens_mean"], "–" if r["gold_abstract_in_prompt"] is None
                  else f"{r['gold_abstract_in_prompt']:.0%}", r["seconds"]] for r in rows],
            ))  # fmt: skip

    out = {
        "command": command,
        "machine": machine(("bm25s", "rank-bm25", "faiss-cpu", "numpy", "torch"), load_before),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results,
        "tables": tables,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}; wrote {args.out}")


if __name__ == "__main__":
    main()
