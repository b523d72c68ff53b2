"""Kubernetes resource quantities ("30Gi", "500M", "1.5e9"), bounded, as exact numbers.

Kubernetes takes any exponent, and its API server then spends seconds to minutes of CPU on a value such as
`1e99999999`. We take a bounded subset of its grammar instead, defined once by the limits below, and read
it two ways: QUANTITY_PATTERN (the CRD's schema pattern, and the guard of every CEL rule that calls
`quantity()`) and parse_quantity (admission, render, the operator). tests/unit/test_quantity.py shows
that the two accept the same strings and that every value either accepts is below MAX_QUANTITY.

The grammar: an optional sign, digits with an optional point and at most 9 digits after it, then a
unit (n u m k M G T P E, Ki Mi Gi Ti Pi Ei) or an exponent of at most two digits (e-99 to e18). The
digits before the point are limited per unit so that every value stays within Kubernetes' 64-bit
integer range (|value| < 2**63, just under 8Ei): 18 for a plain number, 15 with k/Ki/e3, 12 with
M/Mi/e6, 9 with G/Gi/e9, 6 with T/Ti/e12, 3 with P/Pi/e15, one digit up to 8 with E/e18 and up to 7
with Ei; every exponent in between takes one digit fewer than the one before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

MAX_QUANTITY = 2**63 - 1  # Kubernetes keeps quantities up to this as int64; beyond, it falls back to slow bignums
MAX_WHOLE_DIGITS = 18  # before the point, and never more whatever the unit
MAX_FRACTION_DIGITS = 9  # after the point: 1n, Kubernetes' smallest step, is 1e-9
MAX_EXPONENT_DIGITS = 2

# Each unit as (power of ten, binary factor): its value is factor * 10**power.
_UNITS: dict[str, tuple[int, int]] = {
    "n": (-9, 1), "u": (-6, 1), "m": (-3, 1), "": (0, 1), "k": (3, 1), "M": (6, 1), "G": (9, 1), "T": (12, 1),
    "P": (15, 1), "E": (18, 1),
    "Ki": (0, 2**10), "Mi": (0, 2**20), "Gi": (0, 2**30), "Ti": (0, 2**40), "Pi": (0, 2**50), "Ei": (0, 2**60),
}
_BINARY_UNITS = ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _largest_whole(power: int, factor: int) -> int:
    """The largest whole part allowed before a unit: any number below it + 1, times the unit, stays within
    MAX_QUANTITY. Rounded down to all nines (a digit count) or to one digit, which a pattern can say."""
    # whole part + 1 may be up to this:
    room = int((MAX_QUANTITY + 1) * 10 ** max(-power, 0) // (factor * 10 ** max(power, 0)))
    if room < 10:
        return room - 1
    return int("9" * min(len(str(room)) - 1, MAX_WHOLE_DIGITS))


# The limits: whole part allowed before each unit and each exponent (exponents above the last have none).
UNIT_LIMITS: dict[str, int] = {unit: _largest_whole(*unit_value) for unit, unit_value in _UNITS.items()}
EXPONENT_LIMITS: dict[int, int] = {
    e: limit for e in range(1 - 10**MAX_EXPONENT_DIGITS, 10**MAX_EXPONENT_DIGITS)
    if (limit := _largest_whole(e, 1)) >= 0
}
MAX_EXPONENT = max(EXPONENT_LIMITS)
# Sign, whole digits, point, fraction, the longest exponent ("e-99"): longer strings are never quantities.
MAX_LENGTH = 1 + MAX_WHOLE_DIGITS + 1 + MAX_FRACTION_DIGITS + 2 + MAX_EXPONENT_DIGITS


class QuantityError(ValueError):
    """A string that is not a quantity within the bounds above."""


def _digit_class(digits: list[int]) -> str:
    if len(digits) == 1:
        return str(digits[0])
    assert digits == list(range(digits[0], digits[-1] + 1)), digits  # a run, as the limits make them
    return f"[{digits[0]}-{digits[-1]}]"


def _whole_pattern(limit: int) -> str:
    if limit < 9:
        return f"[0-{limit}]"
    digits = len(str(limit))
    assert str(limit) == "9" * digits, limit  # _largest_whole only makes these two shapes
    return "[0-9]" if digits == 1 else f"[0-9]{{1,{digits}}}"


def _exponent_pattern(exponents: list[int]) -> str:
    """The exponents given, spelled as Kubernetes takes them: e3, E3, e+3, e03, e+03, e-5, e-05."""
    assert max(exponents) < 20  # two digits, the first at most 1: one class per first digit says them
    ones = [e for e in exponents if 0 <= e < 10]
    tens = [e - 10 for e in exponents if e >= 10]
    positive = ([f"0?{_digit_class(ones)}"] if ones else []) + ([f"1{_digit_class(tens)}"] if tens else [])
    spelled = ["[+]?" + (positive[0] if len(positive) == 1 else "(?:" + "|".join(positive) + ")")]
    if negative := [e for e in exponents if e < 0]:
        assert len(negative) == 10**MAX_EXPONENT_DIGITS - 1  # all of them, so one class says it
        spelled.append(f"-[0-9]{{1,{MAX_EXPONENT_DIGITS}}}")
    return "[eE]" + (spelled[0] if len(spelled) == 1 else "(?:" + "|".join(spelled) + ")")


def _pattern() -> str:
    """One branch per whole-part limit: the digits it allows, then the units and exponents that allow them.
    A number below 1 (".5") takes any unit or exponent: its own branch comes first."""
    units: dict[int, list[str]] = {}
    for unit, limit in UNIT_LIMITS.items():
        units.setdefault(limit, []).append(unit)
    exponents: dict[int, list[int]] = {}
    for e, limit in EXPONENT_LIMITS.items():
        exponents.setdefault(limit, []).append(e)
    fraction = f"[.][0-9]{{0,{MAX_FRACTION_DIGITS}}}"
    every_suffix = [u for u in UNIT_LIMITS if u] + [_exponent_pattern(sorted(EXPONENT_LIMITS))]
    branches = [f"[.][0-9]{{1,{MAX_FRACTION_DIGITS}}}(?:{'|'.join(every_suffix)})?"]
    for limit in sorted(set(units) | set(exponents), reverse=True):
        suffixes = [u for u in units.get(limit, []) if u]
        if limit in exponents:
            suffixes.append(_exponent_pattern(exponents[limit]))
        optional = "?" if "" in units.get(limit, []) else ""
        branches.append(f"{_whole_pattern(limit)}(?:{fraction})?(?:{'|'.join(suffixes)}){optional}")
    return "^[+-]?(?:" + "|".join(branches) + ")$"


# The whole grammar, bounds included: RE2 (Go, CEL) and Python's re read it alike; no backslash, so it needs
# no escaping. It is ~1,000 characters, and the API server prints a pattern whole when a value fails it, so the
# CRD's schema holds QUANTITY_SHAPE below and this one guards the CEL rules (the bound itself, and every
# rule that calls quantity()).
QUANTITY_PATTERN = _pattern()
# The grammar without the limits on the digits before the point: the schema's pattern (with MAX_LENGTH),
# short enough to read in an error. A value of this shape that QUANTITY_PATTERN refuses is out of range.
QUANTITY_SHAPE = (f"^[+-]?([0-9]+([.][0-9]{{0,{MAX_FRACTION_DIGITS}}})?|[.][0-9]{{1,{MAX_FRACTION_DIGITS}}})"
                  f"([{''.join(u for u in _UNITS if len(u) == 1)}]|[{''.join(u[0] for u in _BINARY_UNITS)}]i"
                  f"|[eE][+-]?[0-9]{{1,{MAX_EXPONENT_DIGITS}}})?$")


@dataclass(frozen=True)
class _Suffix:
    power: int  # the unit's value is factor * 10**power
    factor: int
    limit: int  # the largest whole part before it; -1: none (an exponent beyond the largest)
    digits: int  # how many digits that is


def _suffixes() -> dict[str, _Suffix]:
    """Every spelling of a unit or an exponent Kubernetes takes (e3, E+03, e-5, ...)."""
    table = {unit: _Suffix(*_UNITS[unit], limit, len(str(limit))) for unit, limit in UNIT_LIMITS.items()}
    for e in range(10**MAX_EXPONENT_DIGITS):
        for sign, signed in (("", e), ("+", e), ("-", -e)):
            limit = EXPONENT_LIMITS.get(signed, -1)
            for digits in {str(e), str(e).zfill(MAX_EXPONENT_DIGITS)}:
                for letter in "eE":
                    table[f"{letter}{sign}{digits}"] = _Suffix(signed, 1, limit, len(str(limit)))
    return table


_SUFFIXES = _suffixes()
_NUMBER = re.compile(r"([+-]?)([0-9]*)(?:[.]([0-9]*))?")
_LONG_EXPONENT = re.compile(rf"[eE][+-]?[0-9]{{{MAX_EXPONENT_DIGITS + 1},}}")


def parse_quantity(value: object) -> Decimal:
    """The exact value of a quantity: parse_quantity("1Gi") == 1073741824. Raises QuantityError, and only
    that, for anything outside the grammar; takes constant time whatever the input's length."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise QuantityError(f"{_shown(value)} is not a quantity (examples: 30Gi, 500M, 1Ti)")
    if isinstance(value, int):
        if abs(value) > UNIT_LIMITS[""]:  # compared, never printed: str() of a huge int is slow, or refused
            raise QuantityError(f"a number with more than {MAX_WHOLE_DIGITS} digits is too large: quantities "
                                "stay below 8Ei")
        return Decimal(value)
    if len(value) > MAX_LENGTH:
        raise QuantityError(f"{_shown(value)} is not a quantity: longer than {MAX_LENGTH} characters")
    number = _NUMBER.match(value)
    assert number is not None  # every part of it is optional
    sign, whole, fraction = number.group(1), number.group(2), number.group(3) or ""
    text_suffix = value[number.end():]
    suffix = _SUFFIXES.get(text_suffix)
    if (whole or fraction) and suffix is None and _LONG_EXPONENT.fullmatch(text_suffix):
        raise QuantityError(f"{_shown(value)} is out of range: an exponent can be e-99 to e{MAX_EXPONENT} "
                            "(quantities stay below 8Ei)")
    if (not whole and not fraction) or suffix is None:
        raise QuantityError(f"{_shown(value)} is not a quantity (examples: 30Gi, 500M, 1Ti, 1.5e9)")
    if suffix.limit < 0:
        raise QuantityError(f"{_shown(value)} is too large: an exponent can be at most e{MAX_EXPONENT} "
                            "(quantities stay below 8Ei)")
    if len(fraction) > MAX_FRACTION_DIGITS:
        raise QuantityError(f"{_shown(value)} has more than {MAX_FRACTION_DIGITS} digits after the point")
    if len(whole) > suffix.digits or (len(whole) == suffix.digits and int(whole) > suffix.limit):
        at_most = f"{suffix.digits} digits" if suffix.limit >= 9 else f"the number {suffix.limit}"
        raise QuantityError(f"{_shown(value)} is too large: at most {at_most} before the point"
                            f"{f' with {text_suffix}' if text_suffix else ''} (quantities stay below 8Ei)")
    # Built from integers and a string, so exact whatever the decimal context's precision.
    coefficient = int(whole + fraction or "0") * suffix.factor
    return Decimal(f"{sign}{coefficient}E{suffix.power - len(fraction)}")


