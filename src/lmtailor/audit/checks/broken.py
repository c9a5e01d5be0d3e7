"""broken_fields: records whose text cannot be learned from as it stands.

Empty or placeholder fields, answers cut off mid-sentence or mid-code, mojibake, control characters and
several generated tasks merged into one record (the Alpaca generator sometimes kept writing "6. Instruction:
... 6. Output: ..." after its answer). The runner reports records that could not be read under the same name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import ftfy
from ftfy.badness import is_bad

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.checks.formats import INLINE_FENCE, fenced_blocks
from lmtailor.audit.finding import Finding, Severity
from lmtailor.core.records import Example
from lmtailor.text.cleaning import DEFAULT_PLACEHOLDERS, strip_control
from lmtailor.text.signals import garbage_ratio, is_garbage

# Whole-field placeholders: "<nooutput>", "<No Output>", "N/A", a lone dot or dash.
_PLACEHOLDER_TAG = re.compile(r"^<\s*(?:no[\s_-]*(?:output|input|answer|response)|none|blank|empty|nothing)\s*>$", re.I)
_OUTPUT_PLACEHOLDERS = frozenset({"n/a", "na", "nooutput", "no output", "noinput", "no input", ".", "-", "...", "…"})
_INPUT_PLACEHOLDERS = frozenset(p.casefold() for p in DEFAULT_PLACEHOLDERS) | {
    "nooutput",
    "noinput",
    "empty",
    '""',
    "''",
    "``",
}

# Another generated task glued after the answer: "\n6. Instruction: ...", "### Instruction", the generator's prompt.
_NUMBERED_TASK = re.compile(r"(?:^|\n)[^\S\n]*(?:[#;/*_-]+\s*)?(\d{1,2})\s*\.\s*(?:Instruction|Input|Output)\s*:", re.I)
_HASH_TASK = re.compile(r"\n[^\S\n]*#{2,}[^\S\n]*(?:Instruction|Input|Response)\b", re.I)
_PLAIN_TASK = re.compile(r"\n[^\S\n]*Instruction\s*:.*\n[^\S\n]*Output\s*:", re.I | re.S)
_PROMPT_LEAK = re.compile(r"you are asked to come up with a set of|list of 20 tasks|here are the requirements:", re.I)
_MERGE_HINTS = ("nstruction", "NSTRUCTION", "asked to come up", "20 tasks", "equirements:")
_META = re.compile(r"\b(instruction|instructions|task|tasks|prompt|prompts|input|output)\b", re.I)
# Template pieces left in an answer: a leading "Output:" label or a "<noinput>" token.
_LABEL_LEAK = re.compile(r"^\s*(?:<\s*no[\s_-]*input\s*>\s*)?(?:Output|Response)\s*:\s*\n", re.I)
_LEADING_NO_OUTPUT = re.compile(r"\s*<\s*no[\s_-]*(?:output|answer|response)\s*>", re.I)
_TOKEN_LEAK = re.compile(r"<\s*no[\s_-]*(?:input|output)\s*>", re.I)

# Truncation: prose that stops on a word no English sentence ends with, or on a comma or lead-in colon.
_DANGLING = re.compile(r"the|an|and|or|but|nor|of|than|their|its|our|your|my|is|are|was|were|to|a|whose|which")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")
_LEAD_IN = re.compile(r"\b(following|as follows|include|includes|including|such as|are|is|here)\s*:$", re.I)
_SALUTATION = re.compile(
    r"^\s*(dear|hi|hello|hey|sincerely|best|regards|kind regards|warm regards|yours|love|thanks|thank you|"
    r"cheers|with love|respectfully|cordially|to whom)\b",
    re.I,
)
_VERSE = re.compile(
    r"\b(poem|poetry|haiku|song|lyric|lyrics|verse|limerick|rap|sonnet|melody|chorus|rhyme|rhyming)\b", re.I
)
_CODE = re.compile(
    r"[{};]\s*$|^\s*(def|class|for|while|if|else|function|return|import|public|private)\b|[=<>]=|\)\s*:$", re.M
)
_PAIRS = (("{", "}"), ("(", ")"), ("[", "]"))
_STRING_OR_COMMENT = re.compile(r"'(?:\\.|[^'\\\n])*'|\"(?:\\.|[^\"\\\n])*\"|#.*|//.*")

# Mojibake: UTF-8 read as Latin-1/cp1252 leaves a lead byte (Â, Ã, â, ð...) before a continuation byte.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc"
    "\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
_C0_C1 = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_COMBINING_RUN = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]{4,}")

_BLOCKS = re.compile("[\u2580-\u259f]")


def _excerpt(text: str, start: int, width: int = 160) -> str:
    return text[max(0, start - 40) : start + width]


def merged_task(instruction: str, text: str) -> tuple[str, int] | None:
    """(why, position) when `text` carries another instruction/input/output record after its own content."""
    if not any(hint in text for hint in _MERGE_HINTS):
        return None
    if m := _PROMPT_LEAK.search(text):
        return "the data generator's prompt leaked into it", m.start()
    meta = bool(_META.search(instruction))
    # "1. Instruction: ..." can be a genuine answer to "write three instructions"; a glued task rarely starts at 1.
    if (m := _NUMBERED_TASK.search(text)) and (not meta or (m.start() > 0 and m.group(1) != "1")):
        return "another numbered instruction/input/output record is merged into it", m.start()
    if not meta and (m := _HASH_TASK.search(text) or _PLAIN_TASK.search(text)):
        return "another instruction/response record is merged into it", m.start()
    return None


def truncation(instruction: str, output: str) -> str | None:
    """Why the answer looks cut off, or None: an odd code fence, unclosed code brackets, a dangling last word."""
    blocks: list[tuple[str, str]] = []
    if "```" in output:
        if INLINE_FENCE.sub(" ", output).count("```") % 2:
            return "an unclosed ``` code fence"
        # in markdown answers only the code blocks are code; brackets in the prose around them are not counted
        blocks = fenced_blocks(output)
    text = "\n".join(body for _, body in blocks) if blocks else output.rstrip()
    unclosed = [(o, c) for o, c in _PAIRS if text.count(o) >= 2 and text.count(o) > text.count(c)]
    if not text or (not unclosed and text[-1] not in ",:" and not text[-1].isalpha()):
        return None
    if len(_CODE.findall(text)) >= 2:
        bare = _STRING_OR_COMMENT.sub("", text)
        for o, c in unclosed:
            if bare.count(o) > bare.count(c):
                return f"unbalanced {o}{c} in code: {bare.count(o)} opened, {bare.count(c)} closed"
        return None
    if _VERSE.search(instruction) or len(text.split()) < 6:
        return None
    last = _LIST_ITEM.sub("", text[text.rfind("\n") + 1 :])
    words = last.split()
    if len(words) < 4 or _SALUTATION.match(last):
        return None
    if text[-1] == ",":
        return "it stops on a comma"
    if text[-1] == ":" and _LEAD_IN.search(last):
        return "it announces content that never comes"
    end, before = words[-1], words[-2]
    # "G A A" (notes) or "B a" are letters, not a dangling article.
    if len(words) >= 5 and _DANGLING.fullmatch(end) and (end != "a" or (len(before) > 1 and before.isalpha())):
        return f"it stops mid-sentence on '{end}'"
    return None


def mojibake(text: str) -> str | None:
    """A sample of the text ftfy can repair, when it looks like mis-decoded UTF-8."""
    if text.isascii() or not _MOJIBAKE_HINT.search(text):
        return None
    if not is_bad(text):
        return None
    fixed = ftfy.fix_text(text)
    if fixed == text:
        return None
    start = next((i for i, (a, b) in enumerate(zip(text, fixed, strict=False)) if a != b), 0)
    return _excerpt(text, start, 80)


class BrokenFields(Check):
    """Fields that are empty, placeholders, cut off, garbled or merged with another record."""

    check: Literal["broken_fields"] = "broken_fields"

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        counts: dict[str, int] = {}
        for ex in examples:
            for kind, severity, score, message, evidence in self.problems(ex):
                counts[kind] = counts.get(kind, 0) + 1
                yield ctx.finding(ex, severity, score, message, problem=kind, **evidence)
        ctx.metrics["problems"] = dict(sorted(counts.items()))

    def problems(self, ex: Example) -> Iterator[tuple[str, Severity, float, str, dict[str, Any]]]:
        """(problem, severity, score, message, evidence) for each thing wrong with the record."""
        instruction, inp, output = ex.field("instruction"), ex.input, ex.field("output")
        answered = bool(output.strip()) and not _is_placeholder(output, _OUTPUT_PLACEHOLDERS)
        if not instruction.strip():
            yield "empty", "high", 1.0, "the instruction is empty", {"field": "instruction"}
        if not output.strip():
            yield "empty", "high", 1.0, "the answer is empty", {"field": "output"}
        elif not answered:
            yield "placeholder", "high", 1.0, f"the answer is a placeholder ({output.strip()!r})", {"field": "output"}
        if inp.strip() and _is_placeholder(inp, _INPUT_PLACEHOLDERS):
            yield (
                "placeholder",
                "low",
                0.3,
                f"the input is a placeholder ({inp.strip()!r}) rather than empty",
                {"field": "input"},
            )
        for name, text in (("input", inp), ("output", output)):
            if merged := merged_task(instruction, text):
                why, at = merged
                yield "merged", "high", 0.95, f"the {name}: {why}", {"field": name, "excerpt": _excerpt(text, at)}
        if answered:
            if tag := _LEADING_NO_OUTPUT.match(output):
                yield (
                    "placeholder",
                    "high",
                    0.9,
                    f"the answer is a placeholder ({tag.group(0).strip()!r}) with a note instead of an answer",
                    {"field": "output"},
                )
            elif m := _LABEL_LEAK.match(output) or _TOKEN_LEAK.search(output):
                yield (
                    "template_leak",
                    "medium",
                    0.7,
                    "the answer carries prompt-template pieces ('Output:' label or '<noinput>' token)",
                    {"field": "output", "excerpt": _excerpt(output, m.start())},
                )
            if why := truncation(instruction, output):
                yield (
                    "truncated",
                    "medium",
                    0.6,
                    f"the answer looks cut off: {why}",
                    {"field": "output", "ending": output.rstrip()[-120:]},
                )
        for name, text in (("instruction", instruction), ("input", inp), ("output", output)):
            yield from _garbled(name, text)


def _is_placeholder(text: str, placeholders: frozenset[str]) -> bool:
    if len(text) > 40:
        return False
    t = text.strip()
    return bool(_PLACEHOLDER_TAG.match(t)) or t.casefold().rstrip(".") in placeholders or t.casefold() in placeholders


def _garbled(name: str, text: str) -> Iterator[tuple[str, Severity, float, str, dict[str, Any]]]:
    """Mojibake, unreadable characters and control characters in one field."""
    if not text or _printable(text):
        return
    if sample := mojibake(text):
        yield (
            "mojibake",
            "medium",
            0.7,
            f"the {name} has mojibake (mis-decoded UTF-8)",
            {"field": name, "excerpt": sample, "fixed": ftfy.fix_text(sample)},
        )
    run = _COMBINING_RUN.search(text)
    ratio = garbage_ratio(text) if run or "\ufffd" in text or not _visible(text) or _BLOCKS.search(text) else 0.0
    if ratio > 0.05 or run or "\ufffd" in text:
        at = run.start() if run else next((i for i, c in enumerate(text) if is_garbage(c)), 0)
        severity: Severity = "high" if ratio > 0.3 else "medium"
        yield (
            "garbage",
            severity,
            max(0.6, ratio),
            f"the {name} has unreadable characters",
            {"field": name, "excerpt": _excerpt(text, at, 80), "garbage_ratio": round(ratio, 3)},
        )
        return
    plain = text.replace("\r\n", "\n").replace("\r", "\n")
    if strip_control(plain) != plain:
        c0 = _C0_C1.findall(plain)
        hidden = sorted({f"U+{ord(c):04X}" for c in plain if not strip_control(c)})
        severity = "medium" if len(c0) >= 3 else "low"
        yield (
            "control_chars",
            severity,
            0.5 if c0 else 0.3,
            f"the {name} has control or invisible characters",
            {"field": name, "characters": hidden},
        )


def _visible(text: str) -> bool:
    """No control, format, private-use, surrogate or unassigned characters (str.isprintable, minus whitespace)."""
    return text.replace("\n", "").replace("\t", "").replace("\r", "").replace("\u00a0", "").isprintable()


def _printable(text: str) -> bool:
    """Plain ASCII with no control characters: nothing in it can be garbled (the fast path for most fields)."""
    return text.isascii() and not _C0_C1.search(text)
