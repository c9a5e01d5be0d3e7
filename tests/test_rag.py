"""Retrieval: chunk spans, BM25/dense/hybrid search, the incremental and resumable index, refusals, bad input, the
retrieval prompter and `lmtailor rag index|query|eval`, on COVID-QA articles and PubMedQA abstracts copied from
../shared/data into each test's folder."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lmtailor.cli import app
from lmtailor.core.io import DataError, read_jsonl
from lmtailor.core.records import Example
from lmtailor.core.rundir import RunFolderError, file_digest
from lmtailor.prompting.few_shot import FewShot
from lmtailor.prompting.retrieval.chunking import (
    ChunkConfig,
    _packed,
    _windows,
    chunk,
    fits_whole,
    pieces,
    sentence_spans,
)
from lmtailor.prompting.retrieval.documents import Document, read_documents
from lmtailor.prompting.retrieval.index import IndexConfig, IndexMismatch, build_index, open_index
from lmtailor.prompting.retrieval.metrics import evaluate, judge, ndcg, relevant, summary
from lmtailor.prompting.retrieval.prompter import RetrievalConfig, RetrievalPrompter
from lmtailor.prompting.retrieval.queries import Gold, read_queries
from lmtailor.prompting.retrieval.search import SearchConfig, fuse, search
from lmtailor.prompting.retrieval.store import StoreError, VectorStore

runner = CliRunner()
LEXICAL = IndexConfig(dense=False)
BM25 = SearchConfig(mode="bm25", k=5)


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def covid(tmp_path: Path, shared_data: Path) -> Path:
    """Three COVID-QA articles (of 98) with their 27 questions, in SQuAD's own shape."""
    data = json.loads((shared_data / "rag" / "covid_qa" / "200423_covidQA.json").read_text())
    path = tmp_path / "covid.json"
    path.write_text(json.dumps({"data": data["data"][:3]}))
    return path


@pytest.fixture
def pubmed(tmp_path: Path, shared_data: Path) -> Path:
    """Eight PubMedQA abstracts with their questions, keyed by PubMed id as PubMedQA ships them."""
    data = json.loads((shared_data / "rag" / "pubmedqa" / "ori_pqal.json").read_text())
    path = tmp_path / "pubmed.json"
    path.write_text(json.dumps(dict(list(data.items())[:8])))
    return path


# ---------------------------------------------------------------- chunking


@pytest.mark.parametrize(
    "cfg",
    [ChunkConfig(), ChunkConfig(unit="tokens", size=64, overlap=16), ChunkConfig(size=48, overlap=0)],
    ids=lambda c: f"{c.unit}-{c.size}-{c.overlap}",
)
def test_chunk_spans_map_back_to_the_source_text_exactly(covid: Path, cfg: ChunkConfig) -> None:
    for doc in read_documents([covid]):
        spans = chunk(doc.text, cfg)
        assert all(doc.text[s.start : s.end] == s.text for s in spans)
        assert all(len(p) <= cfg.size for p in pieces([s.text for s in spans]))  # as the embedder counts
        covered = np.zeros(len(doc.text), dtype=bool)
        for s in spans:
            covered[s.start : s.end] = True
        assert all(covered[i] or doc.text[i].isspace() for i in range(len(doc.text)))  # nothing is lost
        shared = [doc.text[b.start : a.end] for a, b in itertools.pairwise(spans) if a.end > b.start]
        assert all(a.start < b.start for a, b in itertools.pairwise(spans))
        assert all(len(p) <= cfg.overlap for p in pieces(shared))  # overlap within its size
        if cfg.unit == "tokens":
            assert len(shared) == len(spans) - 1
        if cfg.overlap == 0:
            assert shared == []


