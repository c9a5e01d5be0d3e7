"""Near-duplicate detection: lmtailor vs datasketch vs text-dedup on Alpaca plus injected near-duplicates.

    python bench/dedup.py                      # all 52,002 records + 2,000 injected near-duplicates
    python bench/dedup.py --limit 5000         # a quick run on a subset

What runs. The corpus is the 52,002 Alpaca records (text = instruction, input and output joined by
newlines) plus `--inject` edited copies of distinct random records, appended after them. Every method
sees the same texts, the same word 3-gram shingles (lowercase `\\w+` words; a text with fewer than three
words is one shingle), the same threshold and the same number of permutations. Bands and rows come from
one criterion everywhere (datasketch's `_optimal_param`, copied by text-dedup, matched by lmtailor's
`lsh_params`), each library weighting false positives against false negatives its own way:

- lmtailor: `MinHasher.text_signatures` (batched `Shingler.many`), `near_duplicate_pairs` (LSH candidates
  from recall-leaning bands, kept when the signature-estimated Jaccard reaches the threshold),
  `clusters.components` (union-find).
- lmtailor-per-doc: the same, but `Shingler(text)` per record and `MinHasher.signatures`, the path
  `steps/near_dedup.py` takes today; shown for reference, not part of the target.
- datasketch: `MinHash.generator` (one `MinHash(num_perm)` copied per record, `update_batch` over the
  shingles encoded as UTF-8: datasketch's own bulk path, about twice as fast as constructing a `MinHash`
  per record), `MinHashLSH(threshold, num_perm)`, `insert` every record, then `query` every record; each
  hit is a pair (datasketch leaves any re-check to the caller); the pairs go through the same union-find.
- datasketch-verified: datasketch set up the way lmtailor works, to show where the F1 difference comes
  from: `MinHashLSH(..., weights=(0.05, 0.95))` (recall-leaning bands, the ones lmtailor picks) and each
  hit kept only when `MinHash.jaccard` reaches the threshold.
- text-dedup: the in-process parts of `text_dedup/minhash.py`'s `main`, called directly instead of through
  `datasets.map` and the CLI (no Arrow round trips, so this is if anything generous to it):
  `text_dedup.utils.optimal_param` for bands/rows, its permutations drawn as `main` draws them
  (`np.random.RandomState(42)`, the default 64-bit `HASH_CONFIG`: modulo 2**61-1, 32-bit values),
  `text_dedup.minhash.embed_func` per record with `hash_func=text_dedup.utils.xxh3_32hash` (its faster
  option; the CLI default is sha1) and `min_length=0` (so no record is skipped), the band hash tables and
  `text_dedup.utils.UnionFind` exactly as `main` fills them, and `uf.find` for each record. `embed_func`
  splits on `\\W`, so it gets the record's words joined by single spaces, which gives it the same shingles.

Each method runs in its own fresh process (spawn), one after another, inside this one run. Timed: from raw
texts to a cluster id per record (tokenising, hashing, signatures, LSH, clustering); imports are done
before the clock starts. Memory: the process's peak resident set during the detection minus its resident
set just before (Linux: the peak counter is reset through /proc/self/clear_refs; elsewhere the lifetime
peak is used and the figure is marked as such). RSS, not tracemalloc, because tracemalloc slows the
pure-Python competitors several times and misses allocations outside Python's allocators.

Ground truth, and what it cannot tell. Only the injected pairs are known. Alpaca has natural
near-duplicates of its own that nobody labelled, so:
- recall: the share of injected copies whose exact Jaccard with their source reaches the threshold and
  that land in the same cluster as that source;
- precision: judged only where a label exists. A copy in its source's cluster is a true pair. A copy in a
  cluster without its source is an error, and so is every pair it forms in that cluster. Other pairs (two
  original records, or a copy with the source's other cluster members) are unlabelled and left out;
- verified precision: over all pairs each method's clusters imply (sampled when there are many), the
  share whose exact Jaccard on the shingle sets reaches the threshold. This covers the unlabelled pairs
  too, but judges by the threshold rule, not by whether a person would call the pair a duplicate, and it
  counts a pair joined through a chain of similar records as wrong when its two ends are not similar.
All pairs are cluster pairs (same cluster = would be removed together), so every method is judged on what
deduplication would actually do.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from importlib import import_module, metadata
from importlib.util import find_spec
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
from peak_memory import reset_peak, status_mb

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "alpaca" / "alpaca_data_52k.jsonl"
OUT = ROOT / "bench" / "out" / "dedup.json"
if find_spec("lmtailor") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))

WORD = re.compile(r"\w+")
NGRAM = 3
TARGET_SPEEDUP = 3.0


# ---------------------------------------------------------------------------------------------- texts


def load_texts(path: Path, limit: int | None) -> list[str]:
    """Alpaca records as instruction + "\\n" + input + "\\n" + output."""
    texts = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if limit is not None and len(texts) >= limit:
                break
            r = json.loads(line)
            texts.append(f"{r['instruction']}\n{r['input']}\n{r['output']}")
    return texts


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def shingle_strings(text: str, n: int = NGRAM) -> set[str]:
    """Word n-grams as strings: the reference shingles (exact Jaccard, datasketch's input)."""
    w = words(text)
    if len(w) <= n:
        return {" ".join(w)}
    return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass
class Injection:
    """Edited copies appended after the `n_orig` originals: copy k sits at n_orig + k, made from source[k]."""

    n_orig: int
    source: np.ndarray
    jaccard: np.ndarray  # exact shingle Jaccard of each copy with its source
    word_edits: np.ndarray

    @property
    def copies(self) -> np.ndarray:
        return self.n_orig + np.arange(len(self.source))


_PUNCT = [",", ".", "!", "?", ";", ":", "...", " -"]


def edit(text: str, rng: random.Random, vocab: Sequence[str], rate: float) -> tuple[str, int]:
    """A near-duplicate of `text`: word substitutions, deletions and insertions at about `rate` per word,
    then edits that the shingles cannot see (case, trailing punctuation, whitespace). Returns the text and
    the number of word edits."""
    pieces = re.findall(r"\S+|\s+", text)
    word_at = [i for i, p in enumerate(pieces) if not p.isspace()]
    n_edits = sum(rng.random() < rate for _ in word_at)
    for i in rng.sample(word_at, n_edits):
        op = rng.choice(("substitute", "delete", "insert"))
        if op == "substitute":
            pieces[i] = rng.choice(vocab)
        elif op == "delete":
            pieces[i] = ""
        else:
            pieces[i] = f"{pieces[i]} {rng.choice(vocab)}"
    for i in rng.sample(word_at, min(len(word_at), rng.randint(0, 3))):
        pieces[i] = rng.choice((str.upper, str.capitalize, str.lower))(pieces[i])
    for i in rng.sample(word_at, min(len(word_at), rng.randint(0, 2))):
        pieces[i] = pieces[i].rstrip(".,!?;:") + rng.choice(_PUNCT)
    space_at = [i for i, p in enumerate(pieces) if p.isspace()]
    for i in rng.sample(space_at, min(len(space_at), rng.randint(0, 3))):
        pieces[i] = rng.choice(("  ", "\n", " \n ", "\t"))
    out = "".join(pieces)
    return (out + rng.choice(("", " ", "\n"))), n_edits


def inject(texts: list[str], k: int, seed: int, max_rate: float) -> tuple[list[str], Injection]:
    """Append `k` edited copies of distinct random records; per-copy edit rate drawn from U(0, max_rate)."""
    rng = random.Random(seed)
    n = len(texts)
    k = min(k, n)
    source = rng.sample(range(n), k)
    vocab = sorted({w for i in rng.sample(range(n), min(n, 2000)) for w in texts[i].split() if w.isalpha()})
    copies, n_edits = [], []
    for s in source:
        t, e = edit(texts[s], rng, vocab, rng.uniform(0.0, max_rate))
        copies.append(t)
        n_edits.append(e)
    sims = [jaccard(shingle_strings(texts[s]), shingle_strings(c)) for s, c in zip(source, copies, strict=True)]
    return texts + copies, Injection(n, np.array(source, dtype=np.int64), np.array(sims), np.array(n_edits))


# -------------------------------------------------------------------------------------------- methods


def run_lmtailor(texts: Sequence[str], threshold: float, num_perm: int) -> np.ndarray:
    from lmtailor.text.clusters import components
    from lmtailor.text.minhash import MinHasher, Shingler, near_duplicate_pairs

    sigs = MinHasher(num_perm, seed=1).text_signatures(texts, Shingler("word", NGRAM))
    pairs, _ = near_duplicate_pairs(sigs, threshold)
    return components(len(texts), pairs)


def run_lmtailor_per_doc(texts: Sequence[str], threshold: float, num_perm: int) -> np.ndarray:
    from lmtailor.text.clusters import components
    from lmtailor.text.minhash import MinHasher, Shingler, near_duplicate_pairs

    shingler = Shingler("word", NGRAM)
    sigs = MinHasher(num_perm, seed=1).signatures(shingler(t) for t in texts)
    pairs, _ = near_duplicate_pairs(sigs, threshold)
    return components(len(texts), pairs)


def _datasketch(
    texts: Sequence[str], threshold: float, num_perm: int, weights: tuple[float, float], verify: bool
) -> np.ndarray:
    from datasketch import MinHash, MinHashLSH

    from lmtailor.text.clusters import components

    shingles = ([s.encode("utf-8") for s in shingle_strings(t)] for t in texts)
    minhashes = list(MinHash.generator(shingles, num_perm=num_perm))
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm, weights=weights)
    for i, m in enumerate(minhashes):
        lsh.insert(i, m)
    pairs = [
        (i, j)
        for i, m in enumerate(minhashes)
        for j in lsh.query(m)
        if j > i and (not verify or m.jaccard(minhashes[j]) >= threshold)
    ]
    return components(len(texts), np.array(pairs, dtype=np.int64).reshape(-1, 2))


