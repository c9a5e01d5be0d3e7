"""diversity: how varied the requests and answers are, and which kinds of task dominate or are missing.

A set that asks for the same few things teaches those few things. The check reports the numbers a reader
needs to judge that: distinct-n of instructions and outputs, the spread of opening verbs (and their objects)
with its entropy, topic clusters of the instructions with a 2-D map, and length histograms. It is a dataset
view: its findings are about the whole set (a dominant verb or cluster, task kinds that hardly occur).

Clusters come from all-MiniLM-L6-v2 embeddings of a fixed-seed uniform sample of instructions (`sample`,
1,000 by default, first 200 characters), not from TF-IDF + TruncatedSVD over every record. Measured on
Alpaca 52K (2 busy cores): TF-IDF + SVD(100) + k-means(20) took 4-8 s and put 23-38% of instructions into
one catch-all cluster of instructions the 100 components do not capture, a false "dominant cluster" finding
on every run; the embedding clusters are topical and balanced (largest 8.6%). The check takes about 12 s
the first time (about 6 s loading the model, 4 s embedding 1,000 instructions; 2,000 took 10 s, over the
check's share of the audit's minute) and 3 s after, as `embed` caches by content. With 1,000 points a
cluster's share is known to about ±0.7 points (one standard error at 5%).

k-means splits any large spread-out region among several centroids, so a dominant cluster mostly means a
block of (near-)identical instructions, e.g. one fixed instruction with the item in `input`; a dominant kind
of task shows in the verb shares instead.
"""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import Field

from lmtailor.audit.charts import OTHER_COLOR, PALETTE, esc, fmt_int, fmt_pct, histogram, note, scatter
from lmtailor.audit.check import Check, CheckContext, Plot
from lmtailor.audit.finding import Finding, sources
from lmtailor.core.records import Example
from lmtailor.text.embeddings import embed
from lmtailor.text.minhash import Shingler

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
MAP_POINTS = 2000  # the report draws a seeded sample of this many points at most


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# an opening clause before the request proper: "Given a sentence, rewrite it ..."
_LEAD_CLAUSE = frozenset({"given", "using", "based", "for", "in", "with", "from", "after", "if", "according"})
_POLITE = frozenset({"please", "kindly"})
_ASKING = frozenset({"can", "could", "would", "will"})
# words between a verb and its object noun: determiners, numbers, common adjectives
_BEFORE_OBJECT = _words(
    "a an the this that these those some any all each every following given above below me us my your our its "
    "their his her one two three four five six seven eight nine ten few several many more different new short "
    "brief good creative unique random possible simple detailed interesting appropriate suitable funny original catchy "
    "most least best main key famous important common popular various potential typical basic general specific "
    "complete concise persuasive formal informal hypothetical realistic effective fictional automated"
)
# words after which no object noun follows: prepositions, wh-words, conjunctions
_NO_OBJECT = _words(
    "of to for about on in with by from at as why how what who when where which whether if and or is are whose up out "
    "it them"
)
# the kind of task an opening verb asks for (question words open questions)
_KINDS: dict[str, str] = {
    "generation": "generate, create, write, compose, design, construct, come up with, make, develop, produce, invent, "
    "draft, imagine, formulate, propose, build, devise, craft, add, complete",
    "brainstorming": "list, name, suggest, give, provide, recommend, brainstorm, think, enumerate, offer",
    "open question": "what, how, why, who, which, when, where, is, are, do, does, tell, should, was, were, did, "
    "has, have, what's, how's, who's, where's",
    "explanation": "explain, describe, discuss, outline, elaborate, define, illustrate, clarify",
    "analysis": "analyze, analyse, compare, contrast, evaluate, assess, critique, review, argue, interpret, examine",
    "rewriting": "rewrite, edit, paraphrase, rephrase, reword, change, convert, transform, rearrange, replace, "
    "correct, shorten, simplify, revise, reorder, modify, format, expand, improve, restate, fix, sort, arrange",
    "classification": "classify, categorize, categorise, label, determine, decide, detect, predict, rate, choose, "
    "select, judge, distinguish, verify, check, rank",
    "extraction": "extract, identify, find, pick, highlight, locate, underline",
    "summarization": "summarize, summarise, condense",
    "translation": "translate",
    "math": "calculate, compute, solve, multiply, divide, subtract, estimate, count",
}
_KIND_OF = {verb.strip(): kind for kind, verbs in _KINDS.items() for verb in verbs.split(",")}


