"""Converter metrics against answers known in closed form."""

import math

import numpy as np
import pytest

from simworkers.spectrum import WaveformError, coherent_bin, enob, linearity, sfdr_db, sndr_db

N, CYCLES = 1024, 31  # co-prime: coherent


def sine(amplitude=1.0, cycles=CYCLES, n=N, phase=0.3):
    k = np.arange(n)
    return amplitude * np.sin(2 * np.pi * cycles * k / n + phase)


def test_sndr_of_a_sine_with_white_noise_is_its_power_ratio():
    rng = np.random.default_rng(0)
    sigma = 1e-3
    noisy = sine() + rng.normal(0, sigma, N)
    expected = 10 * math.log10(0.5 / sigma**2)  # 57.0 dB
    assert sndr_db(noisy) == pytest.approx(expected, abs=0.4)


@pytest.mark.parametrize("bits", [6, 8, 10])
def test_an_ideal_quantizer_has_its_textbook_enob(bits):
    # a full-scale sine through an ideal N-bit quantizer: SNDR = 6.02 N + 1.76 dB
    lsb = 2.0 / 2**bits
    quantized = np.round(sine(1.0 - lsb / 2) / lsb) * lsb
    assert enob(quantized) == pytest.approx(bits, abs=0.15)


def test_a_harmonic_sets_sfdr_and_lowers_sndr():
    k = np.arange(N)
    third = 10 ** (-60 / 20) * np.sin(2 * np.pi * 3 * CYCLES * k / N)  # -60 dBc third harmonic
    distorted = sine() + third
    assert sfdr_db(distorted) == pytest.approx(60.0, abs=0.01)
    assert sndr_db(distorted) == pytest.approx(60.0, abs=0.01)  # it is the only impairment
    assert sndr_db(distorted, signal_bin=CYCLES) == pytest.approx(60.0, abs=0.01)


def test_the_signal_bin_is_found_without_being_told():
    assert sndr_db(sine(cycles=13)) > 200  # numerically clean: no noise, no leakage


def test_dnl_and_inl_of_a_transfer_curve():
    ideal = np.arange(16) * 0.1
    assert linearity(ideal) == pytest.approx((0.0, 0.0), abs=1e-12)
    bent = ideal.copy()
    bent[8:] += 0.05  # one step half an LSB too wide, then back to scale at the end points
    bent[-1] = ideal[-1]
    # the step into code 8 is 1.5 LSB (DNL +0.5), the last one 0.5 LSB (-0.5); codes 8-14 sit
    # half an LSB off the end-point line
    assert linearity(bent) == pytest.approx((0.5, 0.5), abs=1e-9)


def test_bad_records_are_refused_with_a_reason():
    with pytest.raises(WaveformError, match="at least"):
        sndr_db([1.0, 2.0])
    with pytest.raises(WaveformError, match="flat"):
        sndr_db(np.ones(64))
    with pytest.raises(WaveformError, match="not finite"):
        sndr_db([0.0, math.nan] * 16)
    with pytest.raises(WaveformError, match="coherent"):
        coherent_bin(32, 1024)
    assert coherent_bin(31, 1024) == 31
    with pytest.raises(WaveformError, match="coherent"):  # a task naming a bin that leaks
        sndr_db(sine(), signal_bin=32)


# A sine with a known third harmonic (x + a x^3: HD3 = a/4 / (1 + 3a/4)), sampled coherently by
# `linearize`, and a transfer curve with one step half an LSB too wide: real ngspice, both backends.
WAVE_NETLIST = """\
vin in 0 sin(0 1 {7/(64*1e-8)})
bout out 0 v = v(in) + 0.004*v(in)*v(in)*v(in)
rl out 0 {r}
vr ramp 0 dc 0
blv lv 0 v = v(ramp) + (v(ramp) > 7.5 ? 0.5 : 0) - (v(ramp) > 14.5 ? 0.5 : 0)
"""
WAVE_TASK = """\
name: wave_user
description: Derived metrics from whole vectors.
process: generic180
netlist: netlist.sp
params:
  - {name: r, unit: ohm, lo: 1e3, hi: 1e5, scale: log, reference: 1e4}
metrics:
  sndr: {unit: dB}
  sfdr: {unit: dB}
  enob: {unit: bit}
  dnl: {unit: LSB}
  inl: {unit: LSB}
testbench:
  - commands: ["tran 10n 730n 100n 0.2n", "linearize v(out)", "let held = v(out)"]
    derive:
      - {metric: sndr, kind: sndr_db, vector: held, signal_bin: 7}
      - {metric: sfdr, kind: sfdr_db, vector: held}
      - {metric: enob, kind: enob, vector: held}
  - commands: ["dc vr 0 15 1", "let levels = v(lv)"]
    derive:
      - {metric: dnl, kind: dnl, vector: levels}
      - {metric: inl, kind: inl, vector: levels}
specs:
  - {metric: sndr, kind: min, target: 40}
"""


@pytest.fixture
def wave_task(tmp_path, monkeypatch):
    from simworkers.catalog import load_task
    from tests.conftest import write_task

    write_task(tmp_path, "wave_user", netlist=WAVE_NETLIST, body=WAVE_TASK)
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path))
    return load_task("wave_user")


@pytest.mark.parametrize("backend", ["shared", "batch"])
def test_metrics_derived_from_ngspice_vectors(wave_task, backend):
    from simworkers.backends import make_backend

    with make_backend(backend) as sim:
        result = sim.simulate(wave_task, wave_task.reference())
    assert result.status == "ok", result.reason
    hd3 = 20 * math.log10((0.004 / 4) / (1 + 3 * 0.004 / 4))  # -60.03 dBc
    assert result.metrics["sfdr"] == pytest.approx(-hd3, abs=0.1)
    assert result.metrics["sndr"] == pytest.approx(-hd3, abs=0.1)
    assert result.metrics["enob"] == pytest.approx((-hd3 - 1.76) / 6.02, abs=0.02)
    assert result.metrics["dnl"] == pytest.approx(0.5, abs=1e-4)
    assert result.metrics["inl"] == pytest.approx(0.5, abs=1e-4)


def test_a_derive_entry_that_is_wrong_is_named(tmp_path, monkeypatch):
    from simworkers.catalog import load_task
    from simworkers.task import TaskError
    from tests.conftest import write_task

    bad = WAVE_TASK.replace("kind: sfdr_db", "kind: thd").replace("name: wave_user", "name: wave_bad")
    write_task(tmp_path, "wave_bad", netlist=WAVE_NETLIST, body=bad)
    monkeypatch.setenv("TLGRPO_TASK_PATH", str(tmp_path))
    with pytest.raises(TaskError, match=r"testbench\[0\]\.derive\[1\]\.kind.*'thd'.*sndr_db"):
        load_task("wave_bad")
