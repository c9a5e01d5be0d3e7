"""format: the output formats a dataset uses, and the records that break the format they were asked for.

Mixed sets such as Alpaca are mostly prose with lists and code where a task calls for them, so a record is
judged against the format its own instruction asks for (JSON, a SQL query, Python, code at all, a word limit,
a number of items), not against the dataset's majority. Answers that claim a machine format are parsed: JSON
with `json`, SQL with sqlglot, Python with `ast`. Prompt scaffolding ("Input:", "### Instruction") that only
some instructions carry is a template used inconsistently.
"""

from __future__ import annotations

import ast
import json
import re
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from sqlglot.errors import SqlglotError

from lmtailor.audit.charts import count_bars, note
from lmtailor.audit.check import Check, CheckContext, Plot
from lmtailor.audit.finding import Finding, Severity
from lmtailor.core.records import Example
from lmtailor.sql.parse import parse_sql

# ---------------------------------------------------------------- what an answer is

_FENCE = re.compile(r"```[ \t]*([\w+#-]*)[^\n]*\n(.*?)```", re.S)
# ```code``` opened and closed on one line is inline code (StackExchange style, common in LIMA), not a block
INLINE_FENCE = re.compile(r"```[^`\n]+```")


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced code block, inline triple-backtick code left out."""
    return _FENCE.findall(INLINE_FENCE.sub(" ", text))


_SQL_START = re.compile(
    r"^[ \t]*(?:\d+[.)]\s*)?((?:SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(?:OR\s+REPLACE\s+)?"
    r"(?:TABLE|VIEW|INDEX|UNIQUE\s+INDEX|DATABASE|SCHEMA)|ALTER\s+TABLE|DROP\s+(?:TABLE|VIEW|INDEX|DATABASE)|"
    r"WITH\s+\w+\s+AS\s*\()\s)",
    re.I | re.M,
)
_SQL_HINT = re.compile(r"\b(?:SELECT|INSERT|UPDATE|DELETE|CREATE|ALTER|DROP|WITH)\b")
_SQL_INLINE = re.compile(r"\bSELECT\b.+?\bFROM\b|\b(?:INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET)\b", re.I | re.S)
_JSON_START = re.compile(r'^\s*(?:\[\s*)?\{\s*"[^"\n]*"\s*:')
_CODE_HINT = re.compile(
    r"[;{}]\s*$|^\s*(?:def|class|import|from|for|while|if|return|print|function|var|let|const|public|#include|"
    r"#!|<\w+)\b|^\s*\w+\s*=",
    re.M,
)
_CODE_LINE = re.compile(
    r"^\s*(?:def |class |import |from \w[\w.]* import |return\b|for .+:$|while .+:$|if .+:$|elif |else:|try:|"
    r"except\b|print\(|function\b|var |let |const |public |private |static |#include|#!|echo |int main|"
    r"console\.log|System\.out|<\?php|<(?:html|div|body|head|script|style|table|ul|form|p|h\d)\b|"
    r"\w+\s*=\s*[\w\[{(\"'].*$|[\w.]+\(.*\)|[}\]);]+\s*$|.*[;{]\s*$)",
    re.M,
)
_LIST_LINE = re.compile(r"^\s*(?:\d{1,2}[.)]|[-*•]|[a-zA-Z][.)])\s*\S", re.M)
_TABLE_LINE = re.compile(r"^\s*\|?[^|\n]+\|[^|\n]+\|", re.M)

LENGTH_BANDS = (
    (5, "1-5 words"),
    (20, "6-20 words"),
    (50, "21-50 words"),
    (100, "51-100 words"),
    (250, "101-250 words"),
    (10**9, "over 250 words"),
)


def length_band(text: str) -> str:
    words = len(text.split())
    return next(name for limit, name in LENGTH_BANDS if words <= limit)


_CODE_CHARS = (";", "{", "}", "=", "<", "#", "def ", "import ", "print", "return", "class ", "echo ")


def _looks_codey(text: str) -> bool:
    """Substring pre-test for the code regexes: prose rarely holds any of these."""
    return any(c in text for c in _CODE_CHARS)


def output_format(text: str) -> str:
    """json, sql, code, table, list or prose: what the answer is, judged by its shape (cheap tests first)."""
    stripped = text.strip()
    if stripped[:1] in "{[" and _JSON_START.match(stripped):
        return "json"
    if _SQL_HINT.search(stripped) and any(_is_statement(s, asked=False) for s in sql_statements(stripped)):
        return "sql"
    if "```" in stripped and fenced_blocks(stripped):
        return "code"
    multiline = "\n" in stripped
    if _looks_codey(stripped) and _CODE_HINT.search(stripped):
        lines = sum(1 for line in stripped.splitlines() if line.strip())
        if len(_CODE_LINE.findall(stripped)) >= max(2 if multiline else 1, lines // 2):
            return "code"
    if "|" in stripped and len(_TABLE_LINE.findall(stripped)) >= 2:
        return "table"
    if multiline and len(_LIST_LINE.findall(stripped)) >= 2:
        return "list"
    return "prose"


# ---------------------------------------------------------------- what the instruction asks for

_MAKE = (
    r"(?:write|create|generate|construct|build|design|develop|implement|compose|produce|formulate|give|provide|"
    r"output|return|convert|transform|format|represent|rewrite|make|prepare|code|program|type)"
)
_ASKS_JSON = re.compile(
    rf"\b{_MAKE}\b[^.?!\n]{{0,60}}\bjson\b|\b(?:in|into|to|as)\s+(?:an?\s+)?(?:valid\s+|well-structured\s+)?json\b",
    re.I,
)
_ASKS_OTHER_FORMAT = re.compile(
    r"\b(?:into|to|in|as)\s+(?:an?\s+)?(?:\w+\s+)?(?:yaml|csv|xml|html|table|list|python|text|"
    r"dictionar\w*|markdown|sql|string|array\s+of\s+keys)\b",
    re.I,
)
_JSON_SOURCE = re.compile(
    r"\b(?:parse|read|from|explain|describe|what\s+is|compare|difference)\b[^.?!\n]{0,30}\bjson\b|"
    r"\b(?:following|given|this|above|below)\s+json\b|\bjson\s+(?:data|object|string|code)\s+(?:below|above)",
    re.I,
)
_ASKS_SQL = re.compile(
    rf"\b{_MAKE}\b[^.?!\n]{{0,80}}\b(?:sql|mysql|postgres(?:ql)?|sqlite|t-sql|pl/sql)\b[^.?!\n]{{0,30}}"
    rf"\b(?:query|queries|statement|command|code)\b|\b{_MAKE}\b[^.?!\n]{{0,30}}\b(?:a|an|the)\s+(?:sql\s+|database\s+)?"
    rf"query\b[^.?!\n]{{0,80}}\b(?:table|database|records?|rows?|columns?|customers?|employees?|orders?|products?)\b",
    re.I,
)
_OTHER_QUERY = re.compile(
    r"\b(?:following|given|this|above|below|existing|provided|missing)\s+(?:part\s+of\s+(?:the\s+)?)?(?:\w+\s+)?"
    r"(?:sql\s+)?(?:query|statement)\b|\boutput\b|\bresults?\b|\b(?:in|using)\s+(?:java|python|javascript|c\+\+|c#|r)\b|"
    r"\b(search\s+(?:engine|query)|google|bing|web\s+search|mongodb|nosql|graphql|sparql|"
    r"cypher|elasticsearch|jdbc|regex|natural\s+language|pandas|keywords?)\b",
    re.I,
)
_LANGUAGES = re.compile(
    r"\b(python|javascript|js|typescript|java|c\+\+|c#|c|ruby|php|go|golang|rust|swift|kotlin|scala|perl|r|matlab|"
    r"bash|shell|html|css|sql|haskell|lua|dart|julia|vba|pseudo-?code|assembly|jquery|react|node(?:\.js)?)\b",
    re.I,
)
_ASKS_CODE = re.compile(
    r"^(?:please\s+)?(?:write|create|generate|implement|develop|construct|build|code|compose|produce|type)\b"
    r"(?:\s+(?:me|us))?\s+(?:a|an|the|some|your)?\s*(?:(?:short|simple|basic|small|complete|working|valid|sample|"
    r"recursive|few\s+lines\s+of|lines?\s+of)\s+)*(?:(?P<lang>[\w+#.-]+)\s+)?"
    r"(?P<what>function|code\s+snippet|snippet|code|program|script|class|method)\b",
    re.I,
)
_NOT_CODE_REQUEST = re.compile(
    r"\b(?:following|given|this|above|below|existing|provided)\s+(?:\w+\s+)?(?:code|function|program|script|snippet)\b|"
    r"\boutput\b|class\s+(?:schedule|plan|lesson|project|activity|syllabus|curriculum|discussion|presentation|list)|"
    r"\b(code\s+of|dress\s+code|color\s+code|zip\s+code|area\s+code|morse|qr\s+code|bar\s*code|promo(?:tional)?\s+code|"
    r"discount\s+code|secret\s+code|code\s+word|codes?\s+of\s+conduct|script\s+for\s+(?:a|an|the)\s+(?:video|movie|"
    r"film|scene|play|commercial|ad|podcast|conversation|dialogue|skit|show|presentation|speech|call|interview)|"
    r"(?:movie|film|video|tv|radio|television|play|commercial|ad|advertisement|sales|phone|call|customer\s+service|"
    r"comedy|podcast|dialogue|interview|presentation)\s+script|loyalty|training|rewards?|exercise|fitness|workout|"
    r"marketing|mentorship|learning|educational|study|diet|meal|wellness|volunteer|recycling|affiliate|"
    r"function\s+of|functions\s+of|role|describe|explain|comment|pseudo-?code|flow\s*chart|outline|steps?|"
    r"algorithm\s+in\s+(?:plain\s+)?english|test\s+cases?)\b",
    re.I,
)
_PROGRAM_VERB = re.compile(
    r"\b(?:prints?|takes?|returns?|reads?|outputs?|accepts?|calculates?|computes?|converts?|sorts?|checks?|finds?|"
    r"counts?|reverses?|detects?|determines?|stores?|encrypts?|decrypts?|validates?|parses?|removes?|searches?)\b",
    re.I,
)
_CODE_EVIDENCE = re.compile(r"```|`[^`\n]+`|^#!|^\s*(?:echo|SELECT|CREATE|<\w+)\b", re.M | re.I)
_PYTHON_MARKERS = re.compile(
    r"^\s*(?:def \w+\(.*\)\s*(?:->.*)?:|import \w+|from [\w.]+ import |class \w+.*:|"
    r"elif .*:|print\(|for \w+(?:, \w+)? in .*:)",
    re.M,
)
_OTHER_LANGUAGE_MARKERS = re.compile(
    r"[;{]\s*(?://.*)?$|^\s*//|^\s*}|^\s*end\s*$|\b(?:function|var|let|const|public|private|static|fn|func|echo|"
    r"puts|println|printf|cout|console\.log|System\.out)\b|\b(?:int|void|String|boolean|char|double|float)\s+\w+\s*[=;(\[]|"
    r"#include|=>|\$\w+|\+\+|&&|\|\||!==|::",
    re.M,
)
_RECORD_LABEL = re.compile(r"^\s*\d+\.\s*(?:instruction|input|output)\s*:", re.I)
_PROSE_LINE = re.compile(r"^[A-Z][a-z']*(?:\s+\S+){4,}$")
_ERROR_EXAMPLE = re.compile(
    r"\b(?:example|examples|sample)\s+of\s+(?:an?\s+)?(?:\w+\s+)?(?:error|bug|mistake)s?\b|"
    r"\b(?:find|identify|spot|detect|explain)\b[^.?!\n]{0,40}\b(?:error|bug|mistake)s?\b",
    re.I,
)
# A section showing what the code prints: "Output:", "# Output", "Expected output: ...".
_OUTPUT_SECTION = re.compile(
    r"^\s*(?:(?:#+|//)\s*)?(?:sample\s+|example\s+|expected\s+)?(?:output|result)s?\s*:|"
    r"^\s*(?:#+|//)\s*(?:sample\s+|example\s+|expected\s+)?output\b",
    re.I,
)
_CODE_START = re.compile(
    r"^(?:def |class |import |from [\w.]+ import |@\w|for \w|while |if |print\(|with |try:|"
    r"[A-Za-z_]\w*(?:\[.*\])?\s*=[^=]|[A-Za-z_][\w.]*\(.*\)\s*$|#|\"\"\"|''')"
)

_WORD_LIMIT = re.compile(
    r"\b(?:in|within|using)\s+(no\s+more\s+than|not\s+more\s+than|under|less\s+than|fewer\s+than|at\s+most|"
    r"a\s+maximum\s+of|maximum\s+of|maximum|max\.?|up\s+to)\s+(\d{2,4})\s+words\b|"
    r"\b(?:in|of)\s+(\d{2,4})\s+words\s+or\s+(?:less|fewer)\b|"
    r"^(?:describe|summari[sz]e|write|explain|tell|generate|compose|create)\b[^.?!\n]*\bin\s+(\d{2,4})\s+words\b",
    re.I,
)
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}
_ASKS_ITEMS = re.compile(
    r"^(?:please\s+)?(?:list|name|generate\s+a\s+list\s+of|make\s+a\s+list\s+of|create\s+a\s+list\s+of|"
    r"give\s+(?:me\s+)?a\s+list\s+of|provide\s+a\s+list\s+of|compile\s+a\s+list\s+of)\s+(?:the\s+)?(?:top\s+)?"
    r"(\d{1,2}|"
    + "|".join(_NUMBER_WORDS)
    + r")\s+(?!(?:-|%|to\s|or\s|and\s|words?|sentences?|paragraphs?|lines?|syllables?|"
    r"characters?|letters?|minutes?|hours?|days?|weeks?|months?|years?|seconds?|stanzas?|verses?|pages?|digits?|"
    r"times?|steps?|pros|cons|advantages\s+and|benefits\s+and)\b)",
    re.I,
)
_NUMBERED = re.compile(r"^\s*(\d{1,2})[.)]\s*\S", re.M)
_SECTION = re.compile(
    r"^\s*(?:pros|cons|advantages|disadvantages|benefits|drawbacks|similarities|differences|"
    r"[A-Z][\w ]{0,40}):\s*$",
    re.M | re.I,
)

# Prompt scaffolding inside an instruction: labelled sections or a chat/prompt template's markers.
_SCAFFOLD_HINTS = (":", "#", "nswer", "[INST", "<|", "<s>", "<start_of_turn>", "elow is an instruction")
_SCAFFOLD = re.compile(
    r"(?im)^\s*(?:#{1,4}\s*)?(?:instruction|input|output|response)\s*:|^\s*#{2,4}\s*\w|(?-i:(?:\n|\?)\s*Answer\s*:?\s*\Z)|"
    r"\[/?INST\]|<\|im_start\|>|<start_of_turn>|<s>|^\s*below\s+is\s+an\s+instruction\b"
)


def _scaffold(instruction: str) -> re.Match[str] | None:
    if not any(h in instruction for h in _SCAFFOLD_HINTS):
        return None
    return _SCAFFOLD.search(instruction)


_SQL_DIALECTS: tuple[str | None, ...] = (None, "mysql", "tsql", "postgres", "sqlite")


def json_error(text: str) -> str | None:
    """Why `text` (or its fenced block) is not valid JSON, or None."""
    candidate = text.strip()
    if fence := _FENCE.search(candidate):
        candidate = fence.group(2).strip()
    try:
        json.loads(candidate)
    except ValueError as e:
        return str(e)
    return None


def sql_statements(text: str) -> list[str]:
    """The SQL statements an answer gives: fenced or at line starts, each up to its ';' or the next blank line."""
    blocks = [b for lang, b in fenced_blocks(text) if lang.lower() in ("", "sql", "mysql", "postgresql", "sqlite")]
    source = "\n\n".join(blocks) if blocks else text
    out: list[str] = []
    starts = list(_SQL_START.finditer(source))
    for i, m in enumerate(starts):
        end = starts[i + 1].start() if i + 1 < len(starts) else len(source)
        chunk = source[m.start(1) : end]
        chunk = re.split(r"\"\"\"|'''|```", chunk, maxsplit=1)[0]
        if (semi := chunk.find(";")) >= 0:
            chunk = chunk[: semi + 1]
        elif (blank := re.search(r"\n\s*\n", chunk)) is not None:
            chunk = chunk[: blank.start()]
        out.append(chunk.strip())
    return out


def _is_statement(statement: str, asked: bool) -> bool:
    """A SQL statement rather than prose that starts like one ("Select the file..."): upper-case keywords unless
    SQL was asked for, and a FROM after SELECT."""
    keyword = statement.split(None, 1)[0] if statement.strip() else ""
    if not asked and not keyword.isupper():
        return False
    return keyword.upper() != "SELECT" or re.search(r"\bFROM\b", statement, re.I) is not None


def sql_error(statement: str) -> str | None:
    """sqlglot's complaint when no common dialect parses the statement, else None."""
    first = ""
    for dialect in _SQL_DIALECTS:
        try:
            parse_sql(statement, dialect)
            return None
        except SqlglotError as e:
            first = first or str(e).splitlines()[0][:200]
        except ValueError as e:
            first = first or str(e)[:200]
    return first


