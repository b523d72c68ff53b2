"""At the door, through the session operator's webhook: a PassthroughModel that declares a model id an
LLMModel already owns is admitted, with a warning naming the owner (never a refusal)."""

from __future__ import annotations

from typing import Any

import yaml
from lightkube import AsyncClient

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually


async def test_a_passthrough_declaring_an_id_an_llmmodel_owns_is_admitted_with_a_warning_naming_it(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    model_id = f"org/{namespace}"  # claims are cluster-wide: an id of this test's own
    models.apply(cluster, "served", namespace, {"model": {"name": model_id}})

    async def claimed() -> bool:
        return (await models.status(client, "served", namespace)).get("modelId") == model_id

    await eventually(claimed, within=30, what="the LLMModel's claim recorded in its status")
    body = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "PassthroughModel",
            "metadata": {"name": "provider", "namespace": namespace},
            "spec": {"provider": {"hostname": "api.example.com", "credentialSecretName": "key"},
                     "models": {"declared": [model_id, f"other/{namespace}"]}, "access": {"public": True}}}
    applied = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    assert (f"Warning: spec.models.declared: model id {model_id} is already claimed by LLMModel "
            f"{namespace}/served") in applied.stderr
    assert "passthroughmodel.llm.nebari.dev/provider created" in applied.stdout
    assert f"other/{namespace}" not in applied.stderr


async def test_a_passthrough_named_like_an_llmmodel_is_warned_and_the_older_keeps_its_objects(
        cluster: LocalCluster, client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "same", namespace, {"model": {"name": f"org/same-{namespace}"}})
    await eventually(lambda: _has_model_id(client, "same", namespace), within=30, what="the LLMModel's claim")
    body = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "PassthroughModel",
            "metadata": {"name": "same", "namespace": namespace},
            "spec": {"provider": {"hostname": "api.example.com", "credentialSecretName": "key"},
                     "models": {"catchAll": True}, "access": {"public": True}}}
    applied = cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(body))
    assert f"Warning: metadata.name: LLMModel {namespace}/same already exists" in applied.stderr

    async def refused() -> dict[str, Any] | None:
        out = cluster.kubectl("get", "passthroughmodel", "same", "-n", namespace, "-o", "yaml").stdout
        found = yaml.safe_load(out).get("status") or {}
        return found if found.get("phase") == "Error" else None

    status = await eventually(refused, within=30, what="the newer PassthroughModel in Error")
    [condition] = status["conditions"]
    assert (condition["type"], condition["reason"]) == ("BackendConfigured", "NameConflict")
    assert f"LLMModel {namespace}/same (older) has the same name" in condition["message"]
    owners = cluster.kubectl("get", "secret", "same-api-keys", "-n", namespace, "-o",
                             "jsonpath={.metadata.ownerReferences[0].kind}").stdout
    assert owners == "LLMModel"


async def _has_model_id(client: AsyncClient, name: str, namespace: str) -> bool:
    return bool((await models.status(client, name, namespace)).get("modelId"))
