"""What other controllers write, written by the tests as those controllers write it: the gateways' verdicts in
status (Envoy Gateway per ancestor on a SecurityPolicy, Envoy AI Gateway on an AIGatewayRoute itself:
Accepted or NotAccepted), and the Warning Events a CSI provisioner or kubelet posts about an object."""

from __future__ import annotations

import json
from typing import Any

from lightkube import AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from llmpack.operator.kube import now
from llmpack_dev.cluster import LocalCluster

STAMP = {"lastTransitionTime": "2026-01-01T00:00:00Z", "observedGeneration": 1}


def policy_verdict(accepted: bool, message: str) -> dict[str, Any]:
    condition = {"type": "Accepted", "status": "True" if accepted else "False",
                 "reason": "Accepted" if accepted else "Invalid", "message": message, **STAMP}
    return {"status": {"ancestors": [{
        "ancestorRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "llm-gateway"},
        "controllerName": "gateway.envoyproxy.io/gatewayclass-controller", "conditions": [condition]}]}}


def route_verdict(accepted: bool, message: str) -> dict[str, Any]:
    kind = "Accepted" if accepted else "NotAccepted"
    return {"status": {"conditions": [{"type": kind, "status": "True", "reason": kind, "message": message, **STAMP}]}}


def write_status(cluster: LocalCluster, resource: str, name: str, namespace: str, status: dict[str, Any]) -> None:
    """As the controller does: the status subresource only (kubectl speaks the version the cluster prefers)."""
    cluster.kubectl("patch", resource, name, "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps(status))


async def post_warning(client: AsyncClient, obj: Any, reason: str, message: str, component: str) -> None:
    """A Warning Event about `obj` (a lightkube object), as its controller posts one."""
    meta = obj.metadata
    stamp = now()
    await client.create(Event(
        metadata=ObjectMeta(generateName=f"{meta.name}.", namespace=meta.namespace),
        involvedObject=ObjectReference(apiVersion="v1", kind=type(obj).__name__, name=meta.name,
                                       namespace=meta.namespace, uid=meta.uid),
        type="Warning", reason=reason, message=message, count=1, source=EventSource(component=component),
        firstTimestamp=stamp, lastTimestamp=stamp))  # type: ignore[arg-type]
