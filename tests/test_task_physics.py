"""What a designer expects of each circuit on the real simulator, so that a wrong testbench
cannot pass by accident: change one thing in the reference design, watch the right metric move."""

import math

import pytest

from simworkers.backends import make_backend
from simworkers.catalog import load_task

# (task, parameter changes as factors of the reference, metric, expected move, bound on the ratio);
# a factor that would leave the parameter's range stops at its bound (the simulator refuses a
# design outside the ranges), and still changes the value by 10 % or more
EXPECTATIONS = [
    ("ota5t_generic", {"ibias": 2.0}, "power", "up", None),
    ("ota5t_generic", {"ibias": 2.0}, "ugf", "up", None),
    ("telescopic_sky130", {"ibias": 1.5}, "power", "up", None),
    ("telescopic_sky130", {"w_in": 2.0}, "ugf", "up", None),
    ("folded_cascode_sky130", {"k_i": 2.0}, "power", "up", (1.8, 2.2)),  # current and widths scaled together
    ("folded_cascode_sky130", {"w_in": 1.5}, "ugf", "up", None),  # more input gm, same load
    ("folded_cascode_sky130", {"w_in": 1.5}, "pm", "down", None),  # and more parasitic pole
    ("ldo_sky130", {"w_pass": 2.0}, "dropout", "down", None),
    ("ldo_sky130", {"r1": 1.2}, "vout", "up", (1.05, 1.15)),  # vout = 0.6 (1 + r1/r2)
    ("ldo_sky130", {"ibias": 2.0}, "iq", "up", None),
    ("bandgap_generic", {"r2": 1.1}, "vref", "up", None),  # more PTAT voltage
    ("bandgap_generic", {"ibias": 2.0}, "power", "up", None),
    ("strongarm_sky130", {"k_w": 2.0}, "energy", "up", None),  # every latch device twice as wide
    ("strongarm_sky130", {"w_rst": 2.0}, "reset_time", "down", None),
    ("acamp_sky130", {"cf": 2.0}, "gain_db", "down", None),  # gain = cin / cf: -6 dB
    ("acamp_sky130", {"rf": 0.7}, "f_hp", "up", (1.3, 1.55)),  # corner = 1 / (2 pi rf cf): x1.43
    ("acamp_sky130", {"ibias": 2.0}, "power", "up", None),
    ("tia_gf180", {"rf": 2.0}, "zt_db", "up", None),
    ("tia_gf180", {"w_n1": 2.0, "w_p1": 2.0}, "power", "up", None),
    ("sample_hold_sky130", {"c_hold": 2.5}, "noise", "down", (0.6, 0.66)),  # sqrt(kT/C): 1/sqrt(2.5)
    ("sample_hold_sky130", {"c_hold": 2.5}, "sndr_db", "down", None),  # the same switch, slower tracking
    ("sample_hold_sky130", {"w_sw": 0.4}, "sndr_db", "down", None),  # more on-resistance
    ("sample_hold_sky130", {"c_boot": 2.0, "w_chp": 2.0}, "power", "up", None),
    ("dac_sky130", {"i_unit": 1.2}, "full_scale", "up", (1.1, 1.25)),  # 255 LSB currents into 500 ohm
    ("dac_sky130", {"i_unit": 1.2}, "power", "up", None),
    ("mdac_sky130", {"c_s": 2.5}, "noise", "down", (0.6, 0.66)),
    ("mdac_sky130", {"i_bias": 2.0}, "settle_err", "down", None),  # more gm, faster closed loop
    ("mdac_sky130", {"i_bias": 2.0}, "power", "up", None),
    ("opamp2s_sky130", {"cc": 2.0}, "ugf", "down", None),
    ("opamp2s_gf180", {"cc": 2.0}, "ugf", "down", None),
    ("opamp2s_gf180hv", {"ibias": 2.0}, "power", "up", None),
    ("opamp2s_generic", {"cc": 2.0}, "ugf", "down", None),
]


@pytest.fixture(scope="module")
def sim():
    with make_backend("shared") as backend:
        yield backend


@pytest.mark.parametrize(
    ("name", "changes", "metric", "move", "ratio"), EXPECTATIONS, ids=[f"{e[0]}:{e[2]}-{e[3]}" for e in EXPECTATIONS]
)
def test_designer_expectation(sim, name, changes, metric, move, ratio):
    task = load_task(name)
    base_design = task.reference()
    bounded = {k: min(max(base_design[k] * f, task.param(k).lo), task.param(k).hi) for k, f in changes.items()}
    assert all(abs(math.log(bounded[k] / base_design[k])) >= math.log(1.1) for k in changes), bounded
    changed = {**base_design, **bounded}
    base, after = sim.simulate(task, base_design), sim.simulate(task, changed)
    assert base.ok and after.ok, (base.reason, after.reason)
    before_value, after_value = base.metrics[metric], after.metrics[metric]
    if move == "up":
        assert after_value > before_value
    else:
        assert after_value < before_value
    if ratio is not None:
        assert ratio[0] <= after_value / before_value <= ratio[1]


def test_acamp_gain_is_set_by_the_capacitor_ratio(sim):
    """cin/cf, less what the OTA's finite loop gain takes away, never more."""
    task = load_task("acamp_sky130")
    design = task.reference()
    result = sim.simulate(task, design)
    ideal_db = 20 * math.log10(design["cin"] / design["cf"])
    assert ideal_db - 4.0 <= result.metrics["gain_db"] <= ideal_db + 0.1


def test_converter_blocks_do_what_their_netlists_say(sim):
    """The held samples are a clean sine (a wrong sample instant or signal bin would read near
    0 dB); the DAC puts its 255 LSB currents into 500 ohm, less the mirror's error, and is monotonic;
    the flip-around stage amplifies 0.2 V by two, not by one or with the wrong sign."""
    hold = load_task("sample_hold_sky130")
    held = sim.simulate(hold, hold.reference())
    assert held.ok, held.reason
    assert held.metrics["sndr_db"] > 50 and held.metrics["sfdr_db"] >= held.metrics["sndr_db"]
    dac = load_task("dac_sky130")
    design = dac.reference()
    levels = sim.simulate(dac, design)
    assert levels.ok, levels.reason
    assert 0.7 <= levels.metrics["full_scale"] / (255 * design["i_unit"] * 500) <= 1.0
    assert levels.metrics["dnl"] < 1.0 and 0 < levels.metrics["settle"] < 5e-9
    mdac = load_task("mdac_sky130")
    stage = sim.simulate(mdac, mdac.reference())
    assert stage.ok, stage.reason
    assert stage.metrics["gain_err"] < 0.1 and stage.metrics["settle_err"] < 0.05
