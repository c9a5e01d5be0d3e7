"""Labelled retrieval questions as held-out examples, so retrieval is also judged end to end: the model answers
with the passages it was given, scored by `score_task` like every other rung.

A question with answer texts (SQuAD, COVID-QA) becomes an extractive QA example scored by SQuAD F1 against
all its answers; a PubMedQA record, a yes/no/maybe example scored by the labels' log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

from lmtailor.core.records import Example
from lmtailor.evaluate.task import TaskConfig
from lmtailor.prompting.retrieval.queries import Query

PUBMEDQA_LABELS = ["yes", "no", "maybe"]
INSTRUCTION = "Answer the question from the passages, with a short span copied from them.\n\nQuestion: {question}"
DECISION = "Answer the question from the passages with yes, no or maybe.\n\nQuestion: {question}"


def qa_examples(queries: Sequence[Query]) -> tuple[list[Example], TaskConfig]:
    """The questions that can be scored, as examples, and the task that scores them: squad where the first has
    answer texts, choice where it is PubMedQA's (a `final_decision`). Questions of the other kind are left out."""
    decided = [q for q in queries if isinstance(q.record.get("final_decision"), str)]
    if decided and len(decided) >= sum(bool(q.gold.answers) for q in queries):
        examples = [_example(q, DECISION, q.record["final_decision"], []) for q in decided]
        return examples, TaskConfig(metric="choice", labels=PUBMEDQA_LABELS)
    answered = [q for q in queries if q.gold.answers]
    examples = [_example(q, INSTRUCTION, q.gold.answers[0], list(q.gold.answers)) for q in answered]
    return examples, TaskConfig(metric="squad", max_new_tokens=48, stop=["\n"])


def _example(q: Query, instruction: str, answer: str, answers: list[str]) -> Example:
    messages = [{"role": "user", "content": instruction.format(question=q.text)},
                {"role": "assistant", "content": answer.strip()}]  # fmt: skip
    return Example(q.id, messages, "", {"question": q.text, "answers": answers, "where": q.where})
