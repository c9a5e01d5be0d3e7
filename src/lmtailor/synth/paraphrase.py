"""paraphrase: N rewordings of each record's instruction, for diversity; the input and the answer stay.

Each rewording is sampled with its own seed from a few-shot prompt that ends at "Rewording:". A rewording is
useful only if it differs from every original and from the rewordings kept before it, and still asks the same
thing: it is dropped when it is the same text once case, punctuation and spacing are folded, a ROUGE-L near
copy (F >= `max_rouge`), or when its sentence embedding has drifted from the original's (a small base model
at a high temperature often writes a different question altogether).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import Field

from lmtailor.core.records import Example
from lmtailor.curate.provenance import provenance, step_llm, template_id
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.llm.config import BackendConfig, LlamaCppConfig
from lmtailor.llm.types import GenParams
from lmtailor.synth.candidates import length_problem, one_line, report, text_of, words
from lmtailor.synth.novelty import RougeIndex

DEMOS = (
    ("Name two rivers that flow through Germany.", "Which two rivers run across Germany?"),
    ("Translate 'good morning' into French.", "How do you say 'good morning' in French?"),
    ("Summarize the article below in one sentence.", "Sum up the following article in a single sentence."),
    ("What causes rain?", "Explain why it rains."),
)
HEADER = "Each sentence below is followed by a rewording: the same request in different words.\n\n"
TEMPLATE = HEADER + "".join(f"Sentence: {a}\nRewording: {b}\n\n" for a, b in DEMOS)


class Paraphrase(SetStep):
    step: Literal["paraphrase"] = "paraphrase"
    backend: BackendConfig = LlamaCppConfig()
    n: int = Field(3, ge=1)  # rewordings asked for per record
    keep_inputs: bool = True  # the originals stay beside their rewordings
    max_rouge: float = Field(0.8, gt=0, le=1)  # ROUGE-L F at or above this with an original or kept rewording
    # A rewording must keep the request: below this cosine similarity of sentence embeddings (all-MiniLM-L6-v2)
    # with the original it asks for something else. 0 turns the check off.
    min_similarity: float = Field(0.75, ge=0, le=1)
    max_words: int = Field(200, ge=1)  # longer instructions are not reworded (the prompt keeps them on one line)
    temperature: float = Field(0.9, gt=0)  # sampling is what makes the n rewordings differ
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(96, ge=8)
    seed: int = 0

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        records = list(examples)
        originals = {ex.id: one_line(text_of(ex, "instruction")) for ex in records}
        todo = [ex for ex in records if 0 < words(originals[ex.id]) <= self.max_words]
        ctx.metrics["not_reworded"] = len(records) - len(todo)
        held = RougeIndex(self.max_rouge)
        for ex_id, text in originals.items():
            held.add(ex_id, text)
        variants: dict[str, list[Example]] = {}
        if todo:
            with step_llm(self.backend, ctx) as llm:
                template = template_id("paraphrase", TEMPLATE)
                prompts = [f"{TEMPLATE}Sentence: {originals[ex.id]}\nRewording:" for ex in todo]
                rounds = []
                for j in range(self.n):
                    params = GenParams(max_tokens=self.max_tokens, temperature=self.temperature, top_p=self.top_p,
                                       stop=("\n",), seed=self.seed + j)  # fmt: skip
                    rounds.append((params, llm.generate(prompts, params, f"paraphrase {j + 1}/{self.n}")))
                texts = [[one_line(a.text) for a in answers] for _, answers in rounds]
                similar = self._similarity([originals[ex.id] for ex in todo], texts, ctx)
                for j, (params, answers) in enumerate(rounds):
                    for i, (ex, answer) in enumerate(zip(todo, answers, strict=True)):
                        text = texts[j][i]
                        origin = provenance(llm, self.step, template, params, [ex.id], rewording=j + 1)
                        new = _reworded(ex, f"{ex.id}~para{j + 1}", text, origin)
                        problem = self.rewording_problem(
                            text, originals[ex.id], answer.finish_reason, held, similar[j][i]
                        )
                        if report(ctx, new, f"rewording {j + 1} of the instruction of {ex.id}", problem):
                            held.add(new.id, text)
                            variants.setdefault(ex.id, []).append(new)
        for ex in records:
            if self.keep_inputs:
                yield ex
            else:
                ctx.drop(ex, "input_not_kept", "an original; keep_inputs is off")
            yield from variants.get(ex.id, [])

    def rewording_problem(
        self, text: str, original: str, finish: str, held: RougeIndex, similarity: float = 1.0
    ) -> tuple[str, str] | None:
        """(reason, detail) when a rewording is empty, far longer than its original, cut off, a copy of an
        original or of a rewording already kept, or no longer asks what the original asked."""
        if problem := length_problem(text, 1, max(2 * words(original) + 10, 20)):
            return problem
        if finish == "length":
            return "truncated", f"the rewording hit max_tokens ({self.max_tokens})"
        if match := held.closest(text):
            return "duplicate" if match.exact else "near_duplicate", match.describe(self.max_rouge)
        if similarity < self.min_similarity:
            return "meaning_drift", f"embedding cosine {similarity:.2f} with the original, below {self.min_similarity}"
        return None

    def _similarity(self, originals: list[str], texts: list[list[str]], ctx: StepContext) -> list[list[float]]:
        """Cosine similarity of each rewording's sentence embedding with its original's ([round][record])."""
        if self.min_similarity <= 0:
            return [[1.0] * len(originals) for _ in texts]
        from lmtailor.text.embeddings import embed

        k = len(originals)
        vecs = embed(originals + [t for row in texts for t in row], ctx.progress, "paraphrase: embed")
        return (vecs[k:].reshape(len(texts), k, -1) * vecs[:k]).sum(axis=2).tolist()


def _reworded(ex: Example, new_id: str, instruction: str, origin: dict[str, Any]) -> Example:
    """A copy of `ex` with its final instruction replaced: input, answer, history and extra fields stay."""
    new = ex.copy()
    new.id = new_id
    last = max(i for i, m in enumerate(new.messages) if m["role"] == "user")
    new.messages[last]["content"] = instruction
    extra = {**new.metadata.get("extra", {}), "provenance": origin}
    new.metadata = {"source": origin["step"], "index": None, "format": ex.metadata.get("format"), "extra": extra}
    return new