def run_datasketch(texts: Sequence[str], threshold: float, num_perm: int) -> np.ndarray:
    return _datasketch(texts, threshold, num_perm, weights=(0.5, 0.5), verify=False)


def run_datasketch_verified(texts: Sequence[str], threshold: float, num_perm: int) -> np.ndarray:
    return _datasketch(texts, threshold, num_perm, weights=(0.05, 0.95), verify=True)


def run_text_dedup(texts: Sequence[str], threshold: float, num_perm: int) -> np.ndarray:
    from text_dedup.minhash import SEED, SIGNATURE_COLUMN, embed_func
    from text_dedup.utils import UnionFind, optimal_param, xxh3_32hash

    bands, rows = optimal_param(threshold, num_perm, false_positive_weight=0.5, false_negative_weight=0.5)
    hashranges = [(i * rows, (i + 1) * rows) for i in range(bands)]
    tables: list[dict[bytes, set[int]]] = [defaultdict(set) for _ in range(bands)]
    dtype, max_hash, prime = np.uint64, np.uint32((1 << 32) - 1), np.uint64((1 << 61) - 1)
    rng = np.random.RandomState(SEED)
    permutations = (
        rng.randint(1, prime, size=(num_perm,), dtype=dtype),
        rng.randint(0, prime, size=(num_perm,), dtype=dtype),
    )
    for idx, text in enumerate(texts):
        out = embed_func(
            " ".join(words(text)),
            idx,
            num_perm=num_perm,
            ngram_size=NGRAM,
            min_length=0,
            hashranges=hashranges,
            permutations=permutations,
            hash_func=xxh3_32hash,
            dtype=dtype,
            max_hash=max_hash,
            modulo_prime=prime,
        )
        for table, h in zip(tables, out[SIGNATURE_COLUMN], strict=True):
            table[h].add(idx)
    uf = UnionFind()
    for table in tables:
        for cluster in table.values():
            if len(cluster) > 1:
                first = min(cluster)
                for x in cluster:
                    uf.union(x, first)
    return np.array([uf.find(i) for i in range(len(texts))], dtype=np.int64)


