"""kubectl apply of bad LLMModels fails at once with the field named; costly ones are admitted with a warning."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError

from llmpack.quantity import is_quantity
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess

DENIED = {
    "pvc-without-size-or-preload": ({"model": {"preload": False, "storage": {"size": None}}},
                                    "spec.model.storage.size is required"),
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


# -- quantities: bounded by the schema, before any CEL rule parses them ----------------------------------------
HUGE = "1e99999999"  # the CRD's old pattern took it, and its CEL size rule then cost the API server ~34 s of CPU


async def dry_run_create(client: AsyncClient, body: dict[str, Any]) -> tuple[str | None, float]:
    """(the API server's refusal, or None when it would create the object; the seconds it took to answer)."""
    started = time.perf_counter()
    try:
        await client.create(codecs.from_dict(body), dry_run=True)
    except ApiError as exc:
        return exc.status.message or "", time.perf_counter() - started
    return None, time.perf_counter() - started


def spec_with(field: str, value: Any) -> dict[str, Any]:
    """The spec with `value` at `field` (dotted, below spec)."""
    *parents, leaf = field.split(".")
    spec: dict[str, Any] = {leaf: value}
    for part in reversed(parents):
        spec = {part: spec}
    return spec


@pytest.mark.parametrize(("field", "value"), [
    ("model.storage.size", HUGE), ("model.storage.size", f"-{HUGE}"), ("resources.limits.memory", HUGE),
    ("resources.requests.cpu", HUGE),
])
async def test_a_quantity_beyond_the_bounds_is_refused_by_the_schema_in_well_under_a_second(
        client: AsyncClient, namespace: str, running_operator: OperatorProcess, field: str, value: str) -> None:
    await dry_run_create(client, models.manifest("warm", namespace))  # the first request pays for discovery
    message, seconds = await dry_run_create(client, models.manifest("huge", namespace, spec_with(field, value)))
    assert message is not None
    assert f'spec.{field}: Invalid value: "{value}": spec.{field} in body should match' in message
    # The CEL rule that parses sizes never got to it: a negative size would otherwise be "not greater than zero".
    assert "greater than zero" not in message
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_kubectl_apply_of_an_unquoted_huge_limit_is_refused_naming_the_field(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    text = f"""apiVersion: llm.nebari.dev/v1alpha1
kind: LLMModel
metadata: {{name: huge, namespace: {namespace}}}
spec:
  model: {{name: Qwen/Qwen3-8B, storage: {{size: 30Gi}}}}
  resources:
    limits:
      memory: 1e99999999
"""
    started = time.perf_counter()
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", stdin=text, check=False)
    assert result.returncode != 0
    assert 'spec.resources.limits.memory: Invalid value: "1e99999999"' in result.stderr, result.stderr
    assert time.perf_counter() - started < 5  # kubectl's own start-up included; the server's part is timed above


def test_changing_the_size_to_a_huge_value_is_refused_by_the_schema_not_the_shrink_rule(
        cluster: LocalCluster, namespace: str, running_operator: OperatorProcess) -> None:
    models.apply(cluster, "m", namespace)
    started = time.perf_counter()
    result = cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False, stdin=yaml.safe_dump(
        models.manifest("m", namespace, {"model": {"storage": {"size": f"-{HUGE}"}}})))
    assert result.returncode != 0
    assert "spec.model.storage.size: Invalid value" in result.stderr
    assert "cannot shrink" not in result.stderr  # the rule comparing old and new sizes did not parse it
    assert time.perf_counter() - started < 5


# Strings at each bound of the grammar: the API server's Go regexp and our parser must split them alike.
AT_THE_BOUNDS = ["7.999999999Ei", "8Ei", ".5Ei", "8.999999999E", "9E", "999999999999999999", "1000000000000000000",
                 "8.999999999e18", "9e18", "1e19", "1e+18", "1E018", "1e-99", "1e-100", "999Pi", "1000Pi",
                 "999999999Gi", "1000000000Gi", "1.000000001", "1.0000000001", "129e6", "1e05", "1e005", "+1Ki", "1.",
                 ".5", "1.Gi", "1e1.5", "30 Gi", "30GB", "0.000000001n"]


async def test_the_api_server_and_our_parser_agree_at_every_bound(
        client: AsyncClient, namespace: str, running_operator: OperatorProcess) -> None:
    disagreements = []
    for value in [*AT_THE_BOUNDS, 999999999999999999, 1000000000000000000]:
        spec = {"model": {"storage": {"size": value}}, "resources": {"limits": {"memory": value}}}
        message, _ = await dry_run_create(client, models.manifest("bounds", namespace, spec))
        if (message is None) != is_quantity(value):
            disagreements.append((value, message))
    assert disagreements == []