@pytest.mark.parametrize("cfg", [ChunkConfig(size=120, overlap=10), ChunkConfig(unit="tokens", size=120, overlap=10)])
def test_a_short_document_is_one_chunk_as_splitting_it_would_find(pubmed: Path, cfg: ChunkConfig) -> None:
    """The shortcut that spares short documents the tokenizer: at most `size` characters that are not space mean
    at most `size` word pieces, so splitting would give the same one chunk."""
    sentences = [d.text[a:b] for d in read_documents([pubmed]) for a, b in sentence_spans(d.text)]
    short = [f"  {s} " for s in sentences if fits_whole(s, cfg)]
    assert len(short) > 20
    for text, split in zip(short, pieces(short), strict=True):
        full = _windows(split, 0, len(split), cfg) if cfg.unit == "tokens" else _packed(text, split, cfg)
        assert [(c.start, c.end) for c in chunk(text, cfg)] == list(full) == [(2, len(text) - 1)]


def test_sentences_end_at_their_stop_not_at_abbreviations_or_initials() -> None:
    text = "Cases rose (Fig. 2), e.g. in Wuhan. J. Smith et al. agree!  Next one?\n\nA new paragraph"
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Cases rose (Fig. 2), e.g. in Wuhan.",
        "J. Smith et al. agree!",
        "Next one?",
        "A new paragraph",
    ]


def test_a_chunk_size_the_embedder_cannot_read_whole_is_refused(tmp_path: Path) -> None:
    docs = [Document("a", "text", "a.txt")]
    with pytest.raises(IndexMismatch, match="longer than all-MiniLM-L6-v2 reads"):
        build_index(docs, tmp_path / "idx", IndexConfig(chunking=ChunkConfig(size=300)))
    with pytest.raises(ValueError, match=r"overlap .40. must be smaller than size .40."):
        ChunkConfig(size=40, overlap=40)


# ---------------------------------------------------------------- search and metrics


def test_reciprocal_rank_fusion_adds_weight_over_c_plus_rank() -> None:
    fused = dict(fuse([[1, 2, 3], [3, 1]], [1.0, 1.0], c=60))
    assert fused == pytest.approx({1: 1 / 61 + 1 / 62, 2: 1 / 62, 3: 1 / 63 + 1 / 61})
    assert [item for item, _ in fuse([[1, 2, 3], [3, 1]], [1.0, 1.0])] == [1, 3, 2]
    assert [item for item, _ in fuse([[1, 2, 3], [3, 1]], [1.0, 3.0])] == [3, 1, 2]  # dense weighs 3: its first wins
    assert [item for item, _ in fuse([[5, 6], [6, 5]], [1.0, 1.0])] == [5, 6]  # a tie keeps the order first met


def test_bm25_retrieves_the_passage_holding_the_answer(covid: Path, tmp_path: Path) -> None:
    build_index(read_documents([covid]), tmp_path / "idx", LEXICAL)
    index = open_index(tmp_path / "idx")
    (hits,) = search(index, ["What is the main cause of HIV-1 infection in children?"], BM25)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5] and hits[0].score >= hits[-1].score
    assert any("Mother-to-child transmission (MTCT) is the main cause" in h.text for h in hits[:2])
    assert all(h.id.startswith(f"{h.doc}#") for h in hits)
    with pytest.raises(DataError, match="lexical-only index"):
        search(index, ["children"], SearchConfig(mode="hybrid"))


