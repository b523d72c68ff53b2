"""The webhook's answer to any body: 400 for what is not an AdmissionReview, else strict JSON that echoes the uid
and allows, with the warnings of the one cross-object rule (a model id another object owns) when given the
claims. Hostile values, deep nesting and odd uids
included."""

from __future__ import annotations

import copy
import json
import os
import random
import re
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmpack.admission.reviews import MAX_BYTES, MAX_DEPTH, Answer, answer
from llmpack.assess.claims import Claim, ClaimIndex
from tests.unit.factories import body as model_body


def envelope(obj: Any, uid: Any = "u-1", old: Any = None, operation: str = "CREATE") -> dict[str, Any]:
    request = {"uid": uid, "operation": operation, "object": obj, "oldObject": old}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


def strict_json(data: bytes) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"{token} is not JSON")
    return json.loads(data, parse_constant=refuse)


def response_of(reply: Answer) -> dict[str, Any]:
    assert (reply.status, reply.content_type) == (200, "application/json"), reply.body[:300]
    review = strict_json(reply.body)
    assert (review["apiVersion"], review["kind"]) == ("admission.k8s.io/v1", "AdmissionReview")
    return dict(review["response"])


OWNER = Claim("LLMModel", "team-a", "owner", frozenset({"Qwen/Qwen3-14B"}), "2026-01-01T00:00:00Z", uid="a")
OWNED: ClaimIndex = {"Qwen/Qwen3-14B": {OWNER.key: OWNER}}


def test_a_good_model_is_allowed_with_its_uid() -> None:
    assert response_of(answer(json.dumps(envelope(model_body())).encode())) == {"uid": "u-1", "allowed": True}


def test_the_claims_given_add_their_warning_and_never_deny() -> None:
    old = model_body({"model": {"name": "Qwen/Qwen3-8B"}})
    new = model_body({"model": {"name": "Qwen/Qwen3-14B"}})
    raw = json.dumps(envelope(new, old=old, operation="UPDATE")).encode()
    assert response_of(answer(raw)) == {"uid": "u-1", "allowed": True}  # no claims (not yet known): nothing to say
    response = response_of(answer(raw, OWNED))
    assert (response["allowed"], len(response["warnings"])) == (True, 1)
    assert response["warnings"][0].startswith("spec.model.name: model id Qwen/Qwen3-14B is already claimed by "
                                              "LLMModel team-a/owner")
    unowned = json.dumps(envelope(old)).encode()
    assert response_of(answer(unowned, OWNED)) == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize("obj", [
    None, [], "a string", 5, [model_body()], model_body({"model": {"storage": {"size": "1e99999999"}}}),
    model_body({"model": {"source": "oci"}}), model_body({"resources": {"requests": {"cpu": 10**30}}}),
])
def test_an_object_that_is_no_llmmodel_is_allowed_at_once(obj: Any) -> None:
    """The API server's own validation runs first and refuses such objects: the webhook never refuses."""
    started = time.perf_counter()
    response = response_of(answer(json.dumps(envelope(obj)).encode(), OWNED))
    assert time.perf_counter() - started < 0.5
    assert response == {"uid": "u-1", "allowed": True}


def test_an_old_object_that_is_no_llmmodel_makes_the_claim_a_new_one() -> None:
    old = {**model_body(), "status": {"modelSize": "1e99999999"}, "spec": {"model": 1}}
    new = model_body({"model": {"name": "Qwen/Qwen3-14B"}})
    response = response_of(answer(json.dumps(envelope(new, old=old, operation="UPDATE")).encode(), OWNED))
    assert (response["allowed"], len(response["warnings"])) == (True, 1)


@pytest.mark.parametrize(("uid", "echoed"), [
    ("NaN", "NaN"), ("Infinity", "Infinity"), ("-Infinity", "-Infinity"), ("1e999", "1e999"),
    ("9" * 100, "9" * 100), ("42", 42), ('"x"', "x"), ("null", None), ("[1, {\"a\": true}]", [1, {"a": True}]),
    ("1.5", 1.5),
])
def test_the_uid_is_echoed_as_given_and_the_answer_is_strict_json(uid: str, echoed: Any) -> None:
    raw = json.dumps(envelope(model_body(), uid="@uid@")).replace('"@uid@"', uid).encode()
    assert response_of(answer(raw))["uid"] == echoed


