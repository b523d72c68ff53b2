"""Hypothesis strategies for schema-valid LLMModel bodies."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from llmpack.api.names import MAX_MODEL_NAME_LENGTH

dns_label = st.from_regex(r"\A[a-z]([-a-z0-9]{0,20}[a-z0-9])?\Z")
model_names = st.from_regex(rf"\A[a-z]([-a-z0-9]{{0,{MAX_MODEL_NAME_LENGTH - 2}}}[a-z0-9])?\Z")
repo_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}/[A-Za-z0-9][A-Za-z0-9._-]{0,30}\Z")
sizes = st.builds(lambda n, unit: f"{n}{unit}", st.integers(1, 2000), st.sampled_from(["Gi", "Mi", "Ti", "G", ""]))
gpu_products = st.from_regex(r"\A[A-Za-z0-9]([-A-Za-z0-9_.]{0,30}[A-Za-z0-9])?\Z")
args = st.lists(st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), max_size=12), max_size=3)


@st.composite
def model_specs(draw: st.DrawFn) -> dict[str, Any]:
    source = draw(st.sampled_from(["huggingface", "oci", ""]))
    storage_type = draw(st.sampled_from(["pvc", "emptyDir"]))
    model: dict[str, Any] = {"name": draw(repo_ids), "source": source, "preload": draw(st.booleans())}
    storage: dict[str, Any] = {"type": storage_type}
    if storage_type == "pvc" or draw(st.booleans()):
        storage["size"] = draw(sizes)
    if draw(st.booleans()):
        storage["storageClassName"] = draw(dns_label)
    if draw(st.booleans()):
        storage["accessMode"] = draw(st.sampled_from(["ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany"]))
    storage["retainOnDelete"] = draw(st.booleans())
    model["storage"] = storage
    if source == "oci":
        model["image"] = "registry.example.com/m@sha256:" + "b" * 64
    if draw(st.booleans()):
        model["revision"] = draw(st.sampled_from(["main", "v1.0", "a" * 40]))
    if draw(st.booleans()):
        model["authSecretName"] = draw(dns_label)
    gpu: dict[str, Any] = {"count": draw(st.integers(0, 8))}
    if draw(st.booleans()):  # the pack accepts any string here; a few vendors mean something
        gpu["type"] = draw(st.one_of(st.sampled_from(["nvidia", "amd", "intel", "AMD", ""]), st.text(max_size=12)))
    if draw(st.booleans()):
        gpu["product"] = draw(gpu_products)
    spec: dict[str, Any] = {
        "model": model,
        "resources": {"gpu": gpu},
        "serving": {
            "replicas": draw(st.integers(0, 10)),
            "vllmArgs": draw(args),
            "updateStrategy": draw(st.sampled_from(["Recreate", "RollingUpdate"])),
        },
        "advanced": {"vllm": {"extraArgs": draw(args)}},
    }
    if draw(st.booleans()):
        spec["resources"]["limits"] = {"memory": draw(sizes)}
    if draw(st.booleans()):
        spec["access"] = {"public": draw(st.booleans()), "groups": draw(st.lists(dns_label, max_size=3))}
    spec["endpoints"] = {"external": {"enabled": draw(st.booleans())}, "internal": {"enabled": draw(st.booleans())}}
    return spec


@st.composite
def model_bodies(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "apiVersion": "llm.nebari.dev/v1alpha1",
        "kind": "LLMModel",
        "metadata": {"name": draw(model_names), "namespace": draw(dns_label), "uid": "u-1"},
        "spec": draw(model_specs()),
    }
