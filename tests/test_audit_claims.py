"""claims: answers that say they did what a text model cannot do, or go along with requests for it."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import alpaca, alpaca_records

from lmtailor.audit.check import CheckContext
from lmtailor.audit.checks.claims import Claims, requested_action
from lmtailor.audit.finding import Finding
from lmtailor.core.records import Example

# Real Alpaca records (index -> severity), found by grepping the file for "reminder", "booked", "weather", …
FLAGGED = {
    51357: "high",  # "Set a reminder for tomorrow at 8am…" → "Reminder set for tomorrow at 8am…"
    47831: "high",  # "Set a reminder for 20 minutes from now." → "Reminder set…"
    8397: "high",  # "Remind me to buy eggs…" → "I've set a reminder for you…"
    12466: "high",  # "Book two tickets…" → "I have booked two tickets…"
    23360: "high",  # "Increase the font size to 12 points." → "The font size has been increased…"
    50747: "high",  # "Save the following text as a Microsoft Word Document" → "File saved as…"
    17159: "high",  # "Search the web for reviews…" → "After searching the web, I found…"
    715: "medium",  # "Predict the weather in Los Angeles tomorrow." → a made-up forecast
    11152: "medium",  # "Find out the current stock price of Google." → "$2,400.56"
    43613: "medium",  # "Remind me to take my multivitamin every morning." → "Reminder: Take your…"
    32887: "info",  # "Set up a reminder for 8 am tomorrow?" → "I cannot set up a reminder…"
}
# Clean records that use the same words: a passive rewrite, an invitation e-mail, printing as output, a story.
CLEAN = [0, 1, 44725, 4604, 24194, 6691, 13076, 19171, 46514]


def run(examples: list[Example]) -> tuple[list[Finding], dict]:
    ctx = CheckContext(Claims.name)
    return list(Claims().run(examples, ctx)), ctx.metrics


@pytest.fixture(scope="module")
def real(shared_data: Path) -> dict[int, Example]:
    return alpaca_records(shared_data, set(FLAGGED) | set(CLEAN))


def test_claimed_actions_are_high_going_along_medium_and_declining_info() -> None:
    examples = [
        alpaca("Set a reminder for tomorrow at 8am.", "Reminder set for tomorrow at 8am.", i=0),
        alpaca("Book a table for two at 7pm.", "I've booked a table for two at 7pm for you.", i=1),
        alpaca("Email the report to Anna.", "Email sent to Anna with the report attached.", i=2),
        alpaca("Schedule a meeting with Bob on Friday.", "The meeting with Bob is scheduled for Friday.", i=3),
        alpaca("Predict the weather in Paris tomorrow.", "Tomorrow Paris will be sunny with a high of 21°C.", i=4),
        alpaca("Play the song Yesterday by the Beatles.", "Here is Yesterday by the Beatles.", i=5),
        alpaca("Call my mother.", "Sorry, I can't make phone calls, but you could call her now.", i=6),
        alpaca("Tell me about the day.", "Searching the web for today's events...", i=7),
    ]
    findings, metrics = run(examples)
    rows = [(f.index, f.severity, f.evidence.get("phrase"), f.evidence["action"]) for f in findings]
    assert rows == [
        (0, "high", "Reminder set", "reminder"),
        (1, "high", "I've booked", "booking"),
        (2, "high", "Email sent", "sending"),
        (3, "high", "The meeting with Bob is scheduled", "scheduling"),
        (4, "medium", None, "live"),
        (5, "medium", None, "playing"),
        (6, "info", "can't", "calling"),
        (7, "high", "Searching the web for today's events...", "unrequested"),
    ]
    assert findings[4].evidence["request"] == "predict"
    assert [f.score for f in findings] == [0.9, 0.9, 0.9, 0.9, 0.6, 0.6, 0.8, 0.9]
    assert metrics == {"claims": 5, "goes_along": 2, "declines": 1}


def test_text_readings_of_actions_and_restated_sentences_are_not_claims() -> None:
    examples = [
        alpaca("Send an email to your professor asking for an extension.", "Dear Professor Lee, …", i=0),
        alpaca("Rewrite in the passive voice.", "The email was sent by them.", "They sent the email.", i=1),
        alpaca("Convert the sentence into the past tense: I will call him.", "I called him.", i=2),
        alpaca("Describe the 3D printing process.", "3D printing builds objects layer by layer.", i=3),
        alpaca("How can you set a reminder for yourself?", "Use the alarm app on your phone.", i=4),
        alpaca("Write a story about a trip.", "I visited Rome and booked a small hotel by the river.", i=5),
        alpaca("Change the font size in this CSS.", "h1 { font-size: 20px; }", "h1 { font-size: 12px; }", i=6),
        alpaca("Order these numbers from smallest to largest.", "1, 2, 3", "3, 1, 2", i=7),
    ]
    assert run(examples) == ([], {"claims": 0, "goes_along": 0, "declines": 0})


def test_requested_action_reads_imperatives_only() -> None:
    assert requested_action("We meet at 10am. Set a reminder for 9:50.") == ("reminder", "set a reminder")
    assert requested_action("Please book two tickets to Rome") == ("booking", "please book two")
    assert requested_action("Play a game of chess with me") is None
    assert requested_action("What is the current exchange rate of the euro?") == ("live", "what is")
    assert requested_action("Describe the windy weather today using a metaphor.") is None


def test_real_alpaca_claims_are_found_and_clean_records_are_not(real: dict[int, Example]) -> None:
    findings, _ = run(list(real.values()))
    assert {f.index: f.severity for f in findings} == FLAGGED
    assert {f.id for f in findings} == {f"alpaca_data_52k:{i}" for i in FLAGGED}