def verb_and_object(instruction: str) -> tuple[str, str]:
    """The opening verb of a request and the noun it acts on ("Write a short story about…" -> write, story).

    A cheap stand-in for a parser: skip an opening "Given …," clause and polite openers ("Please", "Can you"),
    take the first word as the verb, then the first word after it that is not a determiner, number or
    common adjective as its object ("" when a preposition or wh-word comes first). Questions keep their
    question word ("what", "how") as the verb, with no object. On 70 random Alpaca instructions it named the
    opening verb of 69 ("Re-tell" gave "re") and a sensible object for about nine in ten.
    """
    text = instruction.lower()
    words = _WORD.findall(text[:300])
    if words and words[0] in _LEAD_CLAUSE and "," in text[:200]:
        words = _WORD.findall(text.split(",", 1)[1][:300]) or words
    while words and words[0] in _POLITE:
        words = words[1:]
    if len(words) > 2 and words[0] in _ASKING and words[1] == "you":  # "Could you (please) write …"
        words = words[3:] if words[2] in _POLITE else words[2:]
    if not words:
        return "", ""
    verb, rest = words[0], words[1:]
    if _KIND_OF.get(verb) == "open question" and verb != "tell":  # "How would …": no object to speak of
        return verb, ""
    if verb == "come" and rest[:2] == ["up", "with"]:
        verb, rest = "come up with", rest[2:]
    for w in rest[:6]:
        if w in _NO_OBJECT:
            break
        if w not in _BEFORE_OBJECT and not w.isdigit():
            return verb, w
    return verb, ""


def task_kind(verb: str) -> str:
    return _KIND_OF.get(verb, "other")


def distinct_n(texts: Sequence[str], ns: Sequence[int] = (1, 2, 3)) -> dict[str, float]:
    """Distinct n-grams over all n-grams in the corpus (Li et al. 2016), per n, on curate's word tokens.

    Tokens come from the MinHash `Shingler` (lowercased `\\w+`, its fast ASCII path); n-grams never cross a
    record boundary and are keyed by a 64-bit rolling hash of token hashes, so millions of words take one
    sort per n.
    """
    hashes, offsets = Shingler("word", 1).many(texts)
    counts = np.diff(offsets)
    # the Shingler gives a text without words the single hash 0; it has no n-grams
    empty = (counts == 1) & (hashes[offsets[:-1]] == 0)
    word = np.delete(hashes, offsets[:-1][empty])
    counts = counts - empty
    # tokens left in the record from each position on, itself included
    left = np.repeat(counts, counts) - (np.arange(len(word)) - np.repeat(np.cumsum(counts) - counts, counts))
    out: dict[str, float] = {}
    for n in ns:
        valid = np.flatnonzero(left >= n)
        key = np.zeros(len(valid), dtype=np.uint64)
        for k in range(n):
            key = key * np.uint64(0x9E3779B97F4A7C15) + word[valid + k]
        key.sort()  # a sort and a count of changes: ~30x faster than np.unique (a hash table in numpy 2.4)
        out[str(n)] = round(float(1 + np.count_nonzero(key[1:] != key[:-1])) / len(key), 4) if len(key) else 0.0
    return out


def length_histogram(lengths: np.ndarray, bins: int = 30) -> dict[str, list[int]]:
    """Word-count histogram on about `bins` log-spaced integer edges (0, 1, 2, … up to past the longest)."""
    top = int(lengths.max()) + 1 if len(lengths) else 1
    edges = np.unique(np.concatenate([[0], np.round(np.geomspace(1, top, bins)).astype(np.int64), [top]]))
    counts, _ = np.histogram(lengths, bins=edges)
    return {"bins": edges.tolist(), "counts": counts.tolist()}


def cluster_labels(texts: Sequence[str], labels: np.ndarray, k: int, words: int = 4) -> list[str]:
    """Each cluster's most distinctive words by class-based TF-IDF (BERTopic's c-TF-IDF): a cluster's word
    frequency weighted by log(1 + average words per cluster / the word's frequency over all clusters)."""
    from sklearn.feature_extraction.text import CountVectorizer

    try:
        counts = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]+\b").fit(texts)
    except ValueError:  # nothing but stop words
        return [""] * k
    x = counts.transform(texts)
    per_cluster = np.vstack([np.asarray(x[labels == c].sum(axis=0)).ravel() for c in range(k)]).astype(float)
    tf = per_cluster / np.maximum(per_cluster.sum(axis=1, keepdims=True), 1)
    idf = np.log1p(per_cluster.sum() / k / np.maximum(per_cluster.sum(axis=0), 1))
    terms = counts.get_feature_names_out()
    score = tf * idf
    return [" ".join(terms[j] for j in np.argsort(-row)[:words] if row[j] > 0) for row in score]


