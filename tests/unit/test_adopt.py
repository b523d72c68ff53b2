"""Taking over the Serving Pack's objects (assess/adopt.py): whose fields become ours, what of an immutable
field is kept, and the pack's finalizer."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from llmpack.assess.adopt import (
    PACK_FINALIZER,
    finalizer_removal,
    from_pack,
    kept_immutable,
    kept_notes,
    takeover,
    takeover_patch,
)
from llmpack.config import FIELD_MANAGER

PACK_FIELDS = {"f:metadata": {"f:labels": {"f:app.kubernetes.io/managed-by": {}}},
               "f:spec": {"f:template": {"f:spec": {"f:volumes": {'k:{"name":"shm"}': {".": {}}}}}}}


def entry(manager: str, operation: str, fields: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
    out = {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "time": "2026-05-01T00:00:00Z",
           "fieldsType": "FieldsV1", "fieldsV1": fields}
    return out | ({"subresource": subresource} if subresource else {})


def body(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": "qwen", "resourceVersion": "42", "managedFields": list(entries)}}


def paths(fields: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = {prefix} if prefix else set()
    for name, sub in fields.items():
        out |= paths(sub, (*prefix, name)) if isinstance(sub, dict) else {(*prefix, name)}
    return out


def test_the_pack_managers_fields_become_our_apply_entry_and_nobody_elses_move() -> None:
    controller = entry("kube-controller-manager", "Update", {"f:metadata": {"f:annotations": {}}})
    fields = takeover(body("Deployment", entry("manager", "Update", PACK_FIELDS), controller))
    assert fields is not None
    assert controller in fields
    (ours,) = [f for f in fields if f["manager"] == FIELD_MANAGER]
    assert (ours["operation"], ours["apiVersion"], ours["fieldsV1"]) == ("Apply", "apps/v1", PACK_FIELDS)
    assert "manager" not in {f["manager"] for f in fields}


def test_fields_we_already_apply_are_merged_with_the_packs() -> None:
    mine = entry(FIELD_MANAGER, "Apply", {"f:spec": {"f:replicas": {}}})
    fields = takeover(body("Deployment", mine, entry("manager", "Update", PACK_FIELDS)))
    assert fields is not None
    (ours,) = fields
    assert paths(ours["fieldsV1"]) == paths(PACK_FIELDS) | paths({"f:spec": {"f:replicas": {}}})


def test_an_object_the_pack_never_wrote_needs_no_takeover() -> None:
    assert takeover(body("Service", entry(FIELD_MANAGER, "Apply", PACK_FIELDS))) is None
    assert takeover(body("Service", entry("manager", "Apply", PACK_FIELDS))) is None  # someone's apply, not the pack


def test_of_a_pvc_only_the_metadata_is_taken_the_spec_stays_as_it_was_created() -> None:
    spec = {"f:spec": {"f:storageClassName": {}, "f:resources": {"f:requests": {"f:storage": {}}}}}
    fields = takeover(body("PersistentVolumeClaim", entry("manager", "Update", {**spec, **PACK_FIELDS})))
    assert fields is not None
    assert fields[-1]["fieldsV1"] == {"f:metadata": PACK_FIELDS["f:metadata"]}


def test_the_status_subresource_is_taken_over_apart_from_the_main_resource() -> None:
    main = entry("manager", "Update", {"f:metadata": {"f:finalizers": {}}})
    status = entry("manager", "Update", {"f:status": {"f:phase": {}}}, subresource="status")
    fields = takeover(body("LLMModel", main, status), "status")
    assert fields is not None
    assert main in fields
    assert fields[-1] | {"time": None} == {**status, "manager": FIELD_MANAGER, "operation": "Apply", "time": None}


def test_the_patch_is_refused_if_the_object_changed_since_it_was_read() -> None:
    patch = takeover_patch(body("Service"), [])
    assert patch[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}


field_sets = st.recursive(st.just({}), lambda inner: st.dictionaries(
    st.sampled_from(["f:a", "f:b", "f:c", ".", 'k:{"name":"x"}']), inner, max_size=3), max_leaves=12)


@given(field_sets, field_sets)
def test_the_merged_field_set_holds_every_field_of_both(theirs: dict[str, Any], mine: dict[str, Any]) -> None:
    fields = takeover(body("Deployment", entry(FIELD_MANAGER, "Apply", mine), entry("manager", "Update", theirs)))
    assert fields is not None
    merged = {f["manager"]: f for f in fields}.get(FIELD_MANAGER, {}).get("fieldsV1", {})
    assert paths(merged) == paths(theirs) | paths(mine)


def deployment(selector: dict[str, str]) -> dict[str, Any]:
    return {"kind": "Deployment", "metadata": {"name": "qwen"},
            "spec": {"selector": {"matchLabels": selector}, "template": {"metadata": {"labels": {
                "app.kubernetes.io/instance": "qwen", "app.kubernetes.io/name": "llmmodel"}}}}}


def test_a_deployment_keeps_the_packs_selector_which_still_picks_our_pods() -> None:
    ours = deployment({"app.kubernetes.io/instance": "qwen", "app.kubernetes.io/name": "llmmodel"})
    kept, problem = kept_immutable(ours, deployment({"app.kubernetes.io/instance": "qwen"}))
    assert problem is None
    assert kept["spec"]["selector"] == {"matchLabels": {"app.kubernetes.io/instance": "qwen"}}
    assert ours["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == "llmmodel"  # not changed in place


def test_a_deployment_whose_selector_cannot_pick_our_pods_is_refused_with_what_to_do() -> None:
    ours = deployment({"app.kubernetes.io/instance": "qwen", "app.kubernetes.io/name": "llmmodel"})
    kept, problem = kept_immutable(ours, deployment({"app": "qwen-vllm"}))
    assert kept is ours
    assert problem is not None
    assert problem.reason == "SelectorImmutable"
    assert "kubectl delete deployment qwen" in problem.message


def test_a_pvc_keeps_the_storage_class_it_was_given_when_we_name_none() -> None:
    ours = {"kind": "PersistentVolumeClaim", "metadata": {"name": "qwen-model-storage"},
            "spec": {"accessModes": ["ReadWriteOnce"]}}
    kept, problem = kept_immutable(ours, {"spec": {"storageClassName": "fast"}})
    assert (kept["spec"]["storageClassName"], problem) == ("fast", None)
    assert kept_immutable(ours, None) == (ours, None)


def test_the_packs_finalizer_marks_a_model_to_adopt_and_only_it_is_removed() -> None:
    model = {"metadata": {"finalizers": ["example.com/other", PACK_FINALIZER]}}
    assert from_pack(model)
    assert finalizer_removal(model) == [{"op": "test", "path": "/metadata/finalizers/1", "value": PACK_FINALIZER},
                                        {"op": "remove", "path": "/metadata/finalizers/1"}]
    assert not from_pack({"metadata": {}})
    assert finalizer_removal({"metadata": {"finalizers": ["example.com/other"]}}) is None


def test_the_status_says_which_selector_is_kept_and_why_and_nothing_when_none_is() -> None:
    ours = deployment({"app.kubernetes.io/instance": "qwen", "app.kubernetes.io/name": "llmmodel"})
    packs = deployment({"app.kubernetes.io/instance": "qwen"})
    (note,) = kept_notes([ours], lambda kind, name: packs)
    assert note.startswith("Deployment qwen keeps the selector it was created with (app.kubernetes.io/instance=qwen)")
    assert "cannot change" in note
    assert kept_notes([ours], lambda kind, name: ours) == ()
    assert kept_notes([ours], lambda kind, name: None) == ()
    assert kept_notes([ours], lambda kind, name: deployment({"app": "other"})) == ()  # a Problem says that one