Method = Callable[[Sequence[str], float, int], np.ndarray]
METHODS: dict[str, tuple[Method, tuple[str, ...]]] = {
    "lmtailor": (run_lmtailor, ("lmtailor.text.minhash", "lmtailor.text.clusters")),
    "lmtailor-per-doc": (run_lmtailor_per_doc, ("lmtailor.text.minhash", "lmtailor.text.clusters")),
    "datasketch": (run_datasketch, ("datasketch", "lmtailor.text.clusters")),
    "datasketch-verified": (run_datasketch_verified, ("datasketch", "lmtailor.text.clusters")),
    "text-dedup": (run_text_dedup, ("text_dedup.minhash", "text_dedup.utils")),
}
PACKAGES = {"lmtailor": "lmtailor", "datasketch": "datasketch", "text-dedup": "text-dedup"}


# ------------------------------------------------------------------------------- measuring (child side)


def measure(name: str, texts: Sequence[str], threshold: float, num_perm: int) -> dict[str, Any]:
    """Runs in a fresh process: time one method from raw texts to cluster ids, and its peak extra RSS."""
    fn, modules = METHODS[name]
    for m in modules:
        import_module(m)
    gc.collect()
    peak_reset = reset_peak()
    rss_before = status_mb("VmRSS") * 2**20
    start = time.perf_counter()
    roots = fn(texts, threshold, num_perm)
    seconds = time.perf_counter() - start
    if peak_reset:
        peak = status_mb("VmHWM") * 2**20
    else:
        import resource

        scale = 1 if sys.platform == "darwin" else 1024
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return {
        "seconds": seconds,
        "roots": np.asarray(roots, dtype=np.int64),
        "rss_before": rss_before,
        "rss_peak": peak,
        "peak_is_lifetime": not peak_reset,
    }


