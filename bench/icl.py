"""In-context learning: random against knn against mmr shots, at equal k and equal token budget, on two tasks.

    python bench/icl.py spider       # Spider text-to-SQL, the split bench/train_sql.py prepares
    python bench/icl.py pubmedqa     # PubMedQA yes/no/maybe after its abstract, by label log-likelihood
    python bench/icl.py table        # the BENCHMARKS.md table, from bench/out/icl/*.json
    --n 100 (test questions, a seeded sample; 0: all), --seeds 0 1 2 (random's draws)

Every prompt is made by the library's own path (`icl_prompter` over an IclConfig, `build_prompt_set`) and
scored by `score_task`, as `lmtailor eval` does, with the embedded Gemma 3 270M (a base model: completion
form). The strategies differ only in which shots they choose and their order (random: as drawn; knn and mmr:
the nearest last); k, the token budget (counted with the model's tokenizer), the templates and mmr's lambda
are the same for all and were fixed before any run, so nothing is chosen on test questions (there is no
setting to pick, hence no validation split). knn and mmr are deterministic, so only random has seeds; every
interval is a 95% bootstrap over the test questions (random: each question's mean over the seeds), and
"vs random" is the paired difference, question by question.

- spider: the 722 training questions are the pool, shots of the question's own database (`same: db_id`), the
  schema stated once; k 4 within 1,024 tokens; greedy, cut at the first line break; exact match of canonical
  SQL (Spider ships no rows). Test: `--n` of the 312 test questions. Spider asks most queries twice: the table
  counts apart the right answers whose gold query is also a pool target (a shot may carry it verbatim).
- pubmedqa: PQA-L's 500 questions outside its test ids are the pool, `--n` of the 500 test ids are asked; each
  prompt is "Question: ...\\nContext: <abstract>\\nAnswer: <label>"; k 2 within 1,024 tokens (an abstract is
  about 330 tokens); the likeliest of yes, no, maybe (transformers backend: one pass gives all three labels).

Each task writes bench/out/icl/<task>.json (`--out` another folder): figures, and per-question correctness;
answers are cached, so a rerun costs nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
OUT = ROOT / "bench" / "out" / "icl"
SPIDER = ROOT / "bench" / "out" / "train_sql" / "data"
LABELS = ["yes", "no", "maybe"]
MMR_LAMBDA = 0.5  # LangChain's default lambda_mult, fixed in advance


def spider_task(n: int) -> dict[str, Any]:
    from lmtailor.evaluate.task import TaskConfig
    from lmtailor.llm.config import LlamaCppConfig

    if not (SPIDER / "train.jsonl").exists():
        sys.path.insert(0, str(ROOT / "bench"))
        from train_sql import prepare

        prepare()
    settings = {"pool": {"path": str(SPIDER / "train.jsonl")}, "k": 4, "budget_tokens": 1024, "same": "db_id",
                "context_marker": "Question: ", "form": "completion",
                "completion": {"answer": "\nSQL: {answer}"}}  # fmt: skip

    def task(stop: tuple[str, ...], delimiter: str) -> TaskConfig:
        return TaskConfig(metric="sql", max_new_tokens=128, stop=[*stop, "\n"])  # the gold queries are one line

    queries = _sample(_read(SPIDER / "test.jsonl"), n)
    targets = {ex.field("output") for ex in _read(SPIDER / "train.jsonl")}
    return {"settings": settings, "queries": queries, "task": task, "backend": LlamaCppConfig(),
            "seen": [q.field("output") in targets for q in queries]}  # fmt: skip


def pubmedqa_task(n: int) -> dict[str, Any]:
    from lmtailor.core.io import write_jsonl
    from lmtailor.evaluate.task import TaskConfig
    from lmtailor.llm.config import TransformersConfig

    root = DATA / "rag" / "pubmedqa"
    records = json.loads((root / "ori_pqal.json").read_text())
    test_ids = set(json.loads((root / "test_ground_truth.json").read_text()))
    rows = {pmid: {"instruction": f"Question: {r['QUESTION']}\nContext: {' '.join(r['CONTEXTS'])}",
                   "output": r["final_decision"], "id": pmid} for pmid, r in records.items()}  # fmt: skip
    OUT.mkdir(parents=True, exist_ok=True)
    for name, keep in (("pool", lambda pmid: pmid not in test_ids), ("test", lambda pmid: pmid in test_ids)):
        write_jsonl(OUT / f"pubmedqa_{name}.jsonl", [row for pmid, row in rows.items() if keep(pmid)])
    settings = {"pool": {"path": str(OUT / "pubmedqa_pool.jsonl")}, "k": 2, "budget_tokens": 1024,
                "form": "completion"}  # fmt: skip

    def task(stop: tuple[str, ...], delimiter: str) -> TaskConfig:
        return TaskConfig(metric="choice", labels=LABELS, label_prefix=delimiter)

    return {"settings": settings, "queries": _sample(_read(OUT / "pubmedqa_test.jsonl"), n), "task": task,
            "backend": TransformersConfig()}  # fmt: skip


TASKS: dict[str, Callable[[int], dict[str, Any]]] = {"spider": spider_task, "pubmedqa": pubmedqa_task}


def _read(path: Path) -> list[Any]:
    from lmtailor.core.io import read_examples

    return list(read_examples(path))


def _sample(examples: list[Any], n: int) -> list[Any]:
    """`n` test questions drawn with seed 0, in file order; 0 or more than there are: all."""
    if not n or n >= len(examples):
        return examples
    keep = set(random.Random(0).sample(range(len(examples)), n))
    return [ex for i, ex in enumerate(examples) if i in keep]


def run(name: str, n: int, seeds: list[int], out_dir: Path) -> None:
    from lmtailor.core.progress import make_progress
    from lmtailor.evaluate.metrics import bootstrap_ci
    from lmtailor.evaluate.task import score_task
    from lmtailor.llm.config import open_llm
    from lmtailor.prompting.icl import IclConfig, build_prompt_set, icl_prompter, llm_tokens

    spec = TASKS[name](n)
    queries = spec["queries"]
    arms = [("random", {"strategy": "random", "seed": s}) for s in seeds]
    arms += [("knn", {"strategy": "knn"}), ("mmr", {"strategy": "mmr", "mmr_lambda": MMR_LAMBDA})]
    results: dict[str, list[dict[str, Any]]] = {}
    with make_progress(unit="query") as progress:
        llm = open_llm(spec["backend"], progress)
        try:
            for strategy, extra in arms:
                start = time.perf_counter()
                cfg = IclConfig.model_validate({**spec["settings"], **extra})
                prompter = icl_prompter(cfg, llm_tokens(llm))
                prompts = build_prompt_set(prompter, queries, f"{name} test questions")
                result = score_task(llm, prompts, queries, spec["task"](prompts.stop, prompts.delimiter))
                notes = [prompts.ask(q).notes for q in queries]
                results.setdefault(strategy, []).append({
                    "seed": extra.get("seed"),
                    "score": result.summary["score"],
                    "correct": [bool(r["correct"]) for r in result.predictions],
                    "shots": float(np.mean([len(x["shot_ids"]) for x in notes])),
                    "prompt_tokens": [x["prompt_tokens"] for x in notes],
                    "overflow": sum(x["overflow"] for x in notes),
                    "seconds": round(time.perf_counter() - start, 1),
                })  # fmt: skip
                print(f"{name} {strategy} seed {extra.get('seed')}: {result.summary['score']:.3f}", flush=True)
        finally:
            llm.backend.close()
    per_query = {s: np.mean([r["correct"] for r in runs], axis=0) for s, runs in results.items()}
    summary = {}
    for strategy, runs in results.items():
        tokens = np.concatenate([r["prompt_tokens"] for r in runs])
        diff = per_query[strategy] - per_query["random"]
        summary[strategy] = {
            "score": float(per_query[strategy].mean()),
            "ci95": bootstrap_ci(per_query[strategy].tolist()),
            "per_seed": [r["score"] for r in runs] if strategy == "random" else None,
            "vs_random": float(diff.mean()),
            "vs_random_ci95": bootstrap_ci(diff.tolist()),
            "shots": float(np.mean([r["shots"] for r in runs])),
            "prompt_tokens": {"p50": float(np.percentile(tokens, 50)), "p95": float(np.percentile(tokens, 95))},
            "overflow": sum(r["overflow"] for r in runs),
            "seconds": sum(r["seconds"] for r in runs),
        }
    out_dir.mkdir(parents=True, exist_ok=True)
    out = {"task": name, "command": " ".join(["python", "bench/icl.py", *sys.argv[1:]]), "n": len(queries),
           "settings": spec["settings"], "mmr_lambda": MMR_LAMBDA, "seeds": seeds, "summary": summary,
           "seen": spec.get("seen"), "runs": results}  # fmt: skip
    (out_dir / f"{name}.json").write_text(json.dumps(out, indent=1) + "\n")
    table(out_dir)


def table(out_dir: Path) -> None:
    """One markdown table per task that has run, with the command that made it."""
    for path in sorted(out_dir.glob("*.json")):
        result = json.loads(path.read_text())
        s = result["settings"]
        print(
            f"{result['task']}: {result['n']} test questions, k {s['k']}, at most {s['budget_tokens']} prompt tokens\n"
        )
        print("| strategy | score (95% CI) | vs random, paired (95% CI) | shots per prompt | prompt tokens p50 / p95 "
              "| minutes |")  # fmt: skip
        print("|---|---:|---:|---:|---:|---:|")
        for strategy, r in result["summary"].items():
            lo, hi = r["ci95"]
            seeds = f"; seeds {', '.join(f'{x * 100:.1f}' for x in r['per_seed'])}" if r["per_seed"] else ""
            vs = "–" if strategy == "random" else _points(r["vs_random"], r["vs_random_ci95"])
            cells = [strategy, f"{r['score'] * 100:.1f}% ({lo * 100:.1f}–{hi * 100:.1f}{seeds})", vs,
                     f"{r['shots']:.2f}", f"{r['prompt_tokens']['p50']:.0f} / {r['prompt_tokens']['p95']:.0f}",
                     f"{r['seconds'] / 60:.1f}"]  # fmt: skip
            print("| " + " | ".join(cells) + " |")
        if seen := result.get("seen"):
            print(
                f"\nRight answers whose gold query is also a pool target ({sum(seen)} of {len(seen)} questions) "
                "and new ones:",
                *(_split(strategy, runs, seen) for strategy, runs in result["runs"].items()),
            )
        print(f"\n`{result['command']}`\n")


def _split(strategy: str, runs: list[dict[str, Any]], seen: list[bool]) -> str:
    """A strategy's right answers on questions whose query a shot could hold verbatim, and on the others
    (Spider asks most queries twice, so a near shot often carries the very answer)."""
    pairs = [list(zip(r["correct"], seen, strict=True)) for r in runs]
    right = [(sum(c and s for c, s in p), sum(c and not s for c, s in p)) for p in pairs]
    return f"{strategy} " + ", ".join(f"{a} and {b}" for a, b in right) + ";"


def _points(value: float, ci: list[float]) -> str:
    return f"{value * 100:+.1f} pts ({ci[0] * 100:+.1f} to {ci[1] * 100:+.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=[*TASKS, "table"])
    parser.add_argument("--n", type=int, default=100, help="test questions, a seeded sample (0: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="random's draws")
    parser.add_argument("--out", type=Path, default=OUT, help="folder of the results (<task>.json)")
    a = parser.parse_args()
    if a.task == "table":
        table(a.out)
    else:
        run(a.task, a.n, a.seeds, a.out)


if __name__ == "__main__":
    main()