@pytest.mark.parametrize(("raw", "why"), [
    (b"{not json", "the body is not JSON"),
    (b"\xff\xfe\x00", "the body is not JSON"),
    (b"[" * 100_000 + b"]" * 100_000, f"nests deeper than {MAX_DEPTH} levels"),
    (b'{"request": {"uid": "u", "object": ' + b'{"a": ' * 70 + b"1" + b"}" * 70 + b"}}", "nests deeper than"),
    (b"[]", "no request"),
    (b'{"request": [1]}', "no request"),
    (b'{"request": {"object": {}}}', "request.uid is missing"),
    (b" " * (MAX_BYTES + 1), f"larger than {MAX_BYTES} bytes"),
])
def test_what_is_not_an_answerable_review_gets_a_400_in_one_line(raw: bytes, why: str) -> None:
    reply = answer(raw)
    assert reply.status == 400
    text = reply.body.decode()
    assert text.startswith("not an AdmissionReview: ")
    assert why in text
    assert "\n" not in text


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-32"])
def test_a_review_in_utf16_or_32_is_read_and_bounded_like_utf8(encoding: str) -> None:
    review = json.dumps(envelope(model_body(), uid="\ud800é"))
    assert response_of(answer(review.encode(encoding, "surrogatepass"))) == {"uid": "\ud800é", "allowed": True}
    deep = review.replace('"oldObject": null', '"oldObject": ' + "[" * 70 + "]" * 70)
    assert answer(deep.encode(encoding)).status == 400


def test_nesting_just_within_the_limit_is_answered() -> None:
    deep_env = {"name": "X", "value": "@deep@"}
    raw = json.dumps(envelope(model_body({"advanced": {"vllm": {"extraEnv": [deep_env]}}}))).encode()
    # review > request > object > spec > advanced > vllm > extraEnv > [0] > value: 8 levels above the value
    fits = raw.replace(b'"@deep@"', b"[" * (MAX_DEPTH - 8) + b"]" * (MAX_DEPTH - 8))
    assert answer(fits).status == 200
    too_deep = raw.replace(b'"@deep@"', b"[" * (MAX_DEPTH - 7) + b"]" * (MAX_DEPTH - 7))
    assert answer(too_deep).status == 400


# -- the fuzz ------------------------------------------------------------------------------------------------
# Values json.dumps cannot write stand in the generated structure as markers, replaced in the text.
RAW = {"@nan@": "NaN", "@inf@": "Infinity", "@-inf@": "-Infinity", "@big-int@": "9" * 5000,
       "@big-float@": "1e999", "@tiny-float@": "1e-999", "@long-float@": "1." + "5" * 5000}
READ_AS = {"@nan@": "NaN", "@inf@": "Infinity", "@-inf@": "-Infinity", "@big-int@": "9" * 5000,
           "@big-float@": "1e999", "@tiny-float@": 0.0, "@long-float@": "1." + "5" * 5000}
DEEP = re.compile(r'"@deep:([0-9]+)@"')


def raw_text(value: Any) -> str:
    text = json.dumps(value)
    for marker, raw in RAW.items():
        text = text.replace(json.dumps(marker), raw)
    return DEEP.sub(lambda m: "[" * int(m.group(1)) + "]" * int(m.group(1)), text)


def read_as(value: Any) -> Any:
    """What the webhook reads a generated value as (and so echoes, for a uid)."""
    if isinstance(value, str) and (deep := DEEP.fullmatch(json.dumps(value))):
        nested: Any = []
        for _ in range(int(deep.group(1)) - 1):
            nested = [nested]
        return nested
    if isinstance(value, str):
        return READ_AS.get(value, value)
    if isinstance(value, list):
        return [read_as(v) for v in value]
    if isinstance(value, dict):
        return {k: read_as(v) for k, v in value.items()}
    return value


FUZZ_REVIEWS = int(os.environ.get("LLMPACK_FUZZ_REVIEWS", "10000"))  # set lower for a quick run while editing
PER_EXAMPLE = 10  # reviews per hypothesis example: its per-example cost would otherwise dominate


def depth_of(text: str) -> int:
    """How deep mappings and lists nest in a JSON text (brackets inside strings do not count)."""
    deepest = depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


HOSTILE_QUANTITIES = ["1e99999999", "-1e99999999", "1e999", "1e18", "1e19", "8Ei", "7.9Ei", "9" * 40, "", " 30Gi",
                      "1e-99", ".5", "1.0000000001", "0", "-1Gi", "30Gi", "1.5e9", 10**18, 10**18 - 1, -1, 0, True, 1.5,
                      None, "@nan@", "@inf@", "@big-int@", "@big-float@", "@tiny-float@"]


