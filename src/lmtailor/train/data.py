"""Training data as token ids with a loss mask, grouped into micro-batches by packing or by length.

Loss is on answer tokens only: every prompt token gets the label -100. Packing puts several examples in one row
and restarts `position_ids` at each: transformers turns restarting positions (with no attention mask) into a
block-diagonal causal mask, so examples never attend to each other, and no compute goes to padding. Length
bucketing is the alternative: rows of similar length, padded to the longest in the micro-batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch

from lmtailor.core.records import Example, RecordError
from lmtailor.prompting.template import Template
from lmtailor.train.manifest import DataFigures

IGNORE = -100


@dataclass(frozen=True)
class Tokenized:
    id: str
    input_ids: list[int]
    labels: list[int]  # -100 on prompt tokens


@dataclass
class DataStats:
    """What the tokenizer and max_length did to the data: reported with every run."""

    examples: int = 0
    tokens: int = 0
    answer_tokens: int = 0
    truncated: int = 0  # examples cut at max_length
    truncated_answer_tokens: int = 0
    rejected: list[dict[str, Any]] = field(default_factory=list)  # {id, reason}

    def figures(self) -> DataFigures:
        return DataFigures(
            examples=self.examples,
            tokens=self.tokens,
            answer_tokens=self.answer_tokens,
            truncated=self.truncated,
            truncated_answer_tokens=self.truncated_answer_tokens,
            rejected=len(self.rejected),
        )


def tokenize(examples: Iterable[Example], template: Template, max_length: int) -> tuple[list[Tokenized], DataStats]:
    """Each example as ids + labels, cut at `max_length`. One whose answer is cut away entirely (or that the
    template cannot render) is rejected with its reason: it would train nothing but its prompt's length."""
    tok = template.tokenizer
    out: list[Tokenized] = []
    stats = DataStats()
    for ex in examples:
        try:
            segments = template.segments(ex)
        except RecordError as e:
            stats.rejected.append({"id": ex.id, "reason": "unrenderable", "detail": str(e)})
            continue
        ids: list[int] = []
        labels: list[int] = []
        for seg in segments:
            piece = tok(seg.text, add_special_tokens=False).input_ids
            ids += piece
            labels += piece if seg.answer else [IGNORE] * len(piece)
        answer = sum(label != IGNORE for label in labels)
        if len(ids) > max_length:
            kept = sum(label != IGNORE for label in labels[:max_length])
            if kept == 0:
                detail = f"{len(ids)} tokens; the answer starts after max_length {max_length}"
                stats.rejected.append({"id": ex.id, "reason": "answer_truncated_away", "detail": detail})
                continue
            stats.truncated += 1
            stats.truncated_answer_tokens += answer - kept
            ids, labels, answer = ids[:max_length], labels[:max_length], kept
        stats.examples += 1
        stats.tokens += len(ids)
        stats.answer_tokens += answer
        out.append(Tokenized(ex.id, ids, labels))
    return out, stats


def pack(items: list[Tokenized], tokens_per_row: int) -> list[list[Tokenized]]:
    """First-fit decreasing: rows of at most `tokens_per_row` tokens, the longest examples placed first.
    Deterministic, so a resumed run sees the same rows."""
    rows: list[list[Tokenized]] = []
    room: list[int] = []
    for item in sorted(items, key=lambda t: (-len(t.input_ids), t.id)):
        n = len(item.input_ids)
        for i, free in enumerate(room):
            if n <= free:
                rows[i].append(item)
                room[i] -= n
                break
        else:
            rows.append([item])
            room.append(tokens_per_row - n)
    return rows


def bucket(items: list[Tokenized], batch_size: int) -> list[list[Tokenized]]:
    """Micro-batches of `batch_size` examples of similar length (sorted, then chunked; the trainer's sampler
    shuffles the micro-batches)."""
    ordered = sorted(items, key=lambda t: (len(t.input_ids), t.id))
    return [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]


def rows_in_batches(rows: list[list[Tokenized]], per_batch: int) -> list[list[list[Tokenized]]]:
    """Micro-batches of `per_batch` packed rows. Rows come fullest first, so a micro-batch's rows are of
    similar length and little of it is padding."""
    return [rows[i : i + per_batch] for i in range(0, len(rows), per_batch)]


def collate_packed(rows: list[list[Tokenized]], pad_id: int = 0) -> dict[str, torch.Tensor]:
    """Rows of examples end to end, positions restarting at each example, no attention mask. Shorter rows are
    padded; the padding restarts positions too, so it is a separate (unlabelled) sequence nothing attends to.

    Rows are kept short (row_length) rather than one long row per micro-batch: attention inside a row costs
    the square of its length even where the mask blocks it, and several short rows cost far less."""
    width = max(sum(len(t.input_ids) for t in row) for row in rows)
    ids = torch.full((len(rows), width), pad_id)
    labels = torch.full((len(rows), width), IGNORE)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        at = 0
        for t in row:
            n = len(t.input_ids)
            ids[r, at : at + n] = torch.tensor(t.input_ids)
            labels[r, at : at + n] = torch.tensor(t.labels)
            positions[r, at : at + n] = torch.arange(n)
            at += n
        positions[r, at:] = torch.arange(width - at)
    return _with_targets(ids, labels, {"position_ids": positions})


def collate_padded(group: list[Tokenized], pad_id: int, width: int | None = None) -> dict[str, torch.Tensor]:
    """Rows padded on the right to the longest (or to `width`), with an attention mask."""
    width = width or max(len(t.input_ids) for t in group)
    ids = torch.full((len(group), width), pad_id)
    labels = torch.full((len(group), width), IGNORE)
    mask = torch.zeros((len(group), width), dtype=torch.long)
    for r, t in enumerate(group):
        n = len(t.input_ids)
        ids[r, :n] = torch.tensor(t.input_ids)
        labels[r, :n] = torch.tensor(t.labels)
        mask[r, :n] = 1
    return _with_targets(ids, labels, {"attention_mask": mask})


def _with_targets(ids: torch.Tensor, labels: torch.Tensor, extra: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`shift_labels[t]` is the token position t must predict. Packing needs no boundary care: the first token
    of each example is prompt (-100), so no example learns to predict its neighbour."""
    shifted = torch.full_like(labels, IGNORE)
    shifted[:, :-1] = labels[:, 1:]
    return {"input_ids": ids, "labels": labels, "shift_labels": shifted, **extra}


class Batches(torch.utils.data.Dataset):
    """Pre-grouped micro-batches (packed: lists of rows; bucketed: lists of examples); the trainer's sampler
    shuffles whole micro-batches."""

    def __init__(self, groups: list[Any], packed: bool, pad_id: int):
        self.groups, self.packed, self.pad_id = groups, packed, pad_id

    def __len__(self) -> int:
        return len(self.groups)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        group = self.groups[i]
        return collate_packed(group, self.pad_id) if self.packed else collate_padded(group, self.pad_id)


def unwrap(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The trainer's collator: its batch size is 1 micro-batch, already built."""
    (only,) = batch
    return only
