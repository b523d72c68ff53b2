"""A route the API server refuses is tried again: an admission policy denies the InferencePool, the condition
says so, and once the policy is gone the pool is applied with no change to the model (nothing we watch announces
that a policy or a permission changed)."""

from __future__ import annotations

import asyncio

import yaml
from lightkube import AsyncClient
from lightkube.resources.apps_v1 import Deployment

from llmpack.api import LLMModel
from llmpack.operator.kube import InferencePoolResource
from llmpack.operator.reconcile import DETAILS_EVERY
from llmpack.render.routing import inference_pool
from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import inference_extension_crds
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess, settle_audit, writes_by
from tests.cluster.test_operator_lifecycle import READY_WITHIN, ready_replicas
from tests.cluster.test_routing import pool_condition
from tests.cluster.waiting import eventually

# Longer than a deferred status write (DETAILS_EVERY), which would give the model one more pass.
QUIET_SECONDS = DETAILS_EVERY + 5


async def picker_ready(client: AsyncClient, namespace: str) -> bool:
    status = (await client.get(Deployment, "qwen-epp", namespace=namespace)).status
    return status is not None and (status.readyReplicas or 0) >= 1


def deny_pools(namespace: str) -> str:
    """A ValidatingAdmissionPolicy (built into kube-apiserver) that refuses every InferencePool of the namespace."""
    name = f"deny-pools-{namespace}"
    policy = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {"failurePolicy": "Fail",
                 "matchConstraints": {"resourceRules": [{
                     "apiGroups": ["inference.networking.k8s.io"], "apiVersions": ["*"],
                     "operations": ["CREATE", "UPDATE"], "resources": ["inferencepools"]}]},
                 "validations": [{"expression": "false", "message": "pools are closed in this namespace"}]},
    }
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": name},
        "spec": {"policyName": name, "validationActions": ["Deny"],
                 "matchResources": {"namespaceSelector": {
                     "matchLabels": {"kubernetes.io/metadata.name": namespace}}}},
    }
    return yaml.safe_dump_all([policy, binding])


async def denied(cluster: LocalCluster, namespace: str) -> bool:
    """Whether the API server enforces the policy yet (it loads policies a moment after they are created)."""
    pool = inference_pool(LLMModel.from_body(models.manifest("probe", namespace)))
    tried = cluster.kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(pool), check=False)
    return "pools are closed in this namespace" in tried.stderr


async def test_a_refused_route_is_applied_once_the_refusal_is_lifted(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    crds = inference_extension_crds()
    denial = deny_pools(namespace)
    try:
        for crd in crds:
            cluster.kubectl("apply", "--server-side", "-f", str(crd))
        cluster.kubectl("wait", "--for=condition=Established", "crd/inferencepools.inference.networking.k8s.io")
        cluster.kubectl("apply", "-f", "-", stdin=denial)
        await eventually(lambda: denied(cluster, namespace), within=30, what="the policy to be enforced")
        models.apply(cluster, "qwen", namespace)
        await eventually(lambda: ready_replicas(client, "qwen", namespace, 1), within=READY_WITHIN, what="Ready")
        refused = await eventually(lambda: pool_condition(client, namespace, "ApplyFailed"), within=30,
                                   what="InferencePoolReady=ApplyFailed while the policy denies it")
        assert "pools are closed in this namespace" in str(refused["message"])
        assert await models.phase(client, "qwen", namespace) == "Ready"  # the model serves without its pool
        # The picker, applied before its pool, goes Ready: its events wake passes. Past them nothing we watch
        # changes, so only a retry of the refused pool can apply it.
        await eventually(lambda: picker_ready(client, namespace), within=READY_WITHIN, what="the picker Ready")
        settle_audit()
        pools = f"/namespaces/{namespace}/inferencepools"
        before = [w for w in writes_by(cluster.audit_log) if pools in w]
        await asyncio.sleep(QUIET_SECONDS)
        assert await pool_condition(client, namespace, "ApplyFailed")
        settle_audit()
        tries = [w for w in writes_by(cluster.audit_log) if pools in w][len(before):]
        assert len(tries) <= 6, f"{len(tries)} tries in {QUIET_SECONDS} s: the retry must back off"

        cluster.kubectl("delete", "-f", "-", stdin=denial)
        # Back-off is capped at 15 s for a problem the model reports; the policy's removal takes a moment too.
        applied = await eventually(lambda: pool_condition(client, namespace, "Applied"), within=45,
                                   what="the pool to be applied once the policy is gone (no change to the model)")
        assert applied["status"] == "True"
        await client.get(InferencePoolResource, "qwen", namespace=namespace)
    finally:  # each step whatever the others did: a CRD left behind would fail later tests that expect none
        cluster.kubectl("delete", "-f", "-", "--ignore-not-found", stdin=denial, check=False)
        cluster.kubectl("delete", "llmmodel", "qwen", "-n", namespace, "--ignore-not-found", check=False)
        for crd in crds:
            cluster.kubectl("delete", "-f", str(crd), "--ignore-not-found", check=False)
