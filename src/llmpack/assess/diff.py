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


def written_in_another_version(observed: dict[str, Any], desired: dict[str, Any]) -> bool:
    """We last wrote the object in another version than `desired`'s (the gateway was upgraded): write it again,
    so it is stored in the new version and the old one can be retired. Only kinds whose stored copy keeps
    the versions we wrote them in (operator/store.py `written_in`) are ever written again for this."""
    fields = (observed.get("metadata") or {}).get("managedFields")
    return fields is not None and desired.get("apiVersion") not in {f.get("apiVersion") for f in fields}
