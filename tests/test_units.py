import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simworkers.units import QuantityError, format_si, parse_quantity, spice_number


@pytest.mark.parametrize(
    ("text", "unit", "value"),
    [
        ("2.5u", "m", 2.5e-6),
        ("10 pF", "F", 10e-12),
        ("10p", "F", 10e-12),
        ("1.2e-6", "m", 1.2e-6),
        ("  3.3 V ", "V", 3.3),
        ("4.7k", "ohm", 4.7e3),
        ("1meg", "ohm", 1e6),
        ("2 MΩ", "ohm", 2e6),
        ("50 µA", "A", 50e-6),
        ("100nA", "A", 100e-9),
        ("0.5um", "m", 0.5e-6),
        ("2m", "m", 2.0),  # a bare unit: metres, not milli
        ("5 mV", "V", 5e-3),
        (".5", "", 0.5),
        (7, "m", 7.0),
        (1e-6, "m", 1e-6),
    ],
)
def test_parses_what_people_write(text, unit, value):
    assert parse_quantity(text, unit) == pytest.approx(value)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "nan",
        "inf",
        "1e400",
        "4u\n.control\nshell touch /tmp/x\n.endc",
        "2.5 uF; rm -rf",
        "1,5",
        "{w1}",
        "2.5x",
        True,
        None,
        [1.0],
        float("nan"),
        "1" * 100,
    ],
)
def test_refuses_anything_but_a_number(bad):
    with pytest.raises(QuantityError):
        parse_quantity(bad, "F")


def test_unit_must_match_the_parameter():
    with pytest.raises(QuantityError, match="not an SI prefix or the unit m"):
        parse_quantity("10 pF", "m")


@given(st.text(max_size=80))
def test_any_text_parses_to_a_finite_float_or_raises_quantity_error(text):
    try:
        value = parse_quantity(text, "m")
    except QuantityError:
        return
    assert isinstance(value, float) and math.isfinite(value)


@given(st.floats(min_value=1e-17, max_value=1e13, allow_nan=False))
def test_format_si_round_trips(value):
    assert parse_quantity(format_si(value, "F", digits=12), "F") == pytest.approx(value, rel=1e-9)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_spice_number_is_only_a_number(value):
    text = spice_number(value)
    assert float(text) == pytest.approx(value, rel=1e-9, abs=0)
    assert set(text) <= set("0123456789.e+-")


def test_an_integer_too_large_for_a_float_is_an_error_not_a_crash():
    """A model's tool call may hold any JSON integer: it ends as a QuantityError, and validation
    as an `invalid` design naming the parameter."""
    import json

    from simworkers.catalog import load_task
    from simworkers.validate import InvalidParams, validate_params

    huge = json.loads("1" + "0" * 400)  # beyond the largest float
    with pytest.raises(QuantityError, match="too large"):
        parse_quantity(huge, "m")
    task = load_task("ota5t_generic")
    with pytest.raises(InvalidParams, match=task.params[0].name):
        validate_params(task, {**task.reference(), task.params[0].name: huge})