def _plot_lengths(m: dict[str, Any]) -> str:
    """A histogram of instruction and of output lengths, in words."""
    lengths = m.get("lengths") or {}
    plots = [
        f'<div class="hist"><h4>{esc(field)} length</h4>'
        f"{histogram(h['bins'], h['counts'], f'Histogram of {field} lengths')}</div>"
        for field, h in lengths.items()
        if isinstance(h, dict) and h.get("counts") and h.get("bins")
    ]
    return f'<div class="row">{"".join(plots)}</div>' if plots else note("The diversity check recorded no lengths.")


def _plot_map(m: dict[str, Any]) -> str:
    """The sampled records placed by embedding similarity, coloured by cluster, beside the clusters' sizes."""
    pts = m.get("map") or {}
    xs, ys = pts.get("x") or [], pts.get("y") or []
    if not xs or len(xs) != len(ys):
        return note("The diversity check recorded no embedding map.")
    n = len(xs)
    # A seeded random sample, not every k-th point: records often come ordered by source or topic.
    keep = range(n) if n <= MAP_POINTS else sorted(random.Random(0).sample(range(n), MAP_POINTS))
    cl, ids = pts.get("cluster") or [None] * n, pts.get("id") or [""] * n
    clusters = sorted(m.get("clusters") or [], key=lambda c: -c.get("size", 0))
    color = {
        c["id"]: PALETTE[i] for i, c in enumerate(c for c in clusters if c.get("id", -1) != -1) if i < len(PALETTE)
    }
    names = {c["id"]: str(c.get("label") or f"cluster {c['id']}") for c in clusters}
    plot = scatter(
        [xs[i] for i in keep],
        [ys[i] for i in keep],
        [color.get(cl[i], OTHER_COLOR) for i in keep],
        [f"{ids[i]} · {names.get(cl[i], f'cluster {cl[i]}')}" for i in keep],
        "Records placed by embedding similarity, coloured by cluster",
    )
    shown = f'<p class="muted">Showing {fmt_int(len(keep))} of {fmt_int(n)} points.</p>' if n > len(keep) else ""
    if not clusters:
        return plot + shown
    rows = "".join(
        f'<tr><td><i class="swatch" style="background:{color.get(c["id"], OTHER_COLOR)}"></i></td>'
        f'<td>{esc(names[c["id"]])}</td><td class="num">{fmt_int(c.get("size", 0))}</td>'
        f'<td class="num">{fmt_pct(float(c.get("share", 0.0)))}</td></tr>'
        for c in clusters[:15]
    )
    more = f'<p class="muted">and {fmt_int(len(clusters) - 15)} smaller clusters.</p>' if len(clusters) > 15 else ""
    table = (
        '<table class="grid compact"><thead><tr><th></th><th>Cluster</th><th class="num">Records</th>'
        f'<th class="num">Share</th></tr></thead><tbody>{rows}</tbody></table>{more}'
    )
    return f'<div class="row"><div>{plot}{shown}</div><div>{table}</div></div>'


