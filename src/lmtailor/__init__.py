"""lmtailor: adapt an open LLM to your task on limited hardware."""

__version__ = "0.1.0"
