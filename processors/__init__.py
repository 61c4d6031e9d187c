"""Stream processors: pure audio/session logic (no I/O) plus the thin Faust app and agents that run it."""
