"""Each curate step on real Alpaca/Dolly/LIMA records and on constructed defects, through the real pipeline."""

from __future__ import annotations

from functools import partial
from itertools import islice
from pathlib import Path

import pytest
import support

from lmtailor.core.io import read_examples, read_jsonl, write_examples
from lmtailor.core.records import Example
from lmtailor.curate.manifest import Counts
from lmtailor.curate.pipeline import curate
from lmtailor.curate.recipe import Recipe

# These records have always named their source "t" rather than "t.jsonl".
alpaca = partial(support.alpaca, source="t")


def run_steps(tmp_path: Path, examples: list[Example], steps: list[dict], **recipe) -> tuple[list[dict], list[dict]]:
    """Write examples, curate them with `steps`, return (curated alpaca rows, ledger entries)."""
    src = tmp_path / "in.jsonl"
    write_examples(src, examples, "alpaca")
    r = Recipe.parse({"inputs": [str(src)], "steps": steps, **recipe})
    out = tmp_path / "run"
    manifest = curate(r, out, progress=False)
    assert manifest.counts.accounted
    return list(read_jsonl(out / "curated.jsonl")), list(read_jsonl(out / "ledger.jsonl"))


@pytest.fixture(scope="module")
def alpaca_head(shared_data: Path) -> list[Example]:
    return list(islice(read_examples(shared_data / "alpaca" / "alpaca_data_52k.jsonl"), 600))


def test_normalize_repairs_text_and_blanks_placeholders(tmp_path: Path) -> None:
    rows, ledger = run_steps(
        tmp_path,
        [
            alpaca("Say caf\u00c3\u00a9 twice\u200b", "caf\u00e9 caf\u00e9  \r\n\n\n\nok\x07", "<noinput>", 0),
            alpaca("Name a colour.", "<nooutput>", "N/A", 1),
        ],
        [{"step": "normalize"}],
    )
    assert rows[0] == {"instruction": "Say café twice", "input": "", "output": "café café\n\nok"}
    assert rows[1]["input"] == "" and rows[1]["output"] == ""
    reasons = {(e["id"], e["reason"]) for e in ledger}
    assert {
        ("in:0", "unicode"),
        ("in:0", "control_chars"),
        ("in:0", "whitespace"),
        ("in:0", "placeholder_input"),
        ("in:1", "placeholder_input"),
        ("in:1", "placeholder_output"),
    } <= reasons
    change = next(e for e in ledger if e["reason"] == "unicode")
    assert change["changes"]["instruction"] == ["Say caf\u00c3\u00a9 twice\u200b", "Say café twice\u200b"]


def test_normalize_canonical_sql_and_template(tmp_path: Path) -> None:
    rows, ledger = run_steps(
        tmp_path,
        [
            alpaca("Count customers in Paris", "select  count(*)\n from customers where  city='Paris'", "", 0),
            alpaca("Broken", "SELEC name FROM WHERE", "", 1),
            alpaca("Already canonical", "SELECT name FROM t", "", 2),
            alpaca("Nested past the parser", "SELECT " + "(" * 100 + "1" + ")" * 100, "", 3),
        ],
        [{"step": "normalize", "sql": {"dialect": "sqlite"}, "answer_template": "SQL: {answer}"}],
    )
    assert [r["output"] for r in rows] == [
        "SQL: SELECT COUNT(*) FROM customers WHERE city = 'Paris'",
        "SQL: SELECT name FROM t",
    ]
    drops = {(e["id"], e["reason"]) for e in ledger if e["action"] == "drop"}
    assert drops == {("in:1", "invalid_sql"), ("in:3", "invalid_sql")}
    # the template is idempotent: a second pass changes nothing
    rows2, ledger2 = run_steps(
        tmp_path / "again",
        [alpaca("q", rows[0]["output"])],
        [{"step": "normalize", "answer_template": "SQL: {answer}"}],
    )
    assert rows2[0]["output"] == rows[0]["output"] and not ledger2


