"""Who owns a model id: the oldest claim, whatever order the operator learns the claims in, and an edit or a
create never takes an id already claimed, across restarts. Pure parts (assess/claims.py) and the Store's
index of them, without a cluster."""

from __future__ import annotations

import datetime
import itertools
import random
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from llmpack.assess.claims import (
    CATCH_ALL,
    Claim,
    claimed_at,
    first,
    lost,
    model_claim,
    owners,
    stamp,
)
from llmpack.operator.store import Store

T0 = "2026-03-01T10:00:00Z"


def at(seconds: int) -> str:
    """A stamp `seconds` after T0 (before it, when negative)."""
    start = datetime.datetime(2026, 3, 1, 10, tzinfo=datetime.UTC)
    return (start + datetime.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def claimant(namespace: str, name: str, model_id: str, created: str = T0, *, generation: int = 1,
             recorded: tuple[str, str] | None = None, uid: str | None = None) -> dict[str, Any]:
    """An LLMModel body as the API server holds it; `recorded`: (modelId, modelIdClaimedAt) in its status."""
    body: dict[str, Any] = {
        "apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
        "metadata": {"namespace": namespace, "name": name, "uid": uid or f"{namespace}-{name}",
                     "creationTimestamp": created, "generation": generation},
        "spec": {"model": {"name": model_id}},
    }
    if recorded is not None:
        body["status"] = {"modelId": recorded[0], "modelIdClaimedAt": recorded[1]}
    return body


def edited(body: dict[str, Any], model_id: str) -> dict[str, Any]:
    """The body after its owner changed spec.model.name (the API server bumps the generation)."""
    meta = {**body["metadata"], "generation": body["metadata"]["generation"] + 1}
    return {**body, "metadata": meta, "spec": {"model": {"name": model_id}}}


def recorded_status(store: Store, body: dict[str, Any]) -> dict[str, Any]:
    """The body once the operator wrote its claim into its status (assess/status.claim_fields)."""
    meta = body["metadata"]
    claim = store.model_claim((meta["namespace"], meta["name"]))
    assert claim is not None
    [model_id] = claim.ids
    return {**body, "status": {"modelId": model_id, "modelIdClaimedAt": claim.claimed_at}}


def owner_of(store: Store, model_id: str) -> tuple[str, str] | None:
    owner = first(store.claim_index.get(model_id, {}).values())
    return (owner.namespace, owner.name) if owner else None


# -- the ownership rule ------------------------------------------------------------------------------------

claims_strategy = st.lists(
    st.builds(
        lambda kind, ns, name, ids, when, catch_all: Claim(kind, ns, name, frozenset(ids), at(when), catch_all),
        st.sampled_from(["LLMModel", "PassthroughModel"]), st.sampled_from(["team-a", "team-b", "team-c"]),
        st.sampled_from(["qwen", "llama", "gpt"]), st.sets(st.sampled_from(["m/1", "m/2", "m/3"]), max_size=2),
        st.integers(0, 3), st.booleans()),
    max_size=12, unique_by=lambda c: c.key)


@given(claims_strategy, st.randoms())
def test_every_claimed_id_has_exactly_one_owner_the_least_by_time_then_namespace_and_name(
        claims: list[Claim], rnd: random.Random) -> None:
    found = owners(claims)
    claimed = {t for c in claims for t in c.targets}
    assert set(found) == claimed
    for target, owner in found.items():
        claimants = [c for c in claims if target in c.targets]
        assert owner in claimants
        assert owner.rank == min(c.rank for c in claimants)
        assert (owner.claimed_at, owner.namespace, owner.name) == min(
            (c.claimed_at, c.namespace, c.name) for c in claimants)
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    assert owners(shuffled) == found  # the order the operator learned them in does not matter


@given(claims_strategy)
def test_what_each_claim_lost_is_what_the_owners_say_and_only_that(claims: list[Claim]) -> None:
    index: dict[Any, dict[Any, Claim]] = {}
    for c in claims:
        for target in c.targets:
            index.setdefault(target, {})[c.key] = c
    found = owners(claims)
    for c in claims:
        assert lost(c, index) == {t: o for t, o in found.items() if t in c.targets and o.key != c.key}


def test_an_exact_id_is_never_lost_to_a_catch_all_however_old() -> None:
    catch_all = Claim("PassthroughModel", "platform", "openrouter", frozenset(), at(0), catch_all=True)
    younger = Claim("PassthroughModel", "team-b", "everything", frozenset(), at(5), catch_all=True)
    exact = Claim("LLMModel", "team-a", "qwen", frozenset({"Qwen/Qwen3-8B"}), at(9))
    found = owners([younger, exact, catch_all])
    assert found == {"Qwen/Qwen3-8B": exact, CATCH_ALL: catch_all}
    index = {"Qwen/Qwen3-8B": {exact.key: exact}, CATCH_ALL: {catch_all.key: catch_all, younger.key: younger}}
    assert lost(exact, index) == {}
    assert lost(younger, index) == {CATCH_ALL: catch_all}


def test_at_the_same_second_namespace_then_name_decides() -> None:
    a = Claim("LLMModel", "team-a", "zeta", frozenset({"x"}), T0)
    b = Claim("LLMModel", "team-b", "alpha", frozenset({"x"}), T0)
    assert owners([b, a])["x"] == a


# -- when a claim began ------------------------------------------------------------------------------------

def test_an_object_never_edited_claims_since_its_creation_and_an_edited_one_since_now() -> None:
    common = {"recorded": None, "now": at(60), "latest_rival": None, "after_known": False}
    assert claimed_at(created=T0, generation=1, **common) == T0
    assert claimed_at(created=T0, generation=2, **common) == at(60)
    assert claimed_at(created=T0, generation=None, **common) == at(60)  # unknown: as if edited


def test_a_recorded_claim_holds_but_never_before_the_object_existed() -> None:
    common = {"generation": 7, "now": at(60), "latest_rival": at(1), "after_known": True}
    assert claimed_at(created=T0, recorded=at(3), **common) == at(3)
    assert claimed_at(created=at(10), recorded=T0, **common) == at(10)


def test_a_claim_seen_beginning_ranks_after_every_claim_of_its_id_whatever_the_clocks() -> None:
    # The operator's clock is behind the API server's: "now" reads earlier than the owner's creation.
    assert claimed_at(created=T0, generation=2, recorded=None, now=at(-30), latest_rival=at(4),
                      after_known=True) == at(5)
    # A model created in the same second as the owner: after it, not tied with it.
    assert claimed_at(created=T0, generation=1, recorded=None, now=T0, latest_rival=T0, after_known=True) == at(1)
    assert claimed_at(created=at(9), generation=1, recorded=None, now=at(9), latest_rival=T0,
                      after_known=True) == at(9)


def test_stamps_are_read_in_any_rfc3339_form_and_anything_else_is_no_stamp() -> None:
    assert stamp("2026-03-01T11:00:00.75+01:00") == T0
    assert stamp(T0) == T0
    for bad in ("yesterday", "2026-03-01T10:00:00", 1740823200, None, ""):
        assert stamp(bad) is None


def test_a_status_recording_another_id_or_no_time_is_not_trusted() -> None:
    index: dict[Any, Any] = {}
    for recorded in (("Qwen/Other", T0), ("Qwen/Qwen3-8B", "long ago")):
        body = claimant("team-b", "old", "Qwen/Qwen3-8B", T0, generation=3, recorded=recorded)
        claim = model_claim("LLMModel", body, previous=None, index=index, now=at(99), after_known=False)
        assert claim is not None
        assert claim.claimed_at == at(99)


def test_while_the_operator_remembers_a_claim_a_status_edit_moves_nothing() -> None:
    body = claimant("team-b", "old", "Qwen/Qwen3-8B", at(5), generation=2)
    claim = model_claim("LLMModel", body, previous=None, index={}, now=at(50), after_known=True)
    assert claim is not None
    forged = {**body, "status": {"modelId": "Qwen/Qwen3-8B", "modelIdClaimedAt": at(5)}}
    assert model_claim("LLMModel", forged, previous=claim, index={}, now=at(60), after_known=True) is claim
    recreated = {**body, "metadata": {**body["metadata"], "uid": "new-uid", "generation": 1,
                                      "creationTimestamp": at(70)}}
    again = model_claim("LLMModel", recreated, previous=claim, index={}, now=at(70), after_known=True)
    assert again is not None
    assert again.claimed_at == at(70)  # a re-created object is a new claim


# -- the Store: claims as the operator learns them ---------------------------------------------------------

def test_a_newer_model_in_another_namespace_does_not_take_an_id_and_the_owner_leaving_hands_it_on() -> None:
    store = Store(synced=True)
    owner = claimant("team-a", "qwen", "Qwen/Qwen3-8B", T0)
    _, woken = store.put_model(owner, at(1))
    assert woken == set()
    _, woken = store.put_model(claimant("team-b", "qwen", "Qwen/Qwen3-8B", at(10)), at(10))
    assert woken == {("team-a", "qwen")}
    assert owner_of(store, "Qwen/Qwen3-8B") == ("team-a", "qwen")
    _, woken = store.drop_model(owner)
    assert woken == {("team-b", "qwen")}  # woken, and now the owner
    assert owner_of(store, "Qwen/Qwen3-8B") == ("team-b", "qwen")


def test_an_old_model_edited_to_an_owned_id_does_not_take_it_and_the_owner_renaming_hands_it_on() -> None:
    store = Store(synced=True)
    old = claimant("team-b", "old", "Mistral/Small", T0)
    store.put_model(old, at(1))
    owner = claimant("team-a", "qwen", "Qwen/Qwen3-8B", at(100))
    store.put_model(owner, at(100))
    _, woken = store.put_model(edited(old, "Qwen/Qwen3-8B"), at(100))  # the same second: still after
    assert woken == {("team-a", "qwen")}
    assert owner_of(store, "Qwen/Qwen3-8B") == ("team-a", "qwen")
    assert store.model_claim(("team-b", "old")).claimed_at == at(101)  # type: ignore[union-attr]
    _, woken = store.put_model(edited(owner, "Qwen/Qwen3-14B"), at(200))
    assert woken == {("team-b", "old")}
    assert owner_of(store, "Qwen/Qwen3-8B") == ("team-b", "old")
    assert owner_of(store, "Qwen/Qwen3-14B") == ("team-a", "qwen")


def test_models_seen_again_unchanged_wake_no_one() -> None:
    store = Store(synced=True)
    a, b = claimant("team-a", "qwen", "x", T0), claimant("team-b", "qwen", "x", at(1))
    store.put_model(a, at(2))
    store.put_model(b, at(2))
    assert store.put_model(a, at(30))[1] == set()
    assert store.put_model(recorded_status(store, b), at(40))[1] == set()


def test_models_kept_before_the_first_complete_list_claim_nothing_until_the_store_is_synced() -> None:
    store = Store()
    key, woken = store.put_model(claimant("team-b", "qwen", "x", at(5)), at(6))
    assert (key, woken) == (("team-b", "qwen"), set())
    assert store.model_claim(key) is None
    assert not store.claim_index
    store.put_model(claimant("team-a", "qwen", "x", T0), at(6))
    store.sync(at(7))
    assert store.synced
    assert owner_of(store, "x") == ("team-a", "qwen")
    _, woken = store.drop_model(claimant("team-a", "qwen", "x", T0))
    assert woken == {("team-b", "qwen")}


# -- restarts: the Store filled again from the API server ---------------------------------------------------

events = st.lists(st.tuples(st.sampled_from(["create", "edit", "delete"]),
                            st.sampled_from([("team-a", "qwen"), ("team-b", "qwen"), ("team-b", "old"),
                                             ("team-c", "llama")]),
                            st.sampled_from(["m/1", "m/2"]), st.integers(0, 3)), max_size=14)


@settings(max_examples=200)
@given(events, st.integers(-3, 3), st.randoms())
def test_a_restart_at_any_time_changes_no_owner_and_an_edit_or_a_create_never_takes_a_claimed_id(
        history: list[tuple[str, tuple[str, str], str, int]], skew: int, rnd: random.Random) -> None:
    """Replay a history the operator watched (each step a few seconds later, the API server's clock `skew`
    seconds ahead of the operator's), then start a new operator on what the API server holds."""
    store = Store(synced=True)
    cluster: dict[tuple[str, str], dict[str, Any]] = {}  # what the API server holds, status included
    clock = 0
    for action, key, model_id, wait in history:
        clock += wait
        now, server_now = at(clock), at(clock + skew)
        before = owner_of(store, model_id)
        if action == "create" and key not in cluster:
            cluster[key] = claimant(*key, model_id, server_now, uid=f"{key}-{clock}")
            store.put_model(cluster[key], now)
        elif action == "edit" and key in cluster and model_id not in store.model_claim(key).ids:  # type: ignore[union-attr]
            cluster[key] = edited(cluster[key], model_id)
            store.put_model(cluster[key], now)
        elif action == "delete" and key in cluster:
            store.drop_model(cluster.pop(key))
            continue
        else:
            continue
        if before is not None:
            assert owner_of(store, model_id) == before, "a new claim took an id already claimed"
        cluster[key] = recorded_status(store, cluster[key])  # the reconcile writes the claim into status
        store.put_model(cluster[key], now)

    restarted = Store()
    bodies = list(cluster.values())
    rnd.shuffle(bodies)
    for body in bodies:
        restarted.put_model(body, at(clock + 1000))
    restarted.sync(at(clock + 1000))
    for model_id in ("m/1", "m/2"):
        assert owner_of(restarted, model_id) == owner_of(store, model_id)


def test_on_start_up_models_edited_while_no_operator_watched_rank_after_all_others_in_any_list_order() -> None:
    """The operator was down while team-b's old model was edited to team-a's id and team-c created one; on
    start-up team-a (recorded) and team-c (never edited) are known first, then the edit is placed after both,
    though the operator's clock is far behind the API server's."""
    bodies = [
        claimant("team-a", "qwen", "x", at(10), generation=2, recorded=("x", at(10))),
        claimant("team-b", "old", "x", T0, generation=5, recorded=("y", T0)),  # status: the id before the edit
        claimant("team-c", "new", "x", at(500)),
    ]
    for order in itertools.permutations(bodies):
        store = Store()
        for body in order:
            store.put_model(body, at(-30))
        store.sync(at(-30))  # the operator's "now" reads earlier than all of them
        assert owner_of(store, "x") == ("team-a", "qwen")
        ranks = sorted(store.claim_index["x"].values(), key=lambda c: c.rank)
        assert [c.name for c in ranks] == ["qwen", "new", "old"]
        assert store.model_claim(("team-b", "old")).claimed_at == at(501)  # type: ignore[union-attr]
