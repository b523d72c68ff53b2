"""Quantities: one bounded grammar, read alike by the CRD's pattern and by our parser."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import TypeVar

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llmpack.quantity import (
    MAX_LENGTH,
    MAX_QUANTITY,
    QUANTITY_PATTERN,
    QUANTITY_SHAPE,
    UNIT_LIMITS,
    QuantityError,
    format_bytes,
    is_quantity,
    parse_quantity,
)

PATTERN = re.compile(QUANTITY_PATTERN)
F = TypeVar("F", bound=Callable[..., None])


def examples(*values: object) -> Callable[[F], F]:
    """Hypothesis examples, several at once: the cases we know matter, tried every run."""
    def add(test: F) -> F:
        for value in values:
            test = example(value)(test)
        return test
    return add


def pattern_accepts(text: str) -> bool:
    return PATTERN.fullmatch(text) is not None


@pytest.mark.parametrize(("text", "value"), [
    ("30Gi", 30 * 2**30), ("80Gi", 80 * 2**30), ("500M", 500 * 10**6), ("1.5Gi", 1.5 * 2**30),
    ("1e9", 10**9), ("100m", Decimal("0.1")), ("0", 0), (1024, 1024), ("129e6", 129 * 10**6), ("1.", 1),
    (".5Ki", 512), ("+1k", 1000), ("-2M", -2 * 10**6), ("1E", 10**18), ("1E3", 1000), ("5e-3", Decimal("0.005")),
    ("1e+03", 1000), ("7.5Ei", 15 * 2**59), ("999999999999999999", 10**18 - 1), ("1n", Decimal("1e-9")),
])
def test_quantities_parse_exactly(text: str | int, value: object) -> None:
    assert parse_quantity(text) == Decimal(str(value))


@pytest.mark.parametrize("text", ["30 gigabytes", "30GB", "Gi", "", "1.2.3Gi", "--1", " 1Gi", "1Gi\n", "1e1.5",
                                  ".", "+", "1e", "1ki", "1KI", "١٢", "1_000"])
def test_non_quantities_are_refused(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(QuantityError, match="is not a quantity"):
        parse_quantity(text)


@pytest.mark.parametrize(("value", "why"), [
    ("1e99999999", "an exponent can be e-99 to e18"), ("1e-100", "an exponent can be e-99 to e18"),
    ("1e19", "an exponent can be at most e18"), ("8Ei", "at most the number 7 before the point with Ei"),
    ("9E", "at most the number 8 before the point with E"), ("9e18", "at most the number 8 before the point with e18"),
    ("1000000000000000000", "at most 18 digits before the point"), ("1000Pi", "at most 3 digits before the point"),
    ("0000000000000000001", "at most 18 digits"), ("1.0000000001", "more than 9 digits after the point"),
    pytest.param("1" * 10_000, f"longer than {MAX_LENGTH} characters", id="10,000 digits"),
    (10**18, "more than 18 digits"), pytest.param(10**5000, "more than 18 digits", id="a 5,001-digit int"),
    (True, "is not a quantity"), (1.5, "is not a quantity"), (None, "is not a quantity"),
])
def test_values_beyond_the_bounds_are_refused_saying_which_bound(value: object, why: str) -> None:
    with pytest.raises(QuantityError, match=re.escape(why)) as refused:
        parse_quantity(value)
    assert len(str(refused.value)) < 200  # one readable line, however long the value


@given(st.integers(0, UNIT_LIMITS["Ki"]))
def test_binary_units_round_trip(n: int) -> None:
    assert parse_quantity(f"{n}Ki") == n * 1024


@settings(max_examples=500)
@given(st.from_regex(PATTERN, fullmatch=True))
@examples("7.999999999Ei", "-8.999999999e18", "999999999999999999.999999999")
def test_every_string_the_pattern_takes_parses_to_its_exact_value_within_the_bound(text: str) -> None:
    assert len(text) <= MAX_LENGTH
    value = parse_quantity(text)
    assert value == exact_value(text)
    assert abs(value) <= MAX_QUANTITY


UNIT_VALUES = {"": 1, "n": Fraction(1, 10**9), "u": Fraction(1, 10**6), "m": Fraction(1, 1000), "k": 10**3,
               "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20,
               "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def exact_value(text: str) -> Fraction:
    """A second reading, with fractions and Kubernetes' unit table, for what the pattern took."""
    match = re.fullmatch(r"([+-]?)([0-9]*[.]?[0-9]*)(.*)", text)
    assert match is not None
    sign, number, suffix = match.groups()
    unit = UNIT_VALUES[suffix] if suffix in UNIT_VALUES else Fraction(10) ** int(suffix[1:])
    return (-1 if sign == "-" else 1) * Fraction(number.rstrip(".") or "0") * unit


UNITS = ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]


def digits(low: int, high: int) -> st.SearchStrategy[str]:
    """Digit strings with a length drawn evenly from low..high, so that every digit count the limits name
    (and one past it) comes up often."""
    return st.integers(low, high).flatmap(lambda n: st.text("0123456789", min_size=n, max_size=n))


exponents = st.builds(lambda letter, sign, number: f"{letter}{sign}{number}", st.sampled_from("eE"),
                      st.sampled_from(["", "+", "-", "++"]), digits(0, 3))
