"""classify: score every example with a quality classifier and keep the good part (the guide's cheap evaluator).

The classifier is trained here on `train` (see synth/classifier.py), or loaded from a file an earlier run saved.
Each kept example carries its score in `quality_score` (a `scored` change in the ledger) and the classifier's
identity in `provenance`; each dropped one goes to the ledger with its score.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator
from rich.console import Console
from rich.table import Table

from lmtailor.core.fields import FieldList
from lmtailor.core.records import Example
from lmtailor.curate.step import FileRef, SetStep, StepContext
from lmtailor.score.classifier import QualityClassifier, TrainingSource
from lmtailor.score.classifier import train as train_classifier

DEFAULT_FIELDS = ["instruction", "input", "output"]


class Classify(SetStep):
    step: Literal["classify"] = "classify"
    keeps_a_share = True
    train: list[TrainingSource] = []
    classifier: FileRef | None = Field(None, description="reuse a classifier saved by an earlier run")
    save: Path | None = Field(None, description="where to save the trained classifier (.npz)")
    fields: FieldList | None = None
    folds: int = Field(5, ge=2)
    c: float = Field(0.01, gt=0, description="inverse regularisation strength of the logistic regression")
    seed: int = 0
    threshold: float | None = Field(None, ge=0, le=1)
    top: int | None = Field(None, ge=1)
    top_fraction: float | None = Field(None, gt=0, le=1)
    score_field: str = "quality_score"

    @model_validator(mode="after")
    def _consistent(self) -> Classify:
        if bool(self.train) == (self.classifier is not None):
            raise ValueError(
                "give training data (train: good with bad, unlabeled or labeled files) or a saved classifier"
            )
        cuts = [k for k in ("threshold", "top", "top_fraction") if getattr(self, k) is not None]
        if len(cuts) > 1:
            raise ValueError(f"keep by one rule: {' or '.join(cuts)}")
        return self

    def data_files(self) -> list[TrainingSource | FileRef]:
        return [*self.train, *([self.classifier] if self.classifier else [])]

    def build(self, ctx: StepContext) -> QualityClassifier:
        """Train (and save) the classifier, or load the saved one."""
        if self.classifier is not None:
            clf = QualityClassifier.load(self.classifier.path)
            if self.fields is not None and list(self.fields) != clf.fields:
                raise ValueError(
                    f"{self.classifier.path} was trained on fields {clf.fields}; it cannot score {self.fields}"
                )
            return clf
        clf = train_classifier(
            self.train,
            list(self.fields or DEFAULT_FIELDS),
            folds=self.folds,
            c=self.c,
            threshold=0.5 if self.threshold is None else self.threshold,
            seed=self.seed,
            progress=ctx.progress,
        )
        if self.save is not None:
            clf.save(self.save)
        return clf

    def keep_mask(self, scores: np.ndarray) -> tuple[np.ndarray, float | None, str]:
        """Which examples stay, the score at the cut, and the rule in words."""
        n = len(scores)
        if self.threshold is not None:
            return scores >= self.threshold, self.threshold, f"threshold {self.threshold:g}"
        if self.top is None and self.top_fraction is None:
            return np.ones(n, dtype=bool), None, "keep all (scores only)"
        if not n:
            return np.ones(0, dtype=bool), None, "nothing to score"
        k = min(self.top, n) if self.top is not None else max(1, round(n * (self.top_fraction or 0)))
        order = np.argsort(-scores, kind="stable")
        keep = np.zeros(n, dtype=bool)
        keep[order[:k]] = True
        rule = f"top {self.top:,}" if self.top is not None else f"top fraction {self.top_fraction:g}"
        return keep, float(scores[order[k - 1]]), rule

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        t0 = time.perf_counter()
        clf = self.build(ctx)
        t1 = time.perf_counter()
        items = list(examples)
        scores, oof_mask = clf.score([ex.fields(clf.fields) for ex in items], ctx.progress)
        keep, cut, rule = self.keep_mask(scores)
        origin = {
            "step": "classify",
            "classifier": clf.id,
            "embedding_model": clf.meta["embedding_model"],
            "fields": clf.fields,
            "trained_on": [{k: s[k] for k in ("path", "label", "digest")} for s in clf.meta["trained_on"]],
            "cv_roc_auc": clf.meta["cv"]["roc_auc"]["mean"],
        }
        rows = zip(items, scores.tolist(), oof_mask.tolist(), keep.tolist(), strict=True)
        for ex, score, oof, kept in ctx.track(rows, "classify: write", total=len(items)):
            score = round(score, 4)
            if kept:
                before = ex.metadata.get("extra", {}).get(self.score_field)
                _annotate(ex, self.score_field, score, {**origin, "out_of_fold": oof})
                change = ("" if before is None else str(before), str(score))
                ctx.change(ex, "scored", {f"extra.{self.score_field}": change})
                yield ex
            else:
                below = f"< threshold {cut:g}" if self.threshold is not None else f"below the {rule} (cut {cut:.4f})"
                ctx.drop(ex, "low_quality", f"quality score {score:.4f} {below}", score=score)
        ctx.metrics.update(
            {
                "classifier": {
                    "id": clf.id,
                    "saved": str(self.save) if self.save and self.classifier is None else None,
                    "reused": str(self.classifier.path) if self.classifier else None,
                    **clf.meta,
                },
                "scores": distribution(scores),
                "cut": {"rule": rule, "score": cut, "kept": int(keep.sum()), "dropped": int((~keep).sum())},
                "out_of_fold": int(oof_mask.sum()),
                "seconds": {"classifier": round(t1 - t0, 2), "score": round(time.perf_counter() - t1, 2)},
            }
        )


def classify_step(
    out: Path,
    good: Sequence[Path],
    bad: Sequence[Path],
    unlabeled: Sequence[Path],
    labeled: Sequence[Path],
    label_field: str | None,
    reuse: Path | None,
    **settings: Any,
) -> dict[str, Any]:
    """`lmtailor score`'s recipe step: a classifier trained on the given files and saved in the run folder
    `out`, or the saved one `reuse` names. Files that cannot train one are refused here, in the words of the
    command's flags, before any is read."""
    sets = {"good": good, "bad": bad, "unlabeled": unlabeled}
    train = [{"path": str(p.resolve()), "label": label} for label, paths in sets.items() for p in paths]
    train += [{"path": str(p.resolve()), "label_field": label_field} for p in labeled]
    if bool(labeled) != bool(label_field):
        raise ValueError("--labeled files and --label-field (the field holding each record's label) go together")
    if reuse is not None and train:
        raise ValueError(
            "--reuse scores with a saved classifier; drop --good/--bad/--unlabeled/--labeled, or drop --reuse"
        )
    if reuse is None and not (good and (bad or unlabeled)) and not labeled:
        raise ValueError(
            "train on --good with --bad or --unlabeled, or on --labeled with --label-field; or --reuse a classifier"
        )
    step: dict[str, Any] = {"step": "classify", **settings}
    if reuse is not None:
        step["classifier"] = str(reuse.resolve())
    else:
        step |= {"train": train, "save": str(out.resolve() / "classifier.npz")}
    return step


