"""Admission on the real API server, with the operator stopped: bad LLMModels are refused at kubectl apply naming the
field, costly ones admitted with a warning kubectl prints, each rule of the table answered by its one layer, and the
Python side of the rules saying what the API server says."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lightkube import AsyncClient, codecs
from lightkube.core.exceptions import ApiError

from llmpack.admission import webhook
from llmpack.admission.rules import Finding, review
from llmpack.admission.table import RULES, Layer, rule
from llmpack.operator.kube import apply as server_side_apply
from llmpack.quantity import is_quantity
from llmpack_dev.cluster import LocalCluster, free_port, wait_for_webhook
from tests.admission_examples import EXAMPLES, manifest
from tests.cluster import models
from tests.cluster.dry_run import ApiServer, Verdict, dotted
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually
from tests.unit.strategies import admission_bodies

DENIED = {
    "pvc-without-size-or-preload": ({"model": {"preload": False, "storage": {"size": None}}},
                                    "spec.model.storage.size: Invalid value: required when storage.type is pvc"),
    "size-not-a-quantity": ({"model": {"storage": {"size": "30 gigabytes"}}},
                            'spec.model.storage.size: Invalid value: "30 gigabytes": spec.model.storage.size in body '
                            "should match '^[+-]?"),
    "zero-size": ({"model": {"storage": {"size": "0"}}},
                  "spec.model.storage.size: Invalid value: must be greater than zero"),
    "size-out-of-range": ({"model": {"storage": {"size": "8Ei"}}},
                          'spec.model.storage.size: Invalid value: "8Ei": out of range: a quantity stays below 8Ei'),
    "oci-without-image": ({"model": {"source": "oci"}},
                          "spec.model.image: Invalid value: required when spec.model.source is oci"),
    "not-a-repo-id": ({"model": {"name": "org/bad--name"}},
                      "spec.model.name: Invalid value: 'org/bad--name' is not a Hugging Face repo id"),
    "negative-replicas": ({"serving": {"replicas": -1}}, "spec.serving.replicas"),
    "negative-gpus": ({"resources": {"gpu": {"count": -1}}}, "spec.resources.gpu.count"),
    "parallelism-beyond-gpus": ({"resources": {"gpu": {"count": 2}}, "serving": {"tensorParallelism": 4}},
                                "spec.serving.tensorParallelism: Invalid value: tensorParallelism x dataParallelism "
                                "needs more GPUs per replica than resources.gpu.count"),
    "timeout-not-a-duration": ({"endpoints": {"requestTimeout": "ten minutes"}}, "spec.endpoints.requestTimeout"),
    "bad-secret-name": ({"model": {"authSecretName": "Bad_Name"}}, "spec.model.authSecretName"),
    "scheduler-config-not-a-picker-config": ({"advanced": {"inferencePool": {"schedulerConfig": "just words"}}},
                                             "denied request: spec.advanced.inferencePool.schedulerConfig: must be an "
                                             "EndpointPickerConfig"),
}


def policy_warning(policy: str, text: str) -> str:
    """A ValidatingAdmissionPolicy's warning as kubectl prints it."""
    return f"Validation failed for ValidatingAdmissionPolicy '{policy}' with binding '{policy}': {text}"


WARNED = {
    "emptydir-with-preload": ({"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}},
                              "spec.model.storage.type: emptyDir with preload: every pod restart downloads"),
    "emptydir-without-size": ({"model": {"preload": False, "storage": {"type": "emptyDir", "size": None}}},
                              "spec.model.storage.size: the emptyDir holding the weights has no size limit"),
    "oci-by-tag": ({"model": {"source": "oci", "image": "r.example/m:v1", "storage": {"type": "emptyDir",
                                                                                      "size": "9Gi"}}},
                   "spec.model.image: 'r.example/m:v1' is referenced by tag"),
    "replicas-on-one-node": ({"serving": {"replicas": 3}}, "spec.serving.replicas: 3 replicas share a ReadWriteOnce"),
    "gpu-type-no-vendor": ({"resources": {"gpu": {"type": "NVIDIA-A100-SXM4-80GB"}}},
                           "spec.resources.gpu.type: 'NVIDIA-A100-SXM4-80GB' is not a GPU vendor"),
}


@pytest.fixture
def stopped_operator(operator: OperatorProcess) -> OperatorProcess:
    """The session's operator stopped, as during an upgrade or a crash: nothing of admission may need it. (Its
    webhook configuration stays, pointing at nothing: failurePolicy Ignore.)"""
    operator.stop()
    return operator


@pytest.fixture
async def api(cluster: LocalCluster) -> AsyncIterator[ApiServer]:
    server = ApiServer(cluster.kubeconfig)
    yield server
    await server.aclose()


def kubectl_apply(cluster: LocalCluster, namespace: str, name: str, spec: dict[str, Any]) -> Any:
    return cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump(models.manifest(name, namespace, spec)),
                           check=False)


