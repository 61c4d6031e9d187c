"""Errors of the schema layer: one base class, each naming the record, fingerprint or byte count."""


class SchemaError(Exception):
    """Base of every error raised by ``schemas``."""


class SchemaDefinitionError(SchemaError):
    """An ``.avsc`` file is unreadable or not a valid Avro record schema."""


class UnknownRecordTypeError(SchemaError):
    """Asked to encode a record type the codec has no schema for."""


class EncodeError(SchemaError):
    """A record does not conform to its schema (wrong type, missing field without default, unknown field)."""


class UnknownFingerprintError(SchemaError):
    """A single-object encoded message names a writer schema the codec has never seen."""

    def __init__(self, fingerprint: bytes) -> None:
        self.fingerprint = fingerprint
        super().__init__(
            f"no writer schema with CRC-64-AVRO fingerprint {fingerprint.hex()} is known; "
            "the producer uses a schema this reader was not given"
        )


class CorruptRecordError(SchemaError):
    """The bytes are not a valid Avro single-object encoding of the schema they claim."""
