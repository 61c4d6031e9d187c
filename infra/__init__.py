"""Shared plumbing: settings, Kafka clients and topics, the local broker, the ClickHouse store, the CLI."""
