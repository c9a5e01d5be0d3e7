"""grounding: answers that state specifics the input never gave.

A model trained on answers that bring their own numbers, names, dates and quotes to a task about a given text
learns to invent. Only tasks grounded in the input count (summarise, extract, rewrite, answer from the text,
with a non-empty input): open questions legitimately bring knowledge. Worse still is content made up for an
input the model cannot read (a bare URL, "[image]", "the attached file"), high, or for a text the input only
describes ("The article discusses…"), medium: there the whole answer is invented.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.finding import Finding, Severity
from lmtailor.core.records import Example
from lmtailor.text.signals import unseen_context

# Tasks whose answer should come from the input. Computing, translating and creative tasks are left out: their
# answers rightly hold numbers or words the input lacks.
_TEXT = (
    r"(?:text|passage|article|paragraph|document|story|email|e-mail|review|report|input|excerpt|transcript|"
    r"conversation|dialogue|news|blog post|post|letter|speech|essay|statement|description|information|data|"
    r"sentence|sentences|paper|abstract|interview|message|tweet)"
)
_GROUNDED = re.compile(
    r"\b(?:summari[sz]\w*|sum up|extract\w*|rewrite|re-write|rephrase|paraphrase|reword|shorten|condense|"
    r"simplify|proofread|edit|revise|correct (?:the|any|all)\b"
    rf"|(?:based on|according to|from|in|using) (?:the |this |these |above |following |given |provided )+{_TEXT}\b"
    rf"|(?:the|this) {_TEXT} (?:says|states|mentions|describes))",
    re.I,
)
_NOT_GROUNDED = re.compile(
    r"\b(?:translat\w*|calculat\w*|comput\w*|solve|convert|estimate|predict|continue|expand|elaborate|"
    r"more detail|creative|imagin\w*|invent|story|poem|generate|example|examples|fictional|"
    r"recommend\w*|suggest\w*|categori[sz]e|classify|research|headline|title|outline|quiz|ways|plan|strategy|"
    r"develop|design|compose|slogan|campaign|marketing|probability|average|mean|median|percent\w*|total|sum of|"
    r"insert|add|complete|replace|fallacy|guess|speaker|who|multiple[- ]choice|questions?|recipe|code|program|"
    r"dialogue|hyperlinks?|format|cite|citation|style|false)\b",
    re.I,
)
# Inputs that stand for something the model cannot read: a bracketed placeholder naming a medium or a document,
# an HTML/Markdown image, "Attached photo", "Image: …", or a bare URL.
_MEDIUM = (
    r"(?:image|img|photo|photograph|picture|pic|painting|drawing|sketch|illustration|video|clip|audio|sound|"
    r"recording|song|music|podcast|file|link|url|attach\w*|article|document|doc|pdf|excel|spreadsheet|sheet|"
    r"table|chart|graph|figure|diagram|data ?set|dataset|data|screenshot|logo|essay|poem|text|corpus|e-?mail|"
    r"website|web ?page|page|map|slides?|presentation|report|paper|book|code|program)"
)
_PLACEHOLDER = re.compile(
    rf"^\s*(?:[\[<(]\s*(?:[^\]>)\n]{{0,60}}?\b{_MEDIUM}s?\b[^\]>)\n]{{0,60}}|{_MEDIUM}s?)\s*[\]>)])\s*$"
    r"|^\s*<img\b|^\s*!\[[^\]]*\]\("
    rf"|^\s*(?:attached|attach|insert|see attached|please see the attached)\b[^\n]{{0,60}}$"
    rf"|^\s*(?:an? |the )?(?:image|photo|photograph|picture|screenshot|video|audio|recording|sound file)s?"
    r"(?:\s*:|\s+(?:of|showing|attached|provided|below)\b)[^\n]{0,40}$",
    re.I,
)
_MEDIUM_WORD = re.compile(rf"\b{_MEDIUM}s?\b")
_CAPTION_WORD = re.compile(r"[a-z]{3,}")
_NOT_CAPTION = frozenset(("insert", "attached", "attach", "here", "provided", "given", "the", "and", "this", "that"))
_URL_ONLY = re.compile(
    r"^\s*(?:(?:url|link|website|article|web ?page|page|source)[^:\n]{0,20}:\s*)?[<\[(]?"
    r"(?:https?://|www\.)\S+[>\])]?\s*$",
    re.I,
)
# URL tasks that work on the address itself, not on the page behind it.
_URL_TEXT_TASK = re.compile(
    r"\b(?:domain|protocol|valid|validate|format|shorten|parse|encode|decode|uri|regex|"
    r"regular expression|string|characters?|components?|top-level|tld|extension|scheme|"
    r"hyperlinks?|html|markdown|anchor|slug|path|api|endpoint|request|links|urls|program|code|script|scrape\w*|"
    r"crawl\w*|function)\b",
    re.I,
)
_DECLINES = re.compile(
    r"\b(?:cannot|can ?not|can'?t|can’t|unable to|not able to|not possible|impossible|no output|nooutput|"
    r"(?:don'?t|do not) have (?:access|the ability)|language model|gpt|as an ai|not provided|no (?:image|photo|"
    r"picture|video|audio|file|link|url|article|document)\b)",
    re.I,
)
# An input that only describes the text the task is about ("The article discusses…", "An article about…"): an
# answer that summarises, quotes or extracts from that text must invent it.
_DESCRIBED = re.compile(
    r"^\s*(?:the |this |an? )?(?:news |research |scientific |online |recent |given |following )?(?:article|blog post|"
    r"blog|post|paper|report|study|book|essay|story|speech|document|text|passage|podcast|lecture|data ?set|survey)s?"
    r"\b[^.\n]{0,40}?\b(?:is about|discusses|discussing|examines|examining|explores|exploring|about|describes|"
    r"describing|covers|covering|focuses|focusing|talks about|on the topic|argues|highlights|looks at|contains)\b",
    re.I,
)
_ASKS_CONTENT = re.compile(
    r"\b(?:summar\w*|key (?:points?|findings?|ideas?|insights?)|main (?:points?|ideas?|arguments?|findings?)|findings|"
    r"quotes?|outline|delete|extract\w*|insights?|highlights?)\b",
    re.I,
)
# Creative takes on a described text (a poem, a tweet, an introduction) may say what the description does not.
_CREATIVE = re.compile(
    r"\b(?:poem|rhym\w*|song|story|creative|introduct\w*|tweet|headline|title|tagline|slogan)\b", re.I
)
_CONTENT_WORD = re.compile(r"[a-z]{4,}")
# Numbers of two digits or more: single digits are mostly counts and list markers.
_NUMBER = re.compile(r"(?<![\w.])\d[\d,]*\d(?:\.\d+)?|(?<![\w.])\d\.\d+")
_URL = re.compile(r"(?:https?://|www\.)[^\s)\]>\"']+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+\.[\w.-]+\b")
# A capitalised word not at the start of a sentence, a line or a quote: a name, a place, a month.
_PROPER = re.compile(
    r"(?<=[^\s.!?:;\"“'(\[\-*•\d])\s+([A-Z][a-zA-Z]+(?:[-'][A-Za-z]+)?(?:\s+(?:of\s+|de\s+)?[A-Z]"
    r"[a-zA-Z]+(?:[-'][A-Za-z]+)?)*)"
)
_MARKUP = re.compile(r"<\w+[^>]*>|[{};]\s*$", re.M)
_TITLE_WORD = re.compile(r"\b[A-Za-z][a-z]{3,}\b")
_QUOTE = re.compile(r"[\"“]([^\"”\n]{12,200})[\"”]")
_WORD = re.compile(r"[a-z0-9]+")
_ZERO_TO_TWENTY = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
)
_NUMBER_WORDS = {
    **{w: str(i) for i, w in enumerate(_ZERO_TO_TWENTY.split())},
    **{"thirty": "30", "forty": "40", "fifty": "50", "hundred": "100", "thousand": "1000", "million": "1000000"},
    "dozen": "12",
}
# Capitalised words that name nothing in particular.
_COMMON = frozenset(
    (
        *("i", "i'm", "i've", "i'd", "i'll", "the", "a", "an", "and", "or", "but", "of", "in", "on", "at", "to"),
        *("for", "with", "by", "from", "as", "is", "are", "was", "were", "be", "it", "its", "this", "that"),
        *("these", "those", "he", "she", "they", "we", "you", "his", "her", "their", "our", "your", "my", "ok"),
        *("okay", "yes", "no", "not", "mr", "mrs", "ms", "dr", "st", "ii", "iii", "iv", "vi", "vii", "viii", "ix"),
    )
)


def _unseen(instruction: str, inp: str) -> tuple[Severity, str] | None:
    """(severity, why) when the input cannot be read (a placeholder, a bare URL, an image the instruction points
    at), else None. A placeholder with a caption ("[Picture of an eagle]") is medium: the answer may only restate
    the caption."""
    if inp.strip() and _PLACEHOLDER.search(inp):
        caption = [w for w in _CAPTION_WORD.findall(_MEDIUM_WORD.sub(" ", inp.lower())) if w not in _NOT_CAPTION]
        why = f"the input '{inp.strip()[:80]}' stands for something the model cannot see"
        if len(caption) >= 2 and not _URL.search(inp):
            return "medium", f"{why}; only its caption is given"
        return "high", why
    url_as_text = _URL_TEXT_TASK.search(instruction)
    if _URL_ONLY.search(inp) and not url_as_text:
        return "high", f"the input is a bare URL ({inp.strip()[:80]}) the model cannot open"
    if url_as_text or len(_WORD.findall(_URL.sub(" ", inp.lower()))) > 5:
        return None  # a URL to work on as text, or an input that gives text to work on besides any link
    if len(_WORD.findall(instruction)) > 40:
        return None  # a long request describes its situation in words ("I saw this video where…")
    why = unseen_context(instruction, inp)
    return ("high", why) if why and not why.startswith("mentions") else None


def _specifics(text: str) -> dict[str, str]:
    """Key (normalised, for lookup) -> surface form of the answer's numbers, URLs, e-mails, names and quotes.

    Runs of capitalised words count once ("United States", "Jordan Peele"): a name is one specific.
    """
    found: dict[str, str] = {}
    for m in _URL.finditer(text):
        found[m.group(0).lower().rstrip(".,;")] = m.group(0)
    for m in _EMAIL.finditer(text):
        found[m.group(0).lower()] = m.group(0)
    for m in _NUMBER.finditer(text):
        found[m.group(0).replace(",", "")] = m.group(0)
    for line in text.splitlines():
        words = _TITLE_WORD.findall(line)
        if len(words) >= 2 and sum(w[0].isupper() for w in words) >= 0.5 * len(words):
            continue  # a title or heading capitalises every word
        for m in _PROPER.finditer(line):
            name = m.group(1)
            if any(w.lower() not in _COMMON for w in name.split()):
                found[name.lower()] = name
    for m in _QUOTE.finditer(text):
        quote = m.group(1).strip()
        if len(quote.split()) >= 3:
            found[" ".join(_WORD.findall(quote.lower()))] = f'"{quote}"'
    return found


def _supported(key: str, source: str, source_words: set[str], numbers: set[str]) -> bool:
    """Whether a specific appears in the source (case-folded; numbers also as number words, which `numbers`
    holds as digits, names word by word, quotes mostly)."""
    if key in source or key in numbers:
        return True
    if key[0].isdigit():
        return False
    words = [w for w in _WORD.findall(key) if len(w) > 1]
    if " " in key and len(words) >= 3 and not key.startswith(("http", "www")):
        return sum(w in source_words for w in words) >= 0.6 * len(words)  # a quote that reworks the source
    return all(w in source_words or w.rstrip("s") in source_words for w in words)


class Grounding(Check):
    """Unsupported specifics in input-grounded answers, and answers invented for unreadable inputs."""

    check: Literal["grounding"] = "grounding"
    min_input_words: int = 8  # shorter inputs name a topic ("The history of pizza"), not a text to work from
    min_unsupported: int = 3
    min_share: float = 0.5

    @staticmethod
    def _invented_from_description(instruction: str, inp: str, answer: str) -> float:
        """Share of the answer's content words absent from a described-not-given input, when the answer runs
        well past the description; 0.0 when the input is not such a description or the answer stays close to it."""
        if not _DESCRIBED.search(inp) or not _ASKS_CONTENT.search(instruction) or _CREATIVE.search(instruction):
            return 0.0
        words = _CONTENT_WORD.findall(answer.lower())
        if len(answer.split()) < 30 or len(words) < 1.5 * len(inp.split()):
            return 0.0
        source = set(_CONTENT_WORD.findall(f"{instruction}\n{inp}".lower()))
        novel = sum(w not in source for w in words) / len(words)
        return novel if novel >= 0.5 else 0.0

    def _grounded(self, instruction: str, inp: str) -> bool:
        """A task to work from the input's own text: not a topic, a title or code, and not a computation or
        creative task, which rightly add what the input lacks."""
        if len(inp.split()) < self.min_input_words or _MARKUP.search(inp):
            return False
        if not _GROUNDED.search(instruction) or _NOT_GROUNDED.search(instruction):
            return False
        words = _TITLE_WORD.findall(inp)
        return sum(w[0].isupper() for w in words) < 0.5 * len(words)

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        unseen = described = ungrounded = grounded = 0
        for ex in examples:
            instruction, inp, answer = ex.field("instruction"), ex.input, ex.field("output")
            if not answer.strip():
                continue
            if unreadable := _unseen(instruction, inp):
                if _DECLINES.search(answer[:200]):
                    continue
                unseen += 1
                severity, why = unreadable
                yield ctx.finding(ex, severity, 1.0, f"the answer is invented: {why}", reason=why, answer=answer[:200])
                continue
            if novel := self._invented_from_description(instruction, inp, answer):
                described += 1
                yield ctx.finding(
                    ex,
                    "medium",
                    novel,
                    f"the input only describes the text; {novel:.0%} of the answer's content words are "
                    f"not in it, so the answer invents the text's content",
                    input=inp[:200],
                )
                continue
            if not self._grounded(instruction, inp):
                continue
            grounded += 1
            specifics = _specifics(answer)
            if not specifics:
                continue
            source = f"{instruction}\n{inp}".lower()
            words = set(_WORD.findall(source))
            numbers = {n.replace(",", "") for n in _NUMBER.findall(source)}
            if len(numbers) >= 2:  # numbers the answer adds are then mostly worked out from the input's own
                specifics = {k: v for k, v in specifics.items() if not k[0].isdigit()}
            numbers |= {_NUMBER_WORDS[w] for w in words if w in _NUMBER_WORDS}  # "seven" supports "7"
            missing = [shown for key, shown in specifics.items() if not _supported(key, source, words, numbers)]
            if len(missing) < self.min_unsupported or len(missing) < self.min_share * len(specifics):
                continue
            ungrounded += 1
            share = len(missing) / len(specifics)
            severity: Severity = "medium" if len(missing) >= 4 and share >= 0.75 else "low"
            yield ctx.finding(
                ex,
                severity,
                share,
                f"{len(missing)} of the answer's {len(specifics)} specifics are not in the instruction or "
                f"input: {', '.join(missing[:5])}",
                unsupported=missing[:20],
                specifics=len(specifics),
            )
        ctx.metrics.update(
            {
                "unseen_input": unseen,
                "described_input": described,
                "grounded_tasks": grounded,
                "unsupported": ungrounded,
            }
        )
