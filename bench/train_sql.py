"""A real task: adapt Gemma 3 270M to text-to-SQL on Spider dev, and compare the rungs of the ladder.

    python bench/train_sql.py prepare                   # the split and the prompts (seconds)
    python bench/train_sql.py zero-shot                 # the base model, greedy, through lmtailor's evaluation
    python bench/train_sql.py few-shot                  # 3 random same-database examples, llama.cpp
    python bench/train_sql.py train --arm lora          # lmtailor train, LoRA, within --minutes
    python bench/train_sql.py train --arm full          # full fine-tuning
    python bench/train_sql.py train --arm lora_curated  # the same LoRA on a curated third of the training split
    python bench/train_sql.py speed                     # lmtailor's loop against Trainer + PEFT, same process
    python bench/train_sql.py table                     # the BENCHMARKS.md table from bench/out/train_sql/

The split: Spider dev's 1,034 questions over 20 databases, split by question within each database (seed 0,
70/30): 722 to train on, 312 to test. Every prompt holds the database schema with its foreign keys, then the
question; every target is canonical SQL (sqlglot's form, as `lmtailor curate`'s normalize step writes it), so
the model learns SQL rather than each annotator's spacing and case. Exact match compares canonical forms
(Spider ships no database rows, so there is no execution accuracy here).

Each arm writes bench/out/train_sql/<arm>.json; `table` reads them all.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "train_sql"
SPLIT = OUT / "data"
INSTRUCTION = "Write one SQLite query that answers the question.\n\nDatabase schema:\n{schema}\n\nQuestion: {question}"


def prepare(seed: int = 0, train_share: float = 0.7) -> dict[str, int]:
    """train.jsonl / test.jsonl in alpaca format with `db_id` kept; the same seed gives the same split."""
    from lmtailor.core.io import write_jsonl
    from lmtailor.sql.canonical import canonical_sql
    from lmtailor.sql.databases import spider_schema

    dev = json.loads((DATA / "text2sql" / "spider" / "dev.json").read_text())
    by_db: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in dev:
        by_db[row["db_id"]].append(row)
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "test": []}
    for db in sorted(by_db):
        rows = by_db[db]
        random.Random(f"{seed}:{db}").shuffle(rows)
        cut = round(len(rows) * train_share)
        schema = spider_schema(db, DATA)
        for name, part in (("train", rows[:cut]), ("test", rows[cut:])):
            splits[name] += [{"instruction": INSTRUCTION.format(schema=schema, question=r["question"]), "input": "",
                              "output": canonical_sql(r["query"], "sqlite"), "db_id": db} for r in part]  # fmt: skip
    for name, rows in splits.items():
        write_jsonl(SPLIT / f"{name}.jsonl", rows)
    return {name: len(rows) for name, rows in splits.items()}


def _examples(name: str) -> list[Any]:
    from lmtailor.core.io import read_examples

    if not (SPLIT / f"{name}.jsonl").exists():
        prepare()
    return list(read_examples(SPLIT / f"{name}.jsonl"))


def _save(arm: str, result: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    result = {"arm": arm, "command": " ".join(["python", *sys.argv]), **result}
    (OUT / f"{arm}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k != "predictions"}, indent=2))


def zero_shot() -> None:
    """The base model through the same evaluation `lmtailor train` runs before training: the training Template
    as the prompter, the transformers backend as the model."""
    from lmtailor.core.progress import make_progress
    from lmtailor.evaluate.task import TaskConfig, score_task
    from lmtailor.llm.client import LLM
    from lmtailor.llm.transformers_backend import TransformersBackend
    from lmtailor.prompting.template import Template

    cfg = TaskConfig(metric="sql", max_new_tokens=128)
    backend = TransformersBackend(batch_size=cfg.batch_size)
    test = _examples("test")
    start = time.perf_counter()
    with make_progress() as progress:
        result = score_task(LLM(backend, progress=progress), Template(backend.tokenizer), test, cfg)
    _save("zero_shot", {"task": result.summary, "seconds": round(time.perf_counter() - start, 1)})


def few_shot(shots: int = 3, seed: int = 0) -> None:
    """Each test question after `shots` random training examples of the same database, as earlier chat turns,
    answered greedily by the embedded model through llama.cpp. The schema is given once, in the first turn:
    repeated in every shot, a prompt of the largest schemas would outgrow the model's context."""
    from lmtailor.core.progress import make_progress
    from lmtailor.evaluate.task import TaskConfig, score_task
    from lmtailor.llm.config import LlamaCppConfig, open_llm
    from lmtailor.prompting.few_shot import FewShot

    prompter = FewShot(_examples("train"), shots, seed, same="db_id", later_turns_from="Question: ")
    # The shots' answers are one line each; the base model goes on after its query with more of them
    cfg = TaskConfig(metric="sql", max_new_tokens=128, stop=["\n"])
    start = time.perf_counter()
    with make_progress() as progress:
        result = score_task(open_llm(LlamaCppConfig(cache=False), progress), prompter, _examples("test"), cfg)
    _save(f"{shots}_shot", {"task": result.summary, "seconds": round(time.perf_counter() - start, 1),
                            "predictions": result.predictions})  # fmt: skip