class Diversity(Check):
    """Dataset-level diversity metrics; findings only for a dominant verb or cluster and for missing task kinds."""

    check: Literal["diversity"] = "diversity"
    plots = (Plot("plot-lengths", "Lengths", _plot_lengths), Plot("plot-map", "Embedding clusters", _plot_map))
    clusters: int = Field(20, ge=2, le=200)
    sample: int = Field(1000, ge=100)
    seed: int = 0
    # the request is stated up front; long prompts (LIMA's posts) would cost up to 256 tokens each to embed
    embed_chars: int = Field(200, ge=20)
    # one opening verb above this share of instructions is an outsized share
    dominant_verb: float = Field(0.25, gt=0, le=1)
    # a cluster above this many times the uniform share (1 / clusters) is an outsized share
    dominant_cluster: float = Field(4.0, gt=1)
    # a task kind below this share hardly occurs
    rare_kind: float = Field(0.01, ge=0, lt=1)

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        if not examples:
            return
        source = sources(examples)
        instructions = [ex.field("instruction") for ex in examples]
        outputs = [ex.field("output") for ex in examples]
        ctx.metrics["distinct_n"] = {"instruction": distinct_n(instructions), "output": distinct_n(outputs)}
        yield from self._verbs(instructions, ctx, source)
        yield from self._clusters(examples, instructions, ctx, source)
        ctx.metrics["lengths"] = {
            name: length_histogram(np.array([len(t.split()) for t in texts], dtype=np.int64))
            for name, texts in (("instruction", instructions), ("output", outputs))
        }

    def _verbs(self, instructions: Sequence[str], ctx: CheckContext, source: str) -> Iterator[Finding]:
        parsed = [verb_and_object(t) for t in instructions]
        verbs = Counter(v for v, _ in parsed)
        total = len(instructions)
        ctx.metrics["verbs"] = [[v, c] for v, c in verbs.most_common(26) if v][:25]  # "": no English opening word
        ctx.metrics["verb_entropy"] = round(-sum(c / total * math.log2(c / total) for c in verbs.values()), 4)
        ctx.metrics["verb_objects"] = [[v, o, c] for (v, o), c in Counter(p for p in parsed if p[1]).most_common(25)]
        kinds = Counter(task_kind(v) for v, _ in parsed)
        ctx.metrics["kinds"] = [
            {"kind": k, "count": kinds[k], "share": round(kinds[k] / total, 4)} for k in [*_KINDS, "other"]
        ]
        verb, count = verbs.most_common(1)[0]
        if verb and count / total > self.dominant_verb:
            yield ctx.dataset_finding(
                source,
                "medium",
                count / total,
                f"{count / total:.0%} of instructions open with '{verb}': one kind of request takes an outsized share",
                verb=verb,
                count=count,
                share=round(count / total, 4),
            )
        rare = {k: round(kinds[k] / total, 4) for k in _KINDS if kinds[k] / total < self.rare_kind}
        if rare:
            yield ctx.dataset_finding(
                source,
                "info",
                len(rare) / len(_KINDS),
                f"task kinds that hardly occur (under {self.rare_kind:.0%} of instructions): "
                + ", ".join(f"{k} {s:.1%}" for k, s in rare.items()),
                kinds=rare,
            )

    def _clusters(
        self, examples: Sequence[Example], instructions: Sequence[str], ctx: CheckContext, source: str
    ) -> Iterator[Finding]:
        """k-means over embeddings of a uniform sample; shares, c-TF-IDF labels and a PCA map of the sample."""
        from sklearn.cluster import KMeans
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(len(examples), min(self.sample, len(examples)), replace=False))
        texts = [instructions[i] for i in pick]
        k = min(self.clusters, len(pick) // 5)
        if k < 2:
            ctx.metrics["clusters"], ctx.metrics["map"] = [], {"x": [], "y": [], "cluster": [], "id": []}
            return
        vecs = embed([t[: self.embed_chars] for t in texts])
        kmeans = KMeans(k, n_init=3, random_state=self.seed).fit(vecs)
        labels = kmeans.labels_
        # the members nearest their centre, the most typical ones, serve as examples
        typical = np.argsort(kmeans.transform(vecs)[np.arange(len(pick)), labels], kind="stable")
        sizes = np.bincount(labels, minlength=k)
        names = cluster_labels(texts, labels, k)
        shares = sizes / len(pick)
        ctx.metrics["clusters"] = [
            {"id": int(c), "size": int(sizes[c]), "share": round(float(shares[c]), 4), "label": names[c]}
            for c in np.argsort(-sizes, kind="stable")
        ]
        ctx.metrics["sampled"] = len(pick)
        used = shares[shares > 0]
        ctx.metrics["effective_clusters"] = round(float(np.exp(-(used * np.log(used)).sum())), 2)
        xy = PCA(2, random_state=self.seed).fit_transform(vecs)
        ctx.metrics["map"] = {
            "x": np.round(xy[:, 0], 4).tolist(),
            "y": np.round(xy[:, 1], 4).tolist(),
            "cluster": labels.tolist(),
            "id": [examples[i].id for i in pick],
        }
        for c in np.flatnonzero(shares > self.dominant_cluster / k):
            members = [examples[pick[j]].id for j in typical[labels[typical] == c][:5]]
            yield ctx.dataset_finding(
                source,
                "medium",
                float(shares[c]),
                f"one topic cluster ('{names[c]}') holds {shares[c]:.0%} of sampled instructions, "
                f"{shares[c] * k:.1f}x an even share",
                cluster=int(c),
                label=names[c],
                share=round(float(shares[c]), 4),
                examples=members,
            )
