"""The ingestion edge: vendor-protocol endpoints that validate, translate to Avro records and produce them."""
