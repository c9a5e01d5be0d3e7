"""LLM-powered data work: judge, quality classifier, and synthesis (self-instruct, back-translation,
paraphrase, failure targeting). Each is a curate step, so every record it adds, drops or scores passes
through the ledger with its provenance."""
