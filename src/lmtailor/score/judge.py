"""judge: an LLM grades each record against rubrics (1-5 with a reason) or compares two answers to the same
instruction; the step then filters or ranks by the grade and measures agreement with human labels.

Prompts are few-shot completions that end where the JSON verdict begins, so a small base model can
continue them; backends that support grammars (llama.cpp) are held to the verdict's schema, others are
re-asked. `method: weighted` (G-Eval) replaces the sampled grade with its expectation under the model,
sum k * P(k), from the log-likelihood of each grade: smoother, and far less tied to the demonstrations'
grades on small models. Pairwise questions are asked in both orders so position bias cancels.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmtailor.core.inputs import InputSpec
from lmtailor.core.io import DataError, raw_records
from lmtailor.core.records import FIELDS, Example
from lmtailor.curate.manifest import Manifest
from lmtailor.curate.provenance import provenance, step_llm, template_id
from lmtailor.curate.step import FileRef, SetStep, StepContext
from lmtailor.llm.client import LLM
from lmtailor.llm.config import BackendConfig, LlamaCppConfig
from lmtailor.llm.types import GenParams
from lmtailor.score.rubrics import (
    Rubric,
    pair_preamble,
    pair_prompt,
    preference_schema,
    resolve,
    rubric_preamble,
    rubric_prompt,
    verdict_schema,
)

Method = Literal["generate", "weighted"]
GRADES = (1, 2, 3, 4, 5)


# ---------------------------------------------------------------- grading


@dataclass(slots=True)
class Grade:
    """One rubric's grade for one answer; `probs` are P(1..5) under `method: weighted`."""

    score: float | None
    reason: str
    probs: list[float] | None = None


def _distribution(logprobs: Sequence[float]) -> np.ndarray:
    lp = np.asarray(logprobs, dtype=np.float64)
    p = np.exp(lp - lp.max())
    return p / p.sum()


def grade(
    llm: LLM,
    prompts: Sequence[str],
    method: Method,
    reasons: bool,
    params: GenParams,
    description: str,
) -> list[Grade]:
    """Grades for rubric prompts that end where the verdict JSON begins."""
    texts: list[tuple[float | None, str]] = [(None, "")] * len(prompts)
    if reasons or method == "generate":
        answers = llm.structured(prompts, verdict_schema(reasons), params, description=description)
        texts = [
            (a.value.score, getattr(a.value, "reason", "")) if a.value else (None, f"no valid verdict: {a.error}")
            for a in answers
        ]
    if method == "generate":
        return [Grade(s, r) for s, r in texts]
    pairs = [(p, f' {{"score": {k}') for p in prompts for k in GRADES]
    lls = llm.loglikelihood(pairs, description=f"{description} P(grade)")
    out = []
    for i, (_, reason) in enumerate(texts):
        dist = _distribution([x.logprob for x in lls[i * 5 : i * 5 + 5]])
        reason = reason or "P(grade 1..5) = " + " ".join(f"{x:.2f}" for x in dist)
        out.append(Grade(round(float(dist @ np.array(GRADES)), 4), reason, [round(float(x), 4) for x in dist]))
    return out


@dataclass(slots=True)
class Pick:
    """A pairwise verdict: which answer is better (a, b or tie), P(a better), and why, in both orders."""

    preferred: str
    p_a: float
    reason: str
    consistent: bool  # both orders named the same answer
    first_picked: int  # how many of the two orders picked the answer shown first


