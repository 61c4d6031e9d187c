"""Fixtures of the VAD tests: espeak-ng sentences at 8 kHz and the shared Silero model."""

from __future__ import annotations

import numpy as np
import pytest

from processors.audio.vad import SileroModel, shared_silero_model
from tests.unit.vad.signals import SENTENCES, synthesize


@pytest.fixture(scope="session")
def sentences(tmp_path_factory: pytest.TempPathFactory) -> list[np.ndarray]:
    """The SENTENCES spoken by espeak-ng, int16 at 8 kHz (with espeak's own short lead-in/out)."""
    directory = tmp_path_factory.mktemp("espeak")
    return [synthesize(text, directory / f"s{i}.wav") for i, text in enumerate(SENTENCES)]


@pytest.fixture(scope="session")
def silero() -> SileroModel:
    return shared_silero_model()
