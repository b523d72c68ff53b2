"""Is the CRD the cluster serves ours? The operator keeps llmmodels and passthroughmodels current at start
(operator/crds.py); this module decides, without a cluster, whether a served definition is exactly the one
`llmpack crd` prints, what differs when it is not, and when replacing it would lose stored objects.

Exactly, not "holds at least ours": a property, a validation rule or `x-kubernetes-preserve-unknown-fields`
left in the schema (the Serving Pack's CRD, an older llmpack's) keeps pruning or refusing what we write, and a
conversion webhook left by another manager would convert our objects, so any difference means the definition
is replaced as a whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# What the API server fills in when a CRD leaves it out (apiextensions.k8s.io/v1 defaults).
SERVER_DEFAULTS: dict[str, Any] = {"conversion": {"strategy": "None"}}
SHOWN = 3  # differences named in a log line; the rest are counted


def served_form(spec: dict[str, Any]) -> dict[str, Any]:
    """A CRD spec as the API server serves it back: its defaults filled in, `preserveUnknownFields: false`
    (the v1 default, omitted or not) dropped."""
    out = {**SERVER_DEFAULTS, **spec}
    if out.get("preserveUnknownFields") is False:
        del out["preserveUnknownFields"]
    return out


def differences(served: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Where the served CRD's spec differs from ours, as paths (`versions[v1alpha1].schema....status.download:
    missing`); empty when it is exactly ours."""
    return list(_walk(served_form(served.get("spec") or {}), served_form(wanted["spec"]), "spec"))


def _walk(have: Any, want: Any, path: str, named: bool = False) -> Iterator[str]:
    if isinstance(have, dict) and isinstance(want, dict):
        for key in sorted(set(have) | set(want), key=str):
            at = f"{path}[{key}]" if named else f"{path}.{key}"
            if key not in have:
                yield f"{at}: missing"
            elif key not in want:
                yield f"{at}: not ours"
            else:
                yield from _walk(have[key], want[key], at)
    elif isinstance(have, list) and isinstance(want, list) and _named(have) and _named(want):
        # Versions (and printer columns) by name, so a message says which one.
        yield from _walk({i["name"]: i for i in have}, {i["name"]: i for i in want}, path, named=True)
        if [i["name"] for i in have] != [i["name"] for i in want] and {i["name"] for i in have} == {
                i["name"] for i in want}:
            yield f"{path}: in another order"
    elif have != want or type(have) is not type(want):
        yield f"{path}: differs"


def _named(items: list[Any]) -> bool:
    names = [i.get("name") for i in items if isinstance(i, dict)]
    return len(names) == len(items) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def summary(found: list[str]) -> str:
    """The first few differences, for one log line."""
    more = f" (and {len(found) - SHOWN} more)" if len(found) > SHOWN else ""
    return "; ".join(found[:SHOWN]) + more


def unserved_stored_versions(served: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Versions the cluster has stored objects in (status.storedVersions) that our CRD does not list: the API
    server refuses a definition without them, since their objects could no longer be read."""
    ours = {v["name"] for v in wanted["spec"]["versions"]}
    stored = (served.get("status") or {}).get("storedVersions") or []
    return [v for v in stored if v not in ours]


def established(served: dict[str, Any]) -> bool:
    conditions = (served.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def replacement(served: dict[str, Any], wanted: dict[str, Any]) -> dict[str, Any]:
    """The body of an update that makes the served CRD exactly ours: our spec whole, the served object's
    metadata kept (its resourceVersion, so a concurrent change fails with a conflict instead of being lost;
    labels and annotations others rely on)."""
    meta = served["metadata"]
    kept = {k: meta[k] for k in ("name", "resourceVersion", "labels", "annotations") if k in meta}
    return {"apiVersion": wanted["apiVersion"], "kind": wanted["kind"], "metadata": kept, "spec": wanted["spec"]}
