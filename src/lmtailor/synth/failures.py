"""failure_targets: new training examples aimed at what a model got wrong in evaluation.

Inputs are evaluation cases: the question (instruction and input), the expected answer (the assistant turn)
and, in the extra field `wrong_field`, the model's wrong answer. For each case the model writes `per_case`
new questions with answers that test the same skill on other subjects, each sampled with its own seed and
carrying the case's id as its seed id.

Training on the evaluation set would only teach the test, so the cases themselves never reach the output,
and a generated question that is a near copy (ROUGE-L F >= `max_rouge`) of any case is dropped. Generated
questions that copy one another are dropped too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field

from lmtailor.core.records import Example
from lmtailor.curate.provenance import generated, provenance, step_llm, template_id
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.llm.config import BackendConfig, LlamaCppConfig
from lmtailor.llm.types import GenParams
from lmtailor.synth.candidates import length_problem, one_line, question_of, report, text_of
from lmtailor.synth.novelty import RougeIndex

HEADER = (
    "A model answered the first question below wrongly{wrong}. Here are more questions that test the same skill, "
    "each on a new subject and worded differently, with correct answers.\n\n"
)
BLOCK = "Question: {question}\nAnswer: {answer}\n\n"
_ANSWER = re.compile(r"^\s*(?:correct answer|answer)\s*:", re.IGNORECASE | re.MULTILINE)
_WRONG = re.compile(r"^\s*(?:wrong answer|model answer)\s*:.*$", re.IGNORECASE | re.MULTILINE)


class FailureTargets(SetStep):
    step: Literal["failure_targets"] = "failure_targets"
    backend: BackendConfig = LlamaCppConfig()
    per_case: int = Field(3, ge=1)  # new examples asked for per case
    wrong_field: str = "model_answer"  # extra field with the model's wrong answer (optional in a record)
    max_rouge: float = Field(0.7, gt=0, le=1)  # ROUGE-L F at or above this with a case or a kept question
    min_words: int = Field(3, ge=1)
    max_words: int = Field(200, ge=1)
    temperature: float = Field(0.9, gt=0)  # sampling is what makes the per-case examples differ
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(192, ge=16)
    seed: int = 0

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        cases = list(examples)
        for ex in cases:
            ctx.drop(ex, "eval_case", "an evaluation case: training on it would leak the test")
        usable = [ex for ex in cases if question_of(ex).strip() and text_of(ex, "output").strip()]
        ctx.metrics["cases_without_question_or_answer"] = len(cases) - len(usable)
        if not usable:
            return
        leaks = self.leak_index(cases)
        kept = RougeIndex(self.max_rouge)
        template = template_id("failure_targets", HEADER + BLOCK)
        prompts = [self._prompt(ex) for ex in usable]
        with step_llm(self.backend, ctx) as llm:
            for j in range(self.per_case):
                params = GenParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                   stop=("\nQuestion:",), seed=self.seed + j)  # fmt: skip
                answers = llm.generate(prompts, params, f"failure targets {j + 1}/{self.per_case}")
                for ex, answer in zip(usable, answers, strict=True):
                    question, reply, ended = _parse(answer.text)
                    origin = provenance(llm, self.step, template, params, [ex.id], variant=j + 1)
                    new = generated(f"{ex.id}~fail{j + 1}", question, reply, origin)
                    problem = self.question_problem(question, reply, ended, answer.finish_reason, leaks, kept)
                    if report(ctx, new, f"example {j + 1} aimed at the failure on {ex.id}", problem):
                        kept.add(new.id, question)
                        yield new

    def leak_index(self, cases: Iterable[Example]) -> RougeIndex:
        """The evaluation cases' questions (instruction and input), which no generated question may copy."""
        leaks = RougeIndex(self.max_rouge)
        for ex in cases:
            leaks.add(ex.id, question_of(ex))
        return leaks

    def question_problem(
        self, question: str, reply: str, ended: bool, finish: str, leaks: RougeIndex, kept: RougeIndex
    ) -> tuple[str, str] | None:
        """(reason, detail) when a generated example has a question too short or long, no answer, was cut
        off before its answer ended, copies an evaluation case (`leaks`) or a question already kept."""
        if problem := length_problem(question, self.min_words, self.max_words):
            return problem
        if not reply:
            return "no_answer", "the model wrote no 'Answer:' for its question"
        if finish == "length" and not ended:
            return "truncated", f"the example hit max_tokens ({self.max_tokens})"
        if match := leaks.closest(question):
            return "too_close_to_eval_case", match.describe(self.max_rouge)
        if match := kept.closest(question):
            return "near_duplicate", match.describe(self.max_rouge)
        return None

    def _prompt(self, case: Example) -> str:
        wrong = one_line(str(case.metadata.get("extra", {}).get(self.wrong_field) or ""))[:300]
        header = HEADER.format(wrong=f' (it said "{wrong}")' if wrong else "")
        return header + BLOCK.format(question=question_of(case), answer=text_of(case, "output").strip()) + "Question:"


def _parse(text: str) -> tuple[str, str, bool]:
    """(question, answer, whether the answer ended) from 'QUESTION\nAnswer: ANSWER'. A copied 'Wrong answer:'
    line is left out; a base model that answers again ('Answer: ...' once more) has ended its first answer."""
    text = _WRONG.sub("", text)
    found = _ANSWER.search(text)
    if found is None:
        return text.strip(), "", False
    answer = text[found.end() :]
    again = _ANSWER.search(answer)
    return text[: found.start()].strip(), answer[: again.start() if again else None].strip(), again is not None
