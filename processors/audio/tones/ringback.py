"""Ring-back tones: 100 ms blocks classified by the cadences' tone powers, rings counted by length."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import numpy.typing as npt

from processors.audio.errors import AudioStateError
from processors.audio.pcm import Samples
from processors.audio.tones.bank import ToneBank, as_floats, energy
from processors.audio.tones.windows import FULL_SCALE, Windows, read_int, read_mapping, samples_for


@dataclass(frozen=True)
class Cadence:
    """A ring-back tone: its frequencies (Hz) and nominal on/off times (ms)."""

    name: str
    freqs_hz: tuple[float, ...]
    on_ms: float
    off_ms: float


NORTH_AMERICA = Cadence("NA", (440.0, 480.0), 2000.0, 4000.0)
EUROPE = Cadence("EU", (425.0,), 1000.0, 4000.0)


@dataclass(frozen=True)
class RingParams:
    """Ring-back settings: 100 ms blocks; a burst counts as a ring when its length is within
    ``tolerance`` of the cadence's on time. Blocks are tonal when the cadence's tones hold
    ``tone_fraction`` of the energy (each at least ``min_share`` of it) and the other cadences'
    tones do not."""

    block_ms: float = 100.0
    tone_fraction: float = 0.7
    min_share: float = 0.2
    tolerance: float = 0.25
    min_level_dbfs: float = -45.0
    cadences: tuple[Cadence, ...] = (NORTH_AMERICA, EUROPE)


@dataclass(frozen=True)
class Ring:
    """One ring: its cadence name, number in the call (1, 2, ...), samples [start, end), and the
    silence since the previous ring of that cadence (samples; None for the first)."""

    cadence: str
    number: int
    start_sample: int
    end_sample: int
    off_samples: int | None


@dataclass
class _Burst:
    cadence: str | None = None
    start: int = 0  # first block
    blocks: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    last_end: dict[str, int] = field(default_factory=dict)  # end sample of the previous ring per cadence


class RingbackDetector:
    """Counts ring-back rings (North-American 440+480 Hz 2 s on / 4 s off, European 425 Hz 1 s / 4 s)."""

    def __init__(self, sample_rate: int, params: RingParams | None = None) -> None:
        self.rate, self.params = sample_rate, params or RingParams()
        size = samples_for(self.params.block_ms, sample_rate)
        self._windows = Windows(size, size)
        self._freqs = tuple(sorted({f for c in self.params.cadences for f in c.freqs_hz}))
        self._bank = ToneBank(size, self._freqs, sample_rate)
        self._min_energy = size * (FULL_SCALE * 10 ** (self.params.min_level_dbfs / 20)) ** 2
        own = np.array([[f in c.freqs_hz for f in self._freqs] for c in self.params.cadences])  # (cadences, freqs)
        self._own = own[None, :, :]  # (1, cadences, freqs): the tones that must reach min_share, per cadence
        self._names = [c.name for c in self.params.cadences]
        self._state = _Burst()

    def classify(self, blocks: npt.NDArray[np.int16]) -> list[str | None]:
        """The cadence whose tones each block (row of ``size`` samples) holds, or None."""
        n, p = self._windows.size, self.params
        x = as_floats(blocks)
        total = energy(x)
        shares = 2.0 * self._bank.powers(x) / (n * np.maximum(total, 1.0))[:, None]  # (blocks, freqs)
        reached = shares >= p.min_share
        if not reached.any():  # speech, noise, silence: no cadence tone is strong anywhere
            return [None] * shares.shape[0]
        # a cadence holds a block when exactly its own tones reach min_share and together hold tone_fraction
        per_cadence = shares[:, None, :]  # (blocks, 1, freqs)
        strong = (reached[:, None, :] == self._own).all(axis=2)
        enough = np.where(self._own, per_cadence, 0.0).sum(axis=2) >= p.tone_fraction
        holds = strong & enough & (total >= self._min_energy)[:, None]
        single = holds.sum(axis=1) == 1
        chosen = np.argmax(holds, axis=1)
        return [self._names[c] if one else None for c, one in zip(chosen.tolist(), single.tolist(), strict=True)]

    def push(self, samples: Samples) -> list[Ring]:
        """Feed samples; returns the rings that ended within them."""
        first, blocks = self._windows.push(samples)
        found = self.classify(blocks)
        burst = self._state
        if burst.cadence is None and found and not any(found):  # silence goes on: only the start moves
            burst.start, burst.blocks = first + len(found) - 1, 0
            return []
        return [r for k, c in enumerate(found, first) if (r := self._step(k, c))]

    def _step(self, k: int, cadence: str | None) -> Ring | None:
        burst = self._state
        if cadence is not None and cadence == burst.cadence:
            burst.blocks += 1
            return None
        ring = self._end()
        burst.cadence, burst.start, burst.blocks = cadence, k, int(cadence is not None)
        return ring

    def _end(self) -> Ring | None:
        burst, size = self._state, self._windows.size
        cadence = next((c for c in self.params.cadences if c.name == burst.cadence), None)
        burst.cadence = None
        if cadence is None:
            return None
        on = samples_for(cadence.on_ms, self.rate)
        if abs(burst.blocks * size - on) > self.params.tolerance * on:
            return None
        start, end = burst.start * size, (burst.start + burst.blocks) * size
        number = burst.counts.get(cadence.name, 0) + 1
        previous = burst.last_end.get(cadence.name)
        burst.counts[cadence.name], burst.last_end[cadence.name] = number, end
        return Ring(cadence.name, number, start, end, None if previous is None else start - previous)

    def flush(self) -> list[Ring]:
        """End of stream: the ring still sounding, if its length already fits."""
        return [r for r in [self._end()] if r]

    @property
    def rings(self) -> dict[str, int]:
        """Rings counted so far, per cadence name."""
        return dict(self._state.counts)

    def to_state(self) -> dict[str, object]:
        return {"windows": self._windows.to_state(), "burst": asdict(self._state)}

    @classmethod
    def from_state(
        cls, sample_rate: int, state: Mapping[str, object], params: RingParams | None = None
    ) -> RingbackDetector:
        detector = cls(sample_rate, params)
        detector._windows.restore(read_mapping(state.get("windows")))
        burst = read_mapping(state.get("burst"))
        counts, last_end = read_mapping(burst.get("counts")), read_mapping(burst.get("last_end"))
        cadence = burst.get("cadence")
        if cadence is not None and cadence not in {c.name for c in detector.params.cadences}:
            raise AudioStateError(f"ring-back state names unknown cadence {cadence!r}")
        detector._state = _Burst(
            None if cadence is None else str(cadence),
            read_int(burst, "start"),
            read_int(burst, "blocks"),
            {str(k): read_int(counts, str(k)) for k in counts},
            {str(k): read_int(last_end, str(k)) for k in last_end},
        )
        return detector
