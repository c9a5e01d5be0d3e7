"""balance: how many answers refuse or deflect, and how an answer label set is spread.

A fine-tuned model refuses about as often as its data does: 60% refusals in training gives far too many
refusals where 5% are right, and a skewed label set teaches the majority label. The check finds each refusal
or non-answer ("<nooutput>", "As an AI…", "I cannot answer…", "without more information…"), measures the
label distribution when the answers look like classification labels, and compares both with the rates the
user expects (`expect`, e.g. {"refusal": 0.05}).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from pydantic import Field, field_validator

from lmtailor.audit.charts import SEVERITY_COLORS, bar_chart, count_bars, fmt_int, fmt_pct, note
from lmtailor.audit.check import Check, CheckContext, Plot
from lmtailor.audit.finding import Finding, Severity, as_written, sources
from lmtailor.core.records import Example

# Every pattern runs on lower-cased text without re.I: case-folding matching costs Python's re several times over.
_CANT = (
    r"(?:cannot|can ?not|can'?t|can’t|am unable to|am not able to|['’]m unable to|['’]m not able to|could not|"
    r"couldn'?t|won'?t be able to|am not capable of|do not have the ability to|don'?t have the ability to)"
)
_ACT = (
    r"(?:answer|provide|help|assist|create|generate|produce|draw|design|play|perform|complete|do (?:that|this|so)|"
    r"fulfil+|access|browse|view|see|open|read|watch|listen|hear|predict|determine|say|tell|know|give|make|"
    r"compose|render|sing|set|send|book|schedule|order|call|print|upload|download|share|show|display|attach|"
    r"comply|process|execute|carry out|write|search|look up|find|check|verify|guarantee|offer|express|"
    r"form (?:an )?opinions?|have (?:personal|an opinion)|physically|visuali[sz]e|respond)"
)
# A non-answer: the output is a placeholder saying there is none.
_NO_OUTPUT = re.compile(r"^\W*(?:no[ _-]?output\b|(?:n/?a|none|not applicable)\W*$)|<\s*no\s*[-_ ]?output")
# The model says it cannot do the task because of what it is: a refusal wherever it appears. Only answers that
# name a model (_MODEL_WORDS) can match, which keeps the scan cheap.
_MODEL_WORDS = re.compile("model|gpt| ai|text-based|assistant|chatbot")
_SELF_LIMIT = re.compile(
    r"\bas an? (?:ai|artificial intelligence|(?:ai |gpt[- ]?\w* |large )?language model|gpt(?:-\d)? model|"
    r"text-based (?:ai|model|assistant)|virtual assistant|ai assistant|chatbot)\b[^.\n]{0,80}?"
    r"\b(?:not|cannot|can'?t|unable|no)\b"
    rf"|\b{_CANT}\b[^.\n]{{0,80}}?\b(?:by|for|with|to) (?:a |an |the )?(?:gpt|(?:ai )?language model|ai model|"
    r"text-based|model's)"
    r"|\b(?:gpt(?:-\d)?|language|ai|the) models?\b[^.\n]{0,40}?\b(?:cannot|can ?not|can'?t|is unable|are unable|"
    r"is not able|are not able|is not capable|are not designed|does not have|do not have)\b"
    r"|\b(?:beyond|outside|due to) (?:the )?(?:limitations?|capabilit(?:y|ies)|scope) of (?:a |the |this )?(?:gpt|"
    r"language|ai)? ?(?:models?|ai)\b"
)
# Short answers that decline the task: "This task cannot be completed…", "…requires a visual output which cannot
# be generated", "Unable to perform this task…". Long answers that say so are explaining, not refusing.
_TASK_REFUSED = re.compile(
    r"^\W*(?:\w+,? ){0,3}(?:this|the) (?:instruction|task|request|question|prompt)\b[^.\n]{0,40}?\b(?:cannot|"
    r"can ?not|can'?t|could not) be (?:completed|fulfilled|done|performed|answered|executed|accomplished|"
    r"carried out|generated)"
    r"|^\W*(?:unable|not able|impossible) to (?:perform|complete|do|fulfil+|generate|create|produce|answer)\b"
    rf"|\b(?:{_CANT}|not possible|impossible)\b[^.\n]{{0,60}}?\b(?:visual|audio|audible|graphical|physical|image)s? "
    r"(?:output|content|product|task|information|media|creation)"
    r"|\b(?:visual|audio|audible|graphical|physical)s? (?:output|content|product|task|information|media|creation)"
    r"\b[^.\n]{0,60}?\b(?:cannot|can ?not|can'?t|unable|not able|not possible|impossible)\b"
    rf"|\b{_CANT}\b[^.\n]{{0,60}}?\bby (?:the|this) model\b"
)
# Instructions about AI or language models, whose answers discuss what models cannot do.
_ABOUT_MODELS = re.compile(r"\b(?:gpt|language models?|ai|artificial intelligence|chatbots?)\b")
# Opening deflections: the answer starts by declining.
_OPENING = re.compile(
    rf"^\W*(?:(?:i'?m|i’m|i am|we are|we'?re) sorry,? (?:but )?(?:i|we|this|that|it)\b[^.\n]{{0,30}}?"
    rf"\b(?:{_CANT}|(?:is|are) not|isn'?t|don'?t|do not)\b"
    rf"|sorry,? (?:but )?(?:i|we|this|that|it)\b[^.\n]{{0,20}}?\b(?:{_CANT}|(?:is|are) not|isn'?t|don'?t|do not)\b"
    rf"|(?:unfortunately,? )?(?:i|we) {_CANT} {_ACT}\b"
    r"|(?:i|we) (?:do not|don'?t) (?:have (?:access|the ability|enough|sufficient|any (?:information|data|way))|"
    r"know\b)"
    r"|unfortunately,? (?:i|we|this|that|there|it is not)\b"
    r"|i apologi[sz]e,? but\b"
    r"|(?:it is|it's|it’s) (?:not possible|impossible|not feasible) to (?:\w+ ){0,2}?"
    r"(?:predict\w*|determine|know|say|answer|tell|give|provide|calculate|estimate|identify|guess)\b)"
)
# Deflections anywhere: the answer says the question cannot be answered from what it was given.
_DEFLECT = re.compile(
    r"\bwithout (?:more|additional|further|specific|enough|sufficient) (?:\w+ )?(?:information|context|details|"
    r"data)\b"
    r"|\b(?:not enough|insufficient|no) (?:information|context|data|details)\b[^.\n]{0,20}?"
    r"\b(?:is |was |has been )?(?:provided|given|available|to (?:answer|determine|say))\b"
    r"|(?:^|\. )(?:it|this|the answer|the question|this question) (?:cannot|can ?not|can'?t) be (?:determined|"
    r"answered|known|predicted)\b"
    r"|\bi (?:cannot|can ?not|can'?t|am unable to|am not able to) (?:answer|complete|perform|fulfil+|do) "
    r"(?:this|that|the|your)\b"
)
# Instructions whose answer is itself a polite "no" or a line of dialogue: sorry/cannot there is the content.
_WRITES_A_NO = re.compile(
    r"\b(?:apolog\w*|excuse|sorry|decline|declining|refus\w*|reject\w*|turn down|say no|dialog\w*|conversation|"
    r"script|story|poem|song|lyrics|rap|haiku|sentence|phrase|line|response|reply|respond|customer|example|"
    r"rewrite|re-write|rephrase|reword|paraphrase|rearrange|edit|simplify|translate|convert|polite\w*|tweet|"
    r"letter|e-?mail|message|note|quote|character|role|pretend|imagine|frustrat\w*|express\w*)\b"
)
# Every pattern above but _NO_OUTPUT needs one of these words; most answers have none, and plain substring tests
# for them cost less than one alternation scan, let alone a scan per pattern.
_CUES = (
    *("cannot", "can't", "can’t", "can not", "unable", "not able", "impossible", "not possible", "not feasible"),
    *("could not", "couldn't", "won't be able", "not capable", "the ability", "not designed", "beyond", "outside"),
    *("due to", "without", "enough", "insufficient", "no information", "be determined", "be answered", "be known"),
    *("be predicted", "sorry", "unfortunately", "apologi", "don't", "don’t", "do not"),
)
_LABEL_MAX_CHARS = 40
_LABEL_MAX_WORDS = 4
_MAX_LABELS = 20


def refusal(instruction: str, inp: str, answer: str) -> tuple[float, str] | None:
    """(confidence, matched phrase) when the answer refuses or deflects instead of doing the task, else None.

    Phrases copied from the instruction or input (a sentence to rewrite, a reply to translate) do not count,
    and neither do apologies the instruction asks for (a customer reply, a line of dialogue).
    """
    original = answer.strip()
    text = original.lower()

    def phrase(m: re.Match[str]) -> str:
        return as_written(answer, text, m)

    if m := _NO_OUTPUT.search(text[:80]):
        return None if m.group(0).strip(" .<>") in instruction.lower() else (0.95, phrase(m))
    if not any(cue in text for cue in _CUES):
        return None
    if (
        (_MODEL_WORDS.search(text) and (m := _SELF_LIMIT.search(text)))
        or (len(text) <= 400 and (m := _TASK_REFUSED.search(text)))
    ) and not _ABOUT_MODELS.search(f"{instruction}\n{inp}".lower()):
        return 0.9, phrase(m)
    if m := _OPENING.search(text[:200]):
        confidence = 0.85 if len(text.split()) <= 50 else 0.5
    elif m := _DEFLECT.search(text):
        confidence = 0.8 if len(text.split()) <= 40 else 0.5
    else:
        return None
    source = f"{instruction}\n{inp}".lower()
    if m.group(0).strip() in source or _WRITES_A_NO.search(source):
        return None
    return confidence, phrase(m)


def _label(answer: str) -> str | None:
    """The answer as a class label (short, case- and punctuation-folded), or None when it is too long."""
    text = answer.strip().strip(".!\"'`").strip().lower()
    if not text or len(text) > _LABEL_MAX_CHARS or len(text.split()) > _LABEL_MAX_WORDS:
        return None
    return text


def _compare(observed: float, expected: float) -> tuple[Severity, str]:
    """How far an observed rate sits from the expected one: the severity and a phrase for the message."""
    gap = abs(observed - expected)
    if observed > 2 * expected and gap >= 0.005:
        return "high", "far above"
    if observed > 1.25 * expected and gap >= 0.005:
        return "medium", "above"
    if observed < expected / 2 and gap >= 0.005:
        return "medium", "far below"
    return "info", "in line with"


def _plot(m: dict[str, Any]) -> str:
    """The refusal rate against the expected one, and the label distribution against the expected shares."""
    out = []
    rate, expected = m.get("refusal_rate"), m.get("expected") or {}
    want = expected.get("refusal")
    if rate is None:
        out.append(note("The balance check recorded no refusal rate."))
    else:
        guide = (float(want), f"expected {fmt_pct(float(want))}") if want is not None else None
        out.append(
            f"<h4>Refusal rate</h4><p>{fmt_int(m.get('refusals', 0))} refusals, {fmt_pct(float(rate))} of records; "
            + (
                f"about {fmt_pct(float(want))} is expected for this task.</p>"
                if guide
                else "no expected rate given.</p>"
            )
        )
        out.append(
            bar_chart(
                [("refusals", [(float(rate), SEVERITY_COLORS["medium"])])],
                fmt_pct,
                "Refusal rate against the expected rate",
                guide,
            )
        )
    labels = m.get("labels")
    if isinstance(labels, dict) and labels:
        wanted = {k: float(v) for k, v in expected.items() if k != "refusal"}
        caption = '<p class="muted">Dark ticks mark the expected shares.</p>' if wanted else ""
        out.append("<h4>Label distribution</h4>" + caption + count_bars(labels, "Records per label", wanted))
    else:
        out.append(note("No labels in this dataset, so no label distribution."))
    return "".join(out)


class Balance(Check):
    """Refusal rate and label distribution, against the rates the user expects.

    `expect` maps "refusal" or a label to the share wanted in training ({"refusal": 0.05}); without an
    expectation a refusal rate above `max_refusal_rate` still warns.
    """

    check: Literal["balance"] = "balance"
    plots = (Plot("plot-balance", "Balance", _plot),)
    expect: dict[str, float] = {}
    max_refusal_rate: float = Field(0.1, ge=0, le=1)
    max_majority_label: float = Field(0.8, ge=0, le=1)

    @field_validator("expect")
    @classmethod
    def _rates(cls, v: dict[str, float]) -> dict[str, float]:
        if bad := [k for k, r in v.items() if not 0 <= r <= 1]:
            raise ValueError(f"expected rates must lie in [0, 1]: {', '.join(bad)}")
        return {k.strip().lower(): r for k, r in v.items()}

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        refusals = deflections = 0
        labels: Counter[str] = Counter()
        for ex in examples:
            answer = ex.field("output")
            found = refusal(ex.field("instruction"), ex.input, answer)
            if found is None:
                if (label := _label(answer)) is not None:
                    labels[label] += 1
                continue
            score, phrase = found
            if score >= 0.8:
                refusals += 1
                yield ctx.finding(ex, "low", score, f"the answer refuses or gives no answer: '{phrase}'", phrase=phrase)
            else:
                deflections += 1
                yield ctx.finding(ex, "info", score, f"the answer deflects before answering: '{phrase}'", phrase=phrase)
        n = len(examples)
        rate = refusals / n if n else 0.0
        top = dict(labels.most_common(_MAX_LABELS))
        classification = n >= 10 and sum(top.values()) >= 0.5 * n
        ctx.metrics.update(
            {
                "refusals": refusals,
                "refusal_rate": round(rate, 5),
                "deflections": deflections,
                "expected": dict(self.expect),
                "labels": top if classification else {},
            }
        )
        if not n:
            return
        source = sources(examples)
        yield self._refusal_finding(ctx, source, refusals, rate)
        if classification:
            yield from self._label_findings(ctx, source, top)

    def _refusal_finding(self, ctx: CheckContext, source: str, refusals: int, rate: float) -> Finding:
        """The refusal rate against the expected one, or against `max_refusal_rate` when none is given."""
        evidence: dict[str, Any] = {"refusals": refusals, "rate": round(rate, 5)}
        message = f"{rate:.1%} of answers refuse ({refusals})"
        severity: Severity
        if "refusal" in self.expect:
            expected = evidence["expected"] = self.expect["refusal"]
            severity, how = _compare(rate, expected)
            message += f", {how} the expected {expected:.1%}"
            if how == "far above":
                message += "; training would teach the model to refuse far too often"
        else:
            severity = "medium" if rate > self.max_refusal_rate else "info"
            message += "; pass an expected rate (expect={'refusal': 0.05}) to compare"
        return ctx.dataset_finding(source, severity, rate, message, **evidence)

    def _label_findings(self, ctx: CheckContext, source: str, top: dict[str, int]) -> Iterator[Finding]:
        total = sum(top.values())
        shares = {label: count / total for label, count in top.items()}
        wanted = {k: r for k, r in self.expect.items() if k != "refusal"}
        for label, expected in wanted.items():
            observed = shares.get(label, 0.0)
            severity, how = _compare(observed, expected)
            yield ctx.dataset_finding(
                source,
                severity,
                observed,
                f"label '{label}' is {observed:.1%} of labelled answers, {how} the expected {expected:.1%}",
                label=label,
                share=round(observed, 5),
                expected=expected,
            )
        majority, count = next(iter(top.items()))
        if not wanted and shares[majority] > self.max_majority_label:
            yield ctx.dataset_finding(
                source,
                "medium",
                shares[majority],
                f"label '{majority}' is {shares[majority]:.1%} of labelled answers: the model "
                f"will learn to answer it by default",
                label=majority,
                count=count,
                labels=top,
            )
