"""Integration tests of the ingestion gateway's vendor APIs, served for real against the session broker."""