def test_recall_mrr_and_ndcg_on_a_hand_labelled_ranking() -> None:
    judged = [judge([7, 3, 9, 4], frozenset({3, 4})), judge([1, 2], frozenset({1})), judge([5], frozenset({8}))]
    got = summary(judged, ks=(1, 2, 4), ndcg_k=4)
    assert got["recall@1"] == pytest.approx(1 / 3) and got["recall@2"] == pytest.approx(2 / 3)
    assert got["recall@4"] == pytest.approx(2 / 3)
    assert got["mrr@4"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    first = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg(judged[0], 4) == pytest.approx(first)
    assert got["ndcg@4"] == pytest.approx((first + 1 + 0) / 3)


def test_relevance_by_answer_span_answer_text_and_gold_document(covid: Path, tmp_path: Path) -> None:
    cfg = IndexConfig(dense=False, chunking=ChunkConfig(size=64, overlap=16))
    build_index(read_documents([covid]), tmp_path / "idx", cfg)
    chunks = open_index(tmp_path / "idx").chunks
    queries = list(read_queries(covid))
    assert len(queries) == 27
    for q in queries:
        rows, partial = relevant(q.gold, chunks)
        ((doc, start, end),) = q.gold.spans
        assert rows and {chunks.docs[r] for r in rows} == {doc}
        inside = all(chunks.starts[r] <= start and chunks.ends[r] >= end for r in rows)
        assert inside != partial  # whole spans, or, for an answer across a boundary, the chunks holding part of it
    by_text, _ = relevant(Gold(answers=("MOTHER-to-child  transmission",)), chunks)
    assert by_text and all("mother-to-child transmission" in chunks.texts[r].lower() for r in by_text)
    whole_doc, _ = relevant(Gold(doc_ids=frozenset({"630"})), chunks)
    assert whole_doc == frozenset(chunks.by_doc["630"])


def test_misplaced_squad_answer_offsets_are_placed_at_the_nearest_occurrence(shared_data: Path) -> None:
    path = shared_data / "rag" / "covid_qa" / "200423_covidQA.json"
    contexts = {d.id: d.text for d in read_documents([path])}
    queries = list(read_queries(path))
    assert len(queries) == 1380 and all(len(q.gold.spans) == 1 for q in queries)
    shifted = 0
    for q in queries:
        ((doc, start, end),) = q.gold.spans
        assert contexts[doc][start:end] == q.gold.answers[0]
        shifted += start != q.record["answers"][0]["answer_start"]
    assert shifted == 234  # COVID-QA's offsets that miss their answer by a few characters


# ---------------------------------------------------------------- documents and questions: shapes and bad input


def test_pubmedqa_abstracts_are_documents_and_its_questions_have_their_abstract_as_gold(pubmed: Path) -> None:
    docs = list(read_documents([pubmed]))
    first = next(iter(json.loads(pubmed.read_text()).items()))
    assert docs[0].id == first[0] and docs[0].text == "\n".join(first[1]["CONTEXTS"])
    assert "LONG_ANSWER" not in docs[0].text and first[1]["LONG_ANSWER"] not in docs[0].text
    (q, *_) = read_queries(pubmed)
    assert q.text == first[1]["QUESTION"] and q.gold == Gold(doc_ids=frozenset({first[0]}))


def test_text_files_and_folders_are_documents_named_by_their_path(tmp_path: Path) -> None:
    (tmp_path / "docs" / "sub").mkdir(parents=True)
    (tmp_path / "docs" / "a.txt").write_text("Alpha text.")
    (tmp_path / "docs" / "sub" / "a.txt").write_text("Another alpha.")
    (tmp_path / "docs" / "notes.jsonl").write_text('{"id": "n1", "body": "A note."}\n')
    (tmp_path / "docs" / "image.png").write_bytes(b"\x89PNG")
    docs = list(read_documents([tmp_path / "docs"]))
    assert [(d.id, d.text) for d in docs] == [
        ("a.txt", "Alpha text."),
        ("n1", "A note."),
        ("sub/a.txt", "Another alpha."),
    ]
    result = runner.invoke(app, ["rag", "index", str(tmp_path / "docs"), "--out", str(tmp_path / "i"), "--no-dense"])
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents as 3 chunks" in flat(result.output)
    assert f"not read (neither text nor data): {tmp_path / 'docs' / 'image.png'}" in flat(result.output)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "text": "fine"}', '{"id": "b", "text": "  "}'], "record 1 (line 2): the document is empty"),
        (['{"id": "a", "title": "no text here"}'], "record 0 (line 1): has no text field (it has ['id', 'title'])"),
        (['{"id": "a", "text": "one"}', '{"id": "a", "text": "two"}'], "record 1 (line 2): document id 'a' is also"),
        (['{"id": "a", "text": 3}'], "record 0 (line 1): field 'text' is a JSON int, not text"),
        (['["a list"]'], "record 0 (line 1): is a JSON list, not an object"),
        (['{"text": "ok"}', '{"text": "broken'], "record 1 (line 2): invalid JSON"),
    ],
    ids=["empty", "no-text", "same-id", "not-text", "not-object", "broken"],
)
def test_bad_documents_are_named_by_file_and_record(tmp_path: Path, lines: list[str], message: str) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as e:
        list(read_documents([path]))
    assert str(e.value).startswith(f"{path}: {message}")
    result = runner.invoke(app, ["rag", "index", str(path), "--out", str(tmp_path / "i"), "--no-dense"])
    assert result.exit_code == 2 and flat(result.output).startswith(f"error: {path}: {message}")


