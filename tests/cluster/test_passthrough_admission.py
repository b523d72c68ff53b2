"""At the door, through the session operator's webhook: a PassthroughModel that declares a model id an
LLMModel already owns is admitted, with a warning naming the owner (never a refusal)."""

from __future__ import annotations

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
