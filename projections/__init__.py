"""Projections: consumers that materialise topics into ClickHouse tables, in batches, idempotently."""