def compare(
    llm: LLM,
    items: Sequence[tuple[str, str, str]],
    method: Method,
    reasons: bool,
    params: GenParams,
    tie_margin: float,
    limit: int,
) -> list[Pick]:
    """For (instruction, a, b): ask with a first, then with b first, and combine so order cannot decide."""
    pre = pair_preamble(reasons)
    prompts = [pair_prompt(pre, i, a, b, limit) for i, a, b in items]
    prompts += [pair_prompt(pre, i, b, a, limit) for i, a, b in items]
    n = len(items)
    said: list[tuple[str, str]] = [("tie", "")] * (2 * n)
    if reasons or method == "generate":
        answers = llm.structured(prompts, preference_schema(reasons), params, description="judge: pairwise")
        said = [
            (a.value.better, getattr(a.value, "reason", "")) if a.value else ("tie", f"no valid verdict: {a.error}")
            for a in answers
        ]
    if method == "weighted":
        lls = llm.loglikelihood(
            [(p, f' {{"better": "{x}"') for p in prompts for x in ("A", "B")], description="judge: pairwise P(A)"
        )
        first = [float(_distribution([lls[2 * j].logprob, lls[2 * j + 1].logprob])[0]) for j in range(2 * n)]
    else:
        first = [{"A": 1.0, "B": 0.0}.get(b, 0.5) for b, _ in said]
    out = []
    for j in range(n):
        (b1, r1), (b2, r2) = said[j], said[n + j]
        p_a = (first[j] + 1 - first[n + j]) / 2  # a is shown first in the first order, second in the other
        preferred = "a" if p_a > 0.5 + tie_margin else "b" if p_a < 0.5 - tie_margin else "tie"
        picks_first = (first[j] > 0.5) + (first[n + j] > 0.5)
        reason = f"a first: {b1} {r1} | b first: {b2} {r2}".strip() if reasons else f"P(a better) {p_a:.3f}"
        out.append(Pick(preferred, round(p_a, 4), reason, picks_first == 1, int(picks_first)))
    return out


# ---------------------------------------------------------------- agreement


def score_agreement(judge: Sequence[float], human: Sequence[float]) -> dict[str, Any]:
    """How well judge grades track human 1-5 grades: exact and within-one agreement (judge rounded),
    Spearman's rho, and Cohen's quadratically weighted kappa."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    j = np.clip(np.rint(np.asarray(judge, dtype=float)), 1, 5).astype(int)
    h = np.asarray(human, dtype=float).astype(int)
    rho = spearmanr(judge, human).statistic if len(set(judge)) > 1 and len(set(human)) > 1 else float("nan")
    kappa = cohen_kappa_score(h, j, labels=list(GRADES), weights="quadratic") if len(j) > 1 else float("nan")
    return {
        "n": len(j),
        "exact": round(float(np.mean(j == h)), 4),
        "within_1": round(float(np.mean(np.abs(j - h) <= 1)), 4),
        "spearman": None if np.isnan(rho) else round(float(rho), 4),
        "weighted_kappa": None if np.isnan(kappa) else round(float(kappa), 4),
    }


def preference_agreement(judge: Sequence[str], human: Sequence[str]) -> dict[str, Any]:
    """Agreement on a/b/tie: over all pairs, and over the pairs the judge decided; kappa where both vary."""
    from sklearn.metrics import cohen_kappa_score

    decided = [(j, h) for j, h in zip(judge, human, strict=True) if j != "tie"]
    kappa = cohen_kappa_score(list(human), list(judge)) if len(set(human)) > 1 else float("nan")
    return {
        "n": len(judge),
        "agreement": round(float(np.mean([j == h for j, h in zip(judge, human, strict=True)])), 4),
        "decided": len(decided),
        "agreement_decided": round(float(np.mean([j == h for j, h in decided])), 4) if decided else None,
        "cohen_kappa": None if np.isnan(kappa) else round(float(kappa), 4),
    }


# ---------------------------------------------------------------- record access


def _where(ex: Example) -> tuple[str, int | None]:
    return str(ex.metadata.get("source") or ex.id), ex.metadata.get("index")


def text_of(ex: Example, name: str) -> str:
    """A named field (instruction, input, output, ...) or a field the record kept beyond its format."""
    if name in FIELDS:
        return ex.field(name)
    value = ex.metadata.get("extra", {}).get(name)
    if not isinstance(value, str):
        found = "no such field" if value is None else f"a {type(value).__name__}, not text"
        raise DataError(*_where(ex), f"field {name!r}: {found} (id {ex.id})")
    return value


def _label(ex: Example, name: str) -> Any:
    return ex.metadata.get("extra", {}).get(name, ex.metadata.get(name))


def _human_score(ex: Example, name: str) -> float | None:
    value = _label(ex, name)
    if value is None or value == "":
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = float("nan")
    if not 1 <= score <= 5 or score != int(score):
        raise DataError(*_where(ex), f"label field {name!r} holds {value!r}; expected a grade from 1 to 5")
    return score


def _human_preference(ex: Example, name: str) -> str | None:
    value = _label(ex, name)
    if value is None or value == "":
        return None
    pref = str(value).strip().lower()
    if pref not in ("a", "b", "tie"):
        raise DataError(*_where(ex), f"label field {name!r} holds {value!r}; expected a, b or tie")
    return pref


def _set_extra(ex: Example, values: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Write `values` into metadata["extra"]; return the ledger's {field: (before, after)}."""
    extra = ex.metadata.setdefault("extra", {})
    changes = {}
    for key, value in values.items():
        before = extra.get(key)
        extra[key] = value
        changes[f"extra.{key}"] = ("" if before is None else str(before), str(value))
    return changes


