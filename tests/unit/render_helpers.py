"""Lookups into rendered object lists."""

from __future__ import annotations

from typing import Any


def find(objects: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) <= 1, f"more than one {kind}"
    return found[0] if found else None


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    deployment = find(objects, "Deployment")
    assert deployment is not None
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def container(objects: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    spec = pod_spec(objects)
    for c in [*spec.get("initContainers", []), *spec["containers"]]:
        if c["name"] == name:
            return dict(c)
    return None


def job_of(objects: list[dict[str, Any]], component: str) -> dict[str, Any] | None:
    """The Job whose pods are `component` (model-download, model-size)."""
    found = [o for o in objects if o["kind"] == "Job"
             and o["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] == component]
    assert len(found) <= 1, f"more than one {component} Job"
    return found[0] if found else None
