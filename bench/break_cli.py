"""A hostile user's battery against the real CLI: every outcome is ok, a clean error, a traceback or a loss.

    python bench/break_cli.py [--out bench/out/break_cli] [--only SUBSTRING] [--timeout SECONDS]

Each case runs `lmtailor ...` in its own process over files made here (empty, BOM, UTF-16, latin-1, `{}`,
a JSON array broken in the middle, an unterminated CSV quote, ragged CSV, fake and cut-off Parquet, 10,000
levels of nesting, 5,000-digit integers, lone surrogates, NaN, keys twice, brackets in paths and text, run
folders corrupted or tampered with) and with bad options and targets. Outcomes:
- ok: exit 0 and the data checks hold (the manifest adds up and counts every record the file holds, the
  records that can be read are not rejected, in particular those before a JSON syntax error, a converted
  file holds them all, inputs are unchanged);
- clean_error: exit 1 or 2 with a message and no traceback;
- traceback: a Python traceback, any other exit status, or a run past the time limit (a hang);
- silent_loss: exit 0 but a check failed (records unaccounted for, an input changed or gone, a value
  dropped unseen, exit 0 where the command must refuse).
The goal is 0 tracebacks and 0 losses. Results go to OUT/break_cli.json; a table is printed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
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
Check = Callable[[], str | None]  # run after exit 0: None when the data holds, else what was lost


def line(record: object) -> bytes:
    return json.dumps(record).encode()


def jsonl(*rows: bytes, end: bytes = b"\n") -> bytes:
    return end.join(rows) + end


def good(i: int, pad: int = 0) -> bytes:
    return line({"instruction": f"Task {i}." + " and more" * pad, "input": "", "output": f"Answer {i}."})


DEEP = b"[" * 10_000 + b"]" * 10_000
HUGE = b'{"instruction": "a", "output": "b", "n": ' + b"9" * 5000 + b"}"
NAN, INF = (b'{"instruction": "a", "output": "b", "x": ' + v + b"}" for v in (b"NaN", b"Infinity"))
QUOTE_CSV = b'instruction,input,output\nfirst,,"left open\nsecond,,two\nthird,,three\n'
ROLE = b'{"conversations": [{"from": "[/b]", "value": "q"}, {"from": "gpt", "value": "a"}]}'
RED = b'{"conversations": [{"from": "human", "value": "[red]q[/red]"}, {"from": "gpt", "value": "a"}]}'
BIG = b'{"instruction": "' + b"x" * (17 << 20) + b'", "output": "past the 16 MB default"}'
ROLE_INT = b'{"messages": [{"role": 5, "content": "q"}, {"role": "assistant", "content": "a"}]}'
CHAT = b'{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}'
# name -> (file name, content, records the file holds, records that can be read). UTF-16's newline bytes make
# 3 lines; after a JSON array's syntax error the rest of the file is one rejected record. Contents made by
# make_files are empty here.
FILES: dict[str, tuple[str, bytes, int, int]] = {
    "good": ("good.jsonl", jsonl(*(good(i) for i in range(5))), 5, 5),
    "empty": ("empty.jsonl", b"", 0, 0),
    "whitespace": ("blank.jsonl", b"  \n\n \t\n", 0, 0),
    "bom": ("bom.jsonl", b"\xef\xbb\xbf" + jsonl(good(0), good(1)), 2, 2),
    "bom only": ("bomonly.jsonl", b"\xef\xbb\xbf\n", 0, 0),
    "crlf": ("crlf.jsonl", jsonl(good(0), good(1), end=b"\r\n"), 2, 2),
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
    "record over 16 MB": ("big.jsonl", jsonl(good(0), BIG, good(2)), 3, 2),
    "long records": ("long.jsonl", jsonl(*(good(i, pad=40) for i in range(3))), 3, 3),
    "role type int": ("roleint.jsonl", jsonl(ROLE_INT, CHAT), 2, 1),
    "array syntax error": ("broken.json", b"[" + good(0) + b"," + good(1) + b",\n{oops},\n" + good(3) + b"]", 3, 2),
    "array cut off": ("cut.json", b"[" + good(0) + b"," + good(1)[:15], 2, 1),
    "array, then \\x0b": ("vt.json", b"[" + good(0) + b",\x0b" + good(1) + b"]", 2, 1),
    "\\x0c before the array": ("ff.json", b"\x0c[" + good(0) + b"]", 1, 0),
    "empty array, then a record": ("emptythen.json", b"[]\n" + good(0) + b"\n", 1, 0),
    "a record after the array": ("after.json", b"[" + good(0) + b"]\n" + good(1) + b"\n", 2, 1),
    "one object, not an array": ("object.json", good(0), 0, 0),
    "not an array": ("lines.json", jsonl(good(0), good(1)), 0, 0),
    "csv unterminated quote": ("quote.csv", QUOTE_CSV, 3, 2),
    "csv ragged": ("ragged.csv", b"instruction,input,output\na,,b\nc,d\ne,,f,g\nh,,i\n", 4, 2),
    "csv stray quotes": ("stray.csv", b'instruction,input,output\n"say "hi" now",,ok\nb,,c\n', 2, 2),
    "csv header only": ("header.csv", b"instruction,input,output\n", 0, 0),
    "csv column named twice": ("twice.csv", b"instruction,instruction,output\nfirst,second,c\n", 1, 0),
    "csv NUL byte": ("nul.csv", b"instruction,input,output\na\x00b,,c\nd,,e\n", 2, 1),
    "csv CRLF, a quoted newline": ("crlf.csv", b'instruction,input,output\r\na,,"two\r\nlines"\r\nb,,c\r\n', 2, 2),
    "fake parquet": ("fake.parquet", b"this is not parquet", 0, 0),
    "cut parquet": ("cut.parquet", b"", 0, 0),
    "int parquet": ("ints.parquet", b"", 2, 0),
    "list parquet": ("lists.parquet", b"", 2, 0),
    "datasets folder": ("hf_dataset", b"", 3, 3),
    "datasets folder, arrow cut": ("hf_cut", b"", 0, 0),
    "role [/b]": ("markup.jsonl", jsonl(ROLE, RED), 2, 1),
    "bracket path": ("data[v2].jsonl", jsonl(good(0), good(1)), 2, 2),
}  # fmt: skip
# Files whose record count is a matter of reading (no records, or not the format the name says): only the
# manifest's own arithmetic is checked.
UNCOUNTED = {"empty", "whitespace", "bom only", "not an array", "one object, not an array", "fake parquet",
             "cut parquet", "csv header only", "datasets folder, arrow cut"}  # fmt: skip
# Files where fewer records may pass than are read: a value that would be dropped unseen must be refused.
AT_MOST = {"csv column named twice": 0}


def make_files(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, (file, content, _, _) in FILES.items():
        paths[name] = root / file
        if content or name == "empty":  # the others without content are made below (Parquet, datasets folders)
            paths[name].write_bytes(content)
    table = pa.table({"instruction": ["a", "b"], "output": ["x", "y"]})
    pq.write_table(table, paths["cut parquet"])
    paths["cut parquet"].write_bytes(paths["cut parquet"].read_bytes()[:-40])
    pq.write_table(pa.table({"instruction": [1, 2], "output": [3, 4]}), paths["int parquet"])
    pq.write_table(pa.table({"instruction": [["a"], ["b"]], "output": ["x", "y"]}), paths["list parquet"])
    from datasets import Dataset, disable_progress_bars  # imported here: a few seconds

    disable_progress_bars()

    rows = [json.loads(good(i)) for i in range(3)]
    Dataset.from_list(rows).save_to_disk(str(paths["datasets folder"]))
    Dataset.from_list(rows).save_to_disk(str(paths["datasets folder, arrow cut"]))
    for arrow in paths["datasets folder, arrow cut"].glob("*.arrow"):
        arrow.write_bytes(arrow.read_bytes()[:100])
    (root / "a_file").write_text("x")
    (root / "recipe_bad.yaml").write_text("inputs: [a.jsonl\nsteps: {\n")
    (root / "recipe_list.yaml").write_text("- a\n- b\n")
    (root / "recipe_deep.yaml").write_text("inputs: " + "[" * 10_000 + "]" * 10_000 + "\n")
    (root / "recipe_unknown.yaml").write_text(f"inputs: [{{path: {paths['good']}}}]\nsteps: [{{step: nosuch}}]\n")
    (root / "train_bad_field.yaml").write_text(f"train: [{{path: {paths['good']}}}]\nmethod: lora\nbogus_field: 1\n")
    (root / "rubrics_bad.yaml").write_text("helpfulness: [1, 2\n")
    return paths


@dataclass
class Case:
    name: str
    args: list[str]
    check: Check | None = None
    cwd: Path | None = None
    refuse: bool = False  # exit 0 here means harm done: data overwritten, or a wrong answer given as right
    timeout: float | None = None
    result: dict = field(default_factory=dict)


def _counts(run: Path) -> dict:
    return json.loads((run / "manifest.json").read_text())["counts"]


def accounted(run: Path, records: int | None, readable: int = 0, at_most: int | None = None) -> Check:
    """The manifest adds up and counts `records` (None: any number); at least `readable` records pass the
    reader (kept or dropped by a step, not rejected), and no more than `at_most`."""

    def check() -> str | None:
        c = _counts(run)
        if not c["accounted"] or c["input"] != c["kept"] + c["dropped"] + c["rejected"] - c["added"]:
            return f"the manifest does not add up: {c}"
        if records is not None and c["input"] != records:
            return f"the manifest counts {c['input']} records of the file's {records}"
        passed = c["input"] - c["rejected"]
        if passed < readable:
            return f"{c['rejected']} of {c['input']} rejected: {readable} records that can be read were not kept"
        if at_most is not None and passed > at_most:
            return f"{passed} records passed where at most {at_most} should (a value was dropped unseen)"
        return None

    return check


def target_records(target: Path) -> int:
    """How many records a converted file (or `datasets` folder) holds."""
    if target.is_dir():
        return sum(pa.ipc.open_stream(str(p)).read_all().num_rows for p in target.glob("*.arrow"))
    data = target.read_bytes()
    if target.suffix == ".parquet":
        return pq.read_metadata(target).num_rows
    if target.suffix == ".json":
        return len(json.loads(data))
    if target.suffix == ".csv":
        return len(list(csv.reader(io.StringIO(data.decode("utf-8"))))) - 1
    return sum(1 for ln in data.split(b"\n") if ln.strip())


def converted(target: Path, at_least: int, exactly: int | None = None) -> Check:
    def check() -> str | None:
        n = target_records(target)
        if n < at_least or (exactly is not None and n != exactly):
            return f"{target.name} holds {n} records; expected {exactly if exactly is not None else at_least}"
        return None

    return check


def audited(run: Path, records: int) -> Check:
    def check() -> str | None:
        n = json.loads((run / "summary.json").read_text())["dataset"]["records"]
        return None if n == records else f"audit saw {n} records of {records}"

    return check


def unchanged(paths: list[Path]) -> Check:
    before = {p: p.read_bytes() for p in paths}

    def check() -> str | None:
        gone = [p.name for p, b in before.items() if not p.exists() or p.read_bytes() != b]
        return f"changed or gone: {', '.join(gone)}" if gone else None

    return check


def all_of(*checks: Check) -> Check:
    return lambda: next((loss for c in checks if (loss := c()) is not None), None)


def file_cases(files: dict[str, Path], work: Path) -> list[Case]:
    out: list[Case] = []
    for name, path in files.items():
        _, _, records, readable = FILES[name]
        counted = None if name in UNCOUNTED else records
        at_most = AT_MOST.get(name)
        n = len(out)
        run = work / f"run_{n}"
        out.append(Case(f"curate skip: {name}", ["curate", str(path), "--out", str(run), "--on-error", "skip"],
                        accounted(run, counted, readable, at_most)))  # fmt: skip
        run = work / f"run_{n + 1}"
        out.append(Case(f"curate fail: {name}", ["curate", str(path), "--out", str(run)],
                        accounted(run, counted, records, at_most)))  # fmt: skip
        target = work / f"conv_{n + 2}.parquet"
        out.append(Case(f"convert skip: {name}", ["convert", str(path), str(target), "--on-error", "skip"],
                        converted(target, readable, at_most)))  # fmt: skip
        if readable == records:  # a file with bad records fails convert as it fails curate
            target = work / f"conv_{n + 3}.jsonl"
            out.append(Case(f"convert fail: {name}", ["convert", str(path), str(target)],
                            converted(target, readable, counted if at_most is None else at_most)))  # fmt: skip
        run = work / f"audit_{n + 4}"
        audit = ["audit", str(path), "--out", str(run), "--checks", "broken_fields,format", "--no-progress"]
        out.append(Case(f"audit: {name}", audit, None if counted is None else audited(run, records)))
    return out


def option_cases(files: dict[str, Path], work: Path) -> list[Case]:
    g, long, a_file, fdir = files["good"], files["long records"], work / "files" / "a_file", work / "files"
    o = iter(range(1000))

    def run() -> str:
        return str(work / f"o{next(o)}")

    cur = ["curate", str(g), "--out"]
    score = ["score", str(g), "--classifier", "--good", str(g), "--bad", str(g), "--out"]
    judge = ["judge", str(g), "--out"]
    train = ["train", str(g), "--out"]
    cases = {
        "curate --output ''": [*cur, run(), "--output", ""],
        "curate --output ..": [*cur, run(), "--output", ".."],
        "curate --output .": [*cur, run(), "--output", "."],
        "curate --output ../x.jsonl": [*cur, run(), "--output", "../x.jsonl"],
        "curate --output sub/x.jsonl": [*cur, run(), "--output", "sub/x.jsonl"],
        "curate --output an absolute path": [*cur, run(), "--output", str(work / "abs.jsonl")],
        "curate --output ledger.jsonl": [*cur, run(), "--output", "ledger.jsonl"],
        "curate --output manifest.json": [*cur, run(), "--output", "manifest.json"],
        "curate --output x.txt": [*cur, run(), "--output", "x.txt"],
        "curate --output [b].jsonl": [*cur, run(), "--output", "[b].jsonl"],
        "curate --out a file": [*cur, str(a_file)],
        "curate --out under a file": [*cur, str(a_file / "sub")],
        "curate --out with brackets": [*cur, str(work / "runs" / "data[v2]")],
        "curate --format bogus": [*cur, run(), "--format", "bogus"],
        "curate --format sharegpt on alpaca": [*cur, run(), "--format", "sharegpt"],
        "curate --output-format bogus": [*cur, run(), "--output-format", "bogus"],
        "curate --on-error bogus": [*cur, run(), "--on-error", "bogus"],
        "curate --on-error ''": [*cur, run(), "--on-error", ""],
        "curate --max-record-mb 0": [*cur, run(), "--max-record-mb", "0"],
        "curate --max-record-mb -1": [*cur, run(), "--max-record-mb", "-1"],
        "curate --max-record-mb nan": [*cur, run(), "--max-record-mb", "nan"],
        "curate --max-record-mb inf": [*cur, run(), "--max-record-mb", "inf"],
        "curate --max-record-mb 1e300": [*cur, run(), "--max-record-mb", "1e300"],
        "curate --max-record-mb x": [*cur, run(), "--max-record-mb", "x"],
        "curate --steps nosuch": [*cur, run(), "--steps", "nosuch"],
        "curate --steps ''": [*cur, run(), "--steps", ""],
        "curate --steps normalize,,filter": [*cur, run(), "--steps", "normalize,,filter"],
        "curate --steps [red]x[/red]": [*cur, run(), "--steps", "[red]x[/red]"],
        "curate --columns bad": [*cur, run(), "--columns", "nope"],
        "curate --columns =x": [*cur, run(), "--columns", "=x"],
        "curate --columns x=": [*cur, run(), "--columns", "x="],
        "curate --columns twice onto one name": [*cur, run(), "--columns", "instruction=output"],
        "curate missing input": ["curate", str(work / "missing.jsonl"), "--out", run()],
        "curate a folder as input": ["curate", str(fdir), "--out", run()],
        "curate /dev/null": ["curate", "/dev/null", "--out", run()],
        "curate --recipe missing": ["curate", "--recipe", str(work / "nope.yaml"), "--out", run()],
        "curate --recipe bad yaml": ["curate", "--recipe", str(fdir / "recipe_bad.yaml"), "--out", run()],
        "curate --recipe a list": ["curate", "--recipe", str(fdir / "recipe_list.yaml"), "--out", run()],
        "curate --recipe deep yaml": ["curate", "--recipe", str(fdir / "recipe_deep.yaml"), "--out", run()],
        "curate --recipe unknown step": ["curate", "--recipe", str(fdir / "recipe_unknown.yaml"), "--out", run()],
        "curate --recipe a folder": ["curate", "--recipe", str(fdir), "--out", run()],
        "curate no input": ["curate", "--out", run()],
        "convert --on-error bogus": ["convert", str(g), str(work / "c1.jsonl"), "--on-error", "bogus"],
        "convert --to bogus": ["convert", str(g), str(work / "c2.jsonl"), "--to", "bogus"],
        "convert --format bogus": ["convert", str(g), str(work / "c3.jsonl"), "--format", "bogus"],
        "convert target under a file": ["convert", str(g), str(a_file / "x.jsonl")],
        "convert target ''": ["convert", str(g), ""],
        "convert unknown suffix": ["convert", str(g), str(work / "c4.txt")],
        "convert missing source": ["convert", str(work / "missing.jsonl"), str(work / "c5.jsonl")],
        "convert --columns bad": ["convert", str(g), str(work / "c6.jsonl"), "--columns", "nope"],
        "audit --checks nosuch": ["audit", str(g), "--out", run(), "--checks", "nosuch"],
        "audit --checks ''": ["audit", str(g), "--out", run(), "--checks", ""],
        "audit --fail-on bogus": ["audit", str(g), "--out", run(), "--fail-on", "bogus"],
        "audit --out a file": ["audit", str(g), "--out", str(a_file)],
        "audit --out under a file": ["audit", str(g), "--out", str(a_file / "sub")],
        "audit --expect bad": ["audit", str(g), "--out", run(), "--expect", "refusal"],
        "audit --expect rate 2": ["audit", str(g), "--out", run(), "--expect", "refusal=2"],
        "audit --expect rate nan": ["audit", str(g), "--out", run(), "--expect", "refusal=nan"],
        "audit --eval missing": ["audit", str(g), "--out", run(), "--checks", "format", "--eval",
                                 str(work / "nope.jsonl")],
        "audit missing input": ["audit", str(work / "missing.jsonl"), "--out", run()],
        "audit --fix missing recipe": ["audit", str(g), "--out", run(), "--checks", "format", "--fix",
                                       str(work / "nope.yaml")],
        "audit --fix bad yaml": ["audit", str(g), "--out", run(), "--checks", "format", "--fix",
                                 str(fdir / "recipe_bad.yaml")],
        "score without --classifier": ["score", str(g), "--out", run()],
        "score --classifier without labels": ["score", str(g), "--classifier", "--out", run()],
        "score --labeled without --label-field": ["score", str(g), "--classifier", "--labeled", str(g), "--out", run()],
        "score --reuse with --good": ["score", str(g), "--classifier", "--reuse", str(a_file), "--good", str(g),
                                      "--bad", str(g), "--out", run()],
        "score --reuse missing": ["score", str(g), "--classifier", "--reuse", str(work / "nope.npz"), "--out", run()],
        "score --reuse not a classifier": ["score", str(g), "--classifier", "--reuse", str(a_file), "--out", run()],
        "score --out a file": [*score, str(a_file)],
        "score --top-fraction 2": [*score, run(), "--top-fraction", "2"],
        "score --folds 1": [*score, run(), "--folds", "1"],
        "score --top -1": [*score, run(), "--top", "-1"],
        "score --on-error bogus": [*score, run(), "--on-error", "bogus"],
        "score --good missing": ["score", str(g), "--classifier", "--good", str(work / "nope.jsonl"), "--bad", str(g),
                                 "--out", run()],
        "judge --backend bogus": [*judge, run(), "--backend", "bogus"],
        "judge --method bogus": [*judge, run(), "--method", "bogus"],
        "judge --match bogus": [*judge, run(), "--match", "bogus"],
        "judge --preferred c": [*judge, run(), "--preferred", "c"],
        "judge --concurrency 0": [*judge, run(), "--backend", "openai", "--base-url", "http://127.0.0.1:9/v1",
                                  "--concurrency", "0"],
        "judge --rubric nosuch": [*judge, run(), "--rubric", "nosuch"],
        "judge --rubrics-file missing": [*judge, run(), "--rubrics-file", str(work / "nope.yaml")],
        "judge --rubrics-file bad yaml": [*judge, run(), "--rubrics-file", str(fdir / "rubrics_bad.yaml")],
        "judge --against missing": [*judge, run(), "--against", str(work / "nope.jsonl")],
        "judge --model missing gguf": [*judge, run(), "--model", str(work / "nope.gguf")],
        "judge --model not a gguf": [*judge, run(), "--model", str(a_file)],
        "judge missing input": ["judge", str(work / "missing.jsonl"), "--out", run()],
        "judge --out a file": [*judge, str(a_file)],
        "judge --out under a file": [*judge, str(a_file / "sub")],
        "synth self-instruct missing seeds": ["synth", "self-instruct", str(work / "nope.jsonl"), "--out", run()],
        "train --method bogus": [*train, run(), "--method", "bogus"],
        "train missing data": ["train", str(work / "missing.jsonl"), "--out", run()],
        "train --config bad yaml": ["train", "--config", str(fdir / "recipe_bad.yaml")],
        "train --config a list": ["train", "--config", str(fdir / "recipe_list.yaml")],
        "train --out a file": [*train, str(a_file), "--max-steps", "1"],
        "train --max-steps 0": [*train, run(), "--max-steps", "0"],
        "train --learning-rate nan": [*train, run(), "--learning-rate", "nan"],
        "train --lora-r 0": [*train, run(), "--lora-r", "0"],
        "train --format bogus": [*train, run(), "--format", "bogus"],
        "train no data": ["train"],
    }  # fmt: skip
    out = [Case(name, args, timeout=60 if args[0] in ("train", "judge", "score") else None)
           for name, args in cases.items()]  # fmt: skip
    tiny = work / "tiny"
    out.append(Case("curate --max-record-mb 0.0001 skip: every record too big",
                    ["curate", str(long), "--out", str(tiny), "--max-record-mb", "0.0001", "--on-error", "skip"],
                    accounted(tiny, 3)))  # fmt: skip
    out.append(Case("curate --max-record-mb 0.0001 fail", ["curate", str(long), "--out", run(),
                                                           "--max-record-mb", "0.0001"]))  # fmt: skip
    for fmt, suffix in (("sharegpt", ".json"), ("openai", ".parquet"), ("prompt_completion", ".csv"), ("alpaca", "")):
        target = work / f"to_{fmt}{suffix}"
        out.append(Case(f"convert --to {fmt} {suffix or 'a datasets folder'}",
                        ["convert", str(g), str(target), "--to", fmt], converted(target, 5, 5)))  # fmt: skip
        run_dir = work / f"out_{fmt}"
        out.append(Case(f"curate --output-format {fmt} --output x{suffix or '.jsonl'}",
                        ["curate", str(g), "--out", str(run_dir), "--output-format", fmt, "--output",
                         f"x{suffix or '.jsonl'}"], accounted(run_dir, 5, 5)))  # fmt: skip
    return out + special_cases(files, work)


def special_cases(files: dict[str, Path], work: Path) -> list[Case]:
    g = files["good"]
    out = []
    same = work / "same"
    same.mkdir(exist_ok=True)
    (same / "same.jsonl").write_bytes(g.read_bytes() * 2)  # each record twice: curated, it would differ
    out.append(Case("curate --output over its input", ["curate", "same.jsonl", "--out", ".", "--output", "same.jsonl"],
                    unchanged([same / "same.jsonl"]), cwd=same, refuse=True))  # fmt: skip
    absolute = work / "same_abs"
    absolute.mkdir(exist_ok=True)
    (absolute / "in.jsonl").write_bytes(g.read_bytes() * 2)
    out.append(Case("curate --out its input's folder --output its name",
                    ["curate", str(absolute / "in.jsonl"), "--out", str(absolute), "--output", "in.jsonl"],
                    unchanged([absolute / "in.jsonl"]), refuse=True))  # fmt: skip
    src = absolute / "in.jsonl"
    onto = ["convert", str(src), str(src), "--to", "alpaca"]
    out.append(Case("convert onto its source", onto, unchanged([src]), refuse=True))
    holder = work / "holder"  # its own folder: written over, it would take the other cases' files with it
    holder.mkdir(exist_ok=True)
    (holder / "notes.txt").write_text("mine\n")
    (holder / "in.jsonl").write_bytes(g.read_bytes())
    out.append(Case("convert into the folder holding its source", ["convert", str(holder / "in.jsonl"), str(holder)],
                    unchanged([holder / "notes.txt", holder / "in.jsonl"]), refuse=True))  # fmt: skip
    user = work / "user_folder"
    user.mkdir(exist_ok=True)
    (user / "notes.txt").write_text("mine\n")
    (user / "in.jsonl").write_bytes(g.read_bytes())
    (user / "ledger.jsonl").write_text('{"mine": "not a ledger"}\n')
    out.append(Case("curate --out a folder of the user's files", ["curate", str(user / "in.jsonl"), "--out", str(user)],
                    all_of(unchanged([user / "notes.txt", user / "in.jsonl"]), accounted(user, 5, 5))))  # fmt: skip
    empty = work / "empty_out"  # `--out ''` is the current folder: the user's files there must survive
    empty.mkdir(exist_ok=True)
    (empty / "notes.txt").write_text("mine\n")
    (empty / "curated.jsonl").write_text('{"mine": "an earlier result"}\n')
    out.append(Case("curate --out ''", ["curate", str(g), "--out", ""], unchanged([empty / "notes.txt",
                    empty / "curated.jsonl"]), cwd=empty))  # fmt: skip
    rel = work / "relative"
    rel.mkdir(exist_ok=True)
    shutil.copy(g, rel / "data[v2].jsonl")
    out.append(Case("curate relative --out 'runs/data[v2]'",
                    ["curate", "data[v2].jsonl", "--out", "runs/data[v2]"],
                    accounted(rel / "runs" / "data[v2]", 5, 5), cwd=rel))  # fmt: skip
    # A finished run of other data, curated again into the same folder: nothing of the first run may leak in.
    reused = work / "reused"
    subprocess.run([LMTAILOR, "curate", str(g), "--out", str(reused), "--no-progress"], capture_output=True)

    def fresh() -> str | None:
        first = json.loads((reused / "curated.jsonl").read_text().splitlines()[0])
        return None if "and more" in first["instruction"] else f"the output still holds the first run's {first}"

    again = ["curate", str(files["long records"]), "--out", str(reused)]
    out.append(Case("curate other data into a finished run", again, all_of(accounted(reused, 3, 3), fresh)))
    return out + explain_cases(files, work)


def tamper(run: Path, name: str, content: bytes) -> None:
    """Write `content` to a run file and record its digest in the manifest, as a consistent run would (a run of
    a version before digests has none to record)."""
    (run / name).write_bytes(content)
    manifest = json.loads((run / "manifest.json").read_text())
    digest = hashlib.blake2b(content, digest_size=16).hexdigest()
    manifest.setdefault("files", {})[name] = {"bytes": len(content), "blake2b": digest}
    (run / "manifest.json").write_text(json.dumps(manifest))


def explain_cases(files: dict[str, Path], work: Path) -> list[Case]:
    run = work / "explained"
    subprocess.run([LMTAILOR, "curate", str(files["good"]), "--out", str(run), "--no-progress"], capture_output=True)
    manifest = json.loads((run / "manifest.json").read_text())
    bad: dict[str, Callable[[Path], None]] = {
        "a corrupt ledger": lambda r: (r / "ledger.jsonl").write_text('{"id": "good:1", "act'),
        "a corrupt manifest": lambda r: (r / "manifest.json").write_text('{"recipe": '),
        "a folder with no manifest": lambda r: (r / "manifest.json").unlink(),
        "a manifest that is a list": lambda r: (r / "manifest.json").write_text("[]"),
        "a manifest nested 10,000 deep": lambda r: (r / "manifest.json").write_bytes(DEEP),
        "a manifest whose files are a list": lambda r: (r / "manifest.json").write_text(
            json.dumps({**manifest, "files": [1]})),
        "a manifest whose steps hold a number": lambda r: (r / "manifest.json").write_text(
            json.dumps({**manifest, "recipe": {**manifest["recipe"], "steps": [5]}, "files": {}})),
        "a manifest whose inputs hold a number": lambda r: (r / "manifest.json").write_text(
            json.dumps({**manifest, "recipe": {**manifest["recipe"], "inputs": [5]}, "files": {}})),
        "a manifest with max_record_mb 'x'": lambda r: (r / "manifest.json").write_text(
            json.dumps({**manifest, "recipe": {**manifest["recipe"], "max_record_mb": "x"}, "files": {}})),
        "a tampered ledger nested 10,000 deep": lambda r: tamper(r, "ledger.jsonl", DEEP + b"\n"),
        "a tampered ledger line that is a list": lambda r: tamper(r, "ledger.jsonl", b"[1, 2]\n"),
        "a tampered ledger entry of wrong types": lambda r: tamper(
            r, "ledger.jsonl", b'{"id": "good:1", "step": 5, "action": ["drop"], "reason": null}\n'),
        "a tampered ledger, not UTF-8": lambda r: tamper(r, "ledger.jsonl", b'{"id": "good:1\xff"}\n'),
        "tampered rejects nested 10,000 deep": lambda r: tamper(r, "rejects.jsonl", DEEP + b"\n"),
        "a run whose source is gone": lambda r: (r / "manifest.json").write_text(
            json.dumps({**manifest, "recipe": {**manifest["recipe"], "inputs": [{"path": str(work / "gone.jsonl")}]},
                        "files": {}})),
    }  # fmt: skip
    out = []
    for name, spoil in bad.items():
        folder = work / f"explain_{len(out)}"
        shutil.copytree(run, folder)
        spoil(folder)
        stem = "gone" if "gone" in name else "good"
        out.append(Case(f"explain {name}", ["explain", f"{stem}:1", "--run", str(folder)], refuse=True))
    return [
        *out,
        Case("explain a kept record", ["explain", "good:1", "--run", str(run)]),
        Case("explain an index past the end", refuse=True, args=["explain", "good:99999999", "--run", str(run)]),
        Case("explain a negative index", refuse=True, args=["explain", "good:-1", "--run", str(run)]),
        Case("explain a 5,000-digit index", refuse=True, args=["explain", "good:" + "9" * 5000, "--run", str(run)]),
        Case("explain an unknown stem", refuse=True, args=["explain", "nope:1", "--run", str(run)]),
        Case("explain an id without ':'", refuse=True, args=["explain", "good", "--run", str(run)]),
        Case("explain ''", refuse=True, args=["explain", "", "--run", str(run)]),
        Case("explain with brackets", refuse=True, args=["explain", "[red]x[/red]:1", "--run", str(run)]),
        Case("explain a missing folder", refuse=True, args=["explain", "good:1", "--run", str(work / "nowhere")]),
        Case("explain a file as the run", refuse=True, args=["explain", "good:1", "--run", str(files["good"])]),
    ]


def _digests(folder: Path) -> dict[str, str]:
    return {str(p): hashlib.blake2b(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def run_case(case: Case, timeout: float, cwd: Path) -> Case:
    """Run the case in `cwd` unless it names its own (a scratch folder: a relative path lands there)."""
    env = {**os.environ, "LMTAILOR_NO_PROGRESS": "1", "COLUMNS": "200"}
    limit = case.timeout or timeout
    started = time.perf_counter()
    try:
        p = subprocess.run([LMTAILOR, *case.args], capture_output=True, text=True, timeout=limit, env=env,
                           cwd=case.cwd or cwd, errors="replace")  # fmt: skip
        rc, text = p.returncode, p.stdout + p.stderr
    except subprocess.TimeoutExpired:
        rc, text = -1, f"timed out after {limit:.0f} s: a hang"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    first, tail = (lines[0] if lines else ""), []
    if "Traceback (most recent call last)" in text or rc not in (0, 1, 2):
        outcome = "traceback"
        frames = [ln.strip() for ln in lines if ln.strip().startswith("File ") and "/lmtailor/" in ln]
        first = lines[-1] if lines else ""
        tail = [*frames[-3:], first] if "Traceback (most recent call last)" in text else []
    elif rc != 0:
        outcome = "clean_error"
    elif case.refuse:
        outcome, first = "silent_loss", f"exit 0 where it must refuse: {first}"
        if case.check is not None and (loss := case.check()):
            first = f"exit 0 where it must refuse: {loss}"
    else:
        outcome = "ok"
        try:
            loss = case.check() if case.check is not None else None
        except Exception as e:  # the files a check reads are missing or unreadable: the run did not write them
            loss = f"the check could not read the output: {type(e).__name__}: {e}"
        if loss:
            outcome, first = "silent_loss", loss
    seconds = round(time.perf_counter() - started, 2)
    case.result = {"rc": rc, "outcome": outcome, "message": first[:300], "seconds": seconds, "hang": rc == -1}
    if tail:
        case.result["traceback"] = [ln[:300] for ln in tail]
    return case


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("bench/out/break_cli"))
    parser.add_argument("--only", default="", help="run the cases whose name holds this text")
    parser.add_argument("--timeout", type=float, default=15, help="seconds a case may run before it counts as a hang")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    work = args.out.resolve()
    shutil.rmtree(work, ignore_errors=True)
    files = make_files(work / "files")
    inputs_before = _digests(work / "files")
    every = file_cases(files, work) + option_cases(files, work)
    names = Counter(c.name for c in every)
    assert all(n == 1 for n in names.values()), [k for k, n in names.items() if n > 1]
    todo = [c for c in every if args.only in c.name]
    console = Console()
    if not console.is_terminal:
        console = Console(width=200)
    console.print(f"running {len(todo)} cases, {args.workers} at a time")
    scratch = work / "cwd"
    scratch.mkdir()
    with ThreadPoolExecutor(max_workers=args.workers) as pool:
        done = list(pool.map(lambda c: run_case(c, args.timeout, scratch), todo))
    changed = sorted(p for p, d in _digests(work / "files").items() if inputs_before.get(p) != d)
    changed += [p for p in inputs_before if not Path(p).exists()]
    table = Table(title="lmtailor against a hostile user", title_justify="left")
    for col in ("case", "command", "rc", "outcome", "first line"):
        table.add_column(col, overflow="fold")
    colours = {"ok": "green", "clean_error": "cyan", "traceback": "red", "silent_loss": "red"}
    for c in done:
        r = c.result
        command = " ".join(a if len(a) < 60 else a[:57] + "..." for a in c.args)
        table.add_row(escape(c.name), escape(command), str(r["rc"]), f"[{colours[r['outcome']]}]{r['outcome']}[/]",
                      escape(r["message"]))  # fmt: skip
    console.print(table)
    counts = Counter(c.result["outcome"] for c in done)
    if changed:
        counts["silent_loss"] += len(changed)
        console.print(f"[red]inputs changed or gone:[/] {escape(', '.join(changed))}")
    summary = {"cases": len(done), **{k: counts.get(k, 0) for k in ("ok", "clean_error", "traceback", "silent_loss")}}
    summary |= {"hangs": sum(c.result["hang"] for c in done), "seconds": round(time.perf_counter() - started, 1)}
    for c in done:
        if c.result["outcome"] in ("traceback", "silent_loss"):
            console.print(f"[red]{c.result['outcome']}[/] {escape(c.name)}: {escape(c.result['message'])}")
            for ln in c.result.get("traceback", [])[:-1]:
                console.print("    " + escape(ln))
    console.print(summary)
    report = {"summary": summary, "inputs_changed": changed,
              "cases": [{"name": c.name, "args": c.args, "cwd": str(c.cwd) if c.cwd else None, **c.result}
                        for c in done]}  # fmt: skip
    (work / "break_cli.json").write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
