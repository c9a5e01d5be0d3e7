"""`make demo`: curate a text-to-SQL dataset the project generates itself, with known defects injected.

The generator builds a small shop database in SQLite, writes questions whose gold SQL runs on it, holds
out an evaluation split, and then spoils the training split on purpose: exact and paraphrased duplicates,
SQL in inconsistent case and spacing, empty answers, placeholder inputs, and evaluation examples copied
into training. `defects.json` records where each defect sits and which step must catch it, so the demo
can check the curation rather than just show it. The shop's world and its question kinds are data, in
`demo/shop.yaml`; this module holds what turns them into a dataset.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import sys
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lmtailor.core.io import read_jsonl, write_jsonl
from lmtailor.core.rundir import CurateFolder
from lmtailor.sql.canonical import canonical_sql
from lmtailor.text.keys import ngram_keys
from lmtailor.text.minhash import Shingler

SCHEMA = (
    "CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL UNIQUE, "
    "city TEXT NOT NULL, country TEXT NOT NULL, signup_date TEXT NOT NULL);\n"
    "CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, category TEXT NOT NULL, "
    "price REAL NOT NULL, stock INTEGER NOT NULL);\n"
    "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id), "
    "order_date TEXT NOT NULL, status TEXT NOT NULL);\n"
    "CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id), "
    "product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL, unit_price REAL NOT "
    "NULL);"
)

DATA = resources.files("lmtailor.demo") / "shop.yaml"  # the shop's cities, people, products, questions
_WORLD = yaml.safe_load(DATA.read_text(encoding="utf-8"))
CITIES: dict[str, str] = _WORLD["cities"]
FIRST: list[str] = _WORLD["first_names"]
LAST: list[str] = _WORLD["last_names"]
PRODUCTS: dict[str, list[str]] = _WORLD["products"]
RECIPE = resources.files("lmtailor") / "recipes" / "demo.yaml"
STATUSES = ["pending", "shipped", "delivered", "cancelled", "returned"]
YEARS = ["2022", "2023", "2024"]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


# ---------------------------------------------------------------- the database


@dataclass
class Shop:
    """The rows of the demo database, kept in Python so templates can pick values that exist."""

    customers: list[tuple] = field(default_factory=list)
    products: list[tuple] = field(default_factory=list)
    orders: list[tuple] = field(default_factory=list)
    items: list[tuple] = field(default_factory=list)


def build_shop(rng: random.Random) -> Shop:
    """50 customers, 50 products, 80 orders and their items, seeded.

    Every city gets at least two customers; 8 customers never order and 8 products never sell, so the
    "never ordered" questions have answers too.
    """
    shop = Shop()
    cities = list(CITIES)
    for i, (first, last) in enumerate(zip(FIRST, rng.sample(LAST, len(LAST)), strict=True), 1):
        city = cities[(i - 1) % len(cities)] if i <= 2 * len(cities) else rng.choice(cities)
        signup = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        email = f"{first}.{last}@example.com".lower()
        shop.customers.append((i, f"{first} {last}", email, city, CITIES[city], signup))
    pid = 0
    for category, names in PRODUCTS.items():
        for name in names:
            pid += 1
            shop.products.append((pid, name, category, round(rng.uniform(4, 180), 2), rng.randint(0, 60)))
    buyers = rng.sample(range(1, len(shop.customers) + 1), 42)
    sold = rng.sample(shop.products, 42)
    for oid in range(1, 81):
        date = f"{rng.choice(YEARS)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        status = rng.choices(STATUSES, weights=[2, 3, 6, 1, 1])[0]
        buyer = buyers[oid - 1] if oid <= len(buyers) else rng.choice(buyers)  # every buyer has an order
        shop.orders.append((oid, buyer, date, status))
        for product in rng.sample(sold, rng.randint(1, 3)):
            shop.items.append((len(shop.items) + 1, oid, product[0], rng.randint(1, 5), product[3]))
    return shop


def write_db(shop: Shop, path: Path) -> sqlite3.Connection:
    """A fresh SQLite file with foreign keys enforced, so the rows must be consistent to load."""
    if path.exists():
        path.unlink()
    db = sqlite3.connect(path)
    db.execute("PRAGMA foreign_keys = ON")
    db.executescript(SCHEMA)
    db.executemany("INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)", shop.customers)
    db.executemany("INSERT INTO products VALUES (?, ?, ?, ?, ?)", shop.products)
    db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", shop.orders)
    db.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", shop.items)
    db.commit()
    return db


# ---------------------------------------------------------------- question templates

_GROUP = re.compile(r"\[([^\]]*)\]")
Params = Callable[[Shop, random.Random], list[dict[str, Any]]]


@dataclass(frozen=True)
class Template:
    """One kind of question: phrasings with synonym groups `[a|b|c]`, the gold SQL, and its parameters.

    Every parameter set names an entity (a city, a customer, a product...): questions that differ only in
    a number or a status word are near-identical to a sentence embedding and would rightly be flagged as
    duplicates. Synonym groups give each clean question its own wording, and give the injected
    paraphrases a wording that keeps the meaning while changing the words.
    """

    name: str
    phrasings: tuple[str, ...]
    sql: str
    params: Params

    def groups(self, phrasing: int) -> list[list[str]]:
        return [g.split("|") for g in _GROUP.findall(self.phrasings[phrasing])]

    def render(self, phrasing: int, choices: tuple[int, ...], params: dict[str, Any]) -> str:
        options = iter(self.groups(phrasing))
        picks = iter(choices)

        def pick(_: re.Match[str]) -> str:
            group = next(options)
            return group[next(picks) % len(group)]

        return _GROUP.sub(pick, self.phrasings[phrasing]).format(**params)


def _values(name: str, shop: Shop) -> list[Any]:
    """An entity's values, each once, in the order the shop holds them."""
    values = {
        "city": lambda: list(CITIES),
        "country": lambda: list(dict.fromkeys(CITIES.values())),
        "category": lambda: list(PRODUCTS),
        "customer": lambda: [c[1] for c in shop.customers],
        "product": lambda: [p[1] for p in shop.products],
        "word": lambda: list(dict.fromkeys(p[1].split()[-1] for p in shop.products)),
        "years": lambda: YEARS,
    }
    return values[name]()