def test_exact_dedup_folds_case_and_whitespace(tmp_path: Path, alpaca_head: list[Example]) -> None:
    base = alpaca_head[:50]
    twin = base[7].copy()
    twin.messages[0]["content"] = "  " + twin.messages[0]["content"].upper().replace(" ", "   ")
    rows, ledger = run_steps(tmp_path, [*base, twin], [{"step": "exact_dedup"}])
    assert len(rows) == 50
    assert ledger == [
        {
            "step": "exact_dedup",
            "id": "in:50",
            "action": "drop",
            "reason": "exact_duplicate",
            "detail": "same instruction+input+output as in:7",
            "twin": "in:7",
        }
    ]


def test_exact_dedup_keeps_field_boundaries(tmp_path: Path) -> None:
    rows, ledger = run_steps(
        tmp_path,
        [alpaca("Translate to French", "Bonjour", "hello", 0), alpaca("Translate to French hello", "Bonjour", "", 1)],
        [{"step": "exact_dedup"}],
    )
    assert len(rows) == 2 and ledger == []


def _edited(ex: Example, swaps: dict[str, str]) -> Example:
    out = ex.copy()
    text = out.messages[-1]["content"]
    for a, b in swaps.items():
        text = text.replace(a, b, 1)
    out.messages[-1]["content"] = text
    return out


def test_near_dedup_finds_edited_copies_and_keeps_by_policy(tmp_path: Path, alpaca_head: list[Example]) -> None:
    long_ones = [ex for ex in alpaca_head if len(ex.field("output").split()) > 60][:40]
    dup = _edited(long_ones[3], {"the": "a", ",": ""})
    dup.messages[-1]["content"] += " And that is all."
    rows, ledger = run_steps(tmp_path, [*long_ones, dup], [{"step": "near_dedup", "threshold": 0.7}])
    drops = [e for e in ledger if e["action"] == "drop"]
    assert [(e["id"], e["twin"]) for e in drops] == [("in:40", "in:3")]
    assert drops[0]["similarity"] >= 0.7 and len(rows) == 40
    clusters = list(read_jsonl(tmp_path / "run" / "clusters.jsonl"))
    assert clusters == [{"step": "near_dedup", "kept": "in:3", "dropped": ["in:40"]}]
    _, ledger = run_steps(
        tmp_path / "longest", [*long_ones, dup], [{"step": "near_dedup", "threshold": 0.7, "keep": "longest"}]
    )
    assert [(e["id"], e["twin"]) for e in ledger] == [("in:3", "in:40")]


def test_semantic_dedup_catches_paraphrases(tmp_path: Path, alpaca_head: list[Example]) -> None:
    base = alpaca_head[:30]
    para = alpaca("Could you list three pieces of advice for keeping healthy?", "Sleep, eat well, move.", "", 99)
    rows, ledger = run_steps(
        tmp_path, [*base, para], [{"step": "semantic_dedup", "threshold": 0.8, "fields": ["instruction"]}]
    )
    drops = [(e["id"], e["twin"], e["reason"]) for e in ledger]
    assert drops == [("in:30", "in:0", "semantic_duplicate")]  # in:0 is "Give three tips for staying healthy."
    assert len(rows) == 30


@pytest.mark.parametrize(
    ("instruction", "inp", "output", "reason"),
    [
        ("Describe the image.", "", "A cat on a mat.", "unseen_context"),
        ("Name the boat depicted in the provided photo.", "Attached photo", "A sailboat.", "unseen_context"),
        (
            "Summarize the following article",
            "https://www.nytimes.com/2010/07/05/business/x.html",
            "Phones.",
            "unseen_context",
        ),
        ("Edit the following sentence to be more concise.", "", "The sentence is concise.", "unseen_context"),
        ("Give me a word.", "", "   ", "empty_answer"),
        (
            "List some fruit that grow on trees in warm places please",
            "",
            "list some fruit that grow on trees in warm places please",
            "repeats_instruction",
        ),
        ("Write a poem.", "", " ".join(["the sea is blue"] * 20), "repetition"),
        ("Write a greeting.", "", "\u2588\u2593\u2592\u2591" * 10 + " hi", "garbage"),
        (
            "Erkläre mir bitte ausführlich, wie ein Verbrennungsmotor im Auto funktioniert.",
            "",
            "Er verbrennt Benzin.",
            "language",
        ),
    ],
)
def test_filter_reasons(tmp_path: Path, instruction: str, inp: str, output: str, reason: str) -> None:
    rows, ledger = run_steps(tmp_path, [alpaca(instruction, output, inp)], [{"step": "filter"}])
    assert rows == [] and [e["reason"] for e in ledger] == [reason]


