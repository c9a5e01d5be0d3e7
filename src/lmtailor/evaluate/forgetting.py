"""Forgetting probes: how well the model still predicts general text, and how much general knowledge (MMLU)
it still has. Measured before and after adaptation, a rise in cross-entropy or a fall in accuracy is what
fine-tuning cost.

The general text is human-written answers from LIMA and Dolly. Gemma's vocabulary has 262k entries, so the
output layer is applied only where a next token is scored (every real position for cross-entropy, the last one
for MMLU), never to padding.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import Progress

from lmtailor.evaluate import DATA_ROOT
from lmtailor.evaluate.generation import evaluating

LETTERS = ("A", "B", "C", "D")
_MIN_WORDS = 20  # shorter answers ("Yes", a name) say little about how well the model predicts text
_CHUNK = 512  # positions per output-layer call: 512 x 262k float32 logits is 0.5 GB


def text_cross_entropy(
    model: Any,
    tokenizer: Any,
    texts: list[str],
    max_tokens: int = 256,
    batch_size: int = 8,
    progress: Progress | None = None,
) -> float:
    """Mean cross-entropy (nats per token, every token weighing the same) of <bos> + text, cut at max_tokens."""
    encoded = [ids[:max_tokens] for ids in _with_bos(tokenizer, texts)]
    encoded = sorted((ids for ids in encoded if len(ids) > 1), key=len)
    if not encoded:
        raise ValueError("no text with a token to predict")
    decoder, logits_of = model.get_decoder(), _output_layer(model)
    total, count = torch.zeros((), dtype=torch.float64), 0
    with evaluating(model):
        for batch in _batches(encoded, batch_size, progress, "general text CE"):
            input_ids, mask = _right_padded(batch)
            hidden = decoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            scored = mask[:, 1:].bool()  # right padding: a position is scored when the next token is real
            states, targets = hidden[:, :-1][scored], input_ids[:, 1:][scored]
            for lo in range(0, len(targets), _CHUNK):
                logits = logits_of(states[lo : lo + _CHUNK])
                total += F.cross_entropy(logits, targets[lo : lo + _CHUNK], reduction="sum").double()
            count += len(targets)
    return float(total / count)


def mmlu_prompt(row: dict[str, Any]) -> str:
    """The usual zero-shot MMLU prompt (Hendrycks et al.), ending where the answer letter goes."""
    subject = row["subject"].replace("_", " ")
    choices = "".join(f"{letter}. {choice}\n" for letter, choice in zip(LETTERS, row["choices"], strict=True))
    header = f"The following are multiple choice questions (with answers) about {subject}."
    return f"{header}\n\n{row['question']}\n{choices}Answer:"


def mmlu_accuracy(
    model: Any, tokenizer: Any, rows: list[dict[str, Any]], batch_size: int = 8, progress: Progress | None = None
) -> float:
    """Share of questions whose most likely next token among " A" … " D" is the right letter. One forward
    pass scores all four choices, and only each question's last position goes through the output layer."""
    if not rows:
        raise ValueError("no MMLU questions to score")
    letter_ids = []
    for letter in LETTERS:
        ids = tokenizer(f" {letter}", add_special_tokens=False).input_ids
        if len(ids) != 1:
            raise ValueError(f"the tokenizer splits ' {letter}' into {len(ids)} tokens; MMLU scoring needs one")
        letter_ids.append(ids[0])
    prompts = _with_bos(tokenizer, [mmlu_prompt(r) for r in rows])
    questions = sorted(zip(prompts, (r["answer"] for r in rows), strict=True), key=lambda q: len(q[0]))
    decoder, logits_of = model.get_decoder(), _output_layer(model)
    right = 0
    with evaluating(model):
        for batch in _batches(questions, batch_size, progress, "MMLU"):
            input_ids, mask = _right_padded([ids for ids, _ in batch])
            hidden = decoder(input_ids=input_ids, attention_mask=mask).last_hidden_state
            last = hidden[torch.arange(len(batch)), mask.sum(dim=1) - 1]
            chosen = logits_of(last)[:, letter_ids].argmax(dim=-1)
            right += int((chosen == torch.tensor([answer for _, answer in batch])).sum())
    return right / len(rows)


def _with_bos(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    return [bos + tokenizer(t, add_special_tokens=False).input_ids for t in texts]


def _output_layer(model: Any) -> Callable[[torch.Tensor], torch.Tensor]:
    """The model's output layer as its forward applies it (with Gemma 2's final logit soft-capping, if any),
    for hidden states picked by the caller."""
    head = model.get_output_embeddings()
    cap = getattr(model.config, "final_logit_softcapping", None)

    def logits(states: torch.Tensor) -> torch.Tensor:
        out = head(states).float()
        return torch.tanh(out / cap) * cap if cap else out

    return logits


def _right_padded(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids and attention mask; padding goes on the right, where causal attention never looks back at it."""
    width = max(len(s) for s in sequences)
    input_ids = torch.zeros((len(sequences), width), dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        mask[row, : len(ids)] = 1
    return input_ids, mask


def general_texts(n: int = 64, seed: int = 0, data_root: Path = DATA_ROOT) -> list[str]:
    """`n` human-written answers, half from LIMA and half from Dolly, the same ones for the same seed."""
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
    n: int = 100, seed: int = 0, subjects: list[str] | None = None, data_root: Path = DATA_ROOT
) -> list[dict[str, Any]]:
    """`n` MMLU test questions ({subject, question, choices, answer: 0-3}), the same ones for the same seed."""
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


def _batches(items: list[Any], size: int, progress: Progress | None, description: str) -> Iterator[list[Any]]:
    task = progress.add_task(description, total=len(items)) if progress is not None else None
    for lo in range(0, len(items), size):
        yield items[lo : lo + size]
        if progress is not None and task is not None:
            progress.advance(task, len(items[lo : lo + size]))
