"""claims: answers that claim actions a text model cannot take.

A model trained on "Set a reminder for 8am" → "Reminder set for 8am." learns to say it did things it cannot do:
send, schedule, book, order, call, print, play, browse, check live weather or prices, change a font, attach a
file. The check reads what the instruction asks for and what the answer says it did: an answer that claims the
action is done is high, one that goes along with an impossible request (invents tomorrow's weather, writes
"Reminder: …") is medium, and one that correctly declines is info.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Literal

from lmtailor.audit.check import Check, CheckContext
from lmtailor.audit.finding import Finding, as_written
from lmtailor.core.records import Example

# All patterns run on lower-cased text, without re.I (much slower in Python's re).
# Requests are imperatives: at the start of the instruction or of one of its sentences, so that "How can you set a
# reminder?" or "Describe the 3D printing process" are not taken for requests.
_START = r"(?:^|[.!?:]\s+)(?:please |kindly |can you |could you |now |go ahead and )?"
# What the instruction asks for, by kind. Kinds in _COMPOSABLE have a sensible text reading ("Send an email to
# your professor" → the email; "Install a browser" → how to), so only a claim that the action is done counts there.
_ACTIONS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            "reminder",
            rf"{_START}(?:set|add|schedule|store|put|save)(?: up)? (?:a |an |the |my )?(?:\w+ )?"
            rf"(?:reminder|alarm|timer)s?\b|{_START}remind me\b|{_START}wake me up\b",
        ),
        (
            "booking",
            rf"{_START}(?:book|reserve) (?:a|an|the|me|us|two|three|four|\d+)\b|"
            rf"{_START}make (?:a|an) (?:reservation|booking)\b",
        ),
        (
            "scheduling",
            rf"{_START}(?:schedule|book) (?:a |an |the |my |our )?(?:\w+ )?(?:meeting|appointment|call|"
            r"interview)\b",
        ),
        ("calling", rf"{_START}(?:call|phone|dial|ring|sms)(?![-\w])(?! (?:out|it|this|the function|a function))"),
        (
            "playing",
            rf"{_START}play(?![-\w])(?![^.\n]{{0,40}}\b(?:games?|role|part|devil|card|chess|sport|round|"
            r"instrument|rock)\b)",
        ),
        ("font", rf"{_START}(?:change|increase|decrease|set|make|enlarge|reduce)\b[^.\n]{{0,20}}\bfont\b"),
        (
            "live",
            r"^(?:what(?:'s| is| are| was| will)?|find(?: out)?|tell me|get|look up|check|search(?: for)?|"
            r"give me|report|return|retrieve|predict|estimate|discover|describe|show me|how)\b"
            r"(?=[^\n]{0,80}\b(?:current(?:ly)?|today'?s?|tonight|tomorrow'?s?|right now|latest|live|"
            r"real[- ]time|this week|at the moment|up[- ]to[- ]date)\b)"
            r"(?=[^\n]{0,100}\b(?:weather|temperature|forecast|stock price|share price|price of|prices?|"
            r"exchange rate|score|news|traffic)\b)"
            r"(?![^\n]*\b(?:given (?:the )?(?:\w+ ){0,3}(?:prices?|data|temperatures?|values|figures)|"
            r"in the input|figurative|metaphor|simile|poem|poetic|story|creative|imagin\w*)\b)",
        ),
        (
            "printing",
            rf"{_START}(?:3d[- ])?print (?:out )?(?:this|the|a|an|my|it) (?:\w+ )?(?:document|file|page|"
            r"photo|picture|copy|report|image|poster|label|ticket|object|3d)",
        ),
        (
            "device",
            r"\bturn (?:on|off) (?:the |my )?(?:lights?|tv|television|heater|heating|air conditioning|fan|"
            r"computer|oven|radio|music|phone)\b|\b(?:lock|unlock) (?:the|my) (?:door|car|phone)\b|"
            rf"{_START}(?:open|launch|start|close) (?:the |my )?(?:task manager|browser|app|application|"
            rf"camera|calculator|spotify)\b|{_START}(?:install|download|upload|attach)\b",
        ),
        (
            "ordering",
            rf"{_START}(?:order|buy|purchase) (?:a|an|me|us|some|two|three|\d+|groceries|food|pizza|the "
            r"necessary)\b|\bplace an order\b",
        ),
        (
            "file",
            r"\b(?:save|store|export) (?:this |the |it |following |given )*(?:text |document |file |"
            r"records? )?(?:as|to|in) (?:a |an |my |the )?(?:\w+ ){0,2}(?:file|document|docx|pdf|database|"
            r"folder|calendar|drive|dropbox)\b",
        ),
        (
            "arranging",
            rf"{_START}(?:arrange|set up|organi[sz]e) (?:a |an |the |my |our )?(?:\w+ )?(?:meeting|"
            r"appointment|call|interview)\b",
        ),
        (
            "records",
            rf"{_START}(?:update|connect|add|insert|create|register|enter|delete|remove|store)\b"
            r"(?:[^.\n]{0,60}\b(?:in|into|to|from|on) (?:the|a|an|our|my|this|their|his|her|your) (?:\w+ )?"
            r"(?:database|account|system|spreadsheet|cell|calendar|contacts|crm)\b| (?:a |an |the )?(?:new )?"
            r"(?:calendar|contact) (?:appointment|entry|event)\b)",
        ),
        (
            "browsing",
            r"\b(?:search|browse|surf|scour|google)\b[^.\n]{0,40}\b(?:the )?(?:web|internet|online|"
            r"google|website|site)\b|"
            rf"{_START}search (?:for )?(?:\w+ ){{0,3}}(?:tweets|posts|reviews|articles|websites|results|"
            r"images|videos)\b|"
            rf"{_START}(?:open|visit|go to|navigate to|access|check) (?:the |this |a |an |following |"
            r"given |your )*(?:url|link|website|web ?page|site|page|browser|inbox|e-?mail|calendar)s?\b",
        ),
        (
            "sending",
            rf"{_START}(?:send|forward|e-?mail|message|text|dm|tweet|post|share|submit|upload|"
            r"publish|delete|update)(?![-\w])(?! (?:your|an?|the) (?:opinion|thoughts?|idea|fact|story|"
            r"example))",
        ),
    )
)
_COMPOSABLE = frozenset({"arranging", "device", "ordering", "file", "records", "browsing", "sending"})
# Only these words can start an action request; one substring pass spares the per-kind scans on most records.
_ACTION_CUES = (
    *("remind", "alarm", "timer", "wake me", "book", "reserv", "schedul", "order", "buy", "purchase", "call"),
    *("phone", "dial", "ring", "sms", "play", "print", "turn on", "turn off", "lock", "open", "launch", "start"),
    *("close", "install", "download", "upload", "attach", "font", "save", "store", "export", "current", "today"),
    *("tonight", "tomorrow", "right now", "latest", "live", "real", "this week", "moment", "up to date"),
    *("up-to-date", "search", "browse", "surf", "scour", "google", "visit", "go to", "navigate", "access"),
    *("check", "send", "forward", "mail", "message", "text", "dm ", "tweet", "post", "share", "submit"),
    *("publish", "arrange", "set up", "organi", "delete", "update", "connect", "add", "insert", "create"),
    *("register", "enter", "remove"),
)
_THING = (
    r"(?:reminder|alarm|timer|appointment|meeting|event|e-?mail|message|text|sms|reservation|booking|order|call|"
    r"file|document|form|flight|ticket|table|font(?: size)?|tweet|post|item|product|song|music|request|purchase|"
    r"payment|tickets|records?|object|lights?|page|website|task manager)"
)
_DONE_VERB = (
    r"(?:set|created|scheduled|sent|booked|made|placed|saved|uploaded|printed|added|forwarded|cancel+ed|attached|"
    r"delivered|submitted|changed|updated|posted|reserved|confirmed|deleted|downloaded|installed|stored|increased|"
    r"decreased|purchased|ordered|called|started|turned (?:on|off)|opened|completed|shared|published)"
)
# The answer reports the action as done: "Reminder set for 9:50am", "The meeting is scheduled for…",
# "I've booked two tickets…", "Searching the web for…", "After searching the web, I found…", all at the start of
# the answer (matched, not searched: one position per answer). A bare participle must end its clause ("Reminder
# set for…", not "The music made him sleepy").
_CLAIM = re.compile(
    rf"(?P<status>^\W*(?:(?:ok(?:ay)?|done|sure|great|alright|all set|success(?:fully)?|certainly)\W+)?"
    rf"(?:(?:your|the|a|an|my) )?(?:[\w-]+ ){{0,3}}?{_THING}s? (?:(?:(?:with|for|to|on|at|in) [\w'-]+ "
    rf"(?:[\w'-]+ )?)?(?:(?:has|have|had) been|is|was|are|were|is now) (?:successfully )?{_DONE_VERB}\b(?! by\b)|"
    rf"(?:successfully )?{_DONE_VERB}(?= (?:for|to|on|at|as|in|successfully)\b|\s*[!.:,]|\s*$)))"
    r"|(?P<first>^\W*(?:(?:ok(?:ay)?|sure|done|great|alright|certainly)\W+)?(?:i|we)(?:'ve| have| had| just)? "
    r"(?:just |now |already |successfully |gone ahead and |went ahead and )*"
    r"(?:set (?:up )?(?:a |an |the |your )?(?:reminder|alarm|timer|appointment|meeting)|scheduled|booked|sent|"
    r"ordered|called|printed|uploaded|saved|forwarded|created (?:a|the|your) (?:reminder|alarm|event|"
    r"appointment)|reserved|purchased|emailed|texted|messaged|posted|downloaded|installed|attached|"
    r"turned (?:on|off)|placed (?:an|the|your) order|made (?:a|the|your) (?:reservation|booking|appointment)|"
    r"submitted|stored|changed the font|searched|looked up|checked|browsed|visited|found (?:several|the "
    r"following|these|some|a few|\d+))\b)"
    rf"|(?P<passive>^[^.\n!?]{{0,100}}? (?:has|have) been (?:successfully )?{_DONE_VERB}\b)"
    r"|(?P<progress>^\W*(?:searching|sending|printing|playing|booking|scheduling|uploading|downloading|calling|"
    r"ordering|opening|saving|installing|setting|checking|looking up)\b[^\n]{0,80}?(?:\.\.\.|…)"
    r"|^\W*(?:after searching|upon searching|search results (?:for|show)|here are the search results|"
    r"according to my search|my search (?:results|shows|revealed))\b)"
)
# A status line or progress report opening the answer is a claim even unasked; a first-person one ("I visited the
# museum") or a plain passive ("…has been created") is only a claim when the instruction asked for the action (or,
# first-person, when the answer says it was done for the user).
_FOR_YOU = re.compile(r"\bfor you\b")
# Instructions whose answer restates a given sentence ("Rewrite in the passive: They sent the email").
_RESTATES = re.compile(
    r"\b(?:rewrite|re-write|rephrase|paraphrase|reword|convert|rearrange|change|transform|edit|correct|fix|"
    r"sentence|tense|voice|grammar|translate|question|example)\b"
)
_DECLINE = re.compile(
    r"\b(?:cannot|can ?not|can'?t|can’t|unable to|not able to|not capable of|(?:don'?t|do not) have (?:access|the "
    r"ability|the capability)|not possible (?:for me )?to|as an ai|no output|nooutput|not programmed to|"
    r"(?:no|without) access to|real-time information|i(?: am|'m|’m) sorry,? but)\b"
)
_MARKUP = re.compile(r"</\w|/>|[{};]\s*$", re.M)
_CODE = re.compile(r"\b(?:css|html|code|program|script|function|python|javascript|sql|java|latex|markdown)\b|<\w")


def requested_action(instruction: str, inp: str = "") -> tuple[str, str] | None:
    """(kind, matched phrase) of an action a text model cannot take that the instruction asks for, or None.

    Instructions about code ("Change the font size in this CSS") ask for text, not for the action.
    """
    text = instruction.strip().lower()
    if not any(cue in text for cue in _ACTION_CUES) or _CODE.search(text) or _MARKUP.search(inp):
        return None
    for kind, pattern in _ACTIONS:
        if m := pattern.search(text):
            return kind, (m.group(0) or text[m.start() : m.start() + 60]).strip(" .!?:")
    return None


class Claims(Check):
    """Capability claims: high when the answer says it did the impossible action, medium when it goes along
    with a request for one, info when it correctly declines."""

    check: Literal["claims"] = "claims"

    def run(self, examples: Sequence[Example], ctx: CheckContext) -> Iterator[Finding]:
        counts = {"high": 0, "medium": 0, "info": 0}
        for ex in examples:
            found = self.judge(ex.field("instruction"), ex.input, ex.field("output"))
            if found is None:
                continue
            severity, score, message, evidence = found
            counts[severity] += 1
            yield ctx.finding(ex, severity, score, message, **evidence)
        ctx.metrics.update({"claims": counts["high"], "goes_along": counts["medium"], "declines": counts["info"]})

    @staticmethod
    def judge(
        instruction: str, inp: str, answer: str
    ) -> tuple[Literal["high", "medium", "info"], float, str, dict[str, str]] | None:
        """(severity, score, message, evidence) for one record, or None when nothing is claimed or asked."""
        text = answer.strip().lower()
        if not text:
            return None
        request = requested_action(instruction, inp)
        if (claim := _CLAIM.match(text)) and not _DECLINE.search(text[: claim.end() + 40]):
            unasked = claim.lastgroup == "passive" or (claim.lastgroup == "first" and not _FOR_YOU.search(text))
            if request or not (unasked or _RESTATES.search(instruction.lower())):
                phrase = as_written(answer, text, claim)
                return (
                    "high",
                    0.9,
                    f"the answer claims an action a text model cannot take: '{phrase}'",
                    {"phrase": phrase, "action": request[0] if request else "unrequested"},
                )
        if request is None:
            return None
        kind, asked = request
        if decline := _DECLINE.search(text[:100]):
            return (
                "info",
                0.8,
                f"the instruction asks for an action ({kind}) and the answer correctly declines",
                {"phrase": as_written(answer, text, decline), "request": asked, "action": kind},
            )
        if kind in _COMPOSABLE:
            return None
        return (
            "medium",
            0.6,
            f"the instruction asks for an action a text model cannot take ({kind}: '{asked}') "
            f"and the answer goes along",
            {"request": asked, "action": kind},
        )
