"""agreement: how far the annotators of a labelled set agree, which caps what a model can learn from it.

A model trained on labels that annotators dispute learns the dispute: it cannot be expected to agree with a
held-out annotator more than annotators agree with each other, so the mean pairwise agreement is reported as
that ceiling.

Input shape: a record's own field `annotations` (kept in `metadata["extra"]`), a list with one object per
annotation, each naming its `annotator` (the position in the list when absent) and carrying any of

    {"annotator": "a1", "label": "positive"}            nominal labels (any JSON value)
    {"annotator": "a1", "rating": 4}                    numeric ratings (interval / ordinal scale)
    {"annotator": "a1", "spans": [[0, 5], [9, 14, "PER"]]}  character spans [start, end) with an optional tag

Each of the three kinds is measured on the records where at least two annotators gave it; an annotator's
repeated annotations of one record count once (the first). Coefficients:

- labels: Cohen's kappa per annotator pair (scikit-learn), Fleiss' kappa when every record has the same
  number of labels, Krippendorff's alpha (nominal; any number of annotators, missing labels allowed);
- ratings: Krippendorff's alpha, interval and ordinal;
- spans: pairwise F1 of exact span matches (tags included) and of character overlap (Hripcsak & Rothschild
  2005: F1 between annotators is the agreement measure where kappa's chance term is undefined).

The headline, judged against the usual floors (below 0.4 medium, below 0.2 high), is the coefficient made
for the design at hand: Cohen's kappa for two annotators, Fleiss' kappa for a fixed number per record,
Krippendorff's alpha otherwise (and always for ratings), exact-match F1 for spans. Fleiss and Krippendorff
are short implementations here, checked against their textbook examples in the tests, rather than two more
dependencies.

Findings per record: labels with no majority (low; info when a majority exists), ratings `rating_gap` or more
apart (low), spans with pairwise exact F1 under 0.5 (low; info under 1). Per dataset: a weak headline, the
ceiling (info), and any annotator whose agreement with the others' consensus (kappa against their majority
label, alpha against their median rating, mean F1 for spans) is weak and 0.2 under the median annotator's.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import combinations
from statistics import median
from typing import Any, Literal

import numpy as np
from pydantic import Field

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.finding import Finding, Severity, sources
from lmtailor.core.records import Example

Level = Literal["nominal", "ordinal", "interval"]
Span = tuple[int, int] | tuple[int, int, str]
KINDS = ("label", "rating", "spans")


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' (1971) kappa from an items x categories count table whose rows all sum to the same n >= 2.

    None when chance agreement is certain (one category used throughout).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)[0]
    p = counts.sum(axis=0) / counts.sum()
    p_e = float((p**2).sum())
    if p_e >= 1.0:
        return None
    p_bar = float(((counts * (counts - 1)).sum(axis=1) / (n * (n - 1))).mean())
    return (p_bar - p_e) / (1 - p_e)


def krippendorff_alpha(units: Sequence[Sequence[Any]], level: Level = "nominal") -> float | None:
    """Krippendorff's alpha from the values each unit received (missing ones simply absent), via the
    coincidence matrix (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability").

    Units with fewer than two values are not pairable and do not count. None when fewer than two distinct
    values occur (no disagreement is possible, so none is expected either).
    """
    units = [u for u in units if len(u) >= 2]
    values = sorted({v for u in units for v in u})
    if len(values) < 2:
        return None
    index = {v: i for i, v in enumerate(values)}
    coincidences = np.zeros((len(values), len(values)))
    for u in units:
        c = np.bincount([index[v] for v in u], minlength=len(values)).astype(float)
        coincidences += (np.outer(c, c) - np.diag(c)) / (len(u) - 1)
    n_c = coincidences.sum(axis=1)
    n = n_c.sum()
    if level == "nominal":
        delta = 1.0 - np.eye(len(values))
    elif level == "interval":
        v = np.array(values, dtype=float)
        delta = (v[:, None] - v[None, :]) ** 2
    else:  # ordinal: the values between two ranks, counting each end half
        through = np.cumsum(n_c)
        before = through - n_c
        i = np.arange(len(values))
        lo, hi = np.minimum.outer(i, i), np.maximum.outer(i, i)
        delta = (through[hi] - before[lo] - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    observed = (coincidences * delta).sum() / n
    expected = (np.outer(n_c, n_c) * delta).sum() / (n * (n - 1))
    return float(1.0 - observed / expected)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two annotators' labels on the same items; None when only one label occurs."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    return float(cohen_kappa_score(a, b))


def _merged(spans: Sequence[Span]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for start, end in sorted((s[0], s[1]) for s in spans):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _covered(spans: Sequence[Span]) -> int:
    return sum(end - start for start, end in _merged(spans))


def _shared(a: Sequence[Span], b: Sequence[Span]) -> int:
    """Characters covered by both annotators' spans."""
    other = _merged(b)
    return sum(max(0, min(e, f) - max(s, t)) for s, e in _merged(a) for t, f in other)


def span_f1(pairs: Sequence[tuple[Sequence[Span], Sequence[Span]]]) -> tuple[float | None, float | None]:
    """Exact-match and character-overlap F1 of two annotators, pooled over items: 2·shared / (|A| + |B|).

    None where neither annotator marked anything.
    """
    hits = sum(2 * len(set(a) & set(b)) for a, b in pairs)
    marked = sum(len(set(a)) + len(set(b)) for a, b in pairs)
    both = sum(2 * _shared(a, b) for a, b in pairs)
    covered = sum(_covered(a) + _covered(b) for a, b in pairs)
    return (hits / marked if marked else None), (both / covered if covered else None)


def _value(kind: str, raw: Any) -> Any:
    """The annotation's value in a comparable form, or None when it is malformed."""
    if kind == "label":
        return None if raw is None else raw if isinstance(raw, str) else json.dumps(raw, sort_keys=True)
    if kind == "rating":
        return float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    if not isinstance(raw, list):
        return None
    spans = []
    for s in raw:
        ok = isinstance(s, list | tuple) and len(s) in (2, 3) and all(isinstance(x, int) for x in s[:2])
        if not ok or s[1] < s[0]:
            return None
        spans.append((s[0], s[1]) if len(s) == 2 else (s[0], s[1], str(s[2])))
    return tuple(sorted(set(spans)))


def _mean(xs: Sequence[float | None]) -> float | None:
    kept = [x for x in xs if x is not None]
    return round(float(np.mean(kept)), 4) if kept else None


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def _by_pair(items: dict[int, dict[str, Any]]) -> dict[tuple[str, str], list[tuple[Any, Any]]]:
    """Each annotator pair's values on the records both annotated (pairs that share none are absent)."""
    pairs: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
    for g in items.values():
        for a, b in combinations(sorted(g), 2):
            pairs.setdefault((a, b), []).append((g[a], g[b]))
    return pairs


def _versus_others(items: dict[int, dict[str, Any]], consensus: Callable[[list[Any]], Any]) -> dict[str, list]:
    """Each annotator's values beside the consensus of the others on the same records (None: no consensus)."""
    out: dict[str, list] = {}
    for g in items.values():
        for a, v in g.items():
            c = consensus([w for b, w in g.items() if b != a])
            if c is not None:
                out.setdefault(a, []).append((v, c))
    return out


def _majority(labels: list[Any]) -> Any:
    """The most frequent label when it is the only one that frequent, else None."""
    top = Counter(labels).most_common(2)
    return top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None


class Agreement(Check):
    """Inter-annotator agreement per kind of annotation, per-annotator quality and the ceiling it sets."""

    check: Literal["agreement"] = "agreement"
    # the record field holding the annotations
    annotations: str = "annotations"
    # ratings further apart than this on one record are a disagreement worth a look
    rating_gap: float = Field(2.0, gt=0)
    medium_below: float = 0.4
    high_below: float = 0.2

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        raw = {
            i: a
            for i, ex in enumerate(examples)
            if isinstance(a := ex.metadata.get("extra", {}).get(self.annotations), list) and a
        }
        ctx.metrics["annotated"] = len(raw)
        if not raw:
            return
        source = sources(examples[i] for i in raw)
        skipped: Counter[str] = Counter()  # malformed values (a rating that is not a number, a broken span)
        for kind in KINDS:
            items: dict[int, dict[str, Any]] = {}
            for i, listed in raw.items():
                given: dict[str, Any] = {}
                for pos, a in enumerate(listed):
                    if not isinstance(a, dict) or kind not in a:
                        continue
                    value = _value(kind, a[kind])
                    if value is None:
                        skipped[kind] += 1
                    else:
                        given.setdefault(str(a.get("annotator", f"#{pos}")), value)
                if len(given) >= 2:
                    items[i] = given
            if not items:
                continue
            measure = {"label": self._labels, "rating": self._ratings, "spans": self._spans}[kind]
            kind_metrics: dict[str, Any] = {
                "items": len(items),
                "annotators": sorted({a for g in items.values() for a in g}),
            }
            yield from measure(examples, items, kind_metrics, ctx)
            ctx.metrics[kind] = kind_metrics
            yield from self._dataset_findings(kind, kind_metrics, source, ctx)
        if skipped:
            ctx.metrics["skipped"] = dict(skipped)

    def _labels(
        self, examples: Sequence[Example], items: dict[int, dict[str, Any]], m: dict[str, Any], ctx: CheckContext
    ) -> Iterator[Finding]:
        pairs = [
            {
                "annotators": list(ab),
                "items": len(both),
                "kappa": _round(cohen_kappa([x for x, _ in both], [y for _, y in both])),
                "agreement": round(float(np.mean([x == y for x, y in both])), 4),
            }
            for ab, both in _by_pair(items).items()
        ]
        m["cohen_kappa"] = {"mean": _mean([p["kappa"] for p in pairs]), "pairs": pairs}
        tallies = {i: Counter(g.values()) for i, g in items.items()}
        categories = sorted({v for t in tallies.values() for v in t})
        table = np.array([[t[c] for c in categories] for t in tallies.values()])
        m["fleiss_kappa"] = _round(fleiss_kappa(table)) if len({len(g) for g in items.values()}) == 1 else None
        m["krippendorff_alpha"] = _round(krippendorff_alpha([list(g.values()) for g in items.values()]))
        agreeing = sum(int((row * (row - 1)).sum()) for row in table)
        m["ceiling"] = {
            "agreement": round(agreeing / sum(len(g) * (len(g) - 1) for g in items.values()), 4),
            "kappa": m["cohen_kappa"]["mean"],
        }
        m["per_annotator"] = [
            {
                "annotator": a,
                "items": len(vs),
                "agreement": round(float(np.mean([x == y for x, y in vs])), 4),
                "score": _round(cohen_kappa([x for x, _ in vs], [y for _, y in vs])),
            }
            for a, vs in sorted(_versus_others(items, _majority).items())
        ]
        if len(m["annotators"]) == 2:
            m["headline"] = {"coefficient": "Cohen's kappa", "value": m["cohen_kappa"]["mean"]}
        elif m["fleiss_kappa"] is not None:
            m["headline"] = {"coefficient": "Fleiss' kappa", "value": m["fleiss_kappa"]}
        else:
            m["headline"] = {"coefficient": "Krippendorff's alpha", "value": m["krippendorff_alpha"]}
        for i, g in items.items():
            counts = tallies[i].most_common()
            if len(counts) == 1:
                continue
            tied = counts[0][1] == counts[1][1]
            severity: Severity = "low" if tied else "info"
            verdict = "no majority label" if tied else f"majority '{counts[0][0]}' ({counts[0][1]} of {len(g)})"
            yield ctx.finding(
                examples[i],
                severity,
                1 - counts[0][1] / len(g),
                f"annotators disagree on the label: {verdict}",
                labels=g,
            )

    def _ratings(
        self, examples: Sequence[Example], items: dict[int, dict[str, Any]], m: dict[str, Any], ctx: CheckContext
    ) -> Iterator[Finding]:
        units = [list(g.values()) for g in items.values()]
        m["krippendorff_alpha"] = {level: _round(krippendorff_alpha(units, level)) for level in ("interval", "ordinal")}
        pairs = [
            {
                "annotators": list(ab),
                "items": len(both),
                "alpha": _round(krippendorff_alpha(both, "interval")),
                "mean_abs_diff": round(float(np.mean([abs(x - y) for x, y in both])), 4),
            }
            for ab, both in _by_pair(items).items()
        ]
        m["pairs"] = pairs
        gaps = [abs(x - y) for g in items.values() for x, y in combinations(g.values(), 2)]
        m["ceiling"] = {"mean_abs_diff": round(float(np.mean(gaps)), 4), "alpha": _mean([p["alpha"] for p in pairs])}
        # agreement with the others' consensus: interval alpha of the annotator against the others' median
        m["per_annotator"] = [
            {
                "annotator": a,
                "items": len(vs),
                "mean_abs_diff": round(float(np.mean([abs(x - y) for x, y in vs])), 4),
                "score": _round(krippendorff_alpha(vs, "interval")),
            }
            for a, vs in sorted(_versus_others(items, lambda others: float(median(others))).items())
        ]
        m["headline"] = {"coefficient": "Krippendorff's alpha (interval)", "value": m["krippendorff_alpha"]["interval"]}
        for i, g in items.items():
            spread = max(g.values()) - min(g.values())
            if spread >= self.rating_gap:
                yield ctx.finding(examples[i], "low", spread, f"annotators' ratings differ by {spread:g}", ratings=g)

    def _spans(
        self, examples: Sequence[Example], items: dict[int, dict[str, Any]], m: dict[str, Any], ctx: CheckContext
    ) -> Iterator[Finding]:
        pairs = []
        for ab, both in _by_pair(items).items():
            exact, overlap = span_f1(both)
            pairs.append(
                {"annotators": list(ab), "items": len(both), "f1_exact": _round(exact), "f1_overlap": _round(overlap)}
            )
        m["pairs"] = pairs
        m["f1_exact"] = _mean([p["f1_exact"] for p in pairs])
        m["f1_overlap"] = _mean([p["f1_overlap"] for p in pairs])
        m["ceiling"] = {"f1_exact": m["f1_exact"], "f1_overlap": m["f1_overlap"]}
        # the majority of a set of span lists is ill-defined: an annotator's score is its mean F1 with the others
        m["per_annotator"] = [
            {
                "annotator": a,
                "items": sum(a in g for g in items.values()),
                "score": _mean([p["f1_exact"] for p in pairs if a in p["annotators"]]),
            }
            for a in m["annotators"]
        ]
        m["headline"] = {"coefficient": "pairwise exact-match F1", "value": m["f1_exact"]}
        for i, g in items.items():
            f1 = _mean([span_f1([(x, y)])[0] for x, y in combinations(g.values(), 2)])
            if f1 is not None and f1 < 1:
                severity: Severity = "low" if f1 < 0.5 else "info"
                yield ctx.finding(
                    examples[i],
                    severity,
                    1 - f1,
                    f"annotators mark different spans (pairwise exact-match F1 {f1:.2f})",
                    spans={a: [list(s) for s in v] for a, v in g.items()},
                )

    def _dataset_findings(self, kind: str, m: dict[str, Any], source: str, ctx: CheckContext) -> Iterator[Finding]:
        """Low headline agreement, the ceiling it implies, and annotators far below the others."""
        what = {"label": "labels", "rating": "ratings", "spans": "spans"}[kind]
        coefficient, value = m["headline"]["coefficient"], m["headline"]["value"]
        if value is not None and value < self.medium_below:
            severity: Severity = "high" if value < self.high_below else "medium"
            yield ctx.dataset_finding(
                source,
                severity,
                1 - value,
                f"annotators agree poorly on {what}: {coefficient} {value:.2f} over {m['items']} "
                f"records (below {self.medium_below} is weak agreement)",
                kind=kind,
                coefficient=coefficient,
                value=value,
                items=m["items"],
            )
        ceiling = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in m["ceiling"].items() if v is not None)
        yield ctx.dataset_finding(
            source,
            "info",
            0.0,
            f"ceiling for a model trained on these {what}: it cannot be expected to agree with a "
            f"held-out annotator better than annotators agree with each other ({ceiling})",
            kind=kind,
            ceiling=m["ceiling"],
        )
        scores = [p["score"] for p in m["per_annotator"] if p["score"] is not None]
        if len(scores) < 3:
            return
        middle = median(scores)
        for p in m["per_annotator"]:
            if p["score"] is not None and p["score"] < self.medium_below and p["score"] <= middle - 0.2:
                yield ctx.dataset_finding(
                    source,
                    "medium",
                    1 - p["score"],
                    f"annotator {p['annotator']} agrees with the others on {what} far less than "
                    f"they agree among themselves ({p['score']:.2f}, median {middle:.2f})",
                    kind=kind,
                    annotator=p["annotator"],
                    agreement=p["score"],
                    median=middle,
                )
