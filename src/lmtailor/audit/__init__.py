"""`lmtailor audit`: debug a fine-tuning dataset like code. One module per check under `checks/`."""
