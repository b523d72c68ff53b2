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


# Values on both sides of each admission rule (admission/table.py), for tests that hold Python and the API server
# to the same verdict.
edge_sizes = st.sampled_from(["8Ei", "7.999999999Ei", "9e18", "1e19", "1e-99", "0", "-1Gi", ".5", "1.", "999Pi",
                              "1000Pi", "0.000000001n", 999999999999999999, 0, 1])
repo_id_edges = st.sampled_from(["org/bad--name", "a..b/c", "-x/y", "x/y-", "x/y.git", "org/too/deep", "日本/モデル",
                                 "org/" + "x" * 96, "org/" + "x" * 97, "org/na me", "gpt2", "_/_", "org/name\n"])
scheduler_configs = st.one_of(
    st.none(), st.just({"kind": "EndpointPickerConfig", "plugins": []}), st.just({}),
    st.sampled_from(["kind: EndpointPickerConfig\nplugins: []\n", '{"kind": "EndpointPickerConfig"}', "just words",
                     "{not: yaml", "kind: Other", "kind:EndpointPickerConfig", "xkind: EndpointPickerConfig"]),
    st.text(max_size=30), st.integers(), st.lists(st.integers(), max_size=2))


@st.composite
def admission_specs(draw: st.DrawFn) -> dict[str, Any]:
    spec = draw(model_specs())
    model, storage = spec["model"], spec["model"]["storage"]
    if draw(st.booleans()):
        model["name"] = draw(repo_id_edges | st.text(max_size=20))
    if draw(st.booleans()):
        storage["size"] = draw(sizes | edge_sizes)
    if model["source"] == "oci" and draw(st.booleans()):
        model["image"] = draw(st.sampled_from(["r.example/m:v1", "r.example/m", "r.example/m:v1\n"]) |
                              st.text(min_size=1, max_size=20))
    gpu = spec["resources"]["gpu"]
    if draw(st.booleans()):
        spec["serving"]["tensorParallelism"] = draw(st.integers(1, 16))
    if draw(st.booleans()):
        spec["serving"]["dataParallelism"] = draw(st.integers(1, 4))
    if draw(st.booleans()):
        gpu["type"] = draw(st.sampled_from([" nvidia ", "NVIDIA\u00a0", "\x1cnvidia", "A100", "x" * 300]) |
                           st.text(max_size=12))
    if draw(st.booleans()):
        spec["advanced"]["inferencePool"] = {"schedulerConfig": draw(scheduler_configs)}
    return spec


@st.composite
def admission_bodies(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(model_names | st.sampled_from(["1st", "m" * 60, "a.b", "m" * 59]))
    return {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel", "metadata": {"name": name},
            "spec": draw(admission_specs())}
