"""kubectl apply of bad LLMModels fails at once with the field named; costly ones are admitted with a warning."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess

DENIED = {
    "pvc-without-size": ({"model": {"storage": {"size": None}}}, "spec.model.storage.size is required"),
    "size-not-a-quantity": ({"model": {"storage": {"size": "30 gigabytes"}}}, "spec.model.storage.size"),
    "zero-size": ({"model": {"storage": {"size": "0"}}}, "spec.model.storage.size must be greater than zero"),
    "oci-without-image": ({"model": {"source": "oci"}}, "spec.model.image is required"),
    "not-a-repo-id": ({"model": {"name": "org/bad--name"}}, "spec.model.name: 'org/bad--name' is not a Hugging Face"),
    "negative-replicas": ({"serving": {"replicas": -1}}, "spec.serving.replicas"),
    "negative-gpus": ({"resources": {"gpu": {"count": -1}}}, "spec.resources.gpu.count"),
    "parallelism-beyond-gpus": ({"resources": {"gpu": {"count": 2}}, "serving": {"tensorParallelism": 4}},
                                "needs 4 GPUs per replica, but resources.gpu.count is 2"),
    "timeout-not-a-duration": ({"endpoints": {"requestTimeout": "ten minutes"}}, "spec.endpoints.requestTimeout"),
    "bad-secret-name": ({"model": {"authSecretName": "Bad_Name"}}, "spec.model.authSecretName"),
}


def kubectl_apply(cluster: LocalCluster, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(models.manifest(name, namespace, spec)),
                           check=False)


@pytest.mark.parametrize("case", sorted(DENIED))
def test_bad_manifest_is_refused_by_kubectl_with_the_field_named(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess, case: str) -> None:
    spec, message = DENIED[case]
    result = kubectl_apply(cluster, namespace, "bad", spec)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert cluster.kubectl("get", "llmmodel", "bad", "-n", namespace, check=False).returncode != 0


def test_a_name_too_long_for_its_service_is_refused(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    result = kubectl_apply(cluster, namespace, "m" * 60, {})
    assert result.returncode != 0
    assert "metadata.name must be at most 59 characters" in result.stderr


def test_emptydir_with_preload_is_admitted_with_a_warning_kubectl_prints(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    result = kubectl_apply(cluster, namespace, "small", {"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}})
    assert result.returncode == 0, result.stderr
    assert "Warning: spec.model.storage.type: emptyDir with preload: every pod restart downloads" in result.stderr


def test_changing_the_storage_type_of_an_existing_model_is_refused_with_advice(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    assert kubectl_apply(cluster, namespace, "m", {}).returncode == 0
    result = kubectl_apply(cluster, namespace, "m", {"model": {"storage": {"type": "emptyDir"}}})
    assert result.returncode != 0
    assert "spec.model.storage.type cannot change" in result.stderr
    assert "create a new LLMModel" in result.stderr


def test_the_webhook_configuration_is_strict_and_quick(
        cluster: LocalCluster, running_operator: OperatorProcess) -> None:
    config = yaml.safe_load(cluster.kubectl("get", "validatingwebhookconfiguration", "llmpack-validating-webhook",
                                            "-o", "yaml").stdout)
    (hook,) = config["webhooks"]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["timeoutSeconds"]) == ("Fail", "None", 5)
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["clientConfig"]["caBundle"]
