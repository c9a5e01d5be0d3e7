"""Learning and forgetting: the target task scored on held-out examples, and general ability (held-out text
cross-entropy, MMLU) measured on the same model before and after adaptation."""

from pathlib import Path

# The real datasets beside the repository (see ../shared/data/README.md); every loader takes another root.
DATA_ROOT = Path("../shared/data")