def test_filter_keeps_ordinary_records(tmp_path: Path, alpaca_head: list[Example]) -> None:
    keepers = [
        alpaca("Find the synonyms of the following word: 'Tenacious'.", "Persistent, determined."),
        alpaca("Write a function to compute the factorial of a given number.", "def f(n): ..."),
        alpaca("Edit the following sentence.", "Rewritten.", "He go home."),
        alpaca("Translate to French.", "Bonjour tout le monde, comment allez-vous aujourd'hui ?", "Hello all"),
        alpaca('Translate the sentence "Dónde está la estación de autobuses?" into English', "Where is it?"),
        alpaca("Translate the following phrase into a series of emojis.", "💃🏻🌃🕺🏼", "dancing at night"),
    ]
    _, ledger = run_steps(tmp_path, keepers + alpaca_head[:200], [{"step": "filter"}])
    assert not [e for e in ledger if e["id"] in {f"in:{i}" for i in range(len(keepers))}]
    assert len(ledger) <= 6  # a few real defects in the first 200 Alpaca records, not a sweep


def test_decontaminate_drops_eval_overlap(tmp_path: Path, shared_data: Path) -> None:
    dolly = shared_data / "dolly" / "dolly_first6400.jsonl"
    eval_set = list(islice(read_examples(dolly, _dolly()), 20))
    train = [alpaca(f"Question {i} about nothing in particular at all today", "An answer.", "", i) for i in range(5)]
    leaked = eval_set[4].copy()
    short = alpaca("What is two plus two", "Four", "", 7)
    eval_path = tmp_path / "eval.jsonl"
    write_examples(eval_path, [*eval_set, short], "alpaca")
    rows, ledger = run_steps(
        tmp_path, [*train, leaked, short], [{"step": "decontaminate", "eval": [{"path": str(eval_path)}]}]
    )
    assert sorted((e["id"], e["twin"]) for e in ledger) == [("in:5", "eval:4"), ("in:6", "eval:20")]
    assert len(rows) == 5


def _dolly():
    from lmtailor.core.io import ReadOptions

    return ReadOptions(columns={"response": "output"})


def test_mix_blends_general_data_with_caps(tmp_path: Path, shared_data: Path, alpaca_head: list[Example]) -> None:
    steps = [
        {
            "step": "mix",
            "ratio": 0.5,
            "seed": 3,
            "sources": [
                {"path": str(shared_data / "dolly" / "dolly_first6400.jsonl"), "columns": {"response": "output"}},
                {"path": str(shared_data / "lima" / "lima.json"), "max": 10},
            ],
        }
    ]
    rows, ledger = run_steps(tmp_path, alpaca_head[:100], steps)
    added = [e for e in ledger if e["action"] == "add"]
    by_source = {s: sum(e["id"].startswith(s) for e in added) for s in ("dolly_first6400", "lima")}
    assert by_source == {"dolly_first6400": 50, "lima": 10}
    assert len(rows) == 160
    rows2, _ = run_steps(tmp_path / "again", alpaca_head[:100], steps)
    assert rows2 == rows  # seeded


def test_select_keeps_best_diverse(tmp_path: Path, alpaca_head: list[Example]) -> None:
    items = alpaca_head[:40]
    for i, ex in enumerate(items):
        ex.metadata["extra"] = {"score": i}
    clone = items[39].copy()
    clone.metadata["extra"] = {"score": 100}
    rows, ledger = run_steps(
        tmp_path, [*items, clone], [{"step": "select", "n": 10, "min_distance": 0.05, "score_field": "score"}]
    )
    assert len(rows) == 10
    too_close = [e for e in ledger if e["reason"] == "too_similar"]
    assert [(e["id"], e["twin"]) for e in too_close] == [("in:39", "in:40")]
    kept_scores = sorted(r["score"] for r in rows)
    assert kept_scores == [*range(30, 39), 100]


