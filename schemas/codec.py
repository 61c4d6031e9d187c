"""The one Avro codec of Switchboard: single-object encoding with writer-fingerprint resolution.

Wire format (Avro specification, "Single-object encoding")::

    C3 01 | 8-byte little-endian CRC-64-AVRO fingerprint of the writer schema | Avro binary body

A reader looks the writer schema up by fingerprint and resolves the body against its own
(reader) schema of the same full name, so records written with an older, compatible schema
decode into the current shape with defaults filled in.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer
from fastavro.schema import SchemaParseException, UnknownType, fingerprint, to_parsing_canonical_form

from schemas.errors import (
    CorruptRecordError,
    EncodeError,
    SchemaDefinitionError,
    UnknownFingerprintError,
    UnknownRecordTypeError,
)

MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8

Record = dict[str, Any]

# Errors fastavro raises on bytes that do not match the writer schema.
_DECODE_FAILURES = (ValueError, TypeError, EOFError, IndexError, KeyError, OverflowError, StopIteration)


@dataclass(frozen=True)
class Schema:
    """A parsed record schema with its full name and CRC-64-AVRO fingerprint (8 bytes, as on the wire)."""

    name: str
    parsed: Any
    fingerprint: bytes

    @classmethod
    def from_json(cls, definition: Mapping[str, Any], origin: str = "<inline>") -> Schema:
        """Parse one record schema; every named type it declares stays private to this schema."""
        try:
            parsed = parse_schema(dict(definition), named_schemas={})
            canonical = to_parsing_canonical_form(parsed)
        except (SchemaParseException, UnknownType, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaDefinitionError(f"{origin}: not a valid Avro schema: {exc}") from exc
        if not isinstance(parsed, dict) or parsed.get("type") != "record":
            raise SchemaDefinitionError(f"{origin}: top-level type must be a record")
        if not isinstance(definition.get("fields"), list):
            raise SchemaDefinitionError(f"{origin}: record {parsed['name']} has no 'fields' list")
        names = [f.get("name") for f in definition["fields"]]
        if len(names) != len(set(names)):
            raise SchemaDefinitionError(f"{origin}: record {parsed['name']} declares a field name twice")
        return cls(
            name=str(parsed["name"]),
            parsed=parsed,
            fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
        )

    @classmethod
    def from_file(cls, path: Path) -> Schema:
        """Load an ``.avsc`` file."""
        try:
            definition = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SchemaDefinitionError(f"{path}: cannot read schema: {exc}") from exc
        return cls.from_json(definition, origin=str(path))


@dataclass(frozen=True)
class Decoded:
    """A decoded message: the record's full name, its data in the reader's shape, and who wrote it."""

    name: str
    record: Record
    writer_fingerprint: bytes


def union_branch(value: Any) -> tuple[str, Record]:
    """(short type name, record) of a record-union value: the codec's ``(full name, record)`` tuple,
    or a dict naming its type under ``-type`` (fastavro's other notation)."""
    if isinstance(value, tuple):
        full_name, record = value
    else:
        full_name, record = str(value.get("-type", "")), {k: v for k, v in value.items() if k != "-type"}
    return str(full_name).rsplit(".", 1)[-1], dict(record)


def current_schemas() -> list[Schema]:
    """The schemas shipped in this package (``schemas/*.avsc``), i.e. what this version writes."""
    folder = resources.files("schemas")
    return [
        Schema.from_json(json.loads(entry.read_text(encoding="utf-8")), origin=entry.name)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".avsc")
    ]


class AvroCodec:
    """Encodes with the current schema of a record type; decodes any known writer schema.

    ``readers`` are the current schemas (one per full name); they are also known as writers.
    ``writers`` are older published versions that may still be found in topics.
    """

    def __init__(self, readers: Iterable[Schema], writers: Iterable[Schema] = ()) -> None:
        self._readers: dict[str, Schema] = {}
        for schema in readers:
            if schema.name in self._readers:
                raise SchemaDefinitionError(f"two current schemas are named {schema.name}")
            self._readers[schema.name] = schema
        self._writers: dict[bytes, Schema] = {s.fingerprint: s for s in writers}
        self._writers.update({s.fingerprint: s for s in self._readers.values()})

    @classmethod
    def default(cls) -> AvroCodec:
        """A codec over the schemas shipped with this package."""
        return cls(current_schemas())

    @property
    def names(self) -> list[str]:
        """Full names of the record types this codec writes."""
        return sorted(self._readers)

    def schema(self, name: str) -> Schema:
        """The current schema of a record type."""
        try:
            return self._readers[name]
        except KeyError:
            raise UnknownRecordTypeError(
                f"no schema for record type {name!r}; known: {', '.join(self.names)}"
            ) from None

    def encode(self, name: str, record: Mapping[str, Any]) -> bytes:
        """Encode ``record`` as a single-object message of type ``name``."""
        schema = self.schema(name)
        out = io.BytesIO()
        out.write(MARKER)
        out.write(schema.fingerprint)
        try:
            schemaless_writer(out, schema.parsed, dict(record), strict_allow_default=True)
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise EncodeError(f"{name}: record does not match its schema: {exc}") from exc
        return out.getvalue()

    def decode(self, data: bytes) -> Decoded:
        """Decode a single-object message, resolving the writer schema against the current reader."""
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise CorruptRecordError(
                f"not an Avro single-object message: expected marker c301 and {HEADER_SIZE} header bytes, "
                f"got {len(data)} bytes starting {data[:2].hex() or 'nothing'}"
            )
        fp = bytes(data[2:HEADER_SIZE])
        writer = self._writers.get(fp)
        if writer is None:
            raise UnknownFingerprintError(fp)
        reader = self._readers.get(writer.name, writer)
        body = io.BytesIO(data)
        body.seek(HEADER_SIZE)
        try:
            record = schemaless_reader(
                body,
                writer.parsed,
                reader.parsed if reader is not writer else None,
                return_record_name=True,
                return_record_name_override=True,
            )
        except _DECODE_FAILURES as exc:
            raise CorruptRecordError(f"{writer.name} (fingerprint {fp.hex()}): body does not decode: {exc!r}") from exc
        if body.tell() != len(data):
            raise CorruptRecordError(
                f"{writer.name} (fingerprint {fp.hex()}): {len(data) - body.tell()} trailing bytes after the record"
            )
        if not isinstance(record, dict):
            raise CorruptRecordError(f"{writer.name}: decoded to {type(record).__name__}, not a record")
        return Decoded(name=writer.name, record=record, writer_fingerprint=fp)

    def decode_as(self, name: str, data: bytes) -> Record:
        """Decode and require the record type ``name``."""
        decoded = self.decode(data)
        if decoded.name != name:
            raise CorruptRecordError(f"expected a {name} record, got {decoded.name}")
        return decoded.record
