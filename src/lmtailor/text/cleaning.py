"""Text repair shared by normalize and the audit: mojibake, control characters, whitespace, placeholder values."""

from __future__ import annotations

import re

import ftfy

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200d\u2060\ufeff\u00ad]")
_BLANK_LINES = re.compile(r"\n{3,}")
_TRAILING = re.compile(r"[ \t]+\n")

DEFAULT_PLACEHOLDERS = ["<noinput>", "<no input>", "no input", "n/a", "na", "none", "null", "nil", ".", "-", "..."]


def repair_unicode(text: str, straight_quotes: bool = False) -> str:
    """ftfy's mojibake and HTML-entity repair; pure ASCII has nothing for it to fix but entities.

    Curly quotes are legitimate text, so straightening them is a separate, opt-in choice.
    """
    if text.isascii() and "&" not in text:
        return text
    return ftfy.fix_text(text, uncurl_quotes=straight_quotes)


def strip_control(text: str) -> str:
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def tidy_whitespace(text: str) -> str:
    """Trailing spaces, runs of blank lines and outer whitespace; indentation inside lines is kept (code)."""
    text = text.replace("\u00a0", " ").replace("\t\n", "\n")
    return _BLANK_LINES.sub("\n\n", _TRAILING.sub("\n", text)).strip()
