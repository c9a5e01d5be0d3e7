"""How an Example becomes model text: the tokenizer's chat template, or a plain template for base models.

A rendered example is a list of segments, each marked as prompt (context the model reads) or answer (what the
loss is computed on). The same template is the Prompter of evaluation, so a model is scored on the very text
shape it was trained on.

The chat form finds each answer by rendering the conversation up to an assistant turn twice, with and
without that turn: the difference is the answer, end-of-turn marker included, so the model learns to stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lmtailor.core.records import Example, RecordError, merged_input
from lmtailor.prompting.prompter import Prompter

# Alpaca's own prompt, the usual choice for a base model without a chat template.
PLAIN_PROMPT = "### Instruction:\n{instruction}\n\n### Response:\n"


class TemplateConfig(BaseModel):
    """`chat` uses the tokenizer's chat template; `plain` the prompt below (for base models)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["auto", "chat", "plain"] = "auto"  # auto: chat when the tokenizer has a template
    # plain: {instruction} (the input joins it) and optionally {system}; without {system}, a system prompt goes
    # before the first turn
    prompt: str = PLAIN_PROMPT
    answer_suffix: str = "eos"  # plain: what ends an answer ("eos": the tokenizer's end-of-sequence token)
    train_on: Literal["all", "last"] = "all"  # which assistant turns carry loss


@dataclass(frozen=True)
class Segment:
    text: str
    answer: bool


class Template(Prompter):
    """Renders Examples for one tokenizer."""

    def __init__(self, tokenizer: Any, config: TemplateConfig | None = None):
        self.tokenizer = tokenizer
        self.config = config or TemplateConfig()
        # The BOS the tokenizer puts before any text: a backend adds it to a prompt, so a prompt leaves it out.
        bos = tokenizer.bos_token
        self._added_bos = bos if bos and tokenizer("").input_ids[:1] == [tokenizer.bos_token_id] else ""
        kind = self.config.kind
        if kind == "auto":
            kind = "chat" if getattr(tokenizer, "chat_template", None) else "plain"
        if kind == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ValueError("template kind 'chat': the tokenizer has no chat template; use kind 'plain'")
        self.kind = kind

    def segments(self, ex: Example) -> list[Segment]:
        """The whole conversation as prompt and answer segments (RecordError if it has no answer)."""
        messages = turns(ex)
        answers = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
        if not answers:
            raise RecordError(f"{ex.id}: has no answer (assistant turn) to train on")
        trained = answers if self.config.train_on == "all" else answers[-1:]
        out: list[Segment] = []
        done = ""
        for i in answers:
            prompt = self._prompt_text(messages[:i])
            full = self._full_text(messages[: i + 1])
            if not prompt.startswith(done) or not full.startswith(prompt):
                raise RecordError(f"{ex.id}: the template does not render turn {i} as a continuation of earlier turns")
            out.append(Segment(prompt[len(done) :], False))
            out.append(Segment(full[len(prompt) :], i in trained))
            done = full
        return [s for s in out if s.text]

    def prompt(self, example: Example) -> str:
        """The text a model continues with the example's last assistant turn: the training text up to there,
        less the BOS every backend adds itself."""
        messages = turns(example)
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            raise RecordError(f"{example.id}: has no reference answer (assistant turn)")
        return self._prompt_text(messages[:last]).removeprefix(self._added_bos)

    def _prompt_text(self, messages: list[dict[str, Any]]) -> str:
        if self.kind == "chat":
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return self._plain(messages, None)

    def _full_text(self, messages: list[dict[str, Any]]) -> str:
        if self.kind == "chat":
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return self._plain(messages[:-1], messages[-1]["content"])

    def _plain(self, messages: list[dict[str, Any]], answer: str | None) -> str:
        """Earlier turns as prompt+answer pairs, then the last user turn's prompt, then `answer` if given."""
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        turns = [m for m in messages if m["role"] != "system"]
        text = self.tokenizer.bos_token or ""
        suffix = self._suffix()
        if system and "{system}" not in self.config.prompt:
            text += f"{system}\n\n"
        for m in turns:
            if m["role"] == "user":
                text += self.config.prompt.format(instruction=m["content"], system=system)
            else:
                text += m["content"] + suffix
        if answer is not None:
            text += answer + suffix
        return text

    def _suffix(self) -> str:
        if self.config.answer_suffix == "eos":
            return self.tokenizer.eos_token or ""
        return self.config.answer_suffix


class Turns(Prompter):
    """The example's chat turns before its last answer, as they are: for a chat server, which applies its own
    template."""

    def prompt(self, example: Example) -> list[dict[str, Any]]:
        messages = turns(example)
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
        if last is None:
            raise RecordError(f"{example.id}: has no reference answer (assistant turn)")
        return messages[:last]


def turns(ex: Example) -> list[dict[str, Any]]:
    """The example's turns with its input folded into the instruction it belongs to."""
    return [{"role": m["role"], "content": m["content"]} for m in merged_input(ex, ex.messages)]
