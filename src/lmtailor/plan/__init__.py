"""`lmtailor plan`: which rungs of the adaptation ladder to try for a task, in what order, and why."""
