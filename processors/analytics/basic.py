"""The Oliver call-level ``basic`` block (PROTOCOLS.md 1.4) from the final conversation state and tally.

Definitions (seconds, float, rounded to the ms):
- ``totalduration``: media time from 0 to the call end.
- ``vad``: a partition of the non-hold time by who speaks (assumption: the vendor's layout is
  documented, its exact split is not): ``agent`` = only the agent speaks, ``customer`` = only the
  customer speaks, ``overlap`` = both speak, ``silence`` = nobody speaks and the call is not on
  hold. Speech during hold is counted as speech, so agent + customer + overlap + silence =
  totalduration - (hold time in which nobody speaks).
- ``speakerchanges``: turn changes (``processors.analytics.sweep``); ``numbeepfound`` /
  ``numringfound``: beep and ring-back detections; ``id``: speaker -> channel index.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from processors.analytics.errors import NotFinalError
from processors.analytics.sweep import Role
from processors.analytics.talk import ConversationState
from processors.analytics.tally import DetectionKind, SignalTally

DEFAULT_CHANNELS: Mapping[str, int] = {"agent": 0, "customer": 1}


def seconds(ms: int) -> float:
    """Whole ms as seconds (exact to the ms)."""
    return round(ms / 1000, 3)


def basic_block(
    state: ConversationState, tally: SignalTally, channels: Mapping[str, int] = DEFAULT_CHANNELS
) -> dict[str, Any]:
    """The ``basic`` object of a finished call; raises NotFinalError before the call ended."""
    if state.ended_ms is None:
        raise NotFinalError(f"the call has not ended (joint watermark {state.watermark_ms} ms); basic block is final")
    sweep = state.sweep
    agent, customer = sweep.parties[Role.AGENT].talk_ms, sweep.parties[Role.CUSTOMER].talk_ms
    overlap = sweep.overtalk_ms
    return {
        "totalduration": seconds(state.ended_ms),
        "speakerchanges": sweep.speaker_changes,
        "numbeepfound": tally.count(DetectionKind.BEEP),
        "numringfound": tally.count(DetectionKind.RINGBACK),
        "id": dict(channels),
        "vad": {
            "agent": seconds(agent - overlap),
            "customer": seconds(customer - overlap),
            "overlap": seconds(overlap),
            "silence": seconds(sweep.silence_ms),
        },
    }