def _stamp(ex: Example, origin: dict[str, Any]) -> None:
    """Judge provenance on the record; an earlier provenance (a generated record's) is kept under `previous`."""
    extra = ex.metadata.setdefault("extra", {})
    previous = extra.get("provenance")
    extra["provenance"] = origin | ({"previous": previous} if previous else {})


# ---------------------------------------------------------------- the step


class Judge(SetStep):
    """Grade records with an LLM (`rubrics`) or compare two answers per instruction (`against` or `pair`).

    Grades go to metadata["extra"] as judge_<rubric>, judge_reason_<rubric> and their mean `judge_score`
    (rank with `select: {score_field: judge_score}`); `min_score` drops records whose mean is below it.
    Pairwise verdicts go to judge_preferred (a, b or tie), judge_p_a (P(a is better)) and judge_reason.
    """

    step: Literal["judge"] = "judge"
    # a set step though each grade is one record's: one batch per rubric, one progress bar with tokens/s, the
    # cache committed per batch
    backend: BackendConfig = LlamaCppConfig()
    rubrics: list[str | Rubric] = Field(default_factory=lambda: ["helpfulness", "correctness"], min_length=1)
    rubrics_file: FileRef | None = None
    field: str = "output"  # the answer judged: a standard field or one the records carry (a model's output)
    method: Method = "weighted"
    reasons: bool = True
    min_score: float | None = Field(None, ge=1, le=5)
    labels: str | None = None  # field with human grades 1-5, or with a/b/tie preferences when pairwise
    # pairwise: `field` against the same field of the matching record in `against`, or two fields of a record
    against: InputSpec | None = None
    match: Literal["position", "instruction"] = "position"
    pair: tuple[str, str] | None = None
    preferred: Literal["a", "b"] | None = None  # the answer known to be better in every pair (human vs model)
    tie_margin: float = Field(0.0, ge=0, lt=0.5)  # |P(a better) - 0.5| at or below this is a tie
    max_tokens: int = Field(160, ge=1)  # above any verdict the schema allows, so none is cut short
    max_chars: int = Field(1500, ge=50)  # longer instructions, inputs and answers are clipped in the prompt

    @model_validator(mode="after")
    def _check(self) -> Judge:
        # A recipe's relative rubrics_file is found once the recipe knows its folder; checked again in run().
        if self.rubrics_file is None or self.rubrics_file.path.is_file():
            resolve(self.rubrics, self._rubrics_path)
        if self.against is not None and self.pair is not None:
            raise ValueError("give either against (a second file) or pair (two fields of one record), not both")
        if self.pairwise and self.min_score is not None:
            raise ValueError("min_score filters rubric grades; pairwise judging keeps every record")
        if self.preferred is not None and self.labels is not None:
            raise ValueError("give either preferred (one answer known better in every pair) or labels, not both")
        if self.preferred is not None and not self.pairwise:
            raise ValueError("preferred applies to pairwise judging (against or pair)")
        return self

    @property
    def pairwise(self) -> bool:
        return self.against is not None or self.pair is not None

    def _params(self) -> GenParams:
        # the JSON verdict is one line (the grammar allows no blank line in it), so a blank line ends it
        return GenParams(max_tokens=self.max_tokens if self.reasons else 8, stop=("\n\n",))

    @property
    def _rubrics_path(self) -> Path | None:
        return self.rubrics_file.path if self.rubrics_file else None

    def data_files(self) -> list[InputSpec | FileRef]:
        return [f for f in (self.against, self.rubrics_file) if f is not None]

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        items = list(examples)
        if items:
            yield from self._pairwise(items, ctx) if self.pairwise else self._graded(items, ctx)

    # ------------------------------------------------------------ rubric grades

    def _graded(self, items: list[Example], ctx: StepContext) -> Iterator[Example]:
        # Everything that can be wrong with the data is found before the model loads.
        human = [_human_score(ex, self.labels) for ex in items] if self.labels else [None] * len(items)
        if self.labels and all(h is None for h in human):
            raise ValueError(f"labels {self.labels!r}: no record holds a grade in that field")
        rubrics = resolve(self.rubrics, self._rubrics_path)
        jobs = []
        for rubric in rubrics:
            pre = rubric_preamble(rubric, self.reasons)
            todo = [i for i, ex in enumerate(items) if not rubric.needs_input or ex.input.strip()]
            prompts = [
                rubric_prompt(
                    pre, items[i].field("instruction"), items[i].input, text_of(items[i], self.field), self.max_chars
                )
                for i in todo
            ]
            jobs.append((rubric.name, template_id(f"judge-{rubric.name}", pre), todo, prompts))
        template = "+".join(t for _, t, _, _ in jobs)
        params = self._params()
        stats = _GradeStats([r.name for r in rubrics])
        with step_llm(self.backend, ctx) as llm:
            grades: dict[str, dict[int, Grade]] = {}
            for name, _, todo, prompts in jobs:
                got = grade(llm, prompts, self.method, self.reasons, params, f"judge: {name}") if todo else []
                grades[name] = dict(zip(todo, got, strict=True))
            for i, ex in enumerate(items):
                mine = {k: g[i] for k, g in grades.items() if i in g and g[i].score is not None}
                failed = {k: g[i].reason for k, g in grades.items() if i in g and g[i].score is None}
                stats.add(mine, failed, human[i])
                if not mine:
                    # no rubric applies (groundedness without an input), or no valid verdict: a filter cannot
                    # vouch for the record, a ranking keeps it unranked
                    if failed and self.min_score is not None:
                        ctx.drop(ex, "judge_failed", "; ".join(f"{k}: {v}" for k, v in failed.items()))
                    else:
                        yield ex
                    continue
                mean = round(float(np.mean([g.score for g in mine.values()])), 4)
                reasons = {k: g.reason for k, g in mine.items()}
                if self.min_score is not None and mean < self.min_score:
                    scores = {k: g.score for k, g in mine.items()}
                    detail = f"judge_score {mean:.2f} < {self.min_score:g}: " + "; ".join(
                        f"{k} {g.score:.2f} ({g.reason})" for k, g in mine.items()
                    )
                    ctx.drop(ex, "judge_below_min", detail, scores=scores, reasons=reasons)
                    continue
                values: dict[str, Any] = {}
                for k, g in mine.items():
                    values[f"judge_{k}"] = g.score
                    values[f"judge_reason_{k}"] = g.reason
                values["judge_score"] = mean
                changes = _set_extra(ex, values)
                probs = {k: g.probs for k, g in mine.items() if g.probs is not None}
                origin = provenance(
                    llm, "judge", template, params, [ex.id], method=self.method, rubrics=list(mine), probs=probs
                )
                _stamp(ex, origin)
                ctx.change(ex, "judged", changes)
                yield ex
            ctx.metrics["judge"] = stats.summary(self.method)

    # ------------------------------------------------------------ pairwise

    def _pairwise(self, items: list[Example], ctx: StepContext) -> Iterator[Example]:
        others = self._counterparts(items)
        todo = [i for i, o in enumerate(others) if o is not None]
        triples = []
        for i in todo:
            ex, other = items[i], others[i]
            a = text_of(ex, self.pair[0] if self.pair else self.field)
            b = text_of(ex, self.pair[1]) if self.pair else text_of(other, self.field)  # type: ignore[arg-type]
            triples.append((ex.field("instruction") + (f"\n{ex.input}" if ex.input.strip() else ""), a, b))
        human = {i: self.preferred or (_human_preference(items[i], self.labels) if self.labels else None) for i in todo}
        if self.labels and all(h is None for h in human.values()):
            raise ValueError(f"labels {self.labels!r}: no record holds a preference (a, b or tie) in that field")
        params = self._params()
        template = template_id("judge-pairwise", pair_preamble(self.reasons))
        with step_llm(self.backend, ctx) as llm:
            got = compare(llm, triples, self.method, self.reasons, params, self.tie_margin, self.max_chars)
            picks = dict(zip(todo, got, strict=True))
            for i, ex in enumerate(items):
                pick = picks.get(i)
                if pick is None:
                    yield ex  # no counterpart in `against` (matching by instruction): left as it is
                    continue
                other = others[i]
                seeds = [ex.id] + ([other.id] if other is not None and other is not ex else [])
                changes = _set_extra(
                    ex, {"judge_preferred": pick.preferred, "judge_p_a": pick.p_a, "judge_reason": pick.reason}
                )
                _stamp(ex, provenance(llm, "judge", template, params, seeds, method=self.method, pairwise=True))
                ctx.change(ex, "judged", changes)
                yield ex
            unmatched = len(items) - len(todo)
            ctx.metrics["judge"] = _pair_summary(list(picks.values()), [human[i] for i in todo], unmatched, self.method)

    def _counterparts(self, items: list[Example]) -> list[Example | None]:
        """The record each item is compared with: itself (two fields), or its match in `against`."""
        if self.against is None:
            return list(items)
        others = list(self.against.read())
        if self.match == "instruction":
            keyed: dict[tuple[str, str], Example] = {}
            for o in others:
                keyed.setdefault((o.field("instruction").strip(), o.input.strip()), o)
            return [keyed.get((ex.field("instruction").strip(), ex.input.strip())) for ex in items]
        sources = {_where(ex)[0] for ex in items}
        if len(sources) != 1 or any(ex.metadata.get("index") is None for ex in items):
            raise ValueError(
                "match: position pairs records by their place in one input file; these come from "
                f"{', '.join(sorted(sources))}: use match: instruction"
            )
        source = Path(next(iter(sources)))
        count = sum(1 for _ in raw_records(source))
        if count != len(others):
            raise ValueError(
                f"matching by position needs files of equal length: {source} has {count} records, "
                f"{self.against.path} has {len(others)} (or match by instruction: --match instruction)"
            )
        return [others[ex.metadata["index"]] for ex in items]


