"""The CRD is derived from the API models, checked in, structural, and carries the cross-field rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from llmpack.api.crd import crd

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "charts/llmpack/crds/llmmodels.llm.nebari.dev.yaml"


def _walk(node: Any, path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(node, dict):
        out.append((path, node))
        for key, value in node.get("properties", {}).items():
            out += _walk(value, f"{path}.{key}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                out += _walk(node[key], f"{path}[{key}]")
    return out


def test_checked_in_crd_is_what_the_models_generate() -> None:
    assert yaml.safe_load(CHECKED_IN.read_text()) == crd(), "run `make crd` and commit the result"


def test_schema_is_structural() -> None:
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for path, node in _walk(schema):
        assert "$ref" not in node, path
        assert "title" not in node, path
        if "anyOf" in node:
            assert node.get("x-kubernetes-int-or-string") is True, path
        elif node.get("x-kubernetes-preserve-unknown-fields") is not True:  # schemaless, as the pack's is
            assert "type" in node, f"{path} has no type"
        assert node.get("additionalProperties") is not False, path


def test_sizes_and_resources_are_int_or_string_quantities() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    size = spec["model"]["properties"]["storage"]["properties"]["size"]
    assert size["x-kubernetes-int-or-string"] is True
    assert "pattern" in size
    limits = spec["resources"]["properties"]["limits"]["additionalProperties"]
    assert limits["x-kubernetes-int-or-string"] is True


def test_defaults_match_the_serving_pack() -> None:
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
    model = spec["model"]["properties"]
    assert model["source"]["default"] == "huggingface"
    assert model["preload"]["default"] is True
    assert model["storage"]["properties"]["type"]["default"] == "pvc"
    assert "default" not in model["storage"]["properties"]["accessMode"]  # the operator's default applies
    serving = spec["serving"]["properties"]
    assert serving["replicas"]["default"] == 1
    assert serving["replicas"]["minimum"] == 0
    assert serving["dataParallelism"]["default"] == 1
    assert serving["updateStrategy"]["default"] == "Recreate"
    endpoints = spec["endpoints"]["properties"]
    assert endpoints["requestTimeout"]["default"] == "600s"
    assert endpoints["external"]["properties"]["enabled"]["default"] is True
    gpu = spec["resources"]["properties"]["gpu"]["properties"]
    assert gpu["count"]["minimum"] == 0
    assert gpu["type"] == {"type": "string", "default": "nvidia", "description": gpu["type"]["description"]}


def test_cel_rules_cover_oci_image_pvc_size_and_name_length() -> None:
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    model_rules = [r["rule"] for r in schema["properties"]["spec"]["properties"]["model"]["x-kubernetes-validations"]]
    assert any("has(self.image)" in r for r in model_rules)
    assert any("has(self.storage.size)" in r for r in model_rules)
    assert any("metadata.name.size()" in r["rule"] for r in schema["x-kubernetes-validations"])


def test_printer_columns_and_status_subresource() -> None:
    version = crd()["spec"]["versions"][0]
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Model"] == ".spec.model.name"
    assert columns["Ready"] == ".status.replicas.ready"
    assert columns["Age"] == ".metadata.creationTimestamp"
    assert columns["External"] == ".status.endpoints.external"  # -o wide: the URL, once its route is in place
    assert version["subresources"] == {"status": {}}
    assert crd()["spec"]["scope"] == "Namespaced"
