"""Questions to retrieve for, with the gold that says which chunks answer them.

Known shapes: SQuAD paragraphs (each `qas` entry a question, its answers located in the paragraph's context),
and records with a `question` field (any case; `--columns FIELD=question` names another), whose gold is any of
`answers`/`answer` (strings, or SQuAD's `{text, answer_start}`), `doc_id`/`document_id`/`doc_ids`, or, for a
record that carries its own context (PubMedQA's abstract), the record's own id: the documents read from the same
file have it.

COVID-QA's `answer_start` is off by a few characters for 234 of its 1,380 answers (the text sits 1 to 3 characters
away, twice much further); an answer is placed at its occurrence in the context nearest to `answer_start`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lmtailor.prompting.retrieval.documents import ID_FIELDS, TEXT_FIELDS
from lmtailor.prompting.retrieval.sources import Source, pick, read_sources, text_of

QUESTION_FIELDS = ("question", "query")
DOC_FIELDS = ("doc_id", "document_id", "doc_ids")
SHAPES = "SQuAD (data/paragraphs/qas), PubMedQA (records keyed by id) or records with a `question` field"


@dataclass(frozen=True, slots=True)
class Gold:
    """What answers a question: answer spans (document id, start, end), answer texts, and gold documents."""

    spans: tuple[tuple[str, int, int], ...] = ()
    answers: tuple[str, ...] = ()
    doc_ids: frozenset[str] = frozenset()

    def __bool__(self) -> bool:
        return bool(self.spans or self.answers or self.doc_ids)


@dataclass(frozen=True, slots=True)
class Query:
    id: str
    text: str
    gold: Gold = Gold()
    where: str = ""
    record: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # the source record


def read_queries(path: Path, columns: dict[str, str] | None = None) -> Iterator[Query]:
    """Every question in `path`; a record in no known shape is a DataError naming the file and record."""
    for n, source in enumerate(read_sources(path, columns)):
        if isinstance(source.record.get("qas"), list):
            yield from _squad(source)
            continue
        key = pick(source.record, QUESTION_FIELDS)
        if key is None:
            what = f"matches no known query shape ({SHAPES})" if n == 0 else "has no question field"
            raise source.error(
                f"{what}: it has {sorted(source.record)}; name the question's field with --columns FIELD=question"
            )
        yield _record_query(source, key)


def _squad(source: Source) -> Iterator[Query]:
    paragraph = source.record
    doc_id, context = str(paragraph["id"]), paragraph.get("context")
    if not isinstance(context, str):
        raise source.error("a SQuAD paragraph without a `context` text")
    for q, qa in enumerate(paragraph["qas"]):
        if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
            raise source.error(f"qas[{q}] has no `question` text")
        answers = _answers(source, qa.get("answers") or [])
        spans = tuple((doc_id, s, s + len(t)) for t, start in answers if (s := _placed(context, t, start)) is not None)
        gold = Gold(spans, tuple(t for t, _ in answers), frozenset({doc_id}))
        yield Query(str(qa.get("id", f"{doc_id}:{q}")), qa["question"], gold, f"{source.where}, qas[{q}]", qa)


def _record_query(source: Source, key: str) -> Query:
    record = source.record
    question = text_of(source, key)
    if not question.strip():
        raise source.error(f"the question (field {key!r}) is empty")
    id_key = pick(record, ID_FIELDS)
    query_id = str(record[id_key]) if id_key is not None else f"{source.path.stem}:{source.index}"
    doc_key, answer_key = pick(record, DOC_FIELDS), pick(record, ("answers", "answer"))
    answers = _answers(source, record[answer_key]) if answer_key else []
    context_key = pick(record, TEXT_FIELDS)
    if doc_key is not None:
        value = record[doc_key]
        doc_ids = frozenset(map(str, value if isinstance(value, list) else [value]))
    else:
        doc_ids = frozenset({query_id}) if context_key is not None else frozenset()
    spans: tuple[tuple[str, int, int], ...] = ()
    if context_key is not None and len(doc_ids) == 1:  # answers placed in the record's own context
        context, (doc,) = text_of(source, context_key), doc_ids
        spans = tuple((doc, s, s + len(t)) for t, start in answers if (s := _placed(context, t, start)) is not None)
    return Query(query_id, question, Gold(spans, tuple(t for t, _ in answers), doc_ids), source.where, record)


def _answers(source: Source, value: Any) -> list[tuple[str, int | None]]:
    """Answer texts with their start where given: a string, a list of strings, or SQuAD's objects."""
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, int | None]] = []
    for item in items:
        if isinstance(item, str):
            out.append((item, None))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            start = item.get("answer_start")
            out.append((item["text"], start if isinstance(start, int) else None))
        else:
            raise source.error(f"an answer is {item!r}: expected a string or an object with a `text`")
    return [(t, s) for t, s in out if t.strip()]


def _placed(context: str, answer: str, start: int | None) -> int | None:
    """Where `answer` is in `context`: at `start` when it is there, else its occurrence nearest to `start`."""
    if start is not None and context.startswith(answer, start):
        return start
    found, at = [], context.find(answer)
    while at >= 0:
        found.append(at)
        at = context.find(answer, at + 1)
    if not found:
        return None
    return min(found, key=lambda i: abs(i - start)) if start is not None else found[0]
