"""Is a served CRD exactly ours (assess/crds.py): our own definition as the API server serves it back is; any
property, rule, flag or conversion another manager left in it is not, and is named; the replacement keeps the
served object's metadata and carries our spec whole; stored versions we do not serve stop it."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import assume, given
from hypothesis import strategies as st

from llmpack.api import crd, passthrough_crd
from llmpack.assess.crds import differences, established, replacement, summary, unserved_stored_versions

OURS = [crd.crd(), passthrough_crd.crd()]
STATUS = ("spec.versions[v1alpha1].schema.openAPIV3Schema.properties.status.properties")


def as_served(definition: dict[str, Any], **status: Any) -> dict[str, Any]:
    """A definition as the API server answers a GET: metadata of its own, the conversion default filled in."""
    body = copy.deepcopy(definition)
    body["metadata"] |= {"resourceVersion": "42", "uid": "u-1", "annotations": {"owner": "someone"}}
    body["spec"]["conversion"] = {"strategy": "None"}
    body["status"] = {"storedVersions": ["v1alpha1"], **status}
    return body


def test_our_crds_as_the_api_server_serves_them_back_are_ours() -> None:
    for ours in OURS:
        assert differences(as_served(ours), ours) == []
        explicit = as_served(ours)
        explicit["spec"]["preserveUnknownFields"] = False  # the v1 default, spelt out
        assert differences(explicit, ours) == []


def test_a_status_field_the_served_schema_lacks_is_named_as_missing() -> None:
    ours = crd.crd()
    served = as_served(ours)
    status = served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
    del status["download"], status["resolvedRevision"]
    assert differences(served, ours) == [f"{STATUS}.download: missing", f"{STATUS}.resolvedRevision: missing"]


def test_what_another_manager_left_is_named_as_not_ours() -> None:
    """The leftovers a server-side apply would merge in and keep: a property, a rule, schemaless status, a
    conversion webhook."""
    ours = crd.crd()
    served = as_served(ours)
    status = served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    status["properties"]["legacy"] = {"type": "string"}
    status["x-kubernetes-preserve-unknown-fields"] = True
    served["spec"]["conversion"] = {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"]}}
    found = differences(served, ours)
    assert "spec.conversion.strategy: differs" in found
    assert "spec.conversion.webhook: not ours" in found
    assert f"{STATUS}.legacy: not ours" in found
    assert ("spec.versions[v1alpha1].schema.openAPIV3Schema.properties.status.x-kubernetes-preserve-unknown-fields:"
            " not ours") in found


def test_versions_and_columns_are_named_and_their_order_counts() -> None:
    ours = crd.crd()
    served = as_served(ours)
    columns = served["spec"]["versions"][0]["additionalPrinterColumns"]
    columns[0], columns[1] = columns[1], columns[0]
    served["spec"]["versions"].append({**served["spec"]["versions"][0], "name": "v1beta1", "storage": False})
    assert differences(served, ours) == [
        "spec.versions[v1alpha1].additionalPrinterColumns: in another order", "spec.versions[v1beta1]: not ours"]


def _nodes(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every dict in a definition (list items by index)."""
    found = [path] if isinstance(node, dict) else []
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else []
    for key, child in children:
        found += _nodes(child, (*path, key))
    return found


def _at(node: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        node = node[key]
    return node


@given(which=st.sampled_from([0, 1]), pick=st.integers(0, 10_000),
       change=st.sampled_from(["add", "drop", "alter"]), value=st.one_of(st.booleans(), st.text(max_size=5)))
def test_any_one_change_anywhere_in_the_spec_is_a_difference(which: int, pick: int, change: str, value: Any) -> None:
    ours = OURS[which]
    served = as_served(ours)
    nodes = [p for p in _nodes(served["spec"]) if change == "add" or _at(served["spec"], p)]
    path = nodes[pick % len(nodes)]
    node = _at(served["spec"], path)
    key = sorted(node, key=str)[pick % len(node)] if node else None
    assume(not (change == "drop" and path == () and key == "conversion"))  # the server would default it again
    if change == "add" or key is None:
        node["x-someone-elses"] = value
    elif change == "drop":
        del node[key]
    else:
        node[key] = {"was": node[key]}
    assert differences(served, ours) != []


def test_the_replacement_carries_our_spec_whole_and_keeps_the_served_metadata() -> None:
    ours = crd.crd()
    served = as_served(ours)
    served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"] = {}
    body = replacement(served, ours)
    assert body["spec"] == ours["spec"]
    assert body["metadata"] == {"name": "llmmodels.llm.nebari.dev", "resourceVersion": "42",
                                "annotations": {"owner": "someone"}}
    assert differences({**body, "spec": {**body["spec"], "conversion": {"strategy": "None"}}}, ours) == []


def test_objects_stored_in_a_version_we_do_not_serve_stop_the_replacement() -> None:
    ours = crd.crd()
    assert unserved_stored_versions(as_served(ours), ours) == []
    served = as_served(ours)
    served["status"]["storedVersions"] = ["v1alpha1", "v1beta1"]
    assert unserved_stored_versions(served, ours) == ["v1beta1"]


def test_established_reads_the_condition() -> None:
    ours = crd.crd()
    assert not established(as_served(ours))
    assert established(as_served(ours, conditions=[{"type": "Established", "status": "True"}]))
    assert not established(as_served(ours, conditions=[{"type": "Established", "status": "False"}]))


def test_a_summary_names_three_and_counts_the_rest() -> None:
    assert summary(["a", "b"]) == "a; b"
    assert summary(["a", "b", "c", "d", "e"]) == "a; b; c (and 2 more)"
