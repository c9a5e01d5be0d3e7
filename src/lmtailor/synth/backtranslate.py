"""backtranslate: instruction back-translation (Li et al. 2023, "Humpback"): a plain document becomes the
answer, and the model writes the instruction it answers.

A few-shot prompt of (text, instruction) pairs ends at "Instruction:" so a base model writes one line. The
instruction is dropped when it is empty, too short or long, cut off, a copy of a demonstration, or a sentence
lifted from the document itself: each is a sign the model did not read the text as an answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

from pydantic import Field

from lmtailor.core.records import Example
from lmtailor.curate.provenance import generated, provenance, step_llm, template_id
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.llm.config import BackendConfig, LlamaCppConfig
from lmtailor.llm.types import GenParams
from lmtailor.synth.candidates import FieldName, length_problem, one_line, report, text_of, words
from lmtailor.synth.novelty import RougeIndex, folded

DEMOS = (
    ("The Eiffel Tower is 330 metres tall. It was the tallest man-made structure in the world until the Chrysler "
     "Building was finished in New York in 1930.", "How tall is the Eiffel Tower?"),
    ("In Python, `sorted(items)` returns a new sorted list and leaves `items` as it was, while `items.sort()` "
     "sorts the list in place and returns None.", "What is the difference between sorted() and list.sort()?"),
    ("Start with a budget: write down what comes in and what goes out each month. Then pay off the debts with the "
     "highest interest first, and keep three months of expenses as savings.",
     "Give me some advice on managing my money."),
)  # fmt: skip
HEADER = "Each text below answers an instruction. Write the instruction it answers.\n\n"
TEMPLATE = HEADER + "".join(f"Text: {text}\nInstruction: {instruction}\n\n" for text, instruction in DEMOS)


class Backtranslate(SetStep):
    step: Literal["backtranslate"] = "backtranslate"
    backend: BackendConfig = LlamaCppConfig()
    field: FieldName = "output"  # the document: for turns, the final one
    keep_inputs: bool = False  # write the source records too, not only the new examples
    min_doc_words: int = Field(5, ge=1)  # shorter documents answer nothing worth asking
    max_doc_chars: int = Field(1500, ge=100)  # how much of a document the prompt shows (the output keeps all)
    min_words: int = Field(3, ge=1)
    max_words: int = Field(60, ge=1)
    max_rouge: float = Field(0.7, gt=0, le=1)  # ROUGE-L F with a demonstration's instruction: copied
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(64, ge=8)
    seed: int = 0

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        records = list(examples)
        docs = {ex.id: text_of(ex, self.field).strip() for ex in records}
        usable = [ex for ex in records if words(docs[ex.id]) >= self.min_doc_words]
        ctx.metrics["documents_too_short"] = len(records) - len(usable)
        for ex in records:
            if self.keep_inputs:
                yield ex
            elif words(docs[ex.id]) < self.min_doc_words:
                ctx.drop(ex, "document_too_short", f"its {self.field} has fewer than {self.min_doc_words} words")
            else:
                ctx.drop(ex, "input_not_kept", "a source document; keep_inputs is off")
        if not usable:
            return
        params = GenParams(max_tokens=self.max_tokens, temperature=self.temperature, stop=("\n",), seed=self.seed)
        demos = self.demo_index()
        with step_llm(self.backend, ctx) as llm:
            prompts = [f"{TEMPLATE}Text: {docs[ex.id][: self.max_doc_chars].strip()}\nInstruction:" for ex in usable]
            answers = llm.generate(prompts, params, "backtranslate")
            template = template_id("backtranslate", TEMPLATE)
            for ex, answer in zip(usable, answers, strict=True):
                doc, instruction = docs[ex.id], one_line(answer.text)
                origin = provenance(llm, self.step, template, params, [ex.id], field=self.field)
                new = generated(f"{ex.id}~bt", instruction, doc, origin)
                problem = self.instruction_problem(instruction, doc, answer.finish_reason, demos)
                if report(ctx, new, f"instruction written for the {self.field} of {ex.id}", problem):
                    yield new

    def demo_index(self) -> RougeIndex:
        """The demonstrations' instructions, which a written instruction must not copy."""
        demos = RougeIndex(self.max_rouge)
        for i, (_, instruction) in enumerate(DEMOS):
            demos.add(f"demo {i + 1}", instruction)
        return demos

    def instruction_problem(self, instruction: str, doc: str, finish: str, demos: RougeIndex) -> tuple[str, str] | None:
        """(reason, detail) when an instruction written for `doc` is empty, too short or long, cut off
        (`finish` is the completion's finish reason), a copy of a demonstration's, or a passage of `doc`."""
        if problem := length_problem(instruction, self.min_words, self.max_words):
            return problem
        if finish == "length":
            return "truncated", f"the instruction hit max_tokens ({self.max_tokens})"
        if match := demos.closest(instruction):
            return "copied_demo", f"{match.describe(self.max_rouge)} of the prompt"
        if f" {folded(instruction)} " in f" {folded(doc)} ":
            return "copied_document", "the instruction is a passage of the document"
        return None
