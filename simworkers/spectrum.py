"""Converter metrics from sampled waveforms, the way converter designers measure them: a coherent
FFT's SNDR, ENOB and SFDR, and DNL/INL from a transfer curve.

Coherent sampling (a whole number of signal cycles in the record, co-prime with its length) puts
the signal in one FFT bin and leaks nothing, so no window is needed. Every function takes plain
sequences of floats and returns floats; nothing here knows ngspice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


class WaveformError(ValueError):
    """A record that cannot give the metric: too short, flat, or not finite."""


def _record(samples: Sequence[float], least: int = 8) -> np.ndarray:
    x = np.asarray(samples, dtype=float)
    if x.ndim != 1 or len(x) < least:
        raise WaveformError(f"need a record of at least {least} samples, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise WaveformError("the record holds a value that is not finite")
    return x


def power_bins(samples: Sequence[float]) -> np.ndarray:
    """One-sided power per FFT bin, DC removed (bin 0 is 0)."""
    x = _record(samples)
    spectrum = np.abs(np.fft.rfft(x - x.mean())) ** 2
    spectrum[0] = 0.0
    return spectrum


def _signal(samples: Sequence[float], signal_bin: int | None) -> tuple[np.ndarray, int]:
    """The record's power per bin and the signal's bin: the one named, which must be coherent
    with the record's length, or else the largest."""
    power = power_bins(samples)
    if power.max() <= 0:
        raise WaveformError("the record is flat: no signal")
    k = int(np.argmax(power)) if signal_bin is None else coherent_bin(signal_bin, len(samples))
    return power, k


def sndr_db(samples: Sequence[float], signal_bin: int | None = None) -> float:
    """Signal power over everything else but DC (noise and every harmonic), in dB."""
    power, k = _signal(samples, signal_bin)
    rest = power.sum() - power[k]
    return math.inf if rest <= 0 else 10 * math.log10(power[k] / rest)


def enob(samples: Sequence[float], signal_bin: int | None = None) -> float:
    """Effective number of bits of a full-scale sine: (SNDR - 1.76 dB) / 6.02 dB."""
    return (sndr_db(samples, signal_bin) - 1.76) / 6.02


def sfdr_db(samples: Sequence[float], signal_bin: int | None = None) -> float:
    """Signal power over the largest other bin (a spur, harmonic or not), in dB."""
    power, k = _signal(samples, signal_bin)
    spur = np.delete(power, k).max()
    return math.inf if spur <= 0 else 10 * math.log10(power[k] / spur)


def linearity(levels: Sequence[float]) -> tuple[float, float]:
    """(max |DNL|, max |INL|) in LSB of a transfer curve: `levels[k]` is the output at code k
    (a DAC) or the input at which code k begins (an ADC's transition levels). The LSB and the
    straight line are the end points'."""
    v = _record(levels, least=3)
    lsb = (v[-1] - v[0]) / (len(v) - 1)
    if lsb == 0:
        raise WaveformError("the transfer curve is flat: end points equal")
    dnl = np.diff(v) / lsb - 1
    inl = (v - (v[0] + lsb * np.arange(len(v)))) / lsb
    return float(np.abs(dnl).max()), float(np.abs(inl).max())


def coherent_bin(cycles: int, samples: int) -> int:
    """The signal's bin for `cycles` periods in a record of `samples`; refused unless coherent
    sampling holds (co-prime, below Nyquist)."""
    if math.gcd(cycles, samples) != 1 or not 0 < cycles < samples / 2:
        raise WaveformError(f"{cycles} cycles in {samples} samples is not coherent (co-prime, below Nyquist)")
    return cycles


# a task's `derive: kind` -> the metric of a vector (and the signal's bin, where it has one)
DERIVED_KINDS: dict[str, Callable[[Sequence[float], int | None], float]] = {
    "sndr_db": sndr_db,
    "enob": enob,
    "sfdr_db": sfdr_db,
    "dnl": lambda levels, _: linearity(levels)[0],
    "inl": lambda levels, _: linearity(levels)[1],
}
