"""Faust agents: decode a record, read the call's state, call the pure step, write state, send outputs."""