def run_isolated(name: str, texts: list[str], threshold: float, num_perm: int) -> dict[str, Any]:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(measure, name, texts, threshold, num_perm).result()


# ------------------------------------------------------------------------------------------ evaluation


class ExactJaccard:
    """Exact shingle Jaccard between records, shingle sets built once per record on demand."""

    def __init__(self, texts: Sequence[str]):
        self.texts = texts
        self.sets: dict[int, set[str]] = {}

    def __call__(self, i: int, j: int) -> float:
        for k in (i, j):
            if k not in self.sets:
                self.sets[k] = shingle_strings(self.texts[k])
        return jaccard(self.sets[i], self.sets[j])


def cluster_pairs_sample(roots: np.ndarray, cap: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """All pairs within clusters when there are at most `cap`, else `cap` pairs drawn uniformly."""
    order = np.argsort(roots, kind="stable")
    _, starts, sizes = np.unique(roots[order], return_index=True, return_counts=True)
    multi = sizes > 1
    starts, sizes = starts[multi], sizes[multi]
    per_cluster = sizes * (sizes - 1) // 2
    total = int(per_cluster.sum())
    if total == 0:
        return np.zeros((0, 2), dtype=np.int64), 0
    if total <= cap:
        pairs = [np.stack(np.triu_indices(s, k=1), axis=1) + st for st, s in zip(starts, sizes, strict=True)]
        return order[np.concatenate(pairs)], total
    c = rng.choice(len(sizes), size=cap, p=per_cluster / total)
    a = rng.integers(0, sizes[c])
    b = (a + rng.integers(1, sizes[c])) % sizes[c]
    return np.stack([order[starts[c] + a], order[starts[c] + b]], axis=1), total


def evaluate(
    roots: np.ndarray, inj: Injection, threshold: float, exact: ExactJaccard, cap: int, seed: int
) -> dict[str, Any]:
    """Labelled precision/recall/F1 on the injected copies, verified precision on all cluster pairs."""
    n = len(roots)
    anchored = roots[inj.copies] == roots[inj.source]
    expected = inj.jaccard >= threshold
    stray = np.zeros(n, dtype=bool)
    stray[inj.copies[~anchored]] = True
    _, cluster_of, size = np.unique(roots, return_inverse=True, return_counts=True)
    stray_in = np.bincount(cluster_of, weights=stray, minlength=len(size)).astype(np.int64)
    clean = size - stray_in
    false_pairs = int((size * (size - 1) // 2 - clean * (clean - 1) // 2).sum())
    true_pairs = int(anchored.sum())
    precision = true_pairs / (true_pairs + false_pairs) if true_pairs + false_pairs else 1.0
    recall = float(anchored[expected].mean()) if expected.any() else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0

    pairs, total_pairs = cluster_pairs_sample(roots, cap, np.random.default_rng(seed))
    verified = [exact(int(i), int(j)) >= threshold for i, j in pairs.tolist()]
    return {
        "clusters_removed": int(n - len(size)),
        "cluster_pairs": total_pairs,
        "true_pairs": true_pairs,
        "false_pairs": false_pairs,
        "precision": precision,
        "recall": recall,
        "recall_all_copies": float(anchored.mean()) if len(anchored) else 1.0,
        "f1": f1,
        "verified_precision": float(np.mean(verified)) if verified else 1.0,
        "verified_pairs_checked": len(verified),
    }


# ------------------------------------------------------------------------------------------------ main


def machine() -> dict[str, Any]:
    versions = {}
    for label, dist in PACKAGES.items():
        try:
            versions[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[label] = None
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "numpy": np.__version__,
        "versions": versions,
    }


def report(results: list[dict[str, Any]], inj: Injection, args: argparse.Namespace, n: int) -> None:
    from rich.console import Console
    from rich.table import Table

    base = {r["method"]: r["records_per_s"] for r in results}
    table = Table(
        title=f"Near-duplicate detection: {n:,} records ({inj.n_orig:,} Alpaca + "
        f"{len(inj.source):,} injected), threshold {args.threshold}, {args.num_perm} permutations, "
        f"word {NGRAM}-grams"
    )
    for col in (
        "method",
        "seconds",
        "records/s",
        "x datasketch",
        "x text-dedup",
        "peak extra RSS",
        "precision",
        "recall",
        "F1",
        "verified P",
        "removed",
    ):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in results:
        ratio = {
            k: (f"{r['records_per_s'] / base[k]:.1f}x" if k in base else "-") for k in ("datasketch", "text-dedup")
        }
        table.add_row(
            r["method"],
            f"{r['seconds']:.2f}",
            f"{r['records_per_s']:,.0f}",
            ratio["datasketch"],
            ratio["text-dedup"],
            f"{r['peak_extra_rss_mb']:.0f} MB",
            f"{r['precision']:.3f}",
            f"{r['recall']:.3f}",
            f"{r['f1']:.3f}",
            f"{r['verified_precision']:.3f}",
            f"{r['clusters_removed']:,}",
        )
    console = Console()
    if console.width < 150:  # a pipe or a narrow terminal: keep the table on one line per method
        console = Console(width=150)
    console.print(table)
    above = int((inj.jaccard >= args.threshold).sum())
    median = f"{np.median(inj.jaccard):.3f}" if len(inj.jaccard) else "-"
    console.print(
        f"Injected copies: {len(inj.source):,}; exact Jaccard with source >= {args.threshold}: "
        f"{above:,} (recall counts these); median Jaccard {median}."
    )
    if "lmtailor" in base and "datasketch" in base:
        ours = next(r for r in results if r["method"] == "lmtailor")
        theirs = next(r for r in results if r["method"] == "datasketch")
        speedup = ours["records_per_s"] / theirs["records_per_s"]
        met = speedup >= TARGET_SPEEDUP and ours["f1"] >= theirs["f1"]
        console.print(
            f"Target ({TARGET_SPEEDUP:.0f}x datasketch's records/s at an F1 no lower): "
            f"{'met' if met else 'NOT met'} ({speedup:.1f}x, "
            f"F1 {ours['f1']:.3f} vs {theirs['f1']:.3f})."
        )


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--threshold",
        type=float,
        default=0.8,
        help="Jaccard threshold for every method (default 0.8, the near_dedup step's default)",
    )
    p.add_argument("--num-perm", type=int, default=128, help="MinHash permutations (default 128)")
    p.add_argument("--inject", type=int, default=2000, help="edited copies to inject (default 2000)")
    p.add_argument(
        "--max-edit-rate",
        type=float,
        default=0.045,
        help="per-copy word edit rate is drawn from U(0, this) (default 0.045)",
    )
    p.add_argument("--limit", type=int, default=None, help="use only the first N Alpaca records")
    p.add_argument("--seed", type=int, default=0, help="seed for injection and pair sampling (default 0)")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per method (default 3), each in a fresh process; the median time counts",
    )
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {','.join(METHODS)}")
    p.add_argument(
        "--verify-cap",
        type=int,
        default=20000,
        help="cluster pairs checked for verified precision; more are sampled (default 20000)",
    )
    p.add_argument("--data", type=Path, default=DATA, help="Alpaca JSONL (default ../shared/data/alpaca)")
    p.add_argument("--out", type=Path, default=OUT, help="JSON results (default bench/out/dedup.json)")
    args = p.parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        p.error(f"unknown methods: {', '.join(unknown)}")

    texts, inj = inject(load_texts(args.data, args.limit), args.inject, args.seed, args.max_edit_rate)
    exact = ExactJaccard(texts)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
    for _ in range(args.repeat):  # round-robin, so a burst of load elsewhere hits every method alike
        for name in methods:
            runs[name].append(run_isolated(name, texts, args.threshold, args.num_perm))
            print(f"{name}: {runs[name][-1]['seconds']:.2f} s", file=sys.stderr)
    results = []
    for name in methods:
        seconds = statistics.median(r["seconds"] for r in runs[name])
        first = runs[name][0]
        row = {
            "method": name,
            "seconds": seconds,
            "records_per_s": len(texts) / seconds,
            "all_seconds": [r["seconds"] for r in runs[name]],
            "peak_extra_rss_mb": statistics.median(r["rss_peak"] - r["rss_before"] for r in runs[name]) / 2**20,
            "peak_rss_mb": first["rss_peak"] / 2**20,
            "peak_is_lifetime": first["peak_is_lifetime"],
        }
        row |= evaluate(first["roots"], inj, args.threshold, exact, args.verify_cap, args.seed)
        if any(not np.array_equal(r["roots"], first["roots"]) for r in runs[name][1:]):
            row["note"] = "clusters differed between repeats"
        results.append(row)

    report(results, inj, args, len(texts))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "ngram": NGRAM,
        "records": len(texts),
        "machine": machine(),
        "injection": {
            "copies": len(inj.source),
            "originals": inj.n_orig,
            "at_or_above_threshold": int((inj.jaccard >= args.threshold).sum()),
            "jaccard_quantiles": dict(
                zip(
                    ("min", "p10", "p50", "p90", "max"),
                    np.quantile(inj.jaccard, [0, 0.1, 0.5, 0.9, 1]).tolist(),
                    strict=True,
                )
            )
            if len(inj.jaccard)
            else {},
            "word_edits_mean": float(inj.word_edits.mean()) if len(inj.word_edits) else 0.0,
        },
        "results": results,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