@pytest.mark.parametrize("case", sorted(DENIED))
def test_bad_manifest_is_refused_by_kubectl_with_the_field_named_while_the_operator_is_stopped(
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess, case: str) -> None:
    spec, message = DENIED[case]
    started = time.perf_counter()
    result = kubectl_apply(cluster, namespace, "bad", spec)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one line, whatever layer refused it
    assert time.perf_counter() - started < 5  # kubectl's own start included: no webhook timeout was waited out
    assert cluster.kubectl("get", "llmmodel", "bad", "-n", namespace, check=False).returncode != 0


def test_a_name_too_long_for_its_service_is_refused_while_the_operator_is_stopped(
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess) -> None:
    result = kubectl_apply(cluster, namespace, "m" * 60, {})
    assert result.returncode != 0
    assert "metadata.name: must be at most 59 characters" in result.stderr


@pytest.mark.parametrize("case", sorted(WARNED))
def test_each_warning_prints_in_kubectl_apply_while_the_operator_is_stopped(
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess, case: str) -> None:
    spec, text = WARNED[case]
    result = kubectl_apply(cluster, namespace, "costly", spec)
    assert result.returncode == 0, result.stderr
    assert f"Warning: {policy_warning('llmmodel-warnings', text)}" in result.stderr, result.stderr


async def test_a_model_known_to_be_larger_than_its_pvc_warns_at_the_next_apply(
        cluster: LocalCluster, namespace: str, api: ApiServer, stopped_operator: OperatorProcess) -> None:
    assert kubectl_apply(cluster, namespace, "m", {}).returncode == 0
    await api.put_status(namespace, "m", {"modelSize": "42Gi"})  # what the operator reports once it knows
    result = kubectl_apply(cluster, namespace, "m", {"serving": {"vllmArgs": ["--max-model-len=8192"]}})
    assert result.returncode == 0, result.stderr
    assert policy_warning("llmmodel-warnings", "spec.model.storage.size: the model needs 42Gi (the Hub's figure for "
                          "its files), the PVC is 30Gi") in result.stderr


def test_changing_the_storage_type_of_an_existing_model_is_refused_with_advice(
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess) -> None:
    assert kubectl_apply(cluster, namespace, "m", {}).returncode == 0
    result = kubectl_apply(cluster, namespace, "m", {"model": {"storage": {"type": "emptyDir"}}})
    assert result.returncode != 0
    assert "spec.model.storage.type: Invalid value: cannot change on an existing model" in result.stderr
    assert "create a new LLMModel" in result.stderr


# -- the table, walked: each rule answered by its one layer -------------------------------------------------------

async def answer_to(api: ApiServer, namespace: str, name: str) -> Verdict:
    """The API server's answer to the rule's example: a dry-run create, or for an update, a dry-run replace of the
    model it changes (created for real, with the status the example gives it)."""
    case = EXAMPLES[name]
    body = manifest(case.name, namespace, case.spec)
    if case.before is None:
        return await api.create(body)
    assert (await api.create(manifest(case.name, namespace, case.before), dry_run=False)).admitted
    if case.status:
        await api.put_status(namespace, case.name, case.status)
    try:
        return await api.update(body)
    finally:
        await api.delete(namespace, case.name)


def python_finding(namespace: str, name: str, old: dict[str, Any] | None) -> Finding:
    case = EXAMPLES[name]
    (found,) = review(manifest(case.name, namespace, case.spec), old)
    return found


@pytest.mark.parametrize("name", [r.name for r in RULES if r.layer is not Layer.WEBHOOK])
async def test_every_rule_of_the_table_is_answered_by_its_one_layer_in_its_words(
        api: ApiServer, namespace: str, stopped_operator: OperatorProcess, name: str) -> None:
    r, case = rule(name), EXAMPLES[name]
    old = None
    if case.before is not None:
        old = {**manifest(case.name, namespace, case.before), "status": case.status or {}}
    answer = await answer_to(api, namespace, name)
    found = python_finding(namespace, name, old)
    words = found.message if r.in_models else str(found)  # the API models' validators say it their own way
    if r.layer is Layer.CRD:
        assert not answer.admitted
        assert "ValidatingAdmissionPolicy" not in answer.message  # the CRD refused it before any policy ran
        assert r.field in answer.fields, answer
        if not r.in_models:
            assert (found.message if r.field_path else str(found)) in answer.message, answer.message
        else:
            assert r.static_message(named=False) in answer.message, answer.message
    elif r.layer is Layer.POLICY_DENY:
        assert not answer.admitted
        assert f"ValidatingAdmissionPolicy 'llmmodel-denials' with binding 'llmmodel-denials' denied request: " \
               f"{r.static_message()}" in answer.message, answer.message
    else:
        assert r.layer is Layer.POLICY_WARN
        assert answer.admitted, answer
        assert answer.warnings == (policy_warning("llmmodel-warnings", words),)


