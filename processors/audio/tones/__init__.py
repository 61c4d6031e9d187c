"""In-band tone detectors on int16 mono audio: DTMF, beeps, ring-back, clipping.

Each detector is streaming and chunk-invariant: it cuts the stream into analysis windows at fixed
absolute sample positions (window ``k`` starts at ``k * hop``), carries the unfinished window and
its decision state across chunks (``to_state`` / ``from_state``, JSON-able), and reports events in
sample offsets from the track start. Feeding a signal in any split gives the same events. Time
parameters are given in ms and converted to samples once, at the detector's sample rate (Hz).

All windows a chunk completes are measured at once (one matrix product for the tone powers, one
FFT call for the beep spectra), yet each window's numbers are bit-identical whatever batch it came
in: tone powers and energies are exact sums (see ``bank``) and numpy transforms each FFT row on its
own. The per-window decisions then run in Python only while something is sounding.

Modules: ``windows`` (framing, state readers), ``bank`` (tone powers, energies), ``dtmf``, ``beep``,
``ringback``, ``clipping``.
"""

from processors.audio.tones.bank import ToneBank, energy, exact_scale_bits, goertzel
from processors.audio.tones.beep import Beep, BeepDetector, BeepParams
from processors.audio.tones.clipping import ClipInterval, ClipParams, ClippingDetector
from processors.audio.tones.dtmf import DTMF_COLS_HZ, DTMF_ROWS_HZ, KEYPAD, DtmfDetector, DtmfDigit, DtmfParams
from processors.audio.tones.ringback import EUROPE, NORTH_AMERICA, Cadence, Ring, RingbackDetector, RingParams
from processors.audio.tones.windows import FULL_SCALE, Windows, samples_for

__all__ = [
    "DTMF_COLS_HZ",
    "DTMF_ROWS_HZ",
    "EUROPE",
    "FULL_SCALE",
    "KEYPAD",
    "NORTH_AMERICA",
    "Beep",
    "BeepDetector",
    "BeepParams",
    "Cadence",
    "ClipInterval",
    "ClipParams",
    "ClippingDetector",
    "DtmfDetector",
    "DtmfDigit",
    "DtmfParams",
    "Ring",
    "RingParams",
    "RingbackDetector",
    "ToneBank",
    "Windows",
    "energy",
    "exact_scale_bits",
    "goertzel",
    "samples_for",
]
