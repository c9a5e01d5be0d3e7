"""self_instruct: new instruction-following examples from seed tasks (Wang et al. 2022, as Alpaca used it).

Each round shows the model numbered task lists (seed instructions plus a few it already produced) that end
where the next number starts, so even a base model continues the list. New instructions pass self-instruct's
filters (length, tasks needing images or files the model cannot see, a ROUGE-L near copy of any instruction
held: the seeds and every new one that passed) and wait in a queue; as many as are still wanted then get an
input and output from a few-shot prompt of seed instances. A new round is asked for only when the queue runs
short, until `n` examples are accepted or `max_rounds` is spent; instructions left over are dropped as
over_target. A round's sampling seed is part of the cache key, so a rerun replays the run from the cache.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from lmtailor.core import rundir
from lmtailor.core.io import DataError, check_value, parse_json, write_jsonl
from lmtailor.core.records import Example, RecordError
from lmtailor.curate.provenance import generated, provenance, step_llm, template_id
from lmtailor.curate.step import SetStep, StepContext
from lmtailor.llm.client import LLM
from lmtailor.llm.config import BackendConfig, LlamaCppConfig
from lmtailor.llm.types import GenParams
from lmtailor.synth.candidates import length_problem, one_line, report, text_of
from lmtailor.synth.novelty import RougeIndex

TASKS = "Come up with a series of tasks:\n\n"
INSTANCE = (
    "Come up with an example for each task: an input when the task needs one (otherwise None), "
    "then the correct output.\n\n"
)
NO_INPUT = ("", "none", "n/a", "<noinput>", "no input", "none.")
# Self-instruct's filter: tasks a text-only model cannot do or check (they name media it cannot see).
BLOCKED = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps", "draw",
           "plot", "go to", "video", "audio", "music", "flowchart", "diagram")  # fmt: skip
_NUMBERED = re.compile(r"\n\s*\d+\s*[.)]\s*")


class SelfInstruct(SetStep):
    step: Literal["self_instruct"] = "self_instruct"
    backend: BackendConfig = LlamaCppConfig()
    n: int = Field(20, ge=1)  # new examples wanted
    k: int = Field(8, ge=2)  # instructions shown per prompt
    from_generated: int = Field(2, ge=0)  # of the k, how many come from accepted ones (self-instruct: 2 of 8)
    demos: int = Field(3, ge=1)  # seed instances shown when asking for an input and output
    prompts_per_round: int = Field(8, ge=1)
    max_rounds: int = Field(20, ge=1)
    max_rouge: float = Field(0.7, gt=0, le=1)  # ROUGE-L F at or above this against any held instruction: a copy
    min_words: int = Field(3, ge=1)
    max_words: int = Field(150, ge=1)
    blocked_words: list[str] = list(BLOCKED)
    temperature: float = Field(0.8, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=16)  # per task list
    output_tokens: int = Field(256, ge=16)  # per input and output
    keep_inputs: bool = False  # write the seeds too, not only the new examples
    seed: int = 0

    def run(self, examples: Iterable[Example], ctx: StepContext) -> Iterator[Example]:
        records = list(examples)
        for ex in records:
            if self.keep_inputs:
                yield ex
            else:
                ctx.drop(ex, "input_not_kept", "a seed task; keep_inputs is off")
        seeds = [ex for ex in records if text_of(ex, "instruction").strip()]
        if not seeds:
            return
        with step_llm(self.backend, ctx) as llm:
            yield from _Rounds(self, seeds, llm, ctx).run()

    def instruction_problem(self, instruction: str, held: Iterable[RougeIndex]) -> tuple[str, str] | None:
        """(reason, detail) when a new instruction fails self-instruct's filters; `held` are the instructions
        it must not copy."""
        if problem := length_problem(instruction, self.min_words, self.max_words):
            return problem
        low = f" {' '.join(re.findall(r'[a-z0-9]+', instruction.lower()))} "
        if hit := next((w for w in self.blocked_words if f" {w.lower()} " in low), None):
            return "needs_unseen_media", f"mentions {hit!r}: a text-only model cannot see or produce it"
        if not instruction[0].isalnum() or not instruction[0].isascii():
            return "bad_start", f"starts with {instruction[0]!r}"
        if instruction.lower().startswith("write a program"):
            return "ambiguous_program", "'write a program' tasks are unclear about code versus its output"
        for index in held:
            if match := index.closest(instruction):
                return "not_novel", match.describe(self.max_rouge)
        return None


class _Rounds:
    """The state of one self-instruct run: instructions held (seeds and every new one that passed the filters,
    for novelty), instructions awaiting an input and output, accepted examples."""

    def __init__(self, cfg: SelfInstruct, seeds: list[Example], llm: LLM, ctx: StepContext):
        self.cfg, self.seeds, self.llm, self.ctx = cfg, seeds, llm, ctx
        self.held = RougeIndex(cfg.max_rouge)
        self.held.add("the prompt's own header", TASKS)  # a base model sometimes echoes it as a task
        for ex in seeds:
            self.held.add(ex.id, text_of(ex, "instruction"))
        self.accepted: list[Example] = []
        self.pending: list[tuple[Example, dict[str, Any]]] = []  # novel instructions awaiting input and output
        # Short seed instances make the best demonstrations: they leave room for the answer.
        by_length = sorted(seeds, key=lambda ex: len(text_of(ex, "output")) + len(ex.input))
        self.demo_pool = by_length[: max(cfg.demos * 10, len(by_length) // 2)]
        self.list_params = GenParams(
            max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, stop=("\n\n",), seed=cfg.seed
        )
        self.instance_params = GenParams(max_tokens=cfg.output_tokens, temperature=0.0, stop=("\nTask:", "\nInput:"))
        self.origin: dict[str, Any] = {
            "template": template_id("self_instruct.tasks", TASKS),
            "instance_template": template_id("self_instruct.instance", INSTANCE),
            "instance_params": self.instance_params.model_dump(mode="json", exclude={"json_schema"}),
        }

    def run(self) -> Iterator[Example]:
        cfg, ctx = self.cfg, self.ctx
        self.llm.progress = None  # one bar for the whole run instead of two per round
        task = ctx.progress.add_task("self-instruct", total=cfg.n)
        rounds = 0
        while len(self.accepted) < cfg.n:
            want = cfg.n - len(self.accepted)
            if len(self.pending) < want and rounds < cfg.max_rounds:
                self._lists(rounds)
                rounds += 1
            if not self.pending:
                if rounds == cfg.max_rounds:
                    break
                continue
            batch, self.pending = self.pending[:want], self.pending[want:]
            for ex in self._instances(batch):
                self.accepted.append(ex)
                yield ex
            usage = self.llm.usage
            cost = f" ${usage.cost_usd:.4f}" if self.llm.backend.price else ""
            ctx.progress.update(
                task,
                completed=len(self.accepted),
                description=f"self-instruct {usage.tokens_per_second():,.0f} tok/s{cost}",
            )
        for ex, _ in self.pending:
            report(ctx, ex, "instruction continuing a task list", ("over_target", f"{cfg.n} examples were reached"))
        ctx.metrics.update({"target": cfg.n, "rounds": rounds})
        if len(self.accepted) < cfg.n:
            ctx.metrics["stopped"] = f"max_rounds ({cfg.max_rounds}) spent with {len(self.accepted)} of {cfg.n}"

    def _lists(self, r: int) -> None:
        """One round of task lists; their new instructions that pass the filters wait for an input and output."""
        cfg = self.cfg
        params = self.list_params.model_copy(update={"seed": cfg.seed + r})
        shown = [self._shown(random.Random(f"{cfg.seed}:{r}:{p}")) for p in range(cfg.prompts_per_round)]
        answers = self.llm.generate([_task_list(items) for items in shown], params, "self-instruct: tasks")
        for p, (items, answer) in enumerate(zip(shown, answers, strict=True)):
            parsed = _continued(answer.text, answer.finish_reason == "length")
            if not parsed:  # nothing to ledger, but worth knowing: a model that will not continue lists
                self.ctx.metrics["empty_task_lists"] = self.ctx.metrics.get("empty_task_lists", 0) + 1
            for i, (instruction, cut) in enumerate(parsed):
                more = {k: v for k, v in self.origin.items() if k != "template"}
                origin = provenance(
                    self.llm, "self_instruct", self.origin["template"], params, [ex.id for ex in items], **more
                )
                ex = generated(f"self_instruct:{r}.{p}.{i}", instruction, "", origin)
                problem = ("truncated", "the task list hit max_tokens inside this task") if cut else None
                problem = problem or cfg.instruction_problem(instruction, [self.held])
                if problem is None:
                    self.held.add(ex.id, instruction)
                    self.pending.append((ex, origin))
                else:
                    report(self.ctx, ex, "instruction continuing a task list", problem)

    def _shown(self, rng: random.Random) -> list[Example]:
        """k instructions for one prompt: mostly seeds, a few accepted ones once there are some."""
        cfg = self.cfg
        mine = rng.sample(self.accepted, min(cfg.from_generated, len(self.accepted)))
        items = rng.sample(self.seeds, min(cfg.k - len(mine), len(self.seeds))) + mine
        rng.shuffle(items)
        return items

    def _instances(self, candidates: list[tuple[Example, dict[str, Any]]]) -> list[Example]:
        """An input and output for each new instruction, from a few-shot prompt of short seed instances."""
        demos = [random.Random(f"{self.cfg.seed}:{ex.id}").sample(self.demo_pool, self.cfg.demos)
                 for ex, _ in candidates]  # fmt: skip
        prompts = [
            _instance_prompt(d, text_of(ex, "instruction")) for (ex, _), d in zip(candidates, demos, strict=True)
        ]
        answers = self.llm.generate(prompts, self.instance_params, "self-instruct: instances")
        kept = []
        for (ex, origin), shown, answer in zip(candidates, demos, answers, strict=True):
            instruction = text_of(ex, "instruction")
            inp, output = _instance(answer.text)
            origin["instance_demos"] = [d.id for d in shown]
            new = generated(ex.id, instruction, output, origin, inp)
            problem = None
            if answer.finish_reason == "length":
                problem = "truncated", f"the output hit output_tokens ({self.cfg.output_tokens})"
            elif not output:
                problem = "no_output", "the model wrote no 'Output:' for the task"
            elif output.strip() in (inp.strip(), instruction.strip()):
                problem = "degenerate_output", "the output repeats the input or the instruction"
            if report(self.ctx, new, "new instruction, then its input and output", problem):
                kept.append(new)
        return kept


def _task_list(items: list[Example]) -> str:
    lines = [f"{i}. {one_line(text_of(ex, 'instruction'))}" for i, ex in enumerate(items, 1)]
    return TASKS + "\n".join(lines) + f"\n{len(items) + 1}."


def _continued(text: str, cut: bool) -> list[tuple[str, bool]]:
    """New instructions from a continued numbered list, each with whether max_tokens cut it short."""
    parts = [one_line(p) for p in _NUMBERED.split("\n" + text)]
    parts = parts[1:] if parts and not parts[0] else parts
    return [(p, cut and i == len(parts) - 1) for i, p in enumerate(parts) if p or i < len(parts) - 1]


def _instance_prompt(demos: list[Example], instruction: str) -> str:
    blocks = [
        f"Task: {one_line(text_of(d, 'instruction'))}\nInput: {d.input.strip() or 'None'}\n"
        f"Output: {text_of(d, 'output').strip()}\n"
        for d in demos
    ]
    return INSTANCE + "\n".join(blocks) + f"\nTask: {instruction}\nInput:"


def _instance(text: str) -> tuple[str, str]:
    """(input, output) from 'INPUT\\nOutput: OUTPUT'; no output when the model never wrote 'Output:'."""
    inp, sep, output = text.partition("\nOutput:")
    if not sep:
        return "", ""
    inp = inp.strip()
    output = output.partition("\nOutput:")[0]  # a base model may go on with another "Output:" of its own
    return ("" if inp.lower() in NO_INPUT else inp), output.strip()


def convert_seed_tasks(path: Path, target: Path) -> int:
    """Self-instruct's seed file (instruction + instances[{input, output}]) as alpaca records that lmtailor
    reads: the first instance becomes input and output; id, name, is_classification and any further instances
    stay as extra fields. Returns the number of tasks."""

    def records() -> Iterator[dict[str, Any]]:
        with open(path, "rb") as f:
            for i, data in enumerate(f):
                if not data.strip():
                    continue
                try:
                    task = parse_json(data.decode("utf-8"))
                    check_value(task)  # what lmtailor's readers refuse, refused here too
                except UnicodeDecodeError as e:
                    raise DataError(path, i, f"not valid UTF-8 ({e.reason})", i + 1) from None
                except RecordError as e:
                    raise DataError(path, i, str(e), i + 1) from None
                instances = task.get("instances") if isinstance(task, dict) else None
                if not isinstance(task, dict) or not isinstance(task.get("instruction"), str):
                    raise DataError(path, i, "a seed task needs a string 'instruction'", i + 1)
                if not instances or not all(isinstance(x, dict) and isinstance(x.get("output"), str)
                                            for x in instances):  # fmt: skip
                    raise DataError(path, i, "a seed task needs 'instances': [{input, output}, ...]", i + 1)
                extra = {k: v for k, v in task.items() if k not in ("instruction", "instances")}
                first = instances[0]
                more = {"instances": instances[1:]} if len(instances) > 1 else {}
                yield {**extra, **more, "instruction": task["instruction"], "input": first.get("input") or "",
                       "output": first["output"]}  # fmt: skip

    return write_jsonl(target, records())


def readable_seeds(paths: Iterable[Path], out: Path) -> Iterator[tuple[Path, int | None]]:
    """Each seed file as one lmtailor reads, with the number of tasks converted: a file in self-instruct's seed
    format becomes alpaca records in the run folder `out` (prepared first, so a file where the folder should be is
    refused before anything is written); any other file is itself, with None."""
    for path in paths:
        if not is_seed_tasks(path):
            yield path, None
            continue
        target = out / "inputs" / f"{path.stem}.jsonl"
        rundir.prepare(out)
        yield target, convert_seed_tasks(path, target)


def is_seed_tasks(path: Path) -> bool:
    """Whether `path` is in self-instruct's seed format (which lmtailor's readers do not take as it is)."""
    if path.suffix not in (".jsonl", ".ndjson") or not path.is_file():
        return False
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    try:
        record = parse_json(first)
    except RecordError:
        return False
    return isinstance(record, dict) and "instances" in record and "output" not in record
