"""Peak memory of the streaming paths on 100K and 1M Alpaca records: it should not grow with the count.

    python bench/stream_memory.py                                   # 100K and 1M records, every mode
    python bench/stream_memory.py --sizes 10000 100000 --modes read curate

Data. `bench/out/alpaca_<n>.jsonl` holds the real 52,002 Alpaca records cycled to n records, each
instruction suffixed with " (#i)" so that no two records are equal (dedup and caches see distinct data).
The files are generated once and reused.

Modes, each run in a fresh process per size so that one run's memory cannot hide in another's:
- read: `read_examples` over the file, counting the Examples;
- jsonl: `read_examples` into `write_examples(..., "curated.jsonl", "alpaca")`;
- parquet: the same into a Parquet file (the writer stages rows on disk to find one schema for all);
- curate: `lmtailor.curate.pipeline.curate` with a Recipe of the two streaming steps, `normalize` (defaults) and
  `filter` with language identification off (`languages: null`, as it is the slow part and holds no
  per-record state), writing curated.jsonl, the ledger and the manifest.

Memory is the child process's resident set, read from /proc/self/status (Linux): after the imports the
peak counter is reset (/proc/self/clear_refs) and "base" taken; "peak" is the high-water mark at the end
and "growth" is peak minus base, what the records themselves cost. (`ru_maxrss` would not do: Linux
carries it across exec, so a child starts with its parent's peak.) Flat means growth does not scale
with the record count.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from itertools import cycle, islice
from pathlib import Path

from peak_memory import reset_peak, status_mb

from lmtailor.core.io import read_jsonl, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
ALPACA = ROOT.parent / "shared" / "data" / "alpaca" / "alpaca_data_52k.jsonl"
MODES = ("read", "jsonl", "parquet", "curate")


def make_input(n: int) -> Path:
    """Alpaca cycled to n records, each made distinct by its index; written once."""
    path = OUT / f"alpaca_{n}.jsonl"
    if path.exists():
        return path
    records = list(read_jsonl(ALPACA))
    cycled = enumerate(islice(cycle(records), n))
    write_jsonl(path, ({**r, "instruction": f"{r['instruction']} (#{i})"} for i, r in cycled))
    return path


def child(mode: str, source: Path, work: Path) -> dict[str, float]:
    """One mode over one file, in this process; returns counts, seconds and memory."""
    import pyarrow.parquet  # noqa: F401 - the Parquet writer's library is not the records' cost

    from lmtailor.core.io import read_examples, write_examples
    from lmtailor.curate.pipeline import curate
    from lmtailor.curate.recipe import Recipe

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    reset_peak()
    base = status_mb("VmRSS")
    start = time.perf_counter()
    if mode == "read":
        out = sum(1 for _ in read_examples(source))
    elif mode in ("jsonl", "parquet"):
        out = write_examples(work / f"curated.{mode}", read_examples(source), "alpaca")
    else:
        steps = [{"step": "normalize"}, {"step": "filter", "languages": None}]
        recipe = Recipe.parse({"inputs": [str(source)], "output": "curated.jsonl", "steps": steps})
        out = curate(recipe, work / "run", fresh=True, progress=False).counts.kept
    seconds = time.perf_counter() - start
    peak = status_mb("VmHWM")
    shutil.rmtree(work, ignore_errors=True)
    return {
        "out": out,
        "seconds": round(seconds, 1),
        "base_mb": round(base),
        "peak_mb": round(peak),
        "growth_mb": round(peak - base),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--child", nargs=3, metavar=("MODE", "SOURCE", "WORK"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, source, work = args.child
        print(json.dumps(child(mode, Path(source), Path(work))))
        return
    inputs = {n: make_input(n) for n in args.sizes}
    print(f"{'mode':<8} {'records':>9} {'out':>9} {'seconds':>8} {'base MB':>8} {'peak MB':>8} {'growth MB':>10}")
    for mode in args.modes:
        for n, source in inputs.items():
            command = [sys.executable, __file__, "--child", mode, str(source), str(OUT / f"work_{mode}")]
            run = subprocess.run(command, check=True, capture_output=True, text=True)
            r = json.loads(run.stdout.strip().splitlines()[-1])
            print(
                f"{mode:<8} {n:>9,} {r['out']:>9,} {r['seconds']:>8} {r['base_mb']:>8} {r['peak_mb']:>8}"
                f" {r['growth_mb']:>10}",
                flush=True,
            )


if __name__ == "__main__":
    main()