# -- the webhook: warnings only, never in the way ------------------------------------------------------------------

async def test_the_webhook_only_warns_and_a_stopped_operator_blocks_nobody(
        cluster: LocalCluster, namespace: str, api: ApiServer, operator: OperatorProcess) -> None:
    if not operator.alive():
        operator.start()
    wait_for_webhook(cluster)  # its configuration is applied, then the operator goes away
    operator.stop()
    config = yaml.safe_load(cluster.kubectl("get", "validatingwebhookconfiguration", "llmpack-validating-webhook",
                                            "-o", "yaml").stdout)
    (hook,) = config["webhooks"]
    assert (hook["failurePolicy"], hook["sideEffects"], hook["timeoutSeconds"]) == ("Ignore", "None", 2)
    assert hook["rules"][0]["operations"] == ["CREATE", "UPDATE"]
    assert hook["clientConfig"]["caBundle"]
    await api.create(models.manifest("warm", namespace))  # the first request pays for discovery
    started = time.perf_counter()
    answer = await api.create(models.manifest("m", namespace, {"model": {"storage": {"type": "emptyDir"}}}))
    assert answer.admitted
    assert len(answer.warnings) == 1  # the policy's, which needs no operator
    assert time.perf_counter() - started < 1.0  # nothing listens at the webhook's address: refused, ignored at once


async def test_the_webhook_rule_is_answered_by_the_webhook_alone_and_a_stopped_operator_only_drops_its_warning(
        cluster: LocalCluster, namespace: str, api: ApiServer, operator: OperatorProcess) -> None:
    r = rule("model-id-owned-elsewhere")
    assert r.layer is Layer.WEBHOOK
    if not operator.alive():
        operator.start()
    wait_for_webhook(cluster)
    model_id = f"org/claimed-{uuid.uuid4().hex[:8]}"
    assert (await api.create(models.manifest("owner", namespace, {"model": {"name": model_id}}),
                             dry_run=False)).admitted
    newcomer = models.manifest("newcomer", namespace, {"model": {"name": model_id}})

    async def warned() -> Verdict | None:
        answer = await api.create(newcomer)
        return answer if answer.warnings else None

    answer = await eventually(warned, within=60, what="the webhook's warning (once the operator knows the owner)")
    assert answer.admitted
    (warned,) = answer.warnings
    assert "ValidatingAdmissionPolicy" not in warned  # the webhook's, no policy's
    assert warned.startswith(f"{r.field}: model id {model_id} is already claimed by LLMModel {namespace}/owner")
    operator.stop()
    started = time.perf_counter()
    answer = await api.create(newcomer)
    assert (answer.admitted, answer.warnings) == (True, ())
    assert time.perf_counter() - started < 1.0  # failurePolicy Ignore: refused at the port, ignored at once


async def test_an_operator_started_over_the_old_failing_webhook_configuration_makes_it_ignore_failures(
        cluster: LocalCluster, client: AsyncClient, namespace: str, stopped_operator: OperatorProcess) -> None:
    """What an earlier version's operator applied at start (failurePolicy Fail, its own field manager) is what the
    new operator overwrites at start."""
    old = webhook.configuration(webhook.Endpoint(url=f"https://127.0.0.1:{free_port()}"), b"old-ca")
    old["webhooks"][0].update(failurePolicy="Fail", timeoutSeconds=5)
    await server_side_apply(client, old)
    refused = cluster.kubectl("apply", "--dry-run=server", "-f", "-", check=False,
                              stdin=yaml.safe_dump(models.manifest("m", namespace)))
    assert "failed calling webhook" in refused.stderr  # the old configuration blocks everyone while it lasts
    stopped_operator.start()
    try:
        wait_for_webhook(cluster)
        config = yaml.safe_load(cluster.kubectl("get", "validatingwebhookconfiguration",
                                                "llmpack-validating-webhook", "-o", "yaml").stdout)
        assert config["webhooks"][0]["failurePolicy"] == "Ignore"
    finally:
        stopped_operator.stop()


# -- quantities: bounded by the schema and the CEL, before any CEL rule parses them --------------------------------
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
        client: AsyncClient, namespace: str, stopped_operator: OperatorProcess, field: str, value: str) -> None:
    await dry_run_create(client, models.manifest("warm", namespace))  # the first request pays for discovery
    message, seconds = await dry_run_create(client, models.manifest("huge", namespace, spec_with(field, value)))
    assert message is not None
    assert f'spec.{field}: Invalid value: "{value}": spec.{field} in body should match' in message
    # The CEL rule that parses sizes never got to it: a negative size would otherwise be "not greater than zero".
    assert "greater than zero" not in message
    assert len(message) < 400  # the pattern in the message is the short one: a line a person reads
    assert seconds < 1.0, f"{seconds:.2f} s"