def test_skipped_documents_are_named_in_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "Kept."}\n{"id": "b", "text": ""}\n{"id": "c", "body": "Also kept."}\n')
    args = ["rag", "index", str(path), "--out", str(tmp_path / "i"), "--no-dense", "--on-error", "skip"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert manifest["counts"]["documents"] == 2 and manifest["counts"]["skipped"] == 1
    assert manifest["skipped"] == [f"{path}: record 1 (line 2): the document is empty: field 'text' holds no text"]
    ((given, digest),) = [(i.pop("path"), i) for i in manifest["inputs"]]
    assert given == str(path) and digest == file_digest(path)


def test_an_empty_file_and_a_question_file_in_no_known_shape_are_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="the file is empty"):
        list(read_documents([empty]))
    odd = tmp_path / "odd.jsonl"
    odd.write_text('{"prompt": "What?", "completion": "That."}\n')
    with pytest.raises(DataError, match=r"odd.jsonl: record 0 \(line 1\): matches no known query shape \(SQuAD"):
        list(read_queries(odd))
    later = tmp_path / "later.jsonl"
    later.write_text('{"question": "Why?"}\n{"query_text": "How?"}\n')
    with pytest.raises(DataError, match=r"later.jsonl: record 1 \(line 2\): has no question field"):
        list(read_queries(later))
    keyed = tmp_path / "keyed.json"
    keyed.write_text('{"1": {"QUESTION": "Why?"}, "2": "not a record"}')
    with pytest.raises(DataError, match=r"keyed.json: record 1: the value of key '2' is a JSON str"):
        list(read_queries(keyed))
    assert [q.text for q in read_queries(later, {"query_text": "question"})] == ["Why?", "How?"]


# ---------------------------------------------------------------- the index folder


