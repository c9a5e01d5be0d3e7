"""Evaluation speed: the 312 Spider test questions of bench/train_sql.py answered greedily through llama.cpp, for
the base model and for a GGUF LoRA adapter, against transformers on a subsample, all in one process.

    python bench/train_sql.py prepare                           # the split, if bench/out has none
    python bench/eval_speed.py --lora run/exports/adapter.gguf  # every run below
    python bench/eval_speed.py --lora ... --runs fast,lora      # some of them

Every run goes through `score_task` (the evaluation `lmtailor eval` and `lmtailor train` run) with the training
Template as the prompter, 128 new tokens at most, a stop string at the first blank line (as the README's `eval`
command asks; end-of-turn ends an answer too) and no response cache. Runs, by name:

- `transformers`: TransformersBackend (float32, batches of 32 prompts of similar length), base model, the
  first --subsample questions; `fast_subsample`: llama.cpp's fast path on the same questions, right after;
  `transformers_no_stop`, `no_stop_subsample`: the same two with no stop string (answers of 128 tokens);
- `fast`, `lora`: llama.cpp's fast path (--n-parallel sequences), all questions, base model and adapter;
- `no_stop`: the fast path on all questions with no stop string, every answer 128 tokens (the zero-shot arm of
  bench/train_sql.py, the hour through transformers);
- `sequential`: llama.cpp one prompt at a time (n_parallel 1, the path before the fast one), all questions;
- `no_prefix`, `width_<n>`: what each part buys, on the subsample: the fast path without reusing a cached
  prefix, and at other widths.

Seconds are wall time of `score_task` (generation is nearly all of it). Answers are compared between runs:
identical text, and the same SQL (the query `extract_sql` takes from each, in canonical form). Writes
bench/out/eval_speed.json (`--out` another file) and prints the markdown table and the load (uptime) at each run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from train_sql import OUT, _examples

RESULT = OUT.parent / "eval_speed.json"
RUNS = ("transformers", "fast_subsample", "transformers_no_stop", "no_stop_subsample", "fast", "lora", "no_stop",
        "sequential", "no_prefix", "width_1", "width_4", "width_16")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lora", type=Path, help="GGUF LoRA adapter (lmtailor train --export gguf)")
    parser.add_argument("--subsample", type=int, default=40, help="first questions for transformers and ablations")
    parser.add_argument("--n-parallel", type=int, default=8)
    parser.add_argument("--n-ctx", type=int, default=1024, help="each sequence's window (longest prompt: 660)")
    parser.add_argument("--out", type=Path, default=RESULT, help="results file; runs already in it are kept")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, of {', '.join(RUNS)}")
    a = parser.parse_args()
    runs = a.runs.split(",")
    if unknown := set(runs) - set(RUNS):
        parser.error(f"unknown runs: {', '.join(sorted(unknown))}")
    if "lora" in runs and (a.lora is None or not a.lora.is_file()):
        parser.error("the lora run needs --lora, a GGUF adapter file")
    results = json.loads(a.out.read_text()) if a.out.exists() else {}
    for name in runs:
        results[name] = run(name, a)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(results, indent=1) + "\n")
    table(results)


def run(name: str, a: argparse.Namespace) -> dict[str, Any]:
    """One run: its answers, seconds, tokens and score, and the load when it started."""
    from transformers import AutoTokenizer

    from lmtailor.evaluate.task import TaskConfig, score_task
    from lmtailor.llm import llamacpp
    from lmtailor.llm.client import LLM
    from lmtailor.llm.convert import embedded_hf_dir
    from lmtailor.prompting.template import Template

    examples = _examples("test")
    subsample = name not in ("fast", "lora", "no_stop", "sequential")
    if subsample:
        examples = examples[: a.subsample]
    cfg = TaskConfig(metric="sql", max_new_tokens=128, stop=[] if "no_stop" in name else ["\n\n"])
    width = {"sequential": 1, "width_1": 1, "width_4": 4, "width_16": 16}.get(name, a.n_parallel)
    load = os.getloadavg()
    if name.startswith("transformers"):
        from lmtailor.llm.transformers_backend import TransformersBackend

        backend: Any = TransformersBackend(batch_size=cfg.batch_size)
        prompter = Template(backend.tokenizer)
    else:
        lora = a.lora if name == "lora" else None
        backend = llamacpp.LlamaCppBackend(n_ctx=a.n_ctx, lora_path=lora, n_parallel=width)
        prompter = Template(AutoTokenizer.from_pretrained(embedded_hf_dir()))
    block = llamacpp.PREFIX_BLOCK
    if name == "no_prefix":
        llamacpp.PREFIX_BLOCK = 1 << 30  # no prefix is that long: every prompt is prefilled whole
    llm = LLM(backend)
    try:
        start = time.perf_counter()
        result = score_task(llm, prompter, examples, cfg)
        seconds = time.perf_counter() - start
    finally:
        llamacpp.PREFIX_BLOCK = block
        backend.close()
    out = {
        "questions": len(examples),
        "seconds": round(seconds, 1),
        "n_parallel": None if name.startswith("transformers") else width,
        "lora": str(a.lora) if name == "lora" else None,
        "load_at_start": [round(x, 2) for x in load],
        "load_at_end": [round(x, 2) for x in os.getloadavg()],
        "usage": llm.usage.to_json(),
        "score": result.summary["score"],
        "answers": [r["prediction"] for r in result.predictions],
        "queries": [r["query"] for r in result.predictions],
    }
    print(f"{name}: {out['questions']} questions in {seconds:.1f} s ({seconds / len(examples):.2f} s each), load "
          f"{load[0]:.1f} -> {out['load_at_end'][0]:.1f}, score {out['score']:.3f}", file=sys.stderr)  # fmt: skip
    return out


def table(results: dict[str, Any]) -> None:
    """The BENCHMARKS.md tables: speed per run, and agreement between runs on the questions both answered."""
    print("| run | questions | seconds | s/question | generated tokens | prompt + generated tokens/s | load (1 min) "
          "| exact match |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in RUNS:
        if (r := results.get(name)) is None:
            continue
        u = r["usage"]
        tokens = u["prompt_tokens"] + u["completion_tokens"]
        cells = [name, r["questions"], r["seconds"], f"{r['seconds'] / r['questions']:.2f}", u["completion_tokens"],
                 f"{tokens / r['seconds']:,.0f}", r["load_at_start"][0], f"{r['score'] * 100:.1f}%"]  # fmt: skip
        print("| " + " | ".join(map(str, cells)) + " |")
    pairs = [("transformers", "fast_subsample"), ("transformers_no_stop", "no_stop_subsample"),
             ("no_prefix", "fast_subsample"), ("width_1", "fast_subsample"), ("width_4", "fast_subsample"),
             ("width_16", "fast_subsample"), ("sequential", "fast"), ("no_stop", "fast"), ("fast", "lora")]  # fmt: skip
    print("\n| runs | questions | speed ratio | identical answers | same SQL (canonical) |\n|---|---:|---:|---:|---:|")
    for one, two in pairs:
        if one in results and two in results:
            print(agreement(one, results[one], two, results[two]))


def agreement(one: str, a: dict[str, Any], two: str, b: dict[str, Any]) -> str:
    """How two runs' answers to their common questions (the first n) compare, and the ratio of their seconds
    per question (how much faster the second is)."""
    from sqlglot.errors import SqlglotError

    from lmtailor.sql.canonical import canonical_sql

    def canonical(query: str) -> str:
        try:
            return canonical_sql(query, "sqlite")
        except (SqlglotError, RecursionError):  # prose is no SQL: then the text itself is compared
            return query

    n = min(a["questions"], b["questions"])
    same = sum(x == y for x, y in zip(a["answers"][:n], b["answers"][:n], strict=True))
    sql = sum(canonical(x) == canonical(y) for x, y in zip(a["queries"][:n], b["queries"][:n], strict=True))
    ratio = (a["seconds"] / a["questions"]) / (b["seconds"] / b["questions"])
    return f"| {one} vs {two} | {n} | {ratio:.2f} | {same} | {sql} |"


if __name__ == "__main__":
    main()
