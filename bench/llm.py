"""LLM throughput: llama.cpp vs transformers on the same model and prompts, and what the response cache saves.

    python bench/llm.py                          # 32 Alpaca prompts, 64 new tokens, both backends
    python bench/llm.py --prompts 8 --backends llamacpp

What runs. The model is the embedded Gemma 3 270M: llama.cpp runs the Q4_K_M GGUF, transformers the same
weights dequantised to float32 (converted once by `lmtailor.llm.convert`; a conversion that happens during
this run is timed separately and left out of the throughput). Prompts are `--prompts` Alpaca records drawn
with `--seed`, in Alpaca's own prompt format.

- generation: every prompt answered greedily with up to `--max-tokens` new tokens, no stop strings (each
  prompt costs the same work on both backends, unless the model ends its answer first);
- judging: log-likelihood scoring, the way a judge picks between candidate answers: for each prompt its own
  Alpaca answer and the answer of the next drawn record, each cut to `--answer-chars` characters; the judge
  is right when the true answer scores higher per token;
- cache: every call goes through the `LLM` client with a fresh SQLite cache in a temporary folder; after the
  cold pass above, the same calls are made again through a new client on that cache (the rerun), and the
  time and the calls that reached the backend are recorded.

tokens/s counts prompt and completion tokens together (both cost a forward pass); completion tokens/s alone
is the decoding speed. Both backends use all cores unless `--threads` says otherwise. Results are printed
and written to bench/out/llm.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from machine import machine
from rich.console import Console
from rich.table import Table

from lmtailor.llm.backend import Backend
from lmtailor.llm.cache import ResponseCache
from lmtailor.llm.client import LLM
from lmtailor.llm.types import GenParams

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "alpaca" / "alpaca_data_52k.jsonl"
OUT = Path(__file__).resolve().parent / "out" / "llm.json"
ALPACA = (
    "Below is an instruction that describes a task{ctx}. Write a response that appropriately completes the"
    " request.\n\n### Instruction:\n{instruction}\n\n{input}### Response:\n"
)


def alpaca_prompts(n: int, seed: int) -> tuple[list[str], list[str]]:
    """`n` random Alpaca records as prompts, and their reference answers."""
    with DATA.open() as f:
        records = [json.loads(line) for line in f]
    picked = random.Random(seed).sample(records, n)
    prompts = [
        ALPACA.format(
            ctx=", paired with an input that provides further context" if r["input"] else "",
            instruction=r["instruction"],
            input=f"### Input:\n{r['input']}\n\n" if r["input"] else "",
        )
        for r in picked
    ]
    return prompts, [r["output"] for r in picked]


def open_backend(kind: str, threads: int | None) -> tuple[Backend, float, float]:
    """The backend, seconds spent converting the model (transformers, first use only), seconds loading it."""
    start = time.perf_counter()
    if kind == "llamacpp":
        from lmtailor.llm.llamacpp import LlamaCppBackend

        return LlamaCppBackend(n_threads=threads), 0.0, time.perf_counter() - start
    from lmtailor.llm.convert import embedded_hf_dir
    from lmtailor.llm.transformers_backend import TransformersBackend

    embedded_hf_dir()
    converted = time.perf_counter()
    backend = TransformersBackend(n_threads=threads)
    return backend, converted - start, time.perf_counter() - converted


def run_backend(
    kind: str, prompts: list[str], pairs: list[tuple[str, str]], params: GenParams, threads: int | None
) -> dict[str, Any]:
    backend, convert_s, load_s = open_backend(kind, threads)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ResponseCache(Path(tmp) / "llm.sqlite")
        cold = LLM(backend, cache)
        start = time.perf_counter()
        completions = cold.generate(prompts, params)
        gen_s = time.perf_counter() - start
        gen_usage = cold.usage.to_json()

        judge = LLM(backend, cache)
        start = time.perf_counter()
        scores = judge.loglikelihood(pairs)
        judge_s = time.perf_counter() - start
        judged_tokens = sum(backend.count_tokens(c + t) + 1 for c, t in pairs)  # +1: BOS

        warm = LLM(backend, cache)
        start = time.perf_counter()
        again = warm.generate(prompts, params)
        again_scores = warm.loglikelihood(pairs)
        warm_s = time.perf_counter() - start
        if [c.text for c in again] != [c.text for c in completions] or again_scores != scores:
            raise SystemExit(f"{kind}: the rerun from the cache gave different answers")
        cache.close()
    backend.close()

    per_token = [s.logprob / s.tokens for s in scores]
    right = sum(per_token[i] > per_token[i + 1] for i in range(0, len(per_token), 2))
    tokens = gen_usage["prompt_tokens"] + gen_usage["completion_tokens"]
    return {
        "backend": kind,
        "identity": backend.identity(),
        "convert_s": round(convert_s, 1),
        "load_s": round(load_s, 1),
        "generate": {
            "prompts": len(prompts),
            "seconds": round(gen_s, 2),
            "prompts_per_s": round(len(prompts) / gen_s, 3),
            "prompt_tokens": gen_usage["prompt_tokens"],
            "completion_tokens": gen_usage["completion_tokens"],
            "tokens_per_s": round(tokens / gen_s, 1),
            "completion_tokens_per_s": round(gen_usage["completion_tokens"] / gen_s, 1),
            "texts": [c.text for c in completions],
        },
        "judge": {
            "pairs": len(pairs),
            "seconds": round(judge_s, 2),
            "pairs_per_s": round(len(pairs) / judge_s, 2),
            "tokens": judged_tokens,
            "tokens_per_s": round(judged_tokens / judge_s, 1),
            "true_answer_preferred": right,
            "logprobs": [round(s.logprob, 3) for s in scores],
        },
        "cache_rerun": {
            "cold_s": round(gen_s + judge_s, 2),
            "warm_s": round(warm_s, 4),
            "speedup": round((gen_s + judge_s) / warm_s),
            "calls_paid_cold": gen_usage["calls"] + judge.usage.calls,
            "calls_paid_warm": warm.usage.calls,
            "cached_calls_warm": warm.usage.cached_calls,
        },
    }


def report(results: list[dict[str, Any]], agreement: dict[str, Any] | None) -> None:
    console = Console(width=150)
    table = Table(title="LLM backends: Gemma 3 270M, same prompts")
    for col in ("backend", "load s", "gen prompts/s", "gen tok/s", "decode tok/s", "judge pairs/s", "judge tok/s",
                "judge right", "cold s", "rerun s", "rerun calls paid"):  # fmt: skip
        table.add_column(col, justify="left" if col == "backend" else "right")
    for r in results:
        g, j, c = r["generate"], r["judge"], r["cache_rerun"]
        table.add_row(
            r["backend"], f"{r['load_s']:.1f}", f"{g['prompts_per_s']:.2f}", f"{g['tokens_per_s']:.0f}",
            f"{g['completion_tokens_per_s']:.1f}", f"{j['pairs_per_s']:.2f}", f"{j['tokens_per_s']:.0f}",
            f"{j['true_answer_preferred']}/{j['pairs'] // 2}", f"{c['cold_s']:.1f}", f"{c['warm_s']:.3f}",
            f"{c['calls_paid_warm']} of {c['calls_paid_cold']}",
        )  # fmt: skip
    console.print(table)
    if agreement:
        console.print(
            f"greedy answers identical on both backends: {agreement['same_text']}/{agreement['prompts']}"
            f" (median common prefix {agreement['median_common_prefix_chars']:.0f} of"
            f" {agreement['median_answer_chars']:.0f} characters);"
            f" judge picks the same answer: {agreement['same_pick']}/{agreement['pairs']};"
            f" mean |Δ log-likelihood| {agreement['mean_abs_logprob_diff']:.3f}"
        )


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    ta, tb = a["generate"]["texts"], b["generate"]["texts"]
    la, lb = a["judge"]["logprobs"], b["judge"]["logprobs"]
    picks = [(la[i] > la[i + 1]) == (lb[i] > lb[i + 1]) for i in range(0, len(la), 2)]
    return {
        "prompts": len(ta),
        "same_text": sum(x == y for x, y in zip(ta, tb, strict=True)),
        # Greedy decoding follows the same path until a near tie tips the other way; how far that is:
        "median_common_prefix_chars": statistics.median(
            next((i for i, (cx, cy) in enumerate(zip(x, y, strict=False)) if cx != cy), min(len(x), len(y)))
            for x, y in zip(ta, tb, strict=True)
        ),
        "median_answer_chars": statistics.median(len(x) for x in ta),
        "pairs": len(picks),
        "same_pick": sum(picks),
        "mean_abs_logprob_diff": sum(abs(x - y) for x, y in zip(la, lb, strict=True)) / len(la),
    }


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--answer-chars", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backends", default="llamacpp,transformers")
    p.add_argument("--threads", type=int, default=None, help="threads per backend (default: all cores)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)

    prompts, answers = alpaca_prompts(args.prompts, args.seed)
    answers = [a[: args.answer_chars] for a in answers]
    pairs = [(prompt, answers[(i + k) % len(answers)]) for i, prompt in enumerate(prompts) for k in (0, 1)]
    params = GenParams(max_tokens=args.max_tokens)
    load_before = os.getloadavg()
    results = [run_backend(kind, prompts, pairs, params, args.threads) for kind in args.backends.split(",")]
    agreement = compare(results[0], results[1]) if len(results) == 2 else None
    report(results, agreement)
    out = {
        "machine": machine(("torch", "transformers", "llama_cpp_python"), load_before),
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "results": results,
        "agreement": agreement,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