def python_code(text: str, instruction: str = "") -> list[str]:
    """The Python blocks in an answer. Markdown answers: their ```python blocks and unlabelled blocks that look
    like Python. Other answers: the lines from the first statement on, without a trailing 'Output:' section or
    closing prose, when the answer is meant as Python (asked for by name, or Python-shaped)."""
    if "```" in text:
        return [
            block
            for lang, block in fenced_blocks(text)
            if lang.lower() in ("python", "py", "python3") or (not lang and _python_shaped(block))
        ]
    lines = text.replace("\u00a0", " ").splitlines()
    start = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if start is None:
        return []
    code: list[str] = []
    in_string = False
    for line in lines[start:]:
        prose = _PROSE_LINE.match(line) and not _CODE_START.match(line)
        if not in_string and (_OUTPUT_SECTION.match(line) or _RECORD_LABEL.match(line) or prose):
            break
        code.append(line)
        in_string ^= (line.count('"""') + line.count("'''")) % 2 == 1
    block = "\n".join(code).rstrip()
    named = {m.lower() for m in _LANGUAGES.findall(instruction)}
    if not block or named - {"python"} or not ("python" in named or _python_shaped(block)):
        return []
    return [block]


def _python_shaped(code: str) -> bool:
    return bool(_PYTHON_MARKERS.search(code)) and not _OTHER_LANGUAGE_MARKERS.search(code)