def test_kubectl_apply_of_an_unquoted_huge_limit_is_refused_naming_the_field(
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess) -> None:
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
        cluster: LocalCluster, namespace: str, stopped_operator: OperatorProcess) -> None:
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
        client: AsyncClient, namespace: str, stopped_operator: OperatorProcess) -> None:
    disagreements = []
    for value in [*AT_THE_BOUNDS, 999999999999999999, 1000000000000000000]:
        spec = {"model": {"storage": {"size": value}}, "resources": {"limits": {"memory": value}}}
        message, _ = await dry_run_create(client, models.manifest("bounds", namespace, spec))
        if (message is None) != is_quantity(value):
            disagreements.append((value, message))
    assert disagreements == []


# -- Python and the API server, on generated models ---------------------------------------------------------------
AGREEMENT_MODELS = int(os.environ.get("LLMPACK_AGREEMENT_MODELS", "2000"))
BATCH = 50  # models per hypothesis example, sent at once


def disagreement(body: dict[str, Any], answer: Verdict, old: dict[str, Any] | None = None) -> str | None:
    """What the Python side says differently from the API server about one model, or None."""
    if answer.status >= 500:
        return f"the API server failed: {answer.status} {answer.message}"
    if not answer.admitted and not answer.fields:
        return f"a denial that names no field: {answer.message}"
    findings = review(body, old)
    errors = [f for f in findings if f.level == "error"]
    if bool(errors) == answer.admitted:
        return f"Python says {[str(f) for f in errors] or 'admit'}; the API server {answer.message or 'admits'}"
    if errors:
        if dotted(errors[0].field) in answer.fields:
            return None
        # The API server answers the CRD's rules first, and runs no policy for what they refuse; Python reports
        # the first error its models find, which may be a policy's.
        policy_only = {r.field for r in RULES if r.layer is Layer.POLICY_DENY}
        if errors[0].field in policy_only and answer.fields and "ValidatingAdmissionPolicy" not in answer.message:
            return None
        return f"{errors[0]} named nothing in {answer}"
    prefix = policy_warning("llmmodel-warnings", "")
    theirs = sorted(w.removeprefix(prefix) for w in answer.warnings)
    ours = sorted(str(f) for f in findings)
    return None if theirs == ours else f"warnings: Python {ours}, the API server {theirs}"


@settings(max_examples=max(AGREEMENT_MODELS // BATCH, 1), deadline=None, derandomize=False,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture])
@given(st.lists(admission_bodies(), min_size=BATCH, max_size=BATCH))
def test_python_and_the_api_server_give_every_generated_model_the_same_verdict_and_words(
        cluster: LocalCluster, stopped_operator: OperatorProcess, bodies: list[dict[str, Any]]) -> None:
    async def check() -> list[str]:
        api = ApiServer(cluster.kubeconfig)
        try:
            for body in bodies:
                body["metadata"]["namespace"] = "default"
            answers = await asyncio.gather(*(api.create(body) for body in bodies))
        finally:
            await api.aclose()
        return [f"{body['metadata']['name']}: {body['spec']}: {why}"
                for body, answer in zip(bodies, answers, strict=True)
                if (why := disagreement(body, answer)) is not None]

    assert asyncio.run(check()) == []


UPDATES = [{"model": {"storage": {"size": "20Gi"}}}, {"model": {"storage": {"size": "40Gi"}}},
           {"model": {"storage": {"type": "emptyDir"}}}, {"model": {"storage": {"storageClassName": "other"}}},
           {"serving": {"replicas": 2}}, {"model": {"storage": {"size": 32212254720}}}, {}]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(UPDATES), st.sampled_from(["25Gi", "30Gi", "31Gi", "", "1e99999999", None])),
                min_size=5, max_size=5))
def test_python_and_the_api_server_agree_on_updates(
        cluster: LocalCluster, stopped_operator: OperatorProcess, changes: list[tuple[dict[str, Any], Any]]) -> None:
    async def check() -> list[str]:
        api, found = ApiServer(cluster.kubeconfig), []
        try:
            for change, model_size in changes:
                name = f"u-{uuid.uuid4().hex[:8]}"
                assert (await api.create(models.manifest(name, "default"), dry_run=False)).admitted
                if model_size is not None:
                    await api.put_status("default", name, {"modelSize": model_size})
                old = await api.get("default", name)
                body = models.manifest(name, "default", change)
                answer = await api.update(body)
                await api.delete("default", name)
                if (why := disagreement(body, answer, old)) is not None:
                    found.append(f"{change} after modelSize {model_size!r}: {why}")
        finally:
            await api.aclose()
        return found

    assert asyncio.run(check()) == []
