"""Learning and forgetting: the target task scored on held-out examples, and general ability (held-out text
cross-entropy, MMLU) measured on the same model before and after adaptation, through any backend."""
