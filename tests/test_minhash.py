"""MinHash signatures and LSH on real Alpaca text: accuracy, determinism, and what near-dedup finds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from lmtailor.text.clusters import components
from lmtailor.text.minhash import MinHasher, Shingler, candidate_pairs, lsh_params, near_duplicate_pairs

N_RECORDS = 400


@pytest.fixture(scope="module")
def texts(shared_data: Path) -> list[str]:
    """The first records of Alpaca as the near_dedup step sees them: instruction, input, output."""
    out = []
    with (shared_data / "alpaca" / "alpaca_data_52k.jsonl").open(encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            out.append(f"{r['instruction']}\n{r['input']}\n{r['output']}")
            if len(out) == N_RECORDS:
                break
    return out


def exact_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (len(a) + len(b) - inter)


def replace_words(text: str, fraction: float, donor: str, rng: random.Random) -> str:
    """`text` with about `fraction` of its words swapped for words of `donor`."""
    words, spare = text.split(), donor.split() or ["x"]
    for i in rng.sample(range(len(words)), round(fraction * len(words))):
        words[i] = rng.choice(spare)
    return " ".join(words)


def test_estimated_jaccard_tracks_exact_jaccard(texts: list[str]) -> None:
    rng = random.Random(0)
    shingler = Shingler()
    pairs = []
    for i, text in enumerate(texts[:300]):
        if len(text.split()) < 20:
            continue
        donor = texts[(i + 1) % len(texts)]
        pairs.append((text, replace_words(text, rng.choice((0.02, 0.05, 0.1, 0.2, 0.35, 0.5)), donor, rng)))
    pairs += [(texts[i], texts[i + 1]) for i in range(0, 100, 2)]  # unrelated records
    a = [shingler(x) for x, _ in pairs]
    b = [shingler(y) for _, y in pairs]
    exact = np.array([exact_jaccard(x, y) for x, y in zip(a, b, strict=True)])
    sigs_a, sigs_b = MinHasher(128, seed=1).signatures(a), MinHasher(128, seed=1).signatures(b)
    estimate = (sigs_a == sigs_b).mean(axis=1)
    err = estimate - exact
    assert exact.min() < 0.1 and exact.max() > 0.9, "the pairs should span the whole similarity range"
    assert np.mean(np.abs(err) <= 0.1) >= 0.97
    assert np.abs(err).max() <= 0.2
    assert abs(err.mean()) < 0.015, "estimates should not lean high or low"


def test_same_seed_same_signatures_and_both_paths_agree(texts: list[str]) -> None:
    per_doc = MinHasher(64, seed=7).signatures(Shingler()(t) for t in texts)
    batched = MinHasher(64, seed=7).text_signatures(texts, Shingler(), batch_docs=97)
    assert per_doc.dtype == np.uint32 and per_doc.shape == (len(texts), 64)
    np.testing.assert_array_equal(per_doc, batched)
    np.testing.assert_array_equal(per_doc, MinHasher(64, seed=7).signatures(Shingler()(t) for t in texts))
    assert (MinHasher(64, seed=8).signatures(Shingler()(t) for t in texts) != per_doc).mean() > 0.9


def test_shingles_ignore_case_punctuation_and_whitespace(texts: list[str]) -> None:
    shingler = Shingler()
    for text in texts[:50]:
        noisy = "  " + text.upper().replace(" ", " ,\t ").replace(".", "!") + "\n"
        np.testing.assert_array_equal(shingler(text), shingler(noisy))
        # a non-ASCII separator sends the text down the regex tokeniser: same tokens, same shingles
        np.testing.assert_array_equal(shingler(text), shingler(text + " \u2014"))
    accented, plain = "Café au lait, s'il vous plaît", "Cafe au lait, s'il vous plait"
    assert not np.array_equal(shingler(accented), shingler(plain))
    np.testing.assert_array_equal(shingler("ÜBER Straße"), shingler("über straße"))


def test_many_matches_one_at_a_time(texts: list[str]) -> None:
    batch = [*texts[:40], "", "one", "two words", "Ünïcode only"]
    shingler = Shingler()
    hashes, offsets = shingler.many(batch)
    assert len(offsets) == len(batch) + 1 and offsets[-1] == len(hashes)
    for i, text in enumerate(batch):
        np.testing.assert_array_equal(np.unique(hashes[offsets[i] : offsets[i + 1]]), shingler(text))
    np.testing.assert_array_equal(shingler(""), np.zeros(1, dtype=np.uint64))


def test_empty_sets_and_empty_input() -> None:
    hasher = MinHasher(32)
    sigs = hasher.signatures([np.array([1, 2, 3], dtype=np.uint64), np.array([], dtype=np.uint64)])
    assert (sigs[1] == np.iinfo(np.uint32).max).all() and not (sigs[0] == sigs[1]).all()
    assert hasher.signatures([]).shape == (0, 32)
    assert hasher.text_signatures([], Shingler()).shape == (0, 32)


def test_lsh_params_agrees_with_datasketch() -> None:
    lsh = pytest.importorskip("datasketch.lsh")
    for threshold in (0.5, 0.7, 0.8, 0.9):
        for num_perm in (32, 128):
            for fp_weight in (0.5, 0.1):
                expected = lsh._optimal_param(threshold, num_perm, fp_weight, 1 - fp_weight)
                assert lsh_params(threshold, num_perm, fp_weight) == expected


def test_lsh_params_known_values() -> None:
    # datasketch's _optimal_param gives these; kept here so the check runs without datasketch
    assert lsh_params(0.8, 128) == (9, 13)
    assert lsh_params(0.7, 128) == (14, 9)
    assert lsh_params(0.8, 128, 0.05) == (16, 8)


def test_injected_near_duplicates_are_found_and_unrelated_records_are_not(texts: list[str]) -> None:
    rng = random.Random(1)
    shingler = Shingler()
    long_ones = [i for i, t in enumerate(texts) if len(t.split()) >= 60]
    sources = rng.sample(long_ones, 30)
    copies = []
    for i in sources:
        words = texts[i].split()
        words[rng.randrange(len(words))] = "zebra"  # one substitution ...
        copies.append(" ".join(words).upper() + " !")  # ... plus changes the shingles cannot see
    corpus = texts + copies
    sets = [shingler(t) for t in corpus]
    for k, i in enumerate(sources):
        assert exact_jaccard(sets[i], sets[len(texts) + k]) >= 0.85
    sigs = MinHasher(128).signatures(sets)
    pairs, sims = near_duplicate_pairs(sigs, 0.8)
    found = {tuple(p) for p in pairs.tolist()}
    assert {(i, len(texts) + k) for k, i in enumerate(sources)} <= found
    assert (sims >= 0.8).all()
    for i, j in found:
        assert exact_jaccard(sets[i], sets[j]) >= 0.6, (corpus[i][:80], corpus[j][:80])
    roots = components(len(corpus), pairs)
    assert len(set(roots.tolist())) >= len(texts) - 5, "the originals are almost all distinct"


def test_big_buckets_are_joined_as_a_star() -> None:
    sigs = np.zeros((100, 16), dtype=np.uint32)
    sigs[50:] = 1
    pairs = candidate_pairs(sigs, bands=4, rows=4, max_bucket=10)
    assert len(pairs) == 2 * 49 and (pairs[:, 0] < pairs[:, 1]).all()
    assert len(set(components(100, pairs).tolist())) == 2