def python_error(code: str) -> tuple[str, int | None] | None:
    """(message, line) when the code does not parse as Python 3."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except SyntaxError as e:
            return e.msg, e.lineno
        except (ValueError, RecursionError, MemoryError) as e:
            return str(e), None
    return None


def _plot(m: dict[str, Any]) -> str:
    """How many answers take each output format."""
    formats = m.get("formats")
    if not isinstance(formats, dict) or not formats:
        return note("The format check recorded no format distribution.")
    return count_bars(formats, "Records per output format")


class FormatConsistency(Check):
    """Dominant output formats and length bands; answers that break the format asked for or do not parse."""

    check: Literal["format"] = "format"
    plots = (Plot("plot-formats", "Formats", _plot),)
    scaffold_share: float = 0.5  # the side of a template split below this share is the inconsistent one

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        formats: Counter[str] = Counter()
        bands: Counter[str] = Counter()
        scaffolded: list[tuple[Example, str]] = []  # with the marker found
        by_source: dict[str, Counter[str]] = {}
        for ex in examples:
            instruction, output = ex.field("instruction"), ex.field("output")
            if marker := _scaffold(instruction):
                scaffolded.append((ex, marker.group(0).strip()))
            if not output.strip():
                continue
            fmt = output_format(output)
            formats[fmt] += 1
            bands[length_band(output)] += 1
            by_source.setdefault(str(ex.metadata.get("source", "")), Counter())[fmt] += 1
            for severity, score, message, evidence in self.problems(instruction, output, fmt):
                yield ctx.finding(ex, severity, score, message, **evidence)
        yield from self._templates(examples, scaffolded, ctx)
        for source, counts in by_source.items():
            total = sum(counts.values())
            top, n = counts.most_common(1)[0]
            yield ctx.dataset_finding(
                source,
                "info",
                n / total,
                f"dominant output format: {top} ({n / total:.0%} of {total} answers)",
                formats=dict(counts.most_common()),
            )
        ctx.metrics["formats"] = dict(formats.most_common())
        ctx.metrics["length_bands"] = {name: bands[name] for _, name in LENGTH_BANDS}
        ctx.metrics["scaffolded_instructions"] = len(scaffolded)

    def problems(
        self, instruction: str, output: str, fmt: str
    ) -> Iterator[tuple[Severity, float, str, dict[str, Any]]]:
        """(severity, score, message, evidence) for each way the answer breaks its format; `fmt` is its shape."""
        low = instruction.lower()
        asks_json = (
            "json" in low
            and bool(_ASKS_JSON.search(instruction))
            and not _JSON_SOURCE.search(instruction)
            and not _ASKS_OTHER_FORMAT.search(instruction)
        )
        if (asks_json or fmt == "json") and (error := json_error(output)):
            why = "the instruction asks for JSON but the answer" if asks_json else "the answer looks like JSON but"
            yield "medium", 0.8, f"{why} does not parse: {error}", {"kind": "invalid_json", "error": error}
        asks_sql = (
            ("sql" in low or "query" in low)
            and bool(_ASKS_SQL.search(instruction))
            and not _OTHER_QUERY.search(instruction)
        )
        if asks_sql or fmt == "sql":
            statements = [st for st in sql_statements(output) if _is_statement(st, asks_sql)]
            for statement in statements:
                if (error := sql_error(statement)) is not None:
                    yield (
                        "medium",
                        0.8,
                        f"the SQL does not parse: {error}",
                        {"kind": "invalid_sql", "statement": statement[:300], "error": error},
                    )
                    break
            if asks_sql and not statements and not _SQL_INLINE.search(output) and not _CODE_LINE.search(output):
                yield (
                    "medium",
                    0.7,
                    "the instruction asks for a SQL query but the answer holds none",
                    {"kind": "missing_sql"},
                )
        if (fmt == "code" or "```" in output) and not _ERROR_EXAMPLE.search(instruction):
            for block in python_code(output, instruction):
                if "\n" not in block.strip() and block.rstrip().endswith(":"):
                    continue  # a one-line fragment such as "for x in xs:"
                if error := python_error(block):
                    msg, line = error
                    py2 = "print" in msg and "parentheses" in msg
                    where = f" (line {line})" if line else ""
                    yield (
                        ("low" if py2 else "medium"),
                        0.5 if py2 else 0.8,
                        f"the Python does not parse{' (Python 2 syntax)' if py2 else ''}: {msg}{where}",
                        {"kind": "invalid_python", "error": msg, "line": line},
                    )
                    break
        if not asks_sql and self._missing_code(instruction, output):
            yield "medium", 0.7, "the instruction asks for code but the answer holds none", {"kind": "missing_code"}
        if "words" in low and (limit := _WORD_LIMIT.search(instruction)) is not None:
            n = int(next(g for g in limit.groups()[1:] if g))
            words = len(output.split())
            if words > n * 1.25 + 5:
                yield (
                    "low",
                    min(1.0, words / n / 4),
                    f"the answer has {words} words; the instruction allows {n}",
                    {"kind": "word_limit", "limit": n, "words": words},
                )
        if (items := _ASKS_ITEMS.match(instruction)) is not None:
            asked = int(items.group(1)) if items.group(1).isdigit() else _NUMBER_WORDS[items.group(1).lower()]
            given = _list_length(output)
            if given is not None and given != asked:
                yield (
                    "low",
                    0.4,
                    f"the instruction asks for {asked} items; the answer lists {given}",
                    {"kind": "item_count", "asked": asked, "given": given},
                )

    @staticmethod
    def _missing_code(instruction: str, output: str) -> bool:
        """Asked to write code, answered without any. A function or code is code; a program only when it computes
        something ("a program that sorts..."); a script, method or class only in a named language."""
        asks = _ASKS_CODE.search(instruction)
        if asks is None or _NOT_CODE_REQUEST.search(instruction):
            return False
        lang = (asks.group("lang") or "").lower()
        if lang and not _LANGUAGES.fullmatch(lang) and lang not in ("computer", "new"):
            return False  # "a marketing script", "a loyalty program"
        named = _LANGUAGES.search(instruction)
        what = asks.group("what").lower()
        if what in ("script", "method", "class") and not named:
            return False
        if what == "program" and not named and not _PROGRAM_VERB.search(instruction, asks.end()):
            return False
        return not _CODE_LINE.search(output) and not _CODE_EVIDENCE.search(output)

    def _templates(
        self, examples: Sequence[Example], scaffolded: list[tuple[Example, str]], ctx: CheckContext
    ) -> Iterator[Finding]:
        """Flag the minority side of a split between instructions with prompt scaffolding and those without."""
        if not examples or not scaffolded or len(scaffolded) == len(examples):
            return
        share = len(scaffolded) / len(examples)
        if share < self.scaffold_share:
            for ex, marker in scaffolded:
                yield ctx.finding(
                    ex,
                    "low",
                    0.4,
                    f"the instruction carries prompt scaffolding that {len(examples) - len(scaffolded)} of "
                    f"{len(examples)} instructions lack",
                    kind="template",
                    marker=marker,
                )
        else:
            with_ids = {id(ex) for ex, _ in scaffolded}
            for ex in examples:
                if id(ex) not in with_ids:
                    yield ctx.finding(
                        ex,
                        "low",
                        0.4,
                        f"the instruction lacks the prompt scaffolding that {len(scaffolded)} of {len(examples)} "
                        "instructions carry",
                        kind="template",
                    )


def _list_length(output: str) -> int | None:
    """Items in a single flat numbered list (1, 2, 3, ...), or None when the answer is not one."""
    if _SECTION.search(output):
        return None
    numbers = [int(n) for n in _NUMBERED.findall(output)]
    if len(numbers) < 2 or numbers != list(range(1, len(numbers) + 1)):
        return None
    return len(numbers)
