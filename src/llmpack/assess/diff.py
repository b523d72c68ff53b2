"""Does an observed object already hold every field we would apply? (Then applying is a no-op: skip it.)

The API server adds defaults (imagePullPolicy, terminationMessagePath, ...) and other managers add
labels, so "holds" means: every field we set is present with an equal value. Quantities compare by
value, because the server canonicalises them ("0.5" becomes "500m").
"""

from __future__ import annotations

from typing import Any

from llmpack.quantity import QuantityError, parse_quantity


def _same_scalar(want: Any, have: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        return want is have  # True == 1 in Python, not in Kubernetes
    if want == have:
        return True
    if isinstance(want, str | int) and isinstance(have, str | int):
        try:
            return parse_quantity(want) == parse_quantity(have)
        except QuantityError:
            return False
    return False


def holds(observed: Any, desired: Any) -> bool:
    """True when `observed` contains everything in `desired`."""
    if isinstance(desired, dict):
        return isinstance(observed, dict) and all(k in observed and holds(observed[k], v) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(observed, list) and len(observed) == len(desired)
                and all(holds(o, d) for o, d in zip(observed, desired, strict=True)))
    return _same_scalar(desired, observed)