def curated_subset(fraction: float = 1 / 3) -> Path:
    """lmtailor curate on the training split: exact duplicates out, then `select` keeps `fraction` of what is
    left, best score first (by default the answer's length: the richer queries), skipping any whose query's
    embedding lies within `min_distance` of one kept. It looks at the SQL, not the prompt: a prompt is mostly
    its database's schema, so near_dedup over prompts took "How many countries exist?" for a copy of "How many
    cars have more than 4 cylinders?" (104 of 722 dropped), and Spider's second wording of a query is what a
    third of the budget should not be spent on."""
    from lmtailor.curate.pipeline import curate
    from lmtailor.curate.recipe import Recipe

    train = SPLIT / "train.jsonl"
    if not train.exists():
        prepare()
    target = round(sum(1 for _ in train.open()) * fraction)
    recipe = Recipe.parse({"inputs": [{"path": str(train)}], "output": "curated.jsonl",
                           "steps": [{"step": "exact_dedup"},
                                     {"step": "select", "n": target, "fields": ["output"]}]})  # fmt: skip
    run = OUT / "curate"
    curate(recipe, run, fresh=True)
    return run / "curated.jsonl"


def train_arm(arm: str, minutes: float, epochs: float, lr: float | None, rank: int, eval_every: int) -> None:
    """`lmtailor train` on the training split, evaluated on the test split; stops at --minutes. Rows of 512
    tokens (the longest examples, up to 660, get rows of their own): `speed` measures what they save."""
    from lmtailor.evaluate.report import EvalConfig, ForgettingConfig
    from lmtailor.evaluate.task import TaskConfig
    from lmtailor.train.config import TrainConfig
    from lmtailor.train.run import train

    data = curated_subset() if arm == "lora_curated" else SPLIT / "train.jsonl"
    _examples("test")
    cfg = TrainConfig.model_validate({
        "method": "full" if arm == "full" else "lora",
        "train": [{"path": str(data)}],
        "eval": [{"path": str(SPLIT / "test.jsonl")}],
        "out": str(OUT / f"run_{arm}"),
        "epochs": epochs,
        "learning_rate": lr,
        "max_minutes": minutes,
        "max_length": 1024,
        "row_length": 512,
        "tokens_per_batch": 2048,  # about 85 optimizer steps an epoch: 722 examples call for many small steps
        "lora": {"r": rank, "alpha": 2 * rank},
        "eval_every": eval_every,
        "evaluate": EvalConfig(task=TaskConfig(metric="sql", max_new_tokens=128),
                               forgetting=ForgettingConfig(data_root=DATA)).model_dump(),
    })  # fmt: skip
    manifest = train(cfg)
    assert manifest is not None  # one process: it writes
    _save(arm, manifest.model_dump(mode="json", include={"data", "training", "before", "after", "changes"}))