class _GradeStats:
    """Grade distributions per rubric, failures, and the (judge, human) pairs for agreement."""

    def __init__(self, names: list[str]):
        self.names = names
        self.scores: dict[str, list[float]] = {n: [] for n in [*names, "judge_score"]}
        self.failed: Counter[str] = Counter()
        self.pairs: dict[str, list[tuple[float, float]]] = {n: [] for n in [*names, "judge_score"]}

    def add(self, grades: dict[str, Grade], failed: dict[str, str], human: float | None) -> None:
        self.failed.update(failed.keys())
        values = {k: float(g.score) for k, g in grades.items() if g.score is not None}
        if values:
            values["judge_score"] = round(float(np.mean(list(values.values()))), 4)
        for name, v in values.items():
            self.scores[name].append(v)
            if human is not None:
                self.pairs[name].append((v, human))

    def summary(self, method: str) -> dict[str, Any]:
        out: dict[str, Any] = {"mode": "rubric", "method": method, "rubrics": {}}
        for name, values in self.scores.items():
            out["rubrics"][name] = {
                "scored": len(values),
                "failed": self.failed.get(name, 0),
                "mean": round(float(np.mean(values)), 4) if values else None,
                "distribution": _histogram(values),
            }
        labelled = {k: p for k, p in self.pairs.items() if p}
        if labelled:
            out["agreement"] = {k: score_agreement([j for j, _ in p], [h for _, h in p]) for k, p in labelled.items()}
        return out


