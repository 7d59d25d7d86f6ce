import math

import pytest

from simworkers.backends import make_backend
from simworkers.catalog import load_task
from simworkers.validate import InvalidParams, validate_params

INJECTION = "4u\n.control\nshell touch {path}\n.endc"


@pytest.fixture(scope="module")
def ota():
    return load_task("ota5t_generic")


def test_accepts_numbers_and_si_strings_in_task_order(ota):
    raw = {**ota.reference(), "w_in": "35u", "ibias": "12 uA", "l_in": 1e-6}
    out = validate_params(ota, raw)
    assert list(out) == list(ota.param_names)
    assert out["w_in"] == pytest.approx(35e-6) and out["ibias"] == pytest.approx(12e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"w_in": math.inf}, "w_in: inf is not finite"),
        ({"w_in": "abc"}, "w_in: 'abc' is not a number"),
        ({"w_in": 1.0}, "outside"),
        ({"w_in": -1e-6}, "outside"),
        ({"W_IN": 1e-6}, "unknown parameter 'W_IN'"),
        ({"w_in": None}, "NoneType"),
    ],
)
def test_refuses_bad_values_naming_the_parameter(ota, change, message):
    with pytest.raises(InvalidParams) as err:
        validate_params(ota, {**ota.reference(), **change})
    assert message in str(err.value)


def test_missing_parameters_are_named(ota):
    raw = ota.reference()
    del raw["l_tail"]
    with pytest.raises(InvalidParams, match="l_tail: missing"):
        validate_params(ota, raw)


@pytest.mark.parametrize("backend", ["shared", "batch"])
def test_injection_is_refused_and_nothing_runs(ota, backend, tmp_path):
    target = tmp_path / "pwned"
    raw = {**ota.reference(), "w_in": INJECTION.format(path=target)}
    with make_backend(backend) as sim:
        result = sim.simulate(ota, raw)
        assert result.status == "invalid"
        assert "w_in" in result.reason and "number" in result.reason
        assert sim.simulate(ota, ota.reference()).ok  # the worker is untouched
    assert not target.exists()


def test_injection_through_a_parameter_name_is_refused(ota, tmp_path):
    target = tmp_path / "pwned"
    raw = {**ota.reference(), f"w_in=1\n.control\nshell touch {target}\n.endc\n*": 1e-6}
    with make_backend("shared") as sim:
        assert sim.simulate(ota, raw).status == "invalid"
    assert not target.exists()