def test_a_corrupted_index_is_refused_naming_the_file(covid: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    build_index(read_documents([covid]), out, LEXICAL)
    chunks = (out / "chunks.parquet").read_bytes()
    (out / "chunks.parquet").write_bytes(chunks[: len(chunks) // 2])  # truncated
    with pytest.raises(RunFolderError, match=r"chunks.parquet does not match manifest.json"):
        open_index(out)
    (out / "chunks.parquet").write_bytes(chunks)
    open_index(out)
    bm25 = next((out / "bm25").glob("vocab*"))
    bm25.rename(bm25.with_suffix(".gone"))
    with pytest.raises(RunFolderError, match=r"bm25 does not match manifest.json"):
        open_index(out)
    bm25.with_suffix(".gone").rename(bm25)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({**manifest, "counts": {**manifest["counts"], "chunks": 5}}))
    with pytest.raises(RunFolderError, match=r"chunks.parquet: holds \d+ chunks, the manifest says 5"):
        open_index(out)
    (out / "manifest.json").write_text(json.dumps({**manifest, "chunking": {"unit": "words"}}))
    with pytest.raises(RunFolderError, match=r"manifest.json: is not a rag index manifest: chunking.unit"):
        open_index(out)
    (out / "manifest.json").write_text('{"files": ')
    with pytest.raises(RunFolderError, match=r"manifest.json: is corrupt"):
        open_index(out)
    (out / "manifest.json").unlink()  # what a killed run leaves
    result = runner.invoke(app, ["rag", "query", str(out), "children", "--mode", "bm25"])
    assert result.exit_code == 2 and "is not a finished rag index run: no manifest.json" in flat(result.output)


def test_another_chunking_or_embedding_model_is_refused_never_mixed(covid: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    build_index(read_documents([covid]), out, LEXICAL)
    smaller = IndexConfig(dense=False, chunking=ChunkConfig(size=100))
    with pytest.raises(
        IndexMismatch, match=r"was built with chunking sentences, 200 tokens, 40 overlap .* not sentences, 100"
    ):
        build_index(read_documents([covid]), out, smaller)
    args = ["rag", "index", str(covid), "--out", str(out), "--no-dense", "--chunk-size", "100"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "pass --fresh to rebuild it" in flat(result.output)
    assert runner.invoke(app, [*args, "--fresh"]).exit_code == 0
    assert open_index(out).manifest.chunking.size == 100

    manifest = json.loads((out / "manifest.json").read_text())
    other = {**manifest, "embedding": {"model": "bge-small-en", "dim": 384}}
    (out / "manifest.json").write_text(json.dumps(other))
    with pytest.raises(IndexMismatch, match="holds bge-small-en embeddings but queries are embedded with all-MiniLM"):
        open_index(out)
    with pytest.raises(IndexMismatch, match="was built with bge-small-en embeddings"):
        build_index(read_documents([covid]), out, IndexConfig(chunking=ChunkConfig(size=100)))
    with VectorStore(tmp_path / "store.sqlite", "bge-small-en", 384):
        pass
    with pytest.raises(StoreError, match="holds bge-small-en embeddings, not all-MiniLM-L6-v2"):
        VectorStore(tmp_path / "store.sqlite", "all-MiniLM-L6-v2", 384)


# ---------------------------------------------------------------- the retrieval prompter


def test_the_prompter_puts_whole_passages_within_the_budget_before_the_question(covid: Path, tmp_path: Path) -> None:
    build_index(read_documents([covid]), tmp_path / "idx", LEXICAL)
    index = open_index(tmp_path / "idx")
    asked = Example(
        "q1",
        [
            {"role": "user", "content": "What is the main cause of HIV-1 infection in children?"},
            {"role": "assistant", "content": "Mother-to-child transmission"},
        ],
    )
    words = lambda text: len(text.split())  # noqa: E731  a tokenizer: whitespace words
    hits = search(index, [asked.messages[0]["content"]], BM25)[0]
    budget = sum(words(h.text) for h in hits[:2]) + 12  # two passages and their numbering fit, not three
    prompter = RetrievalPrompter(index, FewShot([], 0), words, BM25, budget=budget)
    result = prompter.ask(asked)
    notes = result.notes
    inner = FewShot([], 0).ask(asked).notes  # the inner prompter's notes (its shots) are kept beside them
    assert set(notes) == {"citations", "context", "context_tokens", "dropped", *inner}
    assert notes["citations"][:2] == [hits[0].id, hits[1].id] and notes["dropped"] == 5 - len(notes["citations"])
    assert notes["context_tokens"] == words(notes["context"]) <= budget
    for n, cited in enumerate(notes["citations"], 1):
        text = next(h.text for h in hits if h.id == cited)
        assert f"[{n}] ({cited}) {text}" in notes["context"]  # whole, numbered, with its chunk id
    (turn,) = result.prompt
    assert turn == {"role": "user", "content": f"{notes['context']}\n\n{asked.messages[0]['content']}"}
    assert prompter.prompt(asked) == result.prompt
    block = RetrievalConfig(index=tmp_path / "idx", search=BM25, budget=budget)  # an eval config's block
    assert RetrievalPrompter.from_config(block, FewShot([], 0), words).ask(asked) == result
    tight = RetrievalPrompter(index, FewShot([], 0), words, BM25, budget=3).ask(asked)
    assert tight.notes == {**inner, "citations": [], "context": "", "context_tokens": 0, "dropped": 5}
    assert tight.prompt == [asked.messages[0]]


# ---------------------------------------------------------------- the CLI end to end


def _tiny(tmp_path: Path) -> tuple[Path, Path]:
    """Three one-chunk documents and three questions whose BM25 ranks are plain: the first question's answer is
    ranked 1st, the second's 2nd (the other document shares more of its words), the third's not at all (its
    document shares none)."""
    docs = tmp_path / "tiny"
    docs.mkdir()
    (docs / "a.txt").write_text("Paris is the capital of France.")
    (docs / "b.txt").write_text("Lyon is a city in France. Lyon has a river.")
    (docs / "c.txt").write_text("Bananas are yellow.")
    questions = tmp_path / "questions.jsonl"
    rows = [
        {"id": "q1", "question": "What is the capital of France?", "answers": ["Paris"]},
        {"id": "q2", "question": "Which city in France has a river?", "answers": ["Paris"]},
        {"id": "q3", "question": "Why are bananas yellow?", "answers": ["Lyon"]},
        {"id": "q4", "question": "Unlabelled?"},
    ]
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return docs, questions


def test_rag_index_query_and_eval_through_the_cli(tmp_path: Path) -> None:
    docs, questions = _tiny(tmp_path)
    out = tmp_path / "idx"
    result = runner.invoke(app, ["rag", "index", str(docs), "--out", str(out), "--no-dense", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "indexed 3 documents as 3 chunks" in flat(result.output) and "embedded 0" in flat(result.output)

    result = runner.invoke(app, ["rag", "query", str(out), "capital of France", "--mode", "bm25", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "a.txt#0" in result.output and "c.txt#0" not in result.output

    hits = tmp_path / "hits.jsonl"
    args = ["rag", "query", str(out), "--questions", str(questions), "--out", str(hits), "--mode", "bm25", "-k", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = list(read_jsonl(hits))
    assert [r["citations"] for r in rows[:3]] == [["a.txt#0", "b.txt#0"], ["b.txt#0", "a.txt#0"], ["c.txt#0"]]
    assert rows[0]["hits"][0] | {"score": 0} == {
        "rank": 1, "id": "a.txt#0", "doc": "a.txt", "start": 0, "end": 31, "score": 0,
        "text": "Paris is the capital of France.",
    }  # fmt: skip

    report = tmp_path / "eval"
    args = ["rag", "eval", str(out), str(questions), "--modes", "bm25", "--ks", "1,2", "--out", str(report)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads((report / "summary.json").read_text())
    assert figures["questions"] == 4 and figures["without_gold"] == 1
    bm25 = figures["modes"]["bm25"]
    assert bm25["recall@1"] == pytest.approx(1 / 3) and bm25["recall@2"] == pytest.approx(2 / 3)
    assert bm25["mrr@2"] == pytest.approx(0.5)
    assert bm25["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3)) / 3)
    per_question = {r["id"]: r for r in read_jsonl(report / "questions.jsonl")}
    assert per_question["q2"]["bm25"]["ranks"] == [2] and per_question["q3"]["bm25"]["ranks"] == []
    assert "3 questions with gold (1 without, left out)" in flat(result.output)

    result = runner.invoke(app, ["rag", "eval", str(out), str(questions), "--modes", "bm25,sparse"])
    assert result.exit_code == 2 and "--modes takes bm25, dense, hybrid; got 'sparse'" in flat(result.output)
    result = runner.invoke(app, ["rag", "eval", str(out), str(questions)])  # dense needs vectors
    assert result.exit_code == 2 and "is a lexical-only index (built with --no-dense)" in flat(result.output)


# ---------------------------------------------------------------- dense: incremental and resumable (loads MiniLM)


def _docs(path: Path) -> list[Document]:
    return list(read_documents([path]))


@pytest.mark.model
def test_reindexing_embeds_only_changed_chunks_and_forgets_deleted_documents(pubmed: Path, tmp_path: Path) -> None:
    out, cfg = tmp_path / "idx", IndexConfig(chunking=ChunkConfig(size=96, overlap=24))
    docs = _docs(pubmed)
    first = build_index(docs, out, cfg)
    chunks = open_index(out).chunks
    assert first.counts.embedded == len(set(chunks.keys)) and first.counts.reused == 0

    again = build_index(docs, out, cfg)
    assert (again.counts.embedded, again.counts.reused) == (0, len(set(chunks.keys)))

    edited = Document(docs[0].id, docs[0].text + " An added closing sentence about mitochondria.", docs[0].where)
    changed = build_index([edited, *docs[2:]], out, cfg)  # the first edited, the second deleted
    index = open_index(out)
    new_keys = set(index.chunks.keys) - set(chunks.keys)
    assert 1 <= changed.counts.embedded == len(new_keys) < len(index.chunks.by_doc[docs[0].id]) + 1
    assert changed.counts.forgotten == len(set(chunks.keys) - set(index.chunks.keys))
    assert docs[1].id not in index.chunks.by_doc
    question = next(q for q in read_queries(pubmed) if q.id == docs[1].id)
    for mode in ("bm25", "dense", "hybrid"):
        (hits,) = search(index, [question.text], SearchConfig(mode=mode, k=20))
        assert hits and docs[1].id not in {h.doc for h in hits}
    (hits,) = search(index, ["An added closing sentence about mitochondria"], SearchConfig(mode="dense", k=1))
    assert hits[0].doc == docs[0].id and hits[0].text.endswith("about mitochondria.")

    norms = np.linalg.norm(index.vectors, axis=1)
    assert np.allclose(norms, 1, atol=1e-5)  # unit vectors: inner product is cosine


@pytest.mark.model
def test_a_killed_index_resumes_without_embedding_its_finished_chunks_again(pubmed: Path, tmp_path: Path) -> None:
    out, cfg = tmp_path / "idx", IndexConfig(chunking=ChunkConfig(size=96, overlap=24), embed_batch=4)
    docs = _docs(pubmed)
    build_index(docs[:2], out, cfg)  # an index that was whole before the killed run
    before = open_index(out).chunks.ids

    class Killed(Exception):
        pass

    def kill_after_two_batches(done: int, total: int) -> None:
        if done >= 8:
            raise Killed

    with pytest.raises(Killed):
        build_index(docs, out, cfg, on_embedded=kill_after_two_batches)
    assert open_index(out).chunks.ids == before  # killed while embedding: the earlier index is still whole

    resumed = build_index(docs, out, cfg)
    index = open_index(out)
    assert resumed.counts.reused == len(set(before)) + 8
    assert resumed.counts.embedded == len(set(index.chunks.keys)) - resumed.counts.reused
    fresh = build_index(docs, tmp_path / "fresh", cfg)
    assert np.allclose(open_index(tmp_path / "fresh").vectors, index.vectors, atol=1e-6)
    assert fresh.counts.embedded == len(set(index.chunks.keys))


@pytest.mark.model
def test_rag_eval_measures_every_mode_on_pubmedqa(pubmed: Path, tmp_path: Path) -> None:
    out = tmp_path / "idx"
    result = runner.invoke(app, ["rag", "index", str(pubmed), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    index = open_index(out)
    evaluation = evaluate(index, list(read_queries(pubmed)), ks=(1, 5, 20))
    assert set(evaluation.summary["modes"]) == {"bm25", "dense", "hybrid"}
    modes = evaluation.summary["modes"]
    for figures in modes.values():
        assert figures["questions"] == 8 and figures["no_relevant_chunk"] == 0 and figures["recall@1"] >= 0.5
    # the abstract of "Double balloon enteroscopy: is it efficacious and safe ...?" only ever says "DBE": BM25
    # finds no word of the question in it, the embeddings find it
    (missed,) = [row["id"] for row in evaluation.rows if not row["bm25"]["ranks"]]
    assert missed == "23831910" and modes["bm25"]["recall@20"] == 7 / 8
    assert modes["dense"]["recall@20"] == modes["hybrid"]["recall@20"] == 1.0
    result = runner.invoke(app, ["rag", "eval", str(out), str(pubmed), "--ks", "1,5"])
    assert result.exit_code == 0, result.output
    assert "hybrid" in result.output and "recall@5" in result.output