near_misses = st.builds(
    lambda sign, whole, point, fraction, suffix: f"{sign}{whole}{point}{fraction}{suffix}",
    st.sampled_from(["", "+", "-", "--", " "]),
    digits(0, 20) | st.sampled_from("0123456789"),
    st.sampled_from(["", ".", ".", ".."]),
    digits(0, 11),
    st.sampled_from(UNITS) | exponents | st.sampled_from(["K", "ki", "KI", "i", "e", "b", "Gb", "G ", "e1.5", "\n"]),
)


@settings(max_examples=1000)
@given(near_misses | st.text(max_size=40) | st.integers().map(str))
@examples("1e99999999", "8Ei", "7Ei", "1e18", "9e18", "1e-99", ".e1")
def test_the_pattern_and_the_parser_accept_the_same_strings(text: str) -> None:
    assert pattern_accepts(text) == is_quantity(text), text
    if is_quantity(text):
        assert abs(parse_quantity(text)) <= MAX_QUANTITY


@settings(max_examples=1000)
@given(st.from_regex(PATTERN, fullmatch=True) | near_misses | st.text(max_size=40))
@examples("8Ei", "1e19", "1e-100", "9" * 40, "1.0000000001")
def test_the_schemas_short_pattern_takes_every_quantity_and_what_it_takes_beyond_is_only_out_of_range(
        text: str) -> None:
    """The CRD's schema holds QUANTITY_SHAPE (and MAX_LENGTH), short enough to print in an error; its CEL holds the
    bound. What has the shape but not the bound is a quantity Kubernetes takes, too large for us."""
    has_shape = re.fullmatch(QUANTITY_SHAPE, text) is not None and len(text) <= MAX_LENGTH
    if is_quantity(text):
        assert has_shape
    elif has_shape:
        with pytest.raises(QuantityError, match=r"too large|out of range"):
            parse_quantity(text)


def test_the_schemas_pattern_reads_in_one_short_line() -> None:
    assert len(QUANTITY_SHAPE) < 100 < len(QUANTITY_PATTERN)


def spellings() -> list[str]:
    """Every unit, and every exponent as Kubernetes spells it (e5, E+05, e-5, ...) up to two digits, and some
    of three."""
    out = list(UNITS)
    for e in [*range(100), 100, 101, 999]:
        for number in {str(e), str(e).zfill(2)}:
            out += [f"{letter}{sign}{number}" for letter in "eE" for sign in ("", "+", "-")]
    return out


def test_at_every_bound_the_pattern_and_the_parser_agree() -> None:
    """Exhaustive where a mistake would hide: for each unit and exponent, whole parts at each limit and
    one past it, with and without a fraction, signed and not."""
    wholes = [str(UNIT_LIMITS[""])[:n] for n in range(0, 20)] + ["7", "8", "1" + "0" * 18]
    checked = 0
    for suffix in spellings():
        for whole in wholes:
            for fraction in ("", ".", ".5", ".123456789", ".1234567890"):
                text = f"{whole}{fraction}{suffix}"
                assert pattern_accepts(text) == is_quantity(text), text
                checked += 1
    assert checked > 75_000


@given(st.integers())
@examples(10**18 - 1, 10**18, -(10**18) + 1, -(10**18))
def test_an_integer_is_a_quantity_exactly_when_its_digits_are(n: int) -> None:
    assert is_quantity(n) == pattern_accepts(str(n))


hostile = st.builds(
    lambda head, body, tail: head + body + tail,
    st.sampled_from(["", "1", "-", ".", "1."]),
    st.builds(lambda char, count: char * count, st.sampled_from("9e0.-+iG"), st.integers(0, 1_000_000)),
    st.sampled_from(["", "e99999999", "Ei", "e-99999999", "Gi", "1"]),
)


@settings(max_examples=300, deadline=None)
@given(hostile | st.text(max_size=200))
@examples("1e99999999", "9" * 1_000_000 + "e99", "." + "0" * 1_000_000)
def test_parsing_any_string_takes_bounded_time(text: str) -> None:
    def ten_parses() -> float:
        started = time.perf_counter()
        for _ in range(10):
            is_quantity(text)
        return time.perf_counter() - started

    # Measured: ~50 µs for ten parses, whatever the length; the best of three keeps a busy machine out of it.
    assert min(ten_parses() for _ in range(3)) < 0.01


def test_format_bytes_is_readable_for_any_size() -> None:
    assert format_bytes(21474836480) == "20.0Gi"
    assert format_bytes(512) == "512"
    assert format_bytes(1536) == "1.5Ki"
    assert format_bytes(3 * 2**60) == "3.0Ei"
    assert format_bytes(10**400).endswith("Ei")  # no float overflow
    assert is_quantity(format_bytes(7 * 2**60))


@pytest.mark.parametrize("size", [1000 * 2**50, 1024 * 2**50 - 1, 999 * 2**50 + 2**49, 7 * 2**60])
def test_a_size_near_a_units_digit_limit_is_written_in_the_next_unit_and_reads_back(size: int) -> None:
    written = format_bytes(size)  # 1000.0Pi would have four digits before Pi: outside the bounded grammar
    assert is_quantity(written), written
    assert abs(parse_quantity(written) - size) <= size * Decimal("0.05")


@given(st.integers(min_value=0, max_value=7 * 2**60))  # from 7.95Ei on, it rounds to 8.0Ei: no model is that big
def test_every_byte_count_up_to_7ei_is_written_as_a_quantity(size: int) -> None:
    assert is_quantity(format_bytes(size))
