"""The retrieval prompter: an inner prompter's prompt, with retrieved passages before the question.

For each example it retrieves the top-k chunks for the question (the example's `question` metadata field when
it has one, else its last user turn), puts as many as fit in the token budget before that turn, each whole and
numbered with its chunk id, and asks the inner prompter (the training Template, a few-shot prompter) for the
prompt of the example so augmented. Tokens are counted with the target model's tokenizer on the context as it is
injected; a passage that does not fit is left out, and later, shorter ones may still fit. The notes say what
was cited, injected and left out, beside the inner prompter's own (the shots a few-shot prompter chose).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from lmtailor.core.config import ConfigPath
from lmtailor.core.records import Example, RecordError
from lmtailor.llm.types import Prompt
from lmtailor.prompting.prompter import Asked, Prompter
from lmtailor.prompting.retrieval.index import Index, open_index
from lmtailor.prompting.retrieval.search import Hit, SearchConfig, search
from lmtailor.prompting.template import turns

CONTEXT_HEADER = "Passages:"


class RetrievalConfig(BaseModel):
    """A system's retrieval, as a config block: the index folder (relative to the config file), how it is searched,
    and the most tokens of context put in a prompt."""

    model_config = ConfigDict(extra="forbid")
    index: ConfigPath
    search: SearchConfig = SearchConfig()
    budget: int = Field(512, ge=1)


class RetrievalPrompter(Prompter):
    def __init__(
        self,
        index: Index,
        inner: Prompter,
        count_tokens: Callable[[str], int],
        search: SearchConfig | None = None,
        budget: int = 512,
    ):
        """`count_tokens`: the target model's (`LLM.count_tokens`); `budget`: most tokens of injected context."""
        self.index, self.inner, self.count_tokens = index, inner, count_tokens
        self.search, self.budget = search or SearchConfig(), budget

    @classmethod
    def from_config(
        cls, cfg: RetrievalConfig, inner: Prompter, count_tokens: Callable[[str], int]
    ) -> RetrievalPrompter:
        """The prompter of a config block, its index opened (and checked against its manifest) once."""
        return cls(open_index(cfg.index), inner, count_tokens, cfg.search, cfg.budget)

    @property
    def stop(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.inner.stop

    @property
    def delimiter(self) -> str:  # type: ignore[override]
        return self.inner.delimiter

    def prompt(self, example: Example) -> Prompt:
        return self.ask(example).prompt

    def ask(self, example: Example) -> Asked:
        (hits,) = search(self.index, [question(example)], self.search)
        context, used = fit(hits, self.count_tokens, self.budget)
        notes = {
            "citations": [h.id for h in used],
            "context": context,
            "context_tokens": self.count_tokens(context) if context else 0,
            "dropped": len(hits) - len(used),
        }
        inner = self.inner.ask(with_context(example, context))
        return Asked(inner.prompt, {**inner.notes, **notes})


def question(example: Example) -> str:
    """What is retrieved for: the `question` metadata field, else the last user turn (its input included)."""
    asked = example.meta("question")
    if isinstance(asked, str) and asked.strip():
        return asked
    users = [m["content"] for m in turns(example)[: _last_answer(example)] if m["role"] == "user"]
    if not users:
        raise RecordError(f"{example.id}: has no question (user turn) to retrieve passages for")
    return users[-1]


def render(hits: Sequence[Hit]) -> str:
    """Numbered passages, each with its chunk id: `[1] (doc#3) text`."""
    if not hits:
        return ""
    return "\n\n".join([CONTEXT_HEADER, *(f"[{n}] ({h.id}) {h.text}" for n, h in enumerate(hits, 1))])


def fit(hits: Sequence[Hit], count_tokens: Callable[[str], int], budget: int) -> tuple[str, list[Hit]]:
    """The context of the best hits that fit `budget` tokens, whole, in rank order, and the hits it holds."""
    used: list[Hit] = []
    for hit in hits:
        if count_tokens(render([*used, hit])) <= budget:
            used.append(hit)
    return render(used), used


def with_context(example: Example, context: str) -> Example:
    """The example with `context` before the text of the user turn the answer follows."""
    if not context:
        return example
    last = _last_answer(example)
    users = [i for i, m in enumerate(example.messages[:last]) if m["role"] == "user"]
    if not users:
        raise RecordError(f"{example.id}: has no user turn to put the passages in")
    out = example.copy()
    turn = out.messages[users[-1]]
    turn["content"] = f"{context}\n\n{turn['content']}"
    return out


def _last_answer(example: Example) -> int:
    last = max((i for i, m in enumerate(example.messages) if m["role"] == "assistant"), default=None)
    if last is None:
        raise RecordError(f"{example.id}: has no reference answer (assistant turn)")
    return last
