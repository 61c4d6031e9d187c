"""The read-only query API over the projections (GET only, tenant-scoped)."""
