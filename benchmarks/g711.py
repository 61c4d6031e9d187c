"""G.711 decode/encode throughput: Switchboard's numpy tables vs the stdlib audioop reference, in one run.

Run: .venv/bin/python benchmarks/g711.py  (Python 3.11/3.12: audioop is still in the stdlib)
Input: 60 s of 8 kHz audio (480,000 samples), as one buffer and as 160-sample (20 ms) RTP frames.
"""

from __future__ import annotations

import statistics
import sys
import timeit
import warnings
from collections.abc import Callable

import numpy as np

from processors.audio import g711

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

SECONDS = 60
RATE = 8000


def _best(fn: Callable[[], object], repeat: int = 7, number: int = 5) -> float:
    """Best-of-``repeat`` seconds per call."""
    return min(timeit.repeat(fn, repeat=repeat, number=number)) / number


def main() -> None:
    rng = np.random.default_rng(7)
    pcm = (rng.normal(0, 4000, SECONDS * RATE)).clip(-32768, 32767).astype(np.int16)
    ulaw = g711.ulaw_encode(pcm)
    alaw = g711.alaw_encode(pcm)
    frames = [ulaw[i : i + 160] for i in range(0, len(ulaw), 160)]
    cases = [
        ("ulaw decode 60 s", lambda: g711.ulaw_decode(ulaw), lambda: audioop.ulaw2lin(ulaw, 2)),
        ("alaw decode 60 s", lambda: g711.alaw_decode(alaw), lambda: audioop.alaw2lin(alaw, 2)),
        ("ulaw encode 60 s", lambda: g711.ulaw_encode(pcm), lambda: audioop.lin2ulaw(pcm.tobytes(), 2)),
        ("alaw encode 60 s", lambda: g711.alaw_encode(pcm), lambda: audioop.lin2alaw(pcm.tobytes(), 2)),
        (
            "ulaw decode 3000 x 20 ms frames",
            lambda: [g711.ulaw_decode(f) for f in frames],
            lambda: [audioop.ulaw2lin(f, 2) for f in frames],
        ),
    ]
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")
    print(f"{'case':34} {'switchboard':>12} {'audioop':>12} {'ratio (ours/audioop)':>22}")
    ratios = []
    for name, ours, reference in cases:
        t_ours, t_ref = _best(ours), _best(reference)
        ratios.append(t_ours / t_ref)
        print(f"{name:34} {t_ours * 1e3:10.3f}ms {t_ref * 1e3:10.3f}ms {t_ours / t_ref:21.2f}x")
    print(f"geometric mean ratio: {statistics.geometric_mean(ratios):.2f}x (below 1 = faster than audioop)")


if __name__ == "__main__":
    main()
