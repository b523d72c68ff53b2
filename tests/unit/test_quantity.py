from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.quantity import QuantityError, format_bytes, is_quantity, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("30Gi", 30 * 2**30), ("80Gi", 80 * 2**30), ("500M", 500 * 10**6), ("1.5Gi", 1.5 * 2**30),
    ("1e9", 10**9), ("100m", Decimal("0.1")), ("0", 0), (1024, 1024),
])
def test_quantities_parse_exactly(text: str | int, value: object) -> None:
    assert parse_quantity(text) == Decimal(str(value))


@pytest.mark.parametrize("text", ["30 gigabytes", "30GB", "Gi", "", "1.2.3Gi", "--1"])
def test_non_quantities_are_refused(text: str) -> None:
    assert not is_quantity(text)
    with pytest.raises(QuantityError):
        parse_quantity(text)


@given(st.integers(0, 2**60))
def test_binary_units_round_trip(n: int) -> None:
    assert parse_quantity(f"{n}Ki") == n * 1024


def test_format_bytes_is_readable() -> None:
    assert format_bytes(21474836480) == "20.0Gi"
    assert format_bytes(512) == "512"