def speed(steps: int, batch_size: int, max_length: int) -> None:
    """Training tokens/s on the same data, model and LoRA: lmtailor's loop (packing, logits only at answer
    tokens) against the plain recipe (Trainer + PEFT, every example padded to max_length, the model's own
    loss over full logits). Both count real (non-padding) tokens; both run here, one after the other."""
    import torch
    from transformers import AutoModelForCausalLM, Trainer, TrainingArguments

    from lmtailor.llm.convert import embedded_hf_dir
    from lmtailor.prompting.template import Template
    from lmtailor.train.config import TrainConfig
    from lmtailor.train.data import Batches, collate_padded, pack, rows_in_batches, tokenize, unwrap
    from lmtailor.train.model import load_model, load_tokenizer, target_modules
    from lmtailor.train.trainer import AnswerLossTrainer

    path = embedded_hf_dir()
    tokenizer = load_tokenizer(path)
    items, stats = tokenize(_examples("train"), Template(tokenizer), max_length)
    cfg = TrainConfig.model_validate({"train": [{"path": "unused"}], "method": "lora", "max_length": max_length})
    real = sum(len(t.input_ids) for t in items) / len(items)
    results: dict[str, Any] = {"examples": len(items), "mean_tokens": round(real, 1), "steps": steps}

    def timed(trainer: Trainer) -> dict[str, float]:
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
        tokens = trainer.state.num_input_tokens_seen  # real tokens: padding is not counted
        return {"seconds": round(seconds, 1), "real_tokens": int(tokens), "tokens_per_s": round(tokens / seconds, 1)}

    def args(name: str, accumulate: int = 1) -> TrainingArguments:
        return TrainingArguments(output_dir=str(OUT / f"speed_{name}"), per_device_train_batch_size=1, max_steps=steps,
                                 gradient_accumulation_steps=accumulate,
                                 learning_rate=2e-4, logging_steps=steps, save_strategy="no", report_to=[],
                                 use_cpu=True, disable_tqdm=True, remove_unused_columns=False, seed=0,
                                 include_num_input_tokens_seen="non_padding")  # fmt: skip

    def ours(name: str, dropout: float, row_length: int) -> dict[str, float]:
        """lmtailor: rows of row_length tokens, as many per micro-batch as hold the baseline's real tokens per
        step."""
        per_batch = max(round(batch_size * real / row_length), 1)
        groups = Batches(rows_in_batches(pack(items, row_length), per_batch), True, tokenizer.pad_token_id)
        run_cfg = cfg.model_copy(update={"lora": cfg.lora.model_copy(update={"dropout": dropout})})
        torch.manual_seed(0)
        trainer = AnswerLossTrainer(model=load_model(path, run_cfg), args=args(name), data_collator=unwrap,
                                    train_dataset=groups, processing_class=tokenizer)  # fmt: skip
        return {**timed(trainer), "rows_per_step": per_batch, "row_length": row_length, "lora_dropout": dropout}

    results["lmtailor"] = ours("lmtailor", 0.0, max_length)
    # PEFT's LoRA dropout copies each adapted layer's input: what it costs is why lmtailor defaults it to 0
    results["lmtailor_dropout_0.05"] = ours("lmtailor_dropout", 0.05, max_length)
    # Attention costs the square of a row's length even where the mask blocks it: shorter rows, as train --arm uses
    results["lmtailor_rows_512"] = ours("lmtailor_rows_512", 0.0, 512)

    # The plain recipe: micro-batches of 2 examples padded to max_length, accumulated to batch_size per step
    # (8 x 768 at once needs the full-vocabulary logits of 6,144 positions, over 24 GB with their gradients).
    micro = 2

    class Padded(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(items) // micro

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            batch = collate_padded(items[i * micro : (i + 1) * micro], tokenizer.pad_token_id, width=max_length)
            return {k: batch[k] for k in ("input_ids", "labels", "attention_mask")}  # the model shifts labels

    torch.manual_seed(0)
    from peft import LoraConfig, get_peft_model

    base = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=0.0,
                                           task_type="CAUSAL_LM", target_modules=target_modules(base)))  # fmt: skip
    plain = Trainer(
        model=peft,
        args=args("plain", batch_size // micro),
        train_dataset=Padded(),
        data_collator=unwrap,
        processing_class=tokenizer,
    )
    results["trainer_peft_padded"] = timed(plain)
    results["speedup"] = round(results["lmtailor"]["tokens_per_s"] / results["trainer_peft_padded"]["tokens_per_s"], 2)
    results["truncated"] = stats.truncated
    _save("speed", results)


def table() -> None:
    """The BENCHMARKS.md table: one row per arm that has run."""
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))}
    print(
        "| arm | exact match | training time | tokens/s | peak memory | held-out answer CE | Δ general CE (nats) "
        "| Δ MMLU |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm in ("zero_shot", "3_shot", "lora", "full", "lora_curated"):
        r = rows.get(arm)
        if r is None:
            continue
        task = r.get("after", r)["task"]  # a trained arm's figures are those after training
        t, ch = r.get("training", {}), r.get("changes", {})
        seconds, tokens = _training_time(arm) if t else (0.0, 0)
        minutes = f"{seconds / 60:.0f} min" if t else "–"
        speed_ = f"{tokens / seconds:,.0f}" if t else "–"
        memory = f"{t['peak_memory_mb'] / 1024:.1f} GB" if t else "–"
        answer_ce = f"{ch['eval_loss']['before']:.3f} → {ch['eval_loss']['after']:.3f}" if ch.get("eval_loss") else "–"
        ce = f"{ch['general_ce']['change']:+.3f}" if ch.get("general_ce") else "–"
        mmlu = f"{ch['mmlu_accuracy']['change'] * 100:+.1f} pts" if ch.get("mmlu_accuracy") else "–"
        cells = [arm, f"{task['score'] * 100:.1f}% ({task['n']})", minutes, speed_, memory, answer_ce, ce, mmlu]
        print("| " + " | ".join(cells) + " |")
    print("\n| arm | right | on queries it trained on | on new queries | with a JOIN |\n|---|---:|---:|---:|---:|")
    for arm in ("3_shot", "lora", "full", "lora_curated"):
        if arm in rows:
            print(_breakdown(arm, rows[arm]))


def _training_time(arm: str) -> tuple[float, int]:
    """Seconds of training and tokens trained on, from the run's metrics.jsonl, over every process that trained
    (each logs its own clock, restarting at 0): the clock's advance from one step to the next, less any
    evaluation between them. The manifest counts the last process only, and older ones counted evaluations."""
    seconds, clock, evaluating, tokens = 0.0, None, 0.0, 0
    for row in map(json.loads, (OUT / f"run_{arm}" / "metrics.jsonl").open()):
        if "eval_runtime" in row:
            evaluating += row["eval_runtime"]
        elif "loss" in row:
            new_process = clock is None or row["train_runtime"] < clock
            seconds += row["train_runtime"] if new_process else row["train_runtime"] - clock - evaluating
            clock, evaluating, tokens = row["train_runtime"], 0.0, row["num_input_tokens_seen"]
    return seconds, tokens


def _breakdown(arm: str, result: dict[str, Any]) -> str:
    """Where an arm's right answers are: Spider asks most queries twice, so a test question whose gold query was
    a training target (of that arm's data; 3-shot: of the split its shots come from) differs from a new one."""
    run = OUT / f"run_{arm}" / "eval_after.json"
    predictions = json.loads(run.read_text())["task"]["predictions"] if run.exists() else result["predictions"]
    data = OUT / "curate" / "curated.jsonl" if arm == "lora_curated" else SPLIT / "train.jsonl"
    trained = {(r["db_id"], r["output"]) for r in map(json.loads, data.open())}
    gold = [(r["db_id"], r["output"]) for r in map(json.loads, (SPLIT / "test.jsonl").open())]
    seen = [g in trained for g in gold]
    right = [p["correct"] for p in predictions]
    groups = (seen, [not s for s in seen], ["JOIN" in query for _, query in gold])
    cells = [f"{sum(r and g for r, g in zip(right, group, strict=True))} of {sum(group)}" for group in groups]
    return f"| {arm} | {sum(right)} of {len(right)} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("prepare")
    sub.add_parser("zero-shot")
    few = sub.add_parser("few-shot")
    few.add_argument("--shots", type=int, default=3)
    tr = sub.add_parser("train")
    tr.add_argument("--arm", choices=["lora", "full", "lora_curated"], required=True)
    tr.add_argument("--minutes", type=float, default=60)
    tr.add_argument("--epochs", type=float, default=2)
    tr.add_argument("--lr", type=float, default=None)
    tr.add_argument("--rank", type=int, default=16, help="LoRA rank; alpha is twice the rank")
    tr.add_argument("--eval-every", type=int, default=0, help="steps between validation losses (0: each epoch)")
    sp = sub.add_parser("speed")
    sp.add_argument("--steps", type=int, default=4)  # per loop; the plain recipe's 4 take about 7 minutes
    sp.add_argument("--batch-size", type=int, default=8)
    sp.add_argument("--max-length", type=int, default=768)
    sub.add_parser("table")
    a = parser.parse_args()
    if a.cmd == "prepare":
        print(prepare())
    elif a.cmd == "zero-shot":
        zero_shot()
    elif a.cmd == "few-shot":
        few_shot(a.shots)
    elif a.cmd == "train":
        train_arm(a.arm, a.minutes, a.epochs, a.lr, a.rank, a.eval_every)
    elif a.cmd == "speed":
        speed(a.steps, a.batch_size, a.max_length)
    else:
        table()


if __name__ == "__main__":
    main()
