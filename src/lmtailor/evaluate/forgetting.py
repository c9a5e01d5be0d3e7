"""Forgetting probes: how well the model still predicts general text, and how much general knowledge (MMLU)
it still has. Measured before and after adaptation, a rise in cross-entropy or a fall in accuracy is what
fine-tuning cost. Both ask through the backend contract, so they run on any backend.

The general text is human-written answers from LIMA and Dolly, read from a data folder the caller names.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

from lmtailor.llm.client import LLM

LETTERS = ("A", "B", "C", "D")
_MIN_WORDS = 20  # shorter answers ("Yes", a name) say little about how well the model predicts text


def text_cross_entropy(llm: LLM, texts: list[str], max_tokens: int = 256) -> float:
    """Mean cross-entropy (nats per token, every token weighing the same) of <bos> + text, cut at max_tokens."""
    scores = llm.loglikelihood_rolling(texts, max_tokens, "general text CE")
    tokens = sum(s.tokens for s in scores)
    if not tokens:
        raise ValueError("no text with a token to predict")
    return -sum(s.logprob for s in scores) / tokens


def mmlu_prompt(row: dict[str, Any]) -> str:
    """The usual zero-shot MMLU prompt (Hendrycks et al.), ending where the answer letter goes."""
    subject = row["subject"].replace("_", " ")
    choices = "".join(f"{letter}. {choice}\n" for letter, choice in zip(LETTERS, row["choices"], strict=True))
    header = f"The following are multiple choice questions (with answers) about {subject}."
    return f"{header}\n\n{row['question']}\n{choices}Answer:"


def mmlu_accuracy(llm: LLM, rows: list[dict[str, Any]]) -> float:
    """Share of questions whose most likely answer among " A" … " D" is the right letter, by log-likelihood
    after the prompt (a backend that can shares one forward pass among the four)."""
    if not rows:
        raise ValueError("no MMLU questions to score")
    pairs = [(mmlu_prompt(r), f" {letter}") for r in rows for letter in LETTERS]
    scores = [s.logprob for s in llm.loglikelihood(pairs, "MMLU")]
    right = 0
    for i, row in enumerate(rows):
        choices = scores[i * len(LETTERS) : (i + 1) * len(LETTERS)]
        right += choices.index(max(choices)) == row["answer"]
    return right / len(rows)


def general_texts(n: int = 64, seed: int = 0, *, data_root: Path) -> list[str]:
    """`n` human-written answers from `data_root`'s lima/ and dolly/, half each, the same ones for the same seed."""
    lima = json.loads((data_root / "lima" / "lima.json").read_text(encoding="utf-8"))
    with (data_root / "dolly" / "dolly_first6400.jsonl").open(encoding="utf-8") as f:
        dolly = [json.loads(line)["response"] for line in f if line.strip()]
    rng = random.Random(seed)
    out = []
    for texts, k in (([r["output"] for r in lima], n - n // 2), (dolly, n // 2)):
        long_enough = [t for t in texts if len(t.split()) >= _MIN_WORDS]
        out += rng.sample(long_enough, k)
    return out


def mmlu_rows(
    n: int = 100, seed: int = 0, subjects: list[str] | None = None, *, data_root: Path
) -> list[dict[str, Any]]:
    """`n` MMLU test questions ({subject, question, choices, answer: 0-3}) from `data_root`'s mmlu/, the same
    ones for the same seed."""
    folder = data_root / "mmlu" / "test"
    files = sorted(folder.glob("*_test.csv"))
    if subjects is not None:
        unknown = set(subjects) - {f.name.removesuffix("_test.csv") for f in files}
        if unknown:
            raise ValueError(f"no MMLU subject {sorted(unknown)} in {folder}")
        files = [f for f in files if f.name.removesuffix("_test.csv") in subjects]
    rows = []
    for path in files:
        subject = path.name.removesuffix("_test.csv")
        with path.open(encoding="utf-8", newline="") as f:
            for r in csv.DictReader(f):
                choices = [r[f"choice{i}"] for i in range(4)]
                row = {"subject": subject, "question": r["question"], "choices": choices, "answer": int(r["answer"])}
                rows.append(row)
    if n > len(rows):
        raise ValueError(f"asked for {n} MMLU questions; {folder} has {len(rows)}")
    return random.Random(seed).sample(rows, n)