def _histogram(values: Sequence[float]) -> dict[str, int]:
    """Counts per grade, weighted grades rounded to the nearest one."""
    counts = Counter(int(np.clip(np.rint(v), 1, 5)) for v in values)
    return {str(k): counts.get(k, 0) for k in GRADES}


def _pair_summary(picks: list[Pick], human: list[str | None], unmatched: int, method: str) -> dict[str, Any]:
    n = len(picks)
    out: dict[str, Any] = {
        "mode": "pairwise",
        "method": method,
        "pairs": n,
        "unmatched": unmatched,
        "preferred": {k: sum(p.preferred == k for p in picks) for k in ("a", "b", "tie")},
        # position bias: how often the answer shown first won, and how often both orders named the same answer
        "first_position_rate": round(sum(p.first_picked for p in picks) / (2 * n), 4) if n else None,
        "consistent_rate": round(sum(p.consistent for p in picks) / n, 4) if n else None,
    }
    labelled = [(p.preferred, h) for p, h in zip(picks, human, strict=True) if h is not None]
    if labelled:
        out["agreement"] = preference_agreement([j for j, _ in labelled], [h for _, h in labelled])
    return out


# ---------------------------------------------------------------- terminal summary


def print_judge_summary(manifest: Manifest, console: Console) -> None:
    """Grade distributions (or pairwise verdicts), agreement with human labels, and what the LLM cost."""
    for s in manifest.step_stats:
        m = s.metrics
        if not s.step.endswith(":judge") or "judge" not in m:
            continue
        j = m["judge"]
        if j["mode"] == "rubric":
            table = Table(title=f"judge: grades ({j['method']})", title_justify="left")
            for col in ("rubric", "scored", "failed", "mean", *map(str, GRADES)):
                table.add_column(col, justify="left" if col == "rubric" else "right")
            for name, r in j["rubrics"].items():
                mean = "-" if r["mean"] is None else f"{r['mean']:.2f}"
                grades = map(str, r["distribution"].values())
                table.add_row(escape(name), str(r["scored"]), str(r["failed"]), mean, *grades)
            console.print(table)
            for name, a in j.get("agreement", {}).items():
                console.print(
                    f"agreement with human grades, {escape(name)}: n {a['n']}, exact {a['exact']:.0%}, "
                    f"within 1 {a['within_1']:.0%}, Spearman {_num(a['spearman'])}, "
                    f"weighted kappa {_num(a['weighted_kappa'])}"
                )
        else:
            p = j["preferred"]
            console.print(
                f"judge: {j['pairs']} pairs ({j['method']}): a preferred {p['a']}, b {p['b']}, tie {p['tie']}; "
                f"unmatched {j['unmatched']}; answer shown first won {_pct(j['first_position_rate'])} of asks, "
                f"both orders agreed on {_pct(j['consistent_rate'])}"
            )
            if a := j.get("agreement"):
                console.print(
                    f"agreement with human preference: {a['agreement']:.0%} of {a['n']} pairs, "
                    f"{_pct(a['agreement_decided'])} of the {a['decided']} not tied; kappa {_num(a['cohen_kappa'])}"
                )
        if u := m.get("usage"):
            tokens = u["prompt_tokens"] + u["completion_tokens"]
            rate = tokens / u["seconds"] if u["seconds"] else 0.0
            model = escape(str(m["backend"].get("model", "?")))
            console.print(
                f"LLM ({model}): {u['calls']:,} calls paid, {u['cached_calls']:,} from the "
                f"cache; {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion tokens in "
                f"{u['seconds']:.1f} s ({rate:,.0f} tokens/s); cost ${u['cost_usd']:.4f}"
            )


def _num(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.0%}"
