"""Planned conversations: turns, dead air, overtalk, a monologue and a hold, with the alerts they must raise.

A plan is built for a call length (s). Fixed sections are placed between stretches of ordinary
turn-taking (0.6 s gaps, so no dead air there); each section is sized to cross its rule's
threshold (docs/rules.md) when the call is long enough to hold it:

| section | size | expected alert (threshold) | needs a call of at least |
|---|---|---|---|
| dead air | 12 s of line noise | dead_air (10 s) | 30 s |
| overtalk | both talk, overlapping >= 3.5 s | overtalk (3 s) | 20 s |
| hold (Cresta calls) | 130 s, or 15 % of the call | long_hold (120 s) when 130 s | 40 s (alert: 200 s) |
| monologue | the agent alone for 65 s, pauses < 1 s | monologue (60 s)* | 100 s |

* monologue is not among the default rules: it fires once a tenant publishes a monologue rule
  (``switchboard rules``); the others are default rules.

Times are media seconds from the start of the call; the tracks are int16 at 8 kHz over a noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infra.simulate.speech import RATE_HZ, Samples, Voice

AGENT_LINES = (
    "Thank you for calling customer support, my name is Alex, how can I help you today",
    "Let me look that up for you, it will only take a moment",
    "I can see the order right here in our system and it was shipped yesterday",
    "I have refunded the shipping fee to your original payment method",
    "Is there anything else I can help you with today",
    "Your reference number is seven four two nine one, please keep it for your records",
)
CUSTOMER_LINES = (
    "Hi, I would like to check the status of my order please",
    "The delivery was scheduled for Tuesday but nothing arrived",
    "Could you tell me which address you sent it to",
    "Okay, that sounds good, thank you",
    "No, that is all, thank you very much for your help",
)
OVERTALK_AGENT = (
    "As I said the parcel left our warehouse yesterday evening and it should reach you by Friday at the latest"
)
OVERTALK_CUSTOMER = "But that is exactly what you told me last week and it still has not arrived at my address"
MONOLOGUE_LINES = (
    "Let me explain our returns policy in full so that there is no confusion later on",
    "you can send back any item within thirty days of delivery as long as it is unused",
    "the label is printed from your account page under orders and then returns",
    "once the parcel reaches our warehouse we inspect it within two working days",
    "the refund then goes back to the card you paid with and takes up to a week",
    "items bought on sale follow the same rules except for final clearance goods",
)
GAP_S = 0.6
DEAD_AIR_S = 12.0
MONOLOGUE_S = 65.0
LONG_HOLD_S = 130.0
NOISE_RMS = 20.0


@dataclass(frozen=True)
class Expected:
    """An alert the plan should raise under the default rules: rule kind, media start (s), length (s)."""

    kind: str
    start_s: float
    seconds: float


@dataclass
class Plan:
    """One conversation: both tracks (8 kHz int16, equal length), holds and the expected alerts."""

    seconds: float
    agent: Samples
    customer: Samples
    holds: list[tuple[float, float]] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: the sections in order and the expected alerts."""
        alerts = ", ".join(f"{e.kind} at {e.start_s:.1f}s ({e.seconds:.1f}s)" for e in self.expected) or "none"
        return f"{self.seconds:.0f}s: {' | '.join(self.sections)}; expected alerts: {alerts}"


class _Builder:
    def __init__(self, voice: Voice, seconds: float, seed: int) -> None:
        self.voice = voice
        self.n = int(seconds * RATE_HZ)
        rng = np.random.default_rng(seed)
        self.tracks = {role: rng.normal(0.0, NOISE_RMS, self.n) for role in ("AGENT", "CUSTOMER")}
        self.cursor = 0.5
        self.turn = seed % 2
        self.line = seed

    def put(self, role: str, text: str, at_s: float) -> float:
        """Place ``text`` on ``role``'s track at ``at_s``; its end (s), clipped to the call."""
        audio = self.voice.say(text).astype(np.float64)
        start = int(at_s * RATE_HZ)
        end = min(self.n, start + audio.size)
        if end > start:
            self.tracks[role][start:end] += audio[: end - start]
        return end / RATE_HZ

    def turns(self, until_s: float) -> None:
        """Alternate agent and customer lines with short gaps until ``until_s`` (a line never crosses it)."""
        while True:
            role, lines = ("AGENT", AGENT_LINES) if self.turn % 2 == 0 else ("CUSTOMER", CUSTOMER_LINES)
            text = lines[self.line % len(lines)]
            length = self.voice.say(text).size / RATE_HZ
            if self.cursor + length > until_s:
                self.cursor = max(self.cursor, until_s)
                return
            self.cursor = self.put(role, text, self.cursor) + GAP_S
            self.turn += 1
            self.line += 1

    def samples(self, role: str) -> Samples:
        return np.clip(np.round(self.tracks[role]), -32768, 32767).astype(np.int16)


def build_plan(voice: Voice, seconds: float, *, with_hold: bool, seed: int = 0) -> Plan:
    """The planned conversation of a ``seconds`` long call; ``with_hold`` adds a hold (Cresta can signal it)."""
    b = _Builder(voice, seconds, seed)
    sections: list[tuple[str, float]] = []
    if seconds >= 20:
        sections.append(("overtalk", 8.0))
    if seconds >= 30:
        sections.append(("dead air", DEAD_AIR_S))
    if with_hold and seconds >= 40:
        sections.append(("hold", LONG_HOLD_S if seconds >= 200 else round(0.15 * seconds, 1)))
    if seconds >= 100:
        sections.append(("monologue", MONOLOGUE_S + 2))
    free = max(0.0, seconds - 1.0 - sum(length for _, length in sections))
    stretch = free / (len(sections) + 1)
    plan = Plan(seconds, np.zeros(0, dtype=np.int16), np.zeros(0, dtype=np.int16))
    labels: list[str] = []
    for name, length in sections:
        b.turns(b.cursor + stretch)
        labels.append(f"turns to {b.cursor:.1f}s")
        start = b.cursor
        plan.expected.extend(_section(b, plan, name, start, length))
        labels.append(f"{name} {start:.1f}-{b.cursor:.1f}s")
    b.turns(seconds - 0.5)
    labels.append(f"turns to {min(b.cursor, seconds):.1f}s")
    plan.agent, plan.customer, plan.sections = b.samples("AGENT"), b.samples("CUSTOMER"), labels
    return plan


def _section(b: _Builder, plan: Plan, name: str, start: float, length: float) -> list[Expected]:
    if name == "overtalk":
        agent_end = b.put("AGENT", OVERTALK_AGENT, start)
        customer_start = start + 0.8
        customer_end = b.put("CUSTOMER", OVERTALK_CUSTOMER, customer_start)
        overlap = min(agent_end, customer_end) - customer_start
        b.cursor = max(agent_end, customer_end) + GAP_S
        return [Expected("overtalk", customer_start, overlap)] if overlap >= 3.0 else []
    if name == "dead air":
        b.cursor = start + length
        return [Expected("dead_air", start, length)]
    if name == "hold":
        plan.holds.append((start, start + length))
        b.cursor = start + length + GAP_S
        return [Expected("long_hold", start, length)] if length >= 120 else []
    at = start
    line = 0
    while at < start + MONOLOGUE_S:
        at = b.put("AGENT", MONOLOGUE_LINES[line % len(MONOLOGUE_LINES)], at) + 0.4
        line += 1
    b.cursor = at + GAP_S
    return [Expected("monologue", start, at - 0.4 - start)]
