"""The admission table: each rule in exactly one layer, generated into exactly one place, with one Python side
that says the same words; CEL that parses a quantity checks it first; the chart ships what llmpack generates."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]  # public, not re-exported
from hypothesis import example, given
from hypothesis import strategies as st

from llmpack.admission import policies, rules
from llmpack.admission.table import (
    REPO_ID_PATTERN,
    RULES,
    SCHEDULER_KIND_PATTERN,
    Layer,
    Settings,
    bounded_quantity,
    cel_matches,
    rule,
)
from llmpack.api.crd import crd
from tests.admission_examples import EXAMPLES, manifest

ROOT = Path(__file__).resolve().parents[2]
CHART_POLICIES = ROOT / "charts/llmpack/templates/admission-policies.yaml"


def _crd_validations(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, list):
        return [v for item in node for v in _crd_validations(item)]
    if not isinstance(node, dict):
        return []
    return list(node.get("x-kubernetes-validations", [])) + [v for value in node.values()
                                                             for v in _crd_validations(value)]


def test_every_rule_has_one_layer_a_unique_name_and_words_that_name_its_field() -> None:
    assert len({r.name for r in RULES}) == len(RULES)
    for r in RULES:
        assert r.layer in Layer
        if not r.every_quantity:  # the API server names each quantity in front of its message
            assert r.message.startswith(f"{r.field}: "), r.name
        if r.layer is not Layer.WEBHOOK:
            assert r.cel, r.name
        assert (r.at is not None) == (r.layer is Layer.CRD), r.name


def test_each_cel_rule_is_generated_into_exactly_one_place_of_its_layer() -> None:
    in_crd = [v["rule"] for v in _crd_validations(crd())]
    in_policies = {p.name: [v["expression"] for v in policies.policy(p, Settings())["spec"]["validations"]]
                   for p in policies.POLICIES}
    quantities = 3  # storage.size, and the values of resources.requests and resources.limits
    for r in RULES:
        placed = in_crd.count(r.cel) + sum(found.count(r.cel) for found in in_policies.values())
        assert placed == (quantities if r.every_quantity else 1 if r.cel else 0), r.name
        if r.layer is Layer.CRD:
            assert r.cel in in_crd
        elif r.layer is Layer.POLICY_DENY:
            assert r.cel in in_policies["llmmodel-denials"]
        elif r.layer is Layer.POLICY_WARN:
            assert r.cel in in_policies["llmmodel-warnings"]


def test_the_policies_deny_and_warn_through_separate_bindings_and_a_warning_never_blocks() -> None:
    objects = {(o["kind"], o["metadata"]["name"]): o for o in policies.objects(Settings())}
    denials = objects[("ValidatingAdmissionPolicy", "llmmodel-denials")]["spec"]
    warnings = objects[("ValidatingAdmissionPolicy", "llmmodel-warnings")]["spec"]
    assert (denials["failurePolicy"], warnings["failurePolicy"]) == ("Fail", "Ignore")
    assert objects[("ValidatingAdmissionPolicyBinding", "llmmodel-denials")]["spec"]["validationActions"] == ["Deny"]
    assert objects[("ValidatingAdmissionPolicyBinding", "llmmodel-warnings")]["spec"]["validationActions"] == ["Warn"]
    for spec in (denials, warnings):
        (match,) = spec["matchConstraints"]["resourceRules"]
        assert match["resources"] == ["llmmodels"]  # the status subresource is not matched
        assert match["operations"] == ["CREATE", "UPDATE"]


def test_the_warnings_read_the_operators_default_access_mode() -> None:
    spec = policies.policy(policies.POLICIES[1], Settings("ReadWriteMany"))["spec"]
    assert spec["variables"] == [{"name": "defaultAccessMode", "expression": '"ReadWriteMany"'}]
    assert "variables.defaultAccessMode" in rule("replicas-share-one-node").cel


def test_every_rule_but_those_of_the_api_models_has_one_python_function() -> None:
    assert set(rules.CHECKS) == {r.name for r in RULES if not r.in_models and r.layer is not Layer.WEBHOOK}


IN_THE_OBJECT = [r.name for r in RULES if r.layer is not Layer.WEBHOOK]  # the webhook's read other objects


@pytest.mark.parametrize("name", IN_THE_OBJECT)
def test_each_rules_example_breaks_that_rule_alone_in_its_words(name: str) -> None:
    r, case = rule(name), EXAMPLES[name]
    old = None if case.before is None else {**manifest(case.name, "models", case.before), "status": case.status or {}}
    (found,) = rules.review(manifest(case.name, "models", case.spec), old)
    assert (found.level, found.field) == (r.level, r.field)
    if not r.in_models:
        assert str(found) in {r.text(**values) for values in [_slot_values(r, case)]}


def _slot_values(r: Any, case: Any) -> dict[str, object]:
    """The values the example puts in the rule's slots, read the way the rule's Python side reads them."""
    new = rules.parse(manifest(case.name, "models", case.spec))
    assert not isinstance(new, rules.Finding)
    spec = new.spec
    values: dict[str, object] = {"name": spec.model.name, "image": spec.model.image, "replicas": spec.serving.replicas,
                                 "type": spec.resources.gpu.type, "after": spec.model.storage.size,
                                 "size": spec.model.storage.size}
    if case.before is not None:
        values["before"] = manifest("x", None, case.before)["spec"]["model"]["storage"]["size"]
    values["known"] = (case.status or {}).get("modelSize")
    return {k: values[k] for k in r.slots}


def test_every_example_names_a_rule_of_the_table() -> None:
    assert set(EXAMPLES) == set(IN_THE_OBJECT)


def test_every_cel_that_parses_a_quantity_checks_it_against_the_bounded_pattern_first() -> None:
    for r in RULES:
        for value in re.findall(r"quantity\(string\(([^()]+)\)\)", r.cel or ""):
            guard = bounded_quantity(value)
            assert guard in r.cel, (r.name, value)  # type: ignore[operator]
            assert r.cel.index(guard) < r.cel.index(f"quantity(string({value}))"), r.name  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "pattern", "matches"), [
    ("org/name", REPO_ID_PATTERN, True), ("org/name\n", REPO_ID_PATTERN, False), ("kind: EndpointPickerConfig\n",
                                                                                SCHEDULER_KIND_PATTERN, True),
    ('{"kind": "EndpointPickerConfig"}', SCHEDULER_KIND_PATTERN, True), ("kind: EndpointPickerConfigs",
                                                                       SCHEDULER_KIND_PATTERN, False),
    ("ékind: EndpointPickerConfig", SCHEDULER_KIND_PATTERN, True),  # RE2 classes are ASCII: é is no word character
])
def test_python_reads_a_pattern_as_cel_does(text: str, pattern: str, matches: bool) -> None:
    assert cel_matches(text, pattern) is matches


repo_ids = st.from_regex(REPO_ID_PATTERN.replace("$", r"\Z"))


@given(repo_ids | st.text(st.characters(codec="ascii"), max_size=40) | st.text(max_size=20))
@example("org/x.git")
@example("日本/モデル")  # huggingface_hub's own check takes any Unicode letter; ours only what the Hub serves
def test_every_repo_id_we_admit_huggingface_hub_takes_too(name: str) -> None:
    if rules.is_repo_id(name):
        try:
            validate_repo_id(name)
        except HFValidationError as exc:
            raise AssertionError(f"{name!r}: {exc}") from None


def test_a_gpu_type_is_read_as_the_policys_cel_reads_it() -> None:
    from llmpack.api.spec import Gpu

    assert Gpu(type=" NVIDIA\u00a0").known_vendor is not None  # Go's TrimSpace takes NBSP
    assert Gpu(type="\x1cnvidia").known_vendor is None  # Python's strip() would take \x1c, Go's does not
    assert Gpu(type="AMD").known_vendor is not None


def test_a_value_that_cannot_be_quoted_is_shown_by_its_fallback() -> None:
    by_tag = rule("oci-image-by-tag")
    assert by_tag.text(image="r.example/m:v1").startswith("spec.model.image: 'r.example/m:v1' is referenced by tag")
    assert by_tag.text(image="r.example/m:v1\n").startswith("spec.model.image: the image is referenced by tag")
    assert by_tag.text(image="x" * 254).startswith("spec.model.image: the image is referenced by tag")
    assert by_tag.static_message() == by_tag.text(image="\x00")
    expression = by_tag.message_expression()
    assert expression is not None
    assert expression.startswith('"spec.model.image: " + (size(object.spec.model.image)')


def test_the_chart_ships_exactly_the_generated_policies() -> None:
    assert CHART_POLICIES.read_text() == policies.chart_template(), "run `make crd` and commit the result"


def test_llmpack_policies_prints_the_policies_with_the_settings_of_its_values(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from llmpack.cli import main

    values = tmp_path / "values.yaml"
    values.write_text("defaults:\n  storage:\n    accessMode: ReadWriteMany\n")
    assert main(["policies", "--values", str(values)]) == 0
    printed = list(yaml.safe_load_all(capsys.readouterr().out))
    assert printed == policies.objects(Settings("ReadWriteMany"))
    assert json.dumps(printed).count('\\"ReadWriteMany\\"') == 1


def test_the_admission_page_lists_every_rule_of_the_table_in_its_layer() -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "admission.md").read_text()
    short = {Layer.CRD: "CRD", Layer.POLICY_DENY: "policy, Deny", Layer.POLICY_WARN: "policy, Warn",
             Layer.WEBHOOK: "webhook"}
    listed = dict(re.findall(r"^\| `([a-z-]+)` \| ([^|]+?) \|", page, re.M))
    assert listed == {r.name: short[r.layer] for r in RULES}
