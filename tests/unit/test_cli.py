"""`llmpack render` and `llmpack crd` as a user runs them: real subprocesses, real exit codes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))


def llmpack(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmpack.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=60, check=False)


BAD = {
    "unknown-source": ({"name": "a/b", "source": "s3", "storage": {"size": "1Gi"}}, "spec.model.source"),
    "size-not-a-quantity": ({"name": "a/b", "storage": {"size": "30 gigabytes"}}, "spec.model.storage.size"),
    "missing-name": ({"storage": {"size": "1Gi"}}, "spec.model.name"),
    "oci-without-image": ({"name": "a/b", "source": "oci"}, "spec.model.image"),
    "pvc-without-size-or-preload": ({"name": "a/b", "preload": False}, "spec.model.storage.size"),
    "zero-size": ({"name": "a/b", "storage": {"size": "0Gi"}}, "spec.model.storage.size"),
    "size-beyond-the-bounds": ({"name": "a/b", "storage": {"size": "1e99999999"}}, "spec.model.storage.size"),
    "size-not-a-number": ({"name": "a/b", "storage": {"size": float("nan")}}, "spec.model.storage.size"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_manifest_exits_2_with_one_line_naming_file_object_and_field(tmp_path: Path, case: str) -> None:
    model, field = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                                    "metadata": {"name": "broken"}, "spec": {"model": model}}))
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0]
    assert "LLMModel broken" in lines[0]
    assert f"{field}:" in lines[0]


def test_negative_replicas_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                                    "metadata": {"name": "m"},
                                    "spec": {"model": {"name": "a/b", "storage": {"size": "1Gi"}},
                                             "serving": {"replicas": -1}}}))
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    assert "spec.serving.replicas: Input should be greater than or equal to 0" in result.stderr


def test_a_limit_beyond_the_bounds_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("apiVersion: llm.nebari.dev/v1alpha1\nkind: LLMModel\nmetadata: {name: m}\nspec:\n"
                    "  model: {name: a/b, storage: {size: 1Gi}}\n  resources: {limits: {memory: 1e99999999}}\n")
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"llmpack render: {path}: LLMModel m: spec.resources.limits.memory: '1e99999999' is out of range: an "
        "exponent can be e-99 to e18 (quantities stay below 8Ei)"]


@pytest.mark.parametrize(("value", "error"), [
    ("9" * 5000, "a number in it cannot be read: Exceeds the limit (4300 digits)"),
    ("[" * 200 + "]" * 200, "document #1 is nested deeper than 64 levels"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 64 levels"),
])
def test_a_number_too_long_to_read_or_nesting_too_deep_is_one_line(tmp_path: Path, value: str, error: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("apiVersion: llm.nebari.dev/v1alpha1\nkind: LLMModel\nmetadata: {name: m}\nspec:\n"
                    "  model: {name: a/b, storage: {size: 1Gi}}\n"
                    f"  advanced: {{vllm: {{affinity: {{a: {value}}}}}}}\n")
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-500:]
    assert lines[0].startswith(f"llmpack render: {path}: ")
    assert error in lines[0]


def test_broken_yaml_and_missing_file_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("spec: [unclosed\n")
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    assert "not valid YAML" in result.stderr
    assert "Traceback" not in result.stderr
    result = llmpack("render", "-f", str(tmp_path / "absent.yaml"))
    assert result.returncode == 2
    assert "absent.yaml: cannot read" in result.stderr


def test_a_file_without_llmmodels_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "secret.yaml"
    path.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n")
    result = llmpack("render", "-f", str(path))
    assert result.returncode == 2
    assert "no LLMModel" in result.stderr


def test_render_reads_several_files_and_stdin_in_order() -> None:
    result = llmpack("render", "-f", str(EXAMPLES[0]), "-f", "-", stdin=EXAMPLES[1].read_text())
    assert result.returncode == 0, result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    assert len(deployments) == 2


def test_values_file_sets_operator_defaults(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("defaults:\n  storage:\n    storageClassName: gp3\n  serving:\n    image: my/vllm:2\n"
                      "modelDownloader:\n  image: my/dl:3\n")
    result = llmpack("render", "-f", str(ROOT / "examples/qwen-int4-pvc.yaml"), "--values", str(values))
    assert result.returncode == 0, result.stderr
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout)}
    assert docs["PersistentVolumeClaim"]["spec"]["storageClassName"] == "gp3"
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "my/vllm:2"
    assert pod["initContainers"][0]["image"] == "my/dl:3"


def test_render_with_routing_adds_what_a_ready_model_gets_policies_before_routes(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("routing:\n  baseDomain: example.org\nauth:\n  oidc:\n    issuer: https://id.example.org\n")
    example = str(ROOT / "examples/qwen-int4-pvc.yaml")
    plain = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(llmpack("render", "-f", example).stdout)]
    result = llmpack("render", "-f", example, "--values", str(values), "--routing")
    assert result.returncode == 0, result.stderr
    docs = [(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(result.stdout)]
    assert docs[:len(plain)] == plain
    added = docs[len(plain):]
    name = plain[0][1]
    for kind, suffix in [("InferencePool", ""), ("Deployment", "-epp"), ("Secret", "-api-keys"),
                         ("ConfigMap", "-api-key-metadata"), ("SecurityPolicy", "-external-auth"),
                         ("AIGatewayRoute", "-external"), ("SecurityPolicy", "-internal-auth"),
                         ("AIGatewayRoute", "-internal")]:
        assert (kind, f"{name}{suffix}") in added
    for side in ("external", "internal"):
        policy, route = ("SecurityPolicy", f"{name}-{side}-auth"), ("AIGatewayRoute", f"{name}-{side}")
        assert added.index(policy) < added.index(route)
    # Without an OIDC issuer there is no internal side at all (it would have no policy).
    no_oidc = llmpack("render", "-f", example, "--routing")
    assert "-internal" not in no_oidc.stdout


def test_bad_values_file_names_the_key(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text("defaults:\n  storage:\n    accessMode: ReadWriteSometimes\n")
    result = llmpack("render", "-f", str(ROOT / "examples/qwen-int4-pvc.yaml"), "--values", str(values))
    assert result.returncode == 2
    assert "defaults.storage.accessMode" in result.stderr


def test_crd_command_prints_one_crd() -> None:
    result = llmpack("crd")
    assert result.returncode == 0
    (crd,) = list(yaml.safe_load_all(result.stdout))
    assert crd["metadata"]["name"] == "llmmodels.llm.nebari.dev"


def test_help_explains_each_command() -> None:
    result = llmpack("--help")
    assert result.returncode == 0
    for command in ("render", "crd"):
        assert command in result.stdout