def _annotate(ex: Example, score_field: str, score: float, origin: dict[str, Any]) -> None:
    """Write the score and the classifier's provenance into the record's own (written-back) fields; an earlier
    provenance (a generated or judged record's) is kept under `previous`, as the judge does."""
    extra = ex.metadata.setdefault("extra", {})
    previous = extra.get("provenance")
    extra[score_field] = score
    extra["provenance"] = origin | ({"previous": previous} if previous else {})


def distribution(scores: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Quantiles and a fixed 0-1 histogram, for the manifest and the terminal report."""
    if not len(scores):
        return {"n": 0}
    qs = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    counts, _ = np.histogram(scores, bins=bins, range=(0.0, 1.0))
    return {
        "n": len(scores),
        "mean": round(float(scores.mean()), 4),
        "quantiles": {f"p{round(q * 100)}": round(float(np.quantile(scores, q)), 4) for q in qs},
        "histogram": {"bins": bins, "counts": counts.tolist()},
    }


def print_report(metrics: dict[str, Any], console: Console) -> None:
    """The cross-validated quality of the classifier, then how the scores fall and where the cut is."""
    clf = metrics["classifier"]
    cv = clf["cv"]
    console.print(
        f"[bold]classifier {clf['id']}[/]: {cv['folds']}-fold cross-validation, {cv['good']:,} good vs "
        f"{cv['other']:,} other ({clf['setting']})"
    )
    table = Table()
    for col in ("metric", "mean", "std"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in ("roc_auc", "average_precision", "accuracy", "balanced_accuracy", "precision", "recall"):
        at = f" (at {cv['threshold']:g})" if name not in ("roc_auc", "average_precision") else ""
        table.add_row(name + at, f"{cv[name]['mean']:.3f}", f"{cv[name]['std']:.3f}")
    console.print(table)
    where = f"reused {clf['reused']}" if clf["reused"] else f"trained; saved to {clf['saved'] or '(not saved)'}"
    console.print(where, markup=False)  # a path under --out may hold brackets
    console.print(f"average precision of a random ranking: {cv['good'] / (cv['good'] + cv['other']):.3f}")
    if clf["setting"] == "positive-unlabeled":
        console.print(
            "[yellow]positive-unlabeled:[/] 'other' records are unlabeled, not bad, so these figures understate "
            "the classifier and the score ranks rather than gives a probability: prefer --top / --top-fraction."
        )
    dist = metrics["scores"]
    if dist["n"]:
        q = dist["quantiles"]
        console.print(
            f"scores of {dist['n']:,} records: mean {dist['mean']:.3f}, "
            + ", ".join(f"{k} {v:.3f}" for k, v in q.items())
        )
        counts = dist["histogram"]["counts"]
        width = dist["histogram"]["bins"]
        for i, n in enumerate(counts):
            bar = "█" * round(40 * n / max(max(counts), 1))
            console.print(f"  {i / width:.1f}-{(i + 1) / width:.1f} {n:>8,} {bar}", highlight=False)
    cut = metrics["cut"]
    at = f" (score {cut['score']:.4f})" if cut["score"] is not None else ""
    console.print(
        f"{cut['rule']}{at}: kept {cut['kept']:,}, dropped {cut['dropped']:,}; {metrics['out_of_fold']:,} scored "
        f"out-of-fold (training records); {'loading' if clf['reused'] else 'training'} "
        f"{metrics['seconds']['classifier']:.1f} s, scoring {metrics['seconds']['score']:.1f} s"
    )