def _each(key: str, extra: dict[str, list[Any] | str]) -> Params:
    """One parameter set per entity, with a random value for each extra parameter (a list, or an entity)."""

    def params(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
        options = {k: _values(v, shop) if isinstance(v, str) else v for k, v in extra.items()}
        return [{key: v, **{k: rng.choice(opts) for k, opts in options.items()}} for v in _values(key, shop)]

    return params


def _customer_status(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    names = {c[0]: c[1] for c in shop.customers}
    statuses: dict[int, list[str]] = {}
    for _, cid, _, status in shop.orders:
        statuses.setdefault(cid, []).append(status)
    return [{"customer": names[cid], "status": rng.choice(s)} for cid, s in statuses.items()]


def _city_month(shop: Shop, rng: random.Random) -> list[dict[str, Any]]:
    """A month in which the city's customers did order, so the count is not zero."""
    city = {c[0]: c[3] for c in shop.customers}
    dates: dict[str, list[str]] = {}
    for _, cid, date, _ in shop.orders:
        dates.setdefault(city[cid], []).append(date)
    out = []
    for c, ds in dates.items():
        year, mm, _ = rng.choice(ds).split("-")
        out.append({"city": c, "year": year, "mm": mm, "month": MONTHS[int(mm) - 1]})
    return out


_PAIRS: dict[str, Params] = {"customer_status": _customer_status, "city_month": _city_month}


def _template(spec: dict[str, Any]) -> Template:
    each = spec["each"]
    params = _PAIRS[each] if each in _PAIRS else _each(each, spec.get("extra", {}))
    return Template(spec["name"], tuple(spec["phrasings"]), spec["sql"], params)


TEMPLATES = [_template(spec) for spec in _WORLD["questions"]]

# ---------------------------------------------------------------- clean examples


@dataclass
class Question:
    """A clean example: a question, its gold SQL (canonical), and the wording choices that produced it."""

    template: Template
    params: dict[str, Any]
    phrasing: int
    choices: tuple[int, ...]
    sql: str

    @property
    def text(self) -> str:
        return self.template.render(self.phrasing, self.choices, self.params)

    def record(self) -> dict[str, str]:
        return {"instruction": self.text, "input": SCHEMA, "output": self.sql}


def gold_sql(sql: str) -> str:
    """The canonical form normalize also produces; raises if canonicalising is not idempotent."""
    canonical = canonical_sql(sql, "sqlite")
    if canonical_sql(canonical, "sqlite") != canonical:
        raise ValueError(f"canonical SQL is not stable: {canonical}")
    return canonical


def _wording(t: Template, used: list[tuple[int, ...]], rng: random.Random) -> tuple[int, tuple[int, ...]]:
    """A phrasing and synonym choices as unlike the template's earlier questions as a few tries find."""

    def distance(a: tuple[int, ...], b: tuple[int, ...]) -> int:
        return sum(x != y for x, y in zip(a, b, strict=False)) + 2 * (a[0] != b[0])

    best: tuple[int, ...] = ()
    for _ in range(24):
        p = rng.randrange(len(t.phrasings))
        cand = (p, *(rng.randrange(len(g)) for g in t.groups(p)))
        if not best or min((distance(cand, u) for u in used), default=0) > min(
            (distance(best, u) for u in used), default=0
        ):
            best = cand
    used.append(best)
    return best[0], best[1:]


def questions(db: sqlite3.Connection, shop: Shop, rng: random.Random, per_template: int) -> list[Question]:
    """Up to `per_template` questions per template whose gold SQL runs and returns a non-empty answer."""
    out: list[Question] = []
    for t in TEMPLATES:
        params = list({json.dumps(p, sort_keys=True): p for p in t.params(shop, rng)}.values())
        rng.shuffle(params)
        used: list[tuple[int, ...]] = []
        for p in params:
            if len(used) == per_template:
                break
            sql = gold_sql(t.sql.format(**p))
            try:
                rows = db.execute(sql).fetchall()
            except sqlite3.Error as e:
                raise ValueError(f"template {t.name}: gold SQL fails on the demo db: {e}\n{sql}") from None
            if not rows or all(v is None for v in rows[0]):
                continue
            out.append(Question(t, p, *_wording(t, used, rng), sql))
    return out


def overlap_keys(q: Question) -> set[int]:
    """13-gram keys of what the demo recipe's decontaminate step compares: instruction and output."""
    return ngram_keys(f"{q.text}\n{q.sql}", 13)


def split_eval(qs: list[Question], rng: random.Random, size: int) -> tuple[list[Question], list[Question]]:
    """Hold out whole templates whose questions and SQL share no 13-word run with any other template.

    Holding out templates, not random questions, keeps the evaluation honest; choosing only templates
    without shared SQL boilerplate keeps every clean training example free of eval overlap, so anything
    decontamination drops is a real leak.
    """
    keys: dict[str, set[int]] = {}
    for q in qs:
        keys.setdefault(q.template.name, set()).update(overlap_keys(q))
    alone = [name for name in keys if not any(keys[name] & keys[other] for other in keys if other != name)]
    rng.shuffle(alone)
    held: set[str] = set()
    for name in alone:
        if sum(q.template.name in held for q in qs) >= size:
            break
        held.add(name)
    return [q for q in qs if q.template.name not in held], [q for q in qs if q.template.name in held]


# ---------------------------------------------------------------- defects

_LITERAL = re.compile(r"('(?:[^']|'')*')")


def messy_sql(sql: str, rng: random.Random) -> str:
    """The same query in lower case with ragged spacing and line breaks; string literals untouched."""
    parts = _LITERAL.split(sql)
    for i in range(0, len(parts), 2):
        code = parts[i].lower().replace(" = ", rng.choice(["=", " = ", "= "]))
        parts[i] = re.sub(" ", lambda _: rng.choice([" ", " ", "  ", "\n  ", "\n"]), code)
    messy = "".join(parts)
    if gold_sql(messy) != sql:
        raise ValueError(f"messy SQL does not canonicalise back:\n{messy}\n{sql}")
    return messy


def reword(q: Question, groups: str) -> str:
    """The question with the first (`groups="first"`) or every synonym group switched to another option."""
    options = q.template.groups(q.phrasing)
    choices = list(q.choices)
    switchable = [i for i, g in enumerate(options) if len(g) > 1]
    for i in switchable[:1] if groups == "first" else switchable:
        choices[i] = (choices[i] + 1) % len(options[i])
    return q.template.render(q.phrasing, tuple(choices), q.params)


def jaccard(a: str, b: str) -> float:
    """Exact word-3-gram Jaccard, the quantity near_dedup estimates with MinHash."""
    shingler = Shingler("word", 3)
    x, y = set(shingler(a).tolist()), set(shingler(b).tolist())
    return len(x & y) / len(x | y)


@dataclass
class Defect:
    """One injected record: what is wrong with it and which step must catch it (and with what reason)."""

    defect: str
    expect_step: str
    expect_reasons: list[str]
    record: dict[str, str]
    source: Question
    in_place: bool = False  # replaces its source in train; otherwise a second copy of it
    detail: str = ""


@dataclass
class DemoData:
    """Where generate() put things, and what it injected (ids as the reader assigns them: train:<index>)."""

    dir: Path
    db: Path
    train: Path
    eval: Path
    defects: list[dict[str, Any]]
    clean: list[str]


COUNTS = {
    "exact_duplicate": 8,
    "near_paraphrase": 8,
    "semantic_paraphrase": 6,
    "sql_format": 10,
    "empty_answer": 6,
    "placeholder_input": 6,
    "eval_leak": 6,
}
# Injected paraphrases are measured with the same tools the steps use, and kept only with a clear margin
# from the demo recipe's thresholds (near_dedup 0.7 on the instruction, semantic_dedup 0.9).
NEAR_MIN_JACCARD = 0.8
SEMANTIC_MIN_COSINE = 0.93
SEMANTIC_MAX_JACCARD = 0.45


def _semantic_paraphrases(pool: list[Question], n: int) -> list[tuple[Question, str, float, float]]:
    """Rewordings that share few 3-grams with their source but that the embedding model places close."""
    from lmtailor.text.embeddings import embed

    found = []
    for lo in range(0, len(pool), 48):
        batch = pool[lo : lo + 48]
        variants = [reword(q, "all") for q in batch]
        vecs = embed([q.text for q in batch] + variants)
        cosines = (vecs[: len(batch)] * vecs[len(batch) :]).sum(axis=1).tolist()
        for q, text, cos in zip(batch, variants, cosines, strict=True):
            if cos >= SEMANTIC_MIN_COSINE and (jac := jaccard(q.text, text)) <= SEMANTIC_MAX_JACCARD:
                found.append((q, text, cos, jac))
        if len(found) >= n:
            return found[:n]
    raise ValueError(f"only {len(found)} rewordings qualify as semantic paraphrases; {n} are needed")


def inject(train: list[Question], held_out: list[Question], rng: random.Random) -> list[Defect]:
    """Spoil copies or members of `train` in known ways; the chosen members are disjoint across kinds."""
    pool = train[:]
    rng.shuffle(pool)
    defects: list[Defect] = []
    used: set[int] = set()
    for q, text, cos, jac in _semantic_paraphrases(pool, COUNTS["semantic_paraphrase"]):
        used.add(id(q))
        defects.append(
            Defect(
                "paraphrased_duplicate",
                "semantic_dedup",
                ["semantic_duplicate"],
                {**q.record(), "instruction": text},
                q,
                detail=f"cosine {cos:.2f}, 3-gram Jaccard {jac:.2f}",
            )
        )
    near = 0
    for q in pool:
        if near == COUNTS["near_paraphrase"]:
            break
        text = reword(q, "first")
        if id(q) not in used and (jac := jaccard(q.text, text)) >= NEAR_MIN_JACCARD:
            used.add(id(q))
            near += 1
            defects.append(
                Defect(
                    "paraphrased_duplicate",
                    "near_dedup",
                    ["near_duplicate"],
                    {**q.record(), "instruction": text},
                    q,
                    detail=f"3-gram Jaccard {jac:.2f}",
                )
            )
    rest = iter([q for q in pool if id(q) not in used])
    # variants exact_dedup folds away: letter case and runs of whitespace
    spoil_case: list[Callable[[str], str]] = [
        str.lower,
        lambda s: s.replace(" ", "  "),
        str.upper,
        lambda s: "  " + s.replace(" ", "\t", 3) + "  ",
    ]
    for i in range(COUNTS["exact_duplicate"]):
        q = next(rest)
        defects.append(
            Defect(
                "exact_duplicate",
                "exact_dedup",
                ["exact_duplicate"],
                {**q.record(), "instruction": spoil_case[i % len(spoil_case)](q.text)},
                q,
            )
        )
    for _ in range(COUNTS["sql_format"]):
        q = next(rest)
        defects.append(
            Defect(
                "sql_format", "normalize", ["sql"], {**q.record(), "output": messy_sql(q.sql, rng)}, q, in_place=True
            )
        )
    for i in range(COUNTS["empty_answer"]):
        q = next(rest)
        defects.append(
            Defect(
                "empty_answer",
                "filter",
                ["empty_answer"],
                {**q.record(), "output": ["", "  ", "\n"][i % 3]},
                q,
                in_place=True,
            )
        )
    for i in range(COUNTS["placeholder_input"]):
        q = next(rest)
        defects.append(
            Defect(
                "placeholder_input",
                "normalize",
                ["placeholder_input"],
                {**q.record(), "input": ["<noinput>", "N/A", "none", "."][i % 4]},
                q,
                in_place=True,
            )
        )
    for i, q in enumerate(rng.sample(held_out, COUNTS["eval_leak"])):
        record = q.record() if i % 2 else {**q.record(), "output": messy_sql(q.sql, rng)}
        defects.append(Defect("eval_leak", "decontaminate", ["eval_overlap"], record, q))
    return defects


def generate(data_dir: Path, seed: int = 0) -> DemoData:
    """Write shop.db, eval.jsonl, train.jsonl (clean examples plus injected defects) and defects.json."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    shop = build_shop(rng)
    db_path = data_dir / "shop.db"
    with closing(write_db(shop, db_path)) as db:
        qs = questions(db, shop, rng, per_template=11)
    train, held_out = split_eval(qs, rng, size=40)
    defects = inject(train, held_out, rng)

    # rows: (record, defect or None, the clean question it is or replaces, or None for a copy)
    replaced = {id(d.source): d for d in defects if d.in_place}
    rows: list[tuple[dict[str, str], Defect | None, Question | None]] = []
    for q in rng.sample(train, len(train)):
        d = replaced.get(id(q))
        rows.append((d.record if d else q.record(), d, q))
    for d in defects:
        if d.in_place:
            continue
        after = 0 if d.defect == "eval_leak" else 1 + next(i for i, r in enumerate(rows) if r[2] is d.source)
        rows.insert(rng.randint(after, len(rows)), (d.record, d, None))

    # the record a duplicate or leak copies, by the id the reader will give it; None for in-place defects
    twin_id = {id(q): f"eval:{i}" for i, q in enumerate(held_out)}
    twin_id.update({id(r[2]): f"train:{i}" for i, r in enumerate(rows) if r[2] is not None})
    entries = [
        {
            "id": f"train:{i}",
            "defect": d.defect,
            "expect_step": d.expect_step,
            "expect_reasons": d.expect_reasons,
            "twin": None if d.in_place else twin_id[id(d.source)],
            "detail": d.detail,
        }
        for i, (_, d, _) in enumerate(rows)
        if d is not None
    ]
    write_jsonl(data_dir / "eval.jsonl", (q.record() for q in held_out))
    write_jsonl(data_dir / "train.jsonl", (r[0] for r in rows))
    (data_dir / "defects.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    clean = [f"train:{i}" for i, r in enumerate(rows) if r[1] is None]
    return DemoData(data_dir, db_path, data_dir / "train.jsonl", data_dir / "eval.jsonl", entries, clean)


# ---------------------------------------------------------------- run and check


@dataclass
class Outcome:
    """What the curation did to one injected record."""

    entry: dict[str, Any]
    caught: bool
    by: str


def check(data: DemoData, ledger: list[dict[str, Any]]) -> tuple[list[Outcome], list[dict[str, Any]]]:
    """Each defect's outcome, and the ledger entries that should not exist.

    Those are any drop of a record meant to be kept (clean ones, and defects that normalize repairs), and
    any change to a clean record (its SQL is already canonical, so a change would mean a bug).
    """
    events: dict[str, list[dict[str, Any]]] = {}
    for e in ledger:
        events.setdefault(e["id"], []).append(e)
    outcomes = []
    for d in data.defects:
        seen = events.get(d["id"], [])
        hit = [e for e in seen if e["step"] == d["expect_step"] and e["reason"] in d["expect_reasons"]]
        by = ", ".join(f"{e['step']}:{e['reason']}" for e in (hit or seen)) or "nothing: kept unchanged"
        outcomes.append(Outcome(d, bool(hit), by))
    clean = set(data.clean)
    keep = clean | {d["id"] for d in data.defects if d["expect_step"] == "normalize"}
    wrong = [e for e in ledger if e["id"] in clean or (e["action"] == "drop" and e["id"] in keep)]
    return outcomes, wrong


def _examples(console: Console, data: DemoData, ledger: list[dict[str, Any]]) -> None:
    """A SQL rewrite, a semantic duplicate beside its twin, and an eval leak, straight from the ledger."""
    records = list(read_jsonl(data.train))
    evals = list(read_jsonl(data.eval))

    def text(rid: str) -> str:
        stem, index = rid.split(":")
        return (records if stem == "train" else evals)[int(index)]["instruction"]

    picks = {
        "sql": ("normalize", "sql"),
        "semantic": ("semantic_dedup", "semantic_duplicate"),
        "leak": ("decontaminate", "eval_overlap"),
    }
    injected = {d["id"] for d in data.defects}
    for title, (step, reason) in picks.items():
        e = next((e for e in ledger if e["id"] in injected and (e["step"], e["reason"]) == (step, reason)), None)
        if e is None:
            continue
        console.print(f"\n[bold]{e['id']}[/]  {step}: {reason}  [dim]({title})[/]")
        if e["action"] == "change":
            before, after = e["changes"]["output"]
            console.print(f"  before: {before!r}\n  after:  {after}", highlight=False, markup=False)
        else:
            kept = "evaluation record" if e["twin"].startswith("eval:") else "kept instead"
            console.print(
                f"  dropped: {text(e['id'])}\n  {kept} {e['twin']}: {text(e['twin'])}\n  why: {e['detail']}",
                highlight=False,
                markup=False,
            )


def defects_table(outcomes: list[Outcome], step_order: list[str]) -> Table:
    """Per kind of defect, in pipeline order: how many the expected step caught, and what caught each."""
    table = Table(title="injected defects: were they caught?", title_justify="left")
    for col in ("defect", "expected step: reason", "caught", "what happened"):
        table.add_column(col, justify="right" if col == "caught" else "left")
    groups: dict[tuple[str, str], list[Outcome]] = {}
    for o in sorted(outcomes, key=lambda o: step_order.index(o.entry["expect_step"])):
        groups.setdefault((o.entry["defect"], o.entry["expect_step"]), []).append(o)
    for (defect, step), group in groups.items():
        n = sum(o.caught for o in group)
        colour = "green" if n == len(group) else "red"
        table.add_row(
            defect,
            f"{step}: {'/'.join(group[0].entry['expect_reasons'])}",
            f"[{colour}]{n}/{len(group)}[/]",
            ", ".join(f"{k} ({v})" for k, v in Counter(o.by for o in group).items()),
        )
    return table


def run_demo(out: Path, progress: bool = True) -> bool:
    """Generate the data, curate it with the demo recipe, print what happened; True when all went right."""
    from lmtailor.curate.pipeline import curate
    from lmtailor.curate.recipe import Recipe
    from lmtailor.curate.summary import print_summary

    console = Console(width=None if sys.stdout.isatty() else 160)
    data = generate(out / "data")
    recipe_path = out / "data" / "recipe.yaml"
    recipe_path.write_text(RECIPE.read_text(encoding="utf-8"), encoding="utf-8")
    kinds = Counter(d["defect"] for d in data.defects)
    console.print(
        f"[bold]generated[/] {escape(str(data.dir))}: shop.db (customers, products, orders, order_items), "
        f"eval.jsonl ({sum(1 for _ in read_jsonl(data.eval))} questions from held-out templates),\n"
        f"  train.jsonl: {len(data.clean)} clean + {len(data.defects)} injected "
        f"({', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))}), listed in defects.json",
        highlight=False,
    )

    recipe = Recipe.load(recipe_path)
    manifest = curate(recipe, out / "run", fresh=True, progress=progress)
    print_summary(manifest, str(out / "run"), console)
    ledger = list(read_jsonl(CurateFolder(out / "run").ledger))
    outcomes, wrong = check(data, ledger)

    console.print(defects_table(outcomes, [s.step for s in recipe.steps]))
    for o in outcomes:
        if not o.caught:
            console.print(f"[red]missed[/] {o.entry['id']} ({o.entry['defect']}): {o.by}", highlight=False)
    dropped = {e["id"] for e in wrong if e["action"] == "drop"} & set(data.clean)
    console.print(
        f"clean records wrongly dropped: [{'red' if dropped else 'green'}]{len(dropped)}[/] of {len(data.clean)}",
        highlight=False,
    )
    for e in wrong:
        console.print(
            f"  [red]should not happen:[/] {e['id']} {e['action']} by {e['step']}: {e['reason']} {e.get('detail', '')}",
            highlight=False,
        )
    _examples(console, data, ledger)

    ok = all(o.caught for o in outcomes) and not wrong and manifest.counts.accounted
    verdict = (
        (
            "[bold green]demo passed:[/] every injected defect was caught by the step meant to catch it; "
            "no clean record was dropped or changed"
        )
        if ok
        else "[bold red]demo failed:[/] see above"
    )
    console.print(f"\n{verdict}")
    return ok
