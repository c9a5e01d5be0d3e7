"""Learning and forgetting measured together, on the same model before and after a run.

Every rung of adaptation that updates weights risks catastrophic forgetting, so a run reports both what it
learned (the target task on held-out examples) and what it cost (cross-entropy on general text, MMLU).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from rich.table import Table

from lmtailor.core.records import Example
from lmtailor.evaluate.forgetting import general_texts, mmlu_accuracy, mmlu_rows, text_cross_entropy
from lmtailor.evaluate.task import TaskConfig, score_task
from lmtailor.llm.client import LLM
from lmtailor.prompting.prompter import Prompter

T = TypeVar("T")
# How the figures are computed: bumped whenever one is computed differently (2: the probes ask through the backend
# contract, the cross-entropy summed per text in float64), so a base model's figures cached by an earlier version
# are measured again rather than compared with figures measured another way.
METHOD = 2


class ForgettingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    general_texts: int = Field(64, ge=0)  # held-out LIMA and Dolly answers for cross-entropy; 0: not measured
    max_tokens: int = Field(256, ge=2)  # each text is cut at this many tokens
    mmlu: int = Field(100, ge=0)  # MMLU test questions; 0: not measured
    mmlu_subjects: list[str] | None = None  # None: all 57
    seed: int = 0  # which texts and questions: the same seed picks the same ones before and after
    data_root: Path | None = None  # holds lima/, dolly/ and mmlu/; the probes need it (`lmtailor train` names one)


class EvalConfig(BaseModel):
    """What `measure` runs: the task on the held-out examples, then the forgetting probes."""

    model_config = ConfigDict(extra="forbid")
    task: TaskConfig = TaskConfig()
    forgetting: ForgettingConfig = ForgettingConfig()


def measure(
    llm: LLM, prompter: Prompter, eval_examples: Sequence[Example], cfg: EvalConfig | None = None
) -> dict[str, Any]:
    """{task: summary or None, general_ce: nats per token or None, mmlu_accuracy: share or None, seconds: {...}}.
    The task summary holds `predictions`, one row per example: for a JSONL file beside the manifest, not for the
    manifest itself. A probe configured to 0 items (or no eval examples) gives None."""
    cfg = cfg or EvalConfig()
    forgetting = cfg.forgetting
    data_root = forgetting.data_root
    if data_root is None and (forgetting.general_texts or forgetting.mmlu):
        raise ValueError(
            "the forgetting probes read lima/, dolly/ and mmlu/ from evaluate.forgetting.data_root; set it"
        )
    seconds: dict[str, float] = {}
    out: dict[str, Any] = {"task": None, "general_ce": None, "mmlu_accuracy": None}
    if eval_examples:
        result = _timed(seconds, "task", score_task, llm, prompter, eval_examples, cfg.task)
        out["task"] = {**result.summary, "predictions": result.predictions}
    if forgetting.general_texts:
        texts = general_texts(forgetting.general_texts, forgetting.seed, data_root=data_root)
        out["general_ce"] = _timed(seconds, "general_ce", text_cross_entropy, llm, texts, forgetting.max_tokens)
    if forgetting.mmlu:
        rows = mmlu_rows(forgetting.mmlu, forgetting.seed, forgetting.mmlu_subjects, data_root=data_root)
        out["mmlu_accuracy"] = _timed(seconds, "mmlu", mmlu_accuracy, llm, rows)
    out["seconds"] = seconds
    return out


def _timed(seconds: dict[str, float], name: str, run: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    start = time.perf_counter()
    value = run(*args, **kwargs)
    seconds[name] = round(time.perf_counter() - start, 1)
    return value


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What the run changed, each as {before, after, change} (change None where either side lacks the figure).
    Learning: `task`, the task score (a rise is learning), and `eval_loss`, the cross-entropy of the held-out
    answers (a fall is learning; it moves where exact match cannot, on open-ended answers). Forgetting:
    `general_ce` (a rise is forgetting) and `mmlu_accuracy` (a fall is forgetting)."""
    task_before, task_after = before.get("task") or {}, after.get("task") or {}
    return {
        "task": {"metric": task_after.get("metric"), **_change(task_before.get("score"), task_after.get("score"))},
        "eval_loss": _change(before.get("eval_loss"), after.get("eval_loss")),
        "general_ce": _change(before.get("general_ce"), after.get("general_ce")),
        "mmlu_accuracy": _change(before.get("mmlu_accuracy"), after.get("mmlu_accuracy")),
    }


def _change(before: float | None, after: float | None) -> dict[str, float | None]:
    change = after - before if before is not None and after is not None else None
    return {"before": before, "after": after, "change": change}


def render_table(before: dict[str, Any], after: dict[str, Any]) -> Table:
    """Before, after and change for each measure, the change green when it is good news and red when not."""
    changes = compare(before, after)
    table = Table(title="Learning and forgetting")
    for name in ("measure", "before", "after", "change"):
        table.add_column(name, justify="left" if name == "measure" else "right")
    task = changes["task"]
    table.add_row(f"task: {task['metric'] or 'none'} (higher is better)", *_cells(task, better="higher"))
    parts_before, parts_after = _sql_parts(before.get("task")), _sql_parts(after.get("task"))
    for part, value in parts_after.items():
        table.add_row(f"  {part}", *_cells(_change(parts_before.get(part), value), better="higher"))
    if changes["eval_loss"]["after"] is not None:
        loss = changes["eval_loss"]
        table.add_row("held-out answer CE, nats/token (lower is better)", *_cells(loss, better="lower", percent=False))
    ce, mmlu = changes["general_ce"], changes["mmlu_accuracy"]
    table.add_row("general text CE, nats/token (lower is better)", *_cells(ce, better="lower", percent=False))
    table.add_row("MMLU accuracy (higher is better)", *_cells(mmlu, better="higher"))
    return table


def _sql_parts(task: dict[str, Any] | None) -> dict[str, float | None]:
    """The two halves of the SQL score: canonical exact match, and execution where a database was found."""
    if not task or task.get("metric") != "sql":
        return {}
    execution = task["execution"]
    return {"exact match": task["exact_match"], "execution": execution["score"] if execution["n"] else None}


def _cells(values: dict[str, Any], better: Literal["higher", "lower"], percent: bool = True) -> list[str]:
    def shown(x: float | None, change: bool = False) -> str:
        if x is None:
            return "–"
        if percent:
            return f"{x * 100:+.1f} pts" if change else f"{x * 100:.1f}%"
        return f"{x:+.3f}" if change else f"{x:.3f}"

    change = values["change"]
    text = shown(change, change=True)
    if change:
        good = (change > 0) == (better == "higher")
        text = f"[{'green' if good else 'red'}]{text}[/]"
    return [shown(values["before"]), shown(values["after"]), text]