def test_recipe_errors_name_the_field(tmp_path: Path) -> None:
    from lmtailor.core.config import ConfigError

    bad = tmp_path / "r.yaml"
    bad.write_text(
        "inputs: [a.jsonl]\nsteps:\n  - step: near_dedup\n    threshold: 3\n    ngram: 9\n  - step: nope\n"
        "  - step: filter\n    languages: [en, xx]\n"
    )
    with pytest.raises(ConfigError) as e:
        Recipe.load(bad)
    msg = str(e.value)
    assert str(bad) in msg and "steps.0.near_dedup.threshold" in msg and "steps.1" in msg
    assert "steps.0.near_dedup.ngram" in msg  # the shingler has mixing constants for 8 positions
    assert "steps.2.filter.languages" in msg and "xx" in msg
    with pytest.raises(ConfigError, match=r"distinct file names.*train is used twice"):
        Recipe.parse({"inputs": ["a/train.jsonl", "b/train.jsonl"]})


def test_each_registered_step_answers_to_its_name_and_is_of_one_kind() -> None:
    from lmtailor.curate.registry import STEPS, step_class
    from lmtailor.curate.step import RecordStep, SetStep

    for name in STEPS:
        cls = step_class(name)
        assert cls.model_fields["step"].default == name and issubclass(cls, RecordStep | SetStep), name


def test_an_empty_stream_flows_through_every_step(tmp_path: Path) -> None:
    """Every record rejected at read time (here `{}`): each step must take no examples and give none."""
    src = tmp_path / "nothing.jsonl"
    src.write_text("{}\n{}\n")
    other = tmp_path / "eval.jsonl"
    write_examples(other, [alpaca("Name a colour.", "Blue.")], "alpaca")
    findings = tmp_path / "findings.jsonl"
    findings.write_text("")
    steps = [{"step": "normalize", "sql": {"dialect": "sqlite"}}, {"step": "exact_dedup"}, {"step": "near_dedup"},
             {"step": "semantic_dedup"}, {"step": "filter"}, {"step": "decontaminate", "eval": [{"path": str(other)}]},
             {"step": "select", "n": 5}, {"step": "findings", "path": str(findings)}]  # fmt: skip
    recipe = Recipe.parse({"inputs": [str(src)], "steps": steps, "on_error": "skip"})
    manifest = curate(recipe, tmp_path / "run", progress=False)
    assert manifest.counts == Counts(input=2, rejected=2, dropped=0, added=0, kept=0, accounted=True)
    assert [s.out for s in manifest.steps] == [0] * 9
    assert (tmp_path / "run" / "curated.jsonl").read_text() == ""


def test_embedding_cache_keys_each_text_alone(tmp_path: Path) -> None:
    """Keys joined with NUL once let one text ("A\\n\\x00A\\n") stand for two ("A\\n", "A\\n") and hand them
    one cached vector, so the two copies were never compared. Each text is now keyed on its own."""
    from lmtailor.text.embeddings import embed

    poison = "Name a dog breed.\n\x00Name a dog breed.\n"
    single = embed([poison])
    pair = embed(["Name a dog breed.\n", "Name a dog breed.\n"])
    assert pair.shape == (2, 384) and float(pair[0] @ pair[1]) > 0.999 and float(single[0] @ pair[0]) < 0.999
    rows, ledger = run_steps(
        tmp_path,
        [alpaca(poison.rstrip("\n"), "Labrador.", i=0), alpaca("Name a dog breed.", "Poodle.", i=1),
         alpaca("Name a dog breed.", "Beagle.", i=2)],
        [{"step": "semantic_dedup"}],
    )  # fmt: skip
    assert [(e["id"], e["reason"], e["twin"]) for e in ledger] == [("in:2", "semantic_duplicate", "in:1")]
    assert [r["output"] for r in rows] == ["Labrador.", "Poodle."]