def junk(rng: random.Random, leaves: int = 6) -> Any:
    """Any JSON value, hostile ones often: markers for what json.dumps cannot write, nesting of any depth."""
    roll = rng.random()
    if roll < 0.15 and leaves > 1:
        return [junk(rng, leaves // 2) for _ in range(rng.randint(0, 3))]
    if roll < 0.3 and leaves > 1:
        return {rng.choice(["a", "", "spec", "model", "é", "\u0000", "0"]): junk(rng, leaves // 2)
                for _ in range(rng.randint(0, 3))}
    if roll < 0.35:
        return f"@deep:{rng.choice([rng.randint(1, 80), rng.randint(1, 3000)])}@"
    if roll < 0.55:
        return rng.choice(HOSTILE_QUANTITIES)
    if roll < 0.65:
        return rng.choice(sorted(RAW))
    return rng.choice([None, True, False, rng.randint(-(2**70), 2**70), rng.random() * 10 ** rng.randint(-300, 300),
                       "".join(rng.choice("aZ9 .:-/\u00e9\u2603\ud800") for _ in range(rng.randint(0, 12)))])


PATHS = [("spec", "model", "storage", "size"), ("spec", "resources", "limits", "memory"),
         ("spec", "resources", "requests", "cpu"), ("spec", "resources", "limits", "nvidia.com/gpu"),
         ("status", "modelSize"), ("spec", "model", "storage"), ("spec", "model", "name"), ("spec", "model"),
         ("spec", "serving", "replicas"), ("spec", "resources", "gpu", "count"), ("spec", "resources", "limits"),
         ("spec",), ("spec", "advanced", "vllm", "affinity"), ("spec", "advanced", "vllm", "extraEnv"),
         ("metadata", "name"), ("metadata",), ("apiVersion",), ("kind",), ("status",),
         ("spec", "endpoints", "requestTimeout"), ("spec", "model", "authSecretName")]


def put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    *parents, leaf = path
    node = target
    for part in parents:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[leaf] = value


# Valid models of each kind to start from (generating whole models per review would take most of the time).
BASES = [model_body(), model_body({"model": {"storage": {"type": "emptyDir", "size": "4Gi"}}}),
         model_body({"model": {"source": "oci", "image": "r.example/m:v1", "storage": {"type": "emptyDir"}}}),
         model_body({"resources": {"gpu": {"count": 2}, "limits": {"memory": "64Gi"}, "requests": {"cpu": "500m"}},
                     "serving": {"replicas": 3, "tensorParallelism": 2}}),
         model_body({"model": {"storage": {"size": "1Ti", "accessMode": "ReadWriteMany"}}}, namespace=None)]


def hurt_model(rng: random.Random, paths: list[tuple[str, ...]]) -> dict[str, Any]:
    obj = copy.deepcopy(rng.choice(BASES))
    for path in paths:
        put(obj, path, junk(rng))
    return obj


uids = st.sampled_from(["u-1", "", "@nan@", "@inf@", "@-inf@", "@big-int@", "@big-float@", "@tiny-float@",
                        "@deep:3@", "@deep:100@", 0, -1, 2**63, 1.5, None, True, [], {}, ["u"], {"uid": "u"}]) \
    | st.text(max_size=40)


@st.composite
def review_bodies(draw: st.DrawFn) -> list[tuple[str, bool, Any]]:
    """PER_EXAMPLE reviews as (the body's text, whether it has the shape of an answerable review, its uid as
    the webhook reads it). Hypothesis picks the shape, the uid and the fields to spoil; a seeded Random fills
    in the junk, differently for each of the reviews (drawing every value through hypothesis would take most
    of the run)."""
    rng = draw(st.randoms(use_true_random=True))
    operation = draw(st.sampled_from(["CREATE", "UPDATE"]))
    uid = draw(uids)
    shape = draw(st.sampled_from(["model"] * 8 + ["junk-object", "no-object"]))
    spoiled = draw(st.lists(st.sampled_from(PATHS), max_size=3))
    old_spoiled = draw(st.lists(st.sampled_from(PATHS), max_size=2) | st.none())  # None: old is junk
    out = []
    for _ in range(PER_EXAMPLE):
        # Rare shapes by the Random, which rolls evenly (hypothesis favours small numbers, so would overdo them).
        has_uid, envelope_shape = rng.random() > 0.05, rng.randrange(40)
        request: dict[str, Any] = {"operation": operation, **({"uid": uid} if has_uid else {})}
        if shape == "model":
            request["object"] = hurt_model(rng, spoiled)
        elif shape == "junk-object":
            request["object"] = junk(rng)
        if operation == "UPDATE":
            request["oldObject"] = junk(rng) if old_spoiled is None else hurt_model(rng, old_spoiled)
        review: Any = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}
        answerable = has_uid
        if envelope_shape == 0:  # now and then, no review at all
            review, answerable = junk(rng), False
        elif envelope_shape == 1:
            review["request"], answerable = junk(rng), False
        out.append((raw_text(review), answerable, read_as(uid)))
    return out


@settings(max_examples=FUZZ_REVIEWS // PER_EXAMPLE, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(review_bodies())
def test_ten_thousand_hostile_reviews_all_get_strict_json_with_their_uid_and_are_allowed(
        cases: list[tuple[str, bool, Any]]) -> None:
    for text, answerable, uid in cases:
        started = time.perf_counter()
        reply = answer(text.encode(), OWNED)  # nothing escapes: an exception here fails the test
        assert time.perf_counter() - started < 1.0
        if not answerable or depth_of(text) > MAX_DEPTH:
            assert reply.status == 400
            continue
        response = response_of(reply)
        assert "uid" in response
        assert response["uid"] == uid
        assert response["allowed"] is True
        assert all(isinstance(w, str) and w.startswith("spec.model.name: ") for w in response.get("warnings", []))
