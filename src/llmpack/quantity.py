"""Kubernetes resource quantities ("30Gi", "500M", "1.5e9") as exact numbers.

The API server accepts a size only if it matches QUANTITY_PATTERN; we parse with the same grammar so
that validation here and in the CRD agree, and compare sizes exactly (Decimal, never float).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

# The grammar of k8s.io/apimachinery resource.Quantity, anchored.
QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY = re.compile(QUANTITY_PATTERN)
_NUMBER = re.compile(r"^[+-]?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
    "k": Decimal(10**3), "M": Decimal(10**6), "G": Decimal(10**9), "T": Decimal(10**12),
    "P": Decimal(10**15), "E": Decimal(10**18),
}


class QuantityError(ValueError):
    """A string that is not a Kubernetes quantity."""


def is_quantity(text: str) -> bool:
    return bool(_QUANTITY.match(text))


def parse_quantity(value: str | int | float) -> Decimal:
    """The exact value of a quantity: parse_quantity("1Gi") == 1073741824."""
    if isinstance(value, bool):
        raise QuantityError(f"{value!r} is not a quantity")
    if isinstance(value, int | float):
        return Decimal(str(value))
    text = value.strip()
    if not _QUANTITY.match(text):
        raise QuantityError(f"{value!r} is not a quantity (examples: 30Gi, 500M, 1Ti)")
    number = _NUMBER.match(text)
    assert number is not None  # the full pattern matched, so its number part does
    suffix = text[number.end():]
    try:
        base = Decimal(number.group(0))
        if suffix in _BINARY:
            return base * _BINARY[suffix]
        if suffix in _DECIMAL:
            return base * _DECIMAL[suffix]
        return base * (Decimal(10) ** Decimal(suffix[1:]))  # exponent form: 1e9, 5E+3
    except InvalidOperation as exc:
        raise QuantityError(f"{value!r} is not a quantity") from exc


def format_bytes(size: int) -> str:
    """A byte count as the largest binary unit that keeps one decimal: 21474836480 -> '20.0Gi'."""
    value = float(size)
    for unit in ("", "Ki", "Mi", "Gi", "Ti", "Pi"):
        if abs(value) < 1024 or unit == "Pi":
            return f"{int(value)}" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")
