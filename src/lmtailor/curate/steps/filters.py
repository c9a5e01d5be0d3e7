"""filter: drop examples a model should not learn from.

Empty, too short or too long answers; answers that parrot the instruction; degenerate repetition;
garbage characters; the wrong language; and instructions that point at something the model cannot
see (a URL to read, an image, "the following article" with no article) — training on those teaches
the model to invent.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from lmtailor.core.records import Example
from lmtailor.curate.step import RecordStep, StepContext
from lmtailor.text.signals import WORD, foreign_language, garbage_ratio, parrots, repeated_ngram_ratio, unseen_context


class Filter(RecordStep):
    """Each check can be switched off by setting it to null/false."""

    step: Literal["filter"] = "filter"
    min_answer_words: int = Field(0, ge=0)  # emoji, Morse or ASCII-art answers have no words and are fine
    max_answer_words: int | None = Field(4096, ge=1)
    repeats_instruction: bool = True
    max_repeated_ngram_ratio: float | None = Field(0.5, gt=0, le=1)
    max_garbage_ratio: float | None = Field(0.3, gt=0, le=1)
    languages: list[str] | None = ["en"]  # ISO 639-1 codes
    language_min_chars: int = 40
    language_min_confidence: float = Field(0.9, gt=0, le=1)
    unseen_context: bool = True

    @field_validator("languages")
    @classmethod
    def _iso_codes(cls, v: list[str] | None) -> list[str] | None:
        from lingua import IsoCode639_1

        unknown = [c for c in v or [] if not hasattr(IsoCode639_1, c.upper())]
        if unknown:
            raise ValueError(f"unknown ISO 639-1 language codes: {', '.join(unknown)}")
        return [c.lower() for c in v] if v else v

    def check(self, ex: Example) -> tuple[str, str] | None:
        """(reason, detail) for the first failed check, or None."""
        answer, instruction = ex.field("output"), ex.field("instruction")
        words = WORD.findall(answer.lower())
        if not answer.strip():
            return "empty_answer", "the answer is empty"
        if len(words) < self.min_answer_words:
            return "short_answer", f"{len(words)} words, fewer than {self.min_answer_words}"
        if self.max_answer_words is not None and len(words) > self.max_answer_words:
            return "long_answer", f"{len(words)} words, more than {self.max_answer_words}"
        if self.repeats_instruction and parrots(instruction, answer):
            return "repeats_instruction", "the answer restates the instruction"
        if self.max_repeated_ngram_ratio is not None and len(words) >= 30:
            ratio = repeated_ngram_ratio(words)
            if ratio > self.max_repeated_ngram_ratio:
                return "repetition", f"{ratio:.0%} of its word 6-grams repeat"
        if self.max_garbage_ratio is not None:
            ratio = garbage_ratio(answer)
            if ratio > self.max_garbage_ratio:
                return "garbage", f"{ratio:.0%} of its characters are not text"
        if self.unseen_context and (why := unseen_context(instruction, ex.input)):
            return "unseen_context", why
        if (
            self.languages
            and len(instruction) >= self.language_min_chars
            and (lang := foreign_language(instruction, self.languages, self.language_min_confidence))
        ):
            return "language", f"the instruction is in {lang}, not {', '.join(self.languages)}"
        return None

    def process(self, ex: Example, ctx: StepContext) -> Example | None:
        failed = self.check(ex)
        if failed is None:
            return ex
        ctx.drop(ex, *failed)
        return None
