"""The InferencePool and its endpoint picker, as the Serving Pack names and wires them."""

from __future__ import annotations

import yaml

from llmpack.config import Config
from llmpack.render.routing import routing
from tests.unit.factories import model
from tests.unit.render_helpers import find

CONFIG = Config(epp_image="example.org/epp:1")


def by_kind(objects: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    return {str(o["kind"]): o for o in objects}


def test_inference_pool_targets_the_vllm_pods_through_the_picker_service() -> None:
    pool = find(routing(model(), CONFIG), "InferencePool")
    assert pool is not None
    assert pool["apiVersion"] == "inference.networking.k8s.io/v1"
    assert pool["metadata"]["name"] == "qwen"
    assert pool["spec"] == {
        "targetPorts": [{"number": 8000}],
        "selector": {"matchLabels": {"app.kubernetes.io/instance": "qwen", "app.kubernetes.io/name": "llmmodel"}},
        "endpointPickerRef": {"name": "qwen-epp", "kind": "Service", "port": {"number": 9002}},
    }


def test_the_picker_pod_is_not_in_its_own_pool() -> None:
    objects = routing(model(), CONFIG)
    pool = find(objects, "InferencePool")
    epp = find(objects, "Deployment")
    assert pool is not None
    assert epp is not None
    epp_labels = epp["spec"]["template"]["metadata"]["labels"]
    assert not set(pool["spec"]["selector"]["matchLabels"].items()) <= set(epp_labels.items())


def test_picker_runs_with_the_pools_name_namespace_ports_and_config() -> None:
    objects = routing(model(), CONFIG)
    epp = find(objects, "Deployment")
    assert epp is not None
    container = epp["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "example.org/epp:1"
    assert container["args"] == ["--pool-name", "qwen", "--pool-namespace", "models", "--grpc-port", "9002",
                                 "--grpc-health-port", "9003", "--metrics-port", "9090",
                                 "--config-file", "/etc/epp/epp-config.yaml"]
    assert container["readinessProbe"]["grpc"]["port"] == 9003
    config = find(objects, "ConfigMap")
    assert config is not None
    assert config["metadata"]["name"] == "qwen-epp-config"
    scheduler = yaml.safe_load(config["data"]["epp-config.yaml"])
    assert {p["type"] for p in scheduler["plugins"]} == {"single-profile-handler", "max-score-picker"}
    service = find(objects, "Service")
    assert service is not None
    assert [p["port"] for p in service["spec"]["ports"]] == [9002, 9090]


def test_a_scheduler_config_in_the_spec_is_used_verbatim() -> None:
    custom = "apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\nplugins: []\n"
    objects = routing(model({"advanced": {"inferencePool": {"schedulerConfig": custom}}}), CONFIG)
    config = find(objects, "ConfigMap")
    assert config is not None
    assert config["data"]["epp-config.yaml"] == custom


def test_a_scheduler_config_object_as_the_pack_writes_it_becomes_the_pickers_yaml() -> None:
    custom = {"apiVersion": "inference.networking.x-k8s.io/v1alpha1", "kind": "EndpointPickerConfig",
              "plugins": [{"type": "prefix-cache-scorer"}, {"type": "max-score-picker"}],
              "schedulingProfiles": [{"name": "default", "plugins": [
                  {"pluginRef": "max-score-picker"}, {"pluginRef": "prefix-cache-scorer", "weight": 2}]}]}
    objects = routing(model({"advanced": {"inferencePool": {"schedulerConfig": custom}}}), CONFIG)
    config = find(objects, "ConfigMap")
    assert config is not None
    text = config["data"]["epp-config.yaml"]
    assert text.startswith("apiVersion: inference.networking.x-k8s.io/v1alpha1\nkind: EndpointPickerConfig\n")
    assert yaml.safe_load(text) == custom


def test_the_pickers_role_reads_pools_objectives_and_endpoints_only() -> None:
    role = find(routing(model(), CONFIG), "Role")
    assert role is not None
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    assert verbs == {"get", "list", "watch"}
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert resources == {"inferencepools", "inferenceobjectives", "inferencemodelrewrites", "inferencepoolimports",
                         "pods", "endpoints", "services"}


def test_every_routing_object_is_owned_by_the_model() -> None:
    for obj in routing(model(), CONFIG):
        assert obj["metadata"]["ownerReferences"][0]["kind"] == "LLMModel"
        assert obj["metadata"]["labels"]["llm.nebari.dev/model"] == "qwen"
