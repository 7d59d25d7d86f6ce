"""Numbers with SI prefixes and units, as people and language models write them.

`parse_quantity("2.5u", "m") == 2.5e-6`, `parse_quantity("10 pF", "F") == 1e-11`. Anything that
is not exactly a number, an optional prefix and an optional matching unit is refused, so no text
beyond a number can come out of here.
"""

from __future__ import annotations

import math
import re

PREFIXES = {
    "a": 1e-18,
    "f": 1e-15,
    "p": 1e-12,
    "n": 1e-9,
    "u": 1e-6,
    "µ": 1e-6,
    "μ": 1e-6,
    "m": 1e-3,
    "k": 1e3,
    "K": 1e3,
    "M": 1e6,
    "meg": 1e6,
    "Meg": 1e6,
    "MEG": 1e6,
    "G": 1e9,
    "T": 1e12,
}
UNIT_ALIASES = {
    "ohm": {"ohm", "ohms", "Ω", "Ohm", "Ohms", "R"},
    "F": {"F"},
    "A": {"A", "amp", "amps"},
    "V": {"V", "v"},
    "m": {"m"},
    "s": {"s", "sec"},
    "Hz": {"Hz", "hz", "HZ"},
    "H": {"H", "h"},
}
_NUMBER = re.compile(r"^\s*([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*([A-Za-zµμΩ]*(?: [A-Za-zΩ]+)?)\s*$")
_MAX_TEXT = 64


class QuantityError(ValueError):
    """A value that is not a finite number with an optional SI prefix and unit."""


def _unit_names(unit: str) -> set[str]:
    return UNIT_ALIASES.get(unit, {unit}) if unit else set()


def parse_quantity(value: object, unit: str = "") -> float:
    """Return a finite float from a number or a string like "2.5u", "10 pF", "1.2e-6 m"."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is a boolean, not a number")
    if isinstance(value, int):  # JSON allows integers of any size; repr of a huge one raises too
        try:
            number = float(value)
        except OverflowError:
            raise QuantityError(f"an integer of {value.bit_length()} bits is too large to be a number") from None
    elif isinstance(value, float):
        number = value
    elif isinstance(value, str):
        number = _parse_text(value, unit)
    else:
        raise QuantityError(f"{type(value).__name__} {value!r} is not a number")
    if not math.isfinite(number):
        raise QuantityError(f"{value!r} is not finite")
    return number


def _parse_text(text: str, unit: str) -> float:
    shown = text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "..."
    if len(text) > _MAX_TEXT:
        raise QuantityError(f"{shown!r} is too long to be a number")
    m = _NUMBER.match(text)
    if m is None:
        raise QuantityError(f"{shown!r} is not a number (expected e.g. 2.5u or 10 pF)")
    mantissa, suffix = float(m.group(1)), m.group(2).replace(" ", "")
    factor = _suffix_factor(suffix, unit)
    if factor is None:
        expected = f" or the unit {unit}" if unit else ""
        raise QuantityError(f"{shown!r}: '{suffix}' is not an SI prefix{expected}")
    return mantissa * factor


def _suffix_factor(suffix: str, unit: str) -> float | None:
    units = _unit_names(unit)
    if not suffix or suffix in units:
        return 1.0
    for prefix in ("meg", "Meg", "MEG"):
        if suffix.startswith(prefix) and (suffix == prefix or suffix[len(prefix) :] in units):
            return 1e6
    head, rest = suffix[0], suffix[1:]
    if head in PREFIXES and (not rest or rest in units):
        return PREFIXES[head]
    return None


_DISPLAY = [
    (1e12, "T"),
    (1e9, "G"),
    (1e6, "M"),
    (1e3, "k"),
    (1.0, ""),
    (1e-3, "m"),
    (1e-6, "u"),
    (1e-9, "n"),
    (1e-12, "p"),
    (1e-15, "f"),
    (1e-18, "a"),
]


def format_si(value: float, unit: str = "", digits: int = 4) -> str:
    """Human form with an SI prefix, e.g. 2.5e-6, "m" -> "2.5u m"; the inverse of parse_quantity."""
    if not math.isfinite(value) or value == 0:
        return f"{value:g} {unit}".strip()
    for scale, prefix in _DISPLAY:
        if abs(value) >= scale * 0.9995:
            return f"{value / scale:.{digits}g}{prefix} {unit}".strip()
    return f"{value:.{digits}g} {unit}".strip()


def spice_number(value: float) -> str:
    """The only way a parameter value is written into a netlist: a float in exponent form."""
    number = float(value)
    if not math.isfinite(number):
        raise QuantityError(f"{value!r} is not finite")
    return repr(number)  # shortest text that reads back as exactly this float