def is_quantity(value: object) -> bool:
    try:
        parse_quantity(value)
    except QuantityError:
        return False
    return True


def _shown(value: object) -> str:
    """A value for an error message, cut short (before repr: it may be a megabyte) to keep one readable line."""
    if isinstance(value, str):
        return repr(value) if len(value) <= 40 else f"{value[:37]!r}..."
    return str(value) if isinstance(value, float) else type(value).__name__


def format_bytes(size: int) -> str:
    """A byte count as the largest binary unit that keeps one decimal: 21474836480 -> '20.0Gi'. Exact for
    any int (no float to overflow)."""
    if abs(size) < 1024:
        return str(size)
    power = min((abs(size).bit_length() - 1) // 10, len(_BINARY_UNITS))
    tenths = round(Fraction(abs(size) * 10, 1024**power))
    if tenths // 10 > UNIT_LIMITS[_BINARY_UNITS[power - 1]] and power < len(_BINARY_UNITS):
        power += 1  # 1000.0Pi is outside the bounded grammar (3 digits before Pi): 1.0Ei reads back
        tenths = round(Fraction(abs(size) * 10, 1024**power))
    return f"{'-' if size < 0 else ''}{tenths // 10}.{tenths % 10}{_BINARY_UNITS[power - 1]}"
