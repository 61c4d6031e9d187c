"""Avro record schemas of Switchboard (the public contract) and the one codec that reads and writes them.

The constants below are the full names of the record types, as ``AvroCodec.encode`` takes them.
"""

from schemas.codec import AvroCodec, Decoded, Schema, current_schemas, union_branch
from schemas.errors import (
    CorruptRecordError,
    EncodeError,
    SchemaDefinitionError,
    SchemaError,
    UnknownFingerprintError,
    UnknownRecordTypeError,
)

CALL_EVENT = "io.switchboard.calls.CallEvent"
AUDIO_CHUNK = "io.switchboard.calls.AudioChunk"
SPEECH_SEGMENT = "io.switchboard.calls.SpeechSegment"
CALL_METRICS = "io.switchboard.calls.CallMetrics"
PROSODY_INTERIM = "io.switchboard.calls.ProsodyInterim"
JOB_TRANSITION = "io.switchboard.jobs.JobTransition"
ALERT = "io.switchboard.alerts.Alert"
COMMAND = "io.switchboard.commands.Command"
COMMAND_RESULT = "io.switchboard.commands.CommandResult"
RULE_SET = "io.switchboard.rules.RuleSet"

__all__ = [
    "ALERT",
    "AUDIO_CHUNK",
    "CALL_EVENT",
    "CALL_METRICS",
    "COMMAND",
    "COMMAND_RESULT",
    "JOB_TRANSITION",
    "PROSODY_INTERIM",
    "RULE_SET",
    "SPEECH_SEGMENT",
    "AvroCodec",
    "CorruptRecordError",
    "Decoded",
    "EncodeError",
    "Schema",
    "SchemaDefinitionError",
    "SchemaError",
    "UnknownFingerprintError",
    "UnknownRecordTypeError",
    "current_schemas",
    "union_branch",
]
