"""A hostile user's battery against the real CLI: every outcome is ok, a clean error, a traceback or a loss.

    python bench/break_cli.py [--out bench/out/break_cli] [--only SUBSTRING]

Each case runs `lmtailor ...` in its own process over files made here (empty, BOM, UTF-16, latin-1, `{}`,
a JSON array broken in the middle, an unterminated CSV quote, ragged CSV, fake and cut-off Parquet, 10,000
levels of nesting, 5,000-digit integers, lone surrogates, NaN, keys twice, brackets in paths and text) and
with bad options and targets. Outcomes:
- ok: exit 0 and the data checks hold (the manifest accounts for every record the file holds, the records
  before a JSON syntax error are kept, inputs are unchanged);
- clean_error: exit 1 or 2 with a message and no traceback;
- traceback: a Python traceback, or any other exit status;
- silent_loss: exit 0 but a check failed (records unaccounted for, an input changed or gone).
The goal is 0 tracebacks and 0 losses. Results go to OUT/break_cli.json; a table is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

LMTAILOR = str(Path(sys.executable).with_name("lmtailor"))
G = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


def line(record: object) -> bytes:
    return json.dumps(record).encode()


def jsonl(*rows: bytes) -> bytes:
    return b"\n".join(rows) + b"\n"


def good(i: int) -> bytes:
    return line({"instruction": f"Task {i}.", "input": "", "output": f"Answer {i}."})


DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE = b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}"
NAN, INF = (b'{"instruction": "a", "output": "b", "x": ' + v + b"}" for v in (b"NaN", b"Infinity"))
QUOTE_CSV = b'instruction,input,output\nfirst,,"left open\nsecond,,two\nthird,,three\n'
ROLE = b'{"conversations": [{"from": "[/b]", "value": "q"}, {"from": "gpt", "value": "a"}]}'
RED = b'{"conversations": [{"from": "human", "value": "[red]q[/red]"}, {"from": "gpt", "value": "a"}]}'
# name -> (file name, content, records the reader counts, records kept with --on-error skip). UTF-16's
# newline bytes make 3 lines of 2 records; after a JSON array's syntax error the rest is one reject.
FILES: dict[str, tuple[str, bytes, int, int]] = {
    "good": ("good.jsonl", jsonl(*(good(i) for i in range(5))), 5, 5),
    "empty": ("empty.jsonl", b"", 0, 0),
    "whitespace": ("blank.jsonl", b"  \n\n \t\n", 0, 0),
    "bom": ("bom.jsonl", b"\xef\xbb\xbf" + jsonl(good(0), good(1)), 2, 2),
    "utf16": ("utf16.jsonl", jsonl(good(0), good(1)).decode().encode("utf-16"), 3, 0),
    "latin1": ("latin1.jsonl", jsonl(b'{"instruction": "caf\xe9", "output": "x"}', good(1)), 2, 1),
    "all {}": ("braces.jsonl", b"{}\n{}\n{}\n", 3, 0),
    "deep jsonl": ("deep.jsonl", jsonl(good(0), DEEP, good(2)), 3, 2),
    "deep in a field": ("deepfield.jsonl", jsonl(good(0), b'{"instruction": "a", "output": ' + DEEP + b"}"), 2, 1),
    "deep json array": ("deep.json", b"[" + good(0) + b"," + DEEP + b"," + good(2) + b"]", 3, 2),
    "huge integer": ("bigint.jsonl", jsonl(good(0), HUGE), 2, 1),
    "huge integer in array": ("bigint.json", b"[" + good(0) + b"," + HUGE + b"]", 2, 1),
    "lone surrogate": ("surrogate.jsonl", jsonl(good(0), b'{"instruction": "\\ud800", "output": "b"}', good(2)), 3, 2),
    "surrogate in array": ("surrogate.json", b"[" + good(0) + b',{"instruction": "\\udfff", "output": "b"}]', 2, 1),
    "NaN": ("nan.jsonl", jsonl(good(0), NAN, INF), 3, 1),
    "key twice": ("dupkey.jsonl", jsonl(b'{"instruction": "a", "output": "b", "output": "c"}', good(1)), 2, 1),
    "array syntax error": ("broken.json", b"[" + good(0) + b"," + good(1) + b",\n{oops},\n" + good(3) + b"]", 3, 2),
    "array cut off": ("cut.json", b"[" + good(0) + b"," + good(1)[:15], 2, 1),
    "not an array": ("lines.json", jsonl(good(0), good(1)), 0, 0),
    "csv unterminated quote": ("quote.csv", QUOTE_CSV, 3, 2),
    "csv ragged": ("ragged.csv", b"instruction,input,output\na,,b\nc,d\ne,,f,g\nh,,i\n", 4, 2),
    "csv stray quotes": ("stray.csv", b'instruction,input,output\n"say "hi" now",,ok\nb,,c\n', 2, 2),
    "fake parquet": ("fake.parquet", b"this is not parquet", 0, 0),
    "cut parquet": ("cut.parquet", b"", 0, 0),  # filled in by make_files
    "int parquet": ("ints.parquet", b"", 2, 0),
    "role [/b]": ("markup.jsonl", jsonl(ROLE, RED), 2, 1),
    "bracket path": ("data[v2].jsonl", jsonl(good(0), good(1)), 2, 2),
}  # fmt: skip
NO_RECORDS = {"empty", "whitespace", "not an array", "fake parquet", "cut parquet"}


def make_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (file, content, _, _) in FILES.items():
        paths[name] = root / file
        paths[name].write_bytes(content)
    table = pa.table({"instruction": ["a", "b"], "output": ["x", "y"]})
    pq.write_table(table, paths["cut parquet"])
    paths["cut parquet"].write_bytes(paths["cut parquet"].read_bytes()[:-40])
    pq.write_table(pa.table({"instruction": [1, 2], "output": [3, 4]}), paths["int parquet"])
    (root / "a_file").write_text("x")
    (root / "recipe_bad.yaml").write_text("inputs: [a.jsonl\nsteps: {\n")
    (root / "recipe_list.yaml").write_text("- a\n- b\n")
    return paths


@dataclass
class Case:
    name: str
    args: list[str]
    check: Callable[[Path], str | None] | None = None  # on exit 0: None when the data holds, else the loss
    cwd: Path | None = None
    refuse: bool = False  # exit 0 here means harm done: data overwritten, or a wrong answer given as right
    result: dict = field(default_factory=dict)


def accounted(records: int) -> Callable[[Path], str | None]:
    def check(run: Path) -> str | None:
        c = json.loads((run / "manifest.json").read_text())["counts"]
        if not c["accounted"] or c["input"] != records:
            return f"manifest counts {c['input']} records of {records}, accounted={c['accounted']}"
        return None

    return check


def kept_before_error(run: Path, kept: int) -> str | None:
    c = json.loads((run / "manifest.json").read_text())["counts"]
    return None if c["kept"] == kept else f"kept {c['kept']}, expected the {kept} records before the error"


def audited(records: int) -> Callable[[Path], str | None]:
    def check(run: Path) -> str | None:
        n = json.loads((run / "summary.json").read_text())["dataset"]["records"]
        return None if n == records else f"audit saw {n} records of {records}"

    return check


def cases(files: dict[str, Path], work: Path) -> list[Case]:
    out: list[Case] = []
    for name, path in files.items():
        _, _, records, skip_kept = FILES[name]
        run = work / f"run_{len(out)}"
        check = None if name in NO_RECORDS else accounted(records)
        if name == "array syntax error":
            check = lambda r, k=skip_kept: kept_before_error(r, k)  # noqa: E731
        out.append(Case(f"curate skip: {name}", ["curate", str(path), "--out", str(run), "--on-error", "skip"], check))
        run = work / f"run_{len(out)}"
        out.append(Case(f"curate fail: {name}", ["curate", str(path), "--out", str(run)], accounted(records)))
        target = work / f"conv_{len(out)}.parquet"
        out.append(Case(f"convert skip: {name}", ["convert", str(path), str(target), "--on-error", "skip"]))
        out.append(Case(f"convert fail: {name}", ["convert", str(path), str(work / f"conv_{len(out)}.jsonl")]))
        run = work / f"audit_{len(out)}"
        audit = ["audit", str(path), "--out", str(run), "--checks", "broken_fields,format"]
        out.append(Case(f"audit: {name}", audit, None if name in NO_RECORDS else audited(records)))
    g, a_file = files["good"], work / "files" / "a_file"
    option_cases = {
        "curate --output ''": ["curate", str(g), "--out", str(work / "o1"), "--output", ""],
        "curate --output ..": ["curate", str(g), "--out", str(work / "o2"), "--output", ".."],
        "curate --output ../x.jsonl": ["curate", str(g), "--out", str(work / "o3"), "--output", "../x.jsonl"],
        "curate --output sub/x.jsonl": ["curate", str(g), "--out", str(work / "o4"), "--output", "sub/x.jsonl"],
        "curate --output ledger.jsonl": ["curate", str(g), "--out", str(work / "o5"), "--output", "ledger.jsonl"],
        "curate --output x.txt": ["curate", str(g), "--out", str(work / "o6"), "--output", "x.txt"],
        "curate --out a file": ["curate", str(g), "--out", str(a_file)],
        "curate --out under a file": ["curate", str(g), "--out", str(a_file / "sub")],
        "curate --out with brackets": ["curate", str(g), "--out", str(work / "runs" / "data[v2]")],
        "curate --format bogus": ["curate", str(g), "--out", str(work / "o7"), "--format", "bogus"],
        "curate --output-format bogus": ["curate", str(g), "--out", str(work / "o8"), "--output-format", "bogus"],
        "curate --on-error bogus": ["curate", str(g), "--out", str(work / "o9"), "--on-error", "bogus"],
        "curate --max-record-mb 0": ["curate", str(g), "--out", str(work / "o10"), "--max-record-mb", "0"],
        "curate --max-record-mb tiny": ["curate", str(g), "--out", str(work / "o11"), "--max-record-mb", "0.00001",
                                        "--on-error", "skip"],
        "curate --steps nosuch": ["curate", str(g), "--out", str(work / "o12"), "--steps", "nosuch"],
        "curate --columns bad": ["curate", str(g), "--out", str(work / "o13"), "--columns", "nope"],
        "curate missing input": ["curate", str(work / "missing.jsonl"), "--out", str(work / "o14")],
        "curate a folder as input": ["curate", str(work / "files"), "--out", str(work / "o15")],
        "curate --recipe missing": ["curate", "--recipe", str(work / "nope.yaml"), "--out", str(work / "o16")],
        "curate --recipe bad yaml": ["curate", "--recipe", str(work / "files" / "recipe_bad.yaml")],
        "curate --recipe a list": ["curate", "--recipe", str(work / "files" / "recipe_list.yaml")],
        "curate no input": ["curate", "--out", str(work / "o17")],
        "convert --on-error bogus": ["convert", str(g), str(work / "c1.jsonl"), "--on-error", "bogus"],
        "convert --to bogus": ["convert", str(g), str(work / "c2.jsonl"), "--to", "bogus"],
        "convert --format bogus": ["convert", str(g), str(work / "c3.jsonl"), "--format", "bogus"],
        "convert target under a file": ["convert", str(g), str(a_file / "x.jsonl")],
        "convert unknown suffix": ["convert", str(g), str(work / "c4.txt")],
        "convert onto its source": ["convert", str(g), str(g), "--to", "alpaca"],
        "convert missing source": ["convert", str(work / "missing.jsonl"), str(work / "c5.jsonl")],
        "audit --checks nosuch": ["audit", str(g), "--out", str(work / "a1"), "--checks", "nosuch"],
        "audit --fail-on bogus": ["audit", str(g), "--out", str(work / "a2"), "--fail-on", "bogus"],
        "audit --out a file": ["audit", str(g), "--out", str(a_file)],
        "audit --expect bad": ["audit", str(g), "--out", str(work / "a3"), "--expect", "refusal"],
        "audit --fix missing recipe": ["audit", str(g), "--out", str(work / "a4"), "--checks", "format", "--fix",
                                       str(work / "nope.yaml")],
        "score without --classifier": ["score", str(g), "--out", str(work / "s1")],
        "score --classifier without labels": ["score", str(g), "--classifier", "--out", str(work / "s2")],
        "score --reuse missing": ["score", str(g), "--classifier", "--reuse", str(work / "nope.npz"),
                                  "--out", str(work / "s3")],
        "score --out a file": ["score", str(g), "--classifier", "--good", str(g), "--bad", str(g),
                               "--out", str(a_file)],
        "judge --backend bogus": ["judge", str(g), "--backend", "bogus", "--out", str(work / "j1")],
        "judge --method bogus": ["judge", str(g), "--method", "bogus", "--out", str(work / "j2")],
        "judge missing input": ["judge", str(work / "missing.jsonl"), "--out", str(work / "j3")],
        "judge --rubric nosuch": ["judge", str(g), "--rubric", "nosuch", "--out", str(work / "j4")],
        "judge --out a file": ["judge", str(g), "--out", str(a_file)],
        "synth self-instruct missing seeds": ["synth", "self-instruct", str(work / "nope.jsonl"), "--out",
                                              str(work / "y1")],
        "train --method bogus": ["train", str(g), "--method", "bogus", "--out", str(work / "t1")],
        "train missing data": ["train", str(work / "missing.jsonl"), "--out", str(work / "t2")],
        "train --config bad yaml": ["train", "--config", str(work / "files" / "recipe_bad.yaml")],
        "train --config a list": ["train", "--config", str(work / "files" / "recipe_list.yaml")],
        "train --out a file": ["train", str(g), "--out", str(a_file), "--max-steps", "1"],
        "train no data": ["train"],
    }  # fmt: skip
    out += [Case(name, args) for name, args in option_cases.items()]
    same = work / "same"
    same.mkdir(exist_ok=True)
    (same / "same.jsonl").write_bytes(g.read_bytes() * 2)  # each record twice: curated, it would differ
    out.append(Case("curate --output over its input", ["curate", "same.jsonl", "--out", ".", "--output", "same.jsonl"],
                    cwd=same, refuse=True))  # fmt: skip
    return out + explain_cases(files, work)


def explain_cases(files: dict[str, Path], work: Path) -> list[Case]:
    run = work / "explained"
    subprocess.run([LMTAILOR, "curate", str(files["good"]), "--out", str(run), "--no-progress"], capture_output=True)
    corrupt_ledger, corrupt_manifest, no_manifest = (work / n for n in ("bad_ledger", "bad_manifest", "no_manifest"))
    for folder in (corrupt_ledger, corrupt_manifest, no_manifest):
        shutil.copytree(run, folder, dirs_exist_ok=True)
    (corrupt_ledger / "ledger.jsonl").write_text('{"id": "good:1", "act')
    (corrupt_manifest / "manifest.json").write_text('{"recipe": ')
    (no_manifest / "manifest.json").unlink()
    return [
        Case("explain a kept record", ["explain", "good:1", "--run", str(run)]),
        Case("explain an index past the end", refuse=True, args=["explain", "good:99999999", "--run", str(run)]),
        Case("explain a negative index", refuse=True, args=["explain", "good:-1", "--run", str(run)]),
        Case("explain an unknown stem", refuse=True, args=["explain", "nope:1", "--run", str(run)]),
        Case("explain with brackets", ["explain", "[red]x[/red]:1", "--run", str(run)]),
        Case("explain a corrupt ledger", refuse=True, args=["explain", "good:1", "--run", str(corrupt_ledger)]),
        Case("explain a corrupt manifest", refuse=True, args=["explain", "good:1", "--run", str(corrupt_manifest)]),
        Case("explain a folder with no manifest", refuse=True, args=["explain", "good:1", "--run", str(no_manifest)]),
        Case("explain a missing folder", ["explain", "good:1", "--run", str(work / "nowhere")]),
    ]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.blake2b(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def run_case(case: Case) -> Case:
    env = {**os.environ, "LMTAILOR_NO_PROGRESS": "1"}
    started = time.perf_counter()
    try:
        p = subprocess.run(
            [LMTAILOR, *case.args], capture_output=True, text=True, timeout=300, env=env, cwd=case.cwd, errors="replace"
        )
        rc, text = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        rc, text = -1, "timed out after 300 s"
    if "Traceback (most recent call last)" in text or rc not in (0, 1, 2):
        outcome = "traceback"
    elif rc != 0:
        outcome = "clean_error"
    elif case.refuse:
        outcome, text = "silent_loss", f"exit 0 where it must refuse: {text.strip().splitlines()[-1:]}"
    else:
        outcome = "ok"
        run = Path(case.args[case.args.index("--out") + 1]) if "--out" in case.args else None
        if case.check is not None and run is not None:
            loss = case.check(run)
            if loss:
                outcome, text = "silent_loss", loss
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if outcome == "traceback":
        first = (text.strip().splitlines() or [""])[-1]
    seconds = round(time.perf_counter() - started, 2)
    case.result = {"rc": rc, "outcome": outcome, "message": first[:300], "seconds": seconds}
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/break_cli"))
    parser.add_argument("--only", default="", help="run the cases whose name holds this text")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    files = make_files(args.out / "files")
    inputs_before = _digests(args.out / "files")
    todo = [c for c in cases(files, args.out) if args.only in c.name]
    console = Console()
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = list(pool.map(run_case, todo))
    changed = sorted(p for p, d in _digests(args.out / "files").items() if inputs_before.get(p) != d)
    changed += [p for p in inputs_before if not Path(p).exists()]
    same = args.out / "same" / "same.jsonl"
    if same.read_bytes() != files["good"].read_bytes() * 2:
        changed.append(str(same))
    table = Table(title="lmtailor against a hostile user", title_justify="left")
    for col in ("case", "rc", "outcome", "first line"):
        table.add_column(col)
    colours = {"ok": "green", "clean_error": "cyan", "traceback": "red", "silent_loss": "red"}
    for c in done:
        r = c.result
        table.add_row(escape(c.name), str(r["rc"]), f"[{colours[r['outcome']]}]{r['outcome']}[/]", escape(r["message"]))
    console.print(table)
    counts = Counter(c.result["outcome"] for c in done)
    if changed:
        counts["silent_loss"] += len(changed)
        console.print(f"[red]inputs changed or gone:[/] {escape(', '.join(changed))}")
    summary = {"cases": len(done), **{k: counts.get(k, 0) for k in ("ok", "clean_error", "traceback", "silent_loss")}}
    console.print(summary)
    report = {"summary": summary, "inputs_changed": changed,
              "cases": [{"name": c.name, "args": c.args, **c.result} for c in done]}  # fmt: skip
    (args.out / "break_cli.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
