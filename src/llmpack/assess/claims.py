"""Who owns a model id on the shared hostnames. Pure: claims in, owners out; the operator gathers the claims
(one per object, kept in its Store) and the time.

Every routed object claims the model ids clients send for it (an LLMModel: `spec.model.name`; a
PassthroughModel: its declared ids, and maybe a catch-all for every id nobody else claims). Each id is owned
by exactly one claim: the least by (claimed_at, namespace, name, kind). Only the owner gets a route for
it; every other claimant is told who owns it and still serves inside its namespace. Catch-alls compete with
catch-alls only: an exact claim, whatever its age, beats a catch-all, as the gateway does (docs/routing.md).

`claimed_at` is when the object started claiming its ids, not when it was created: an old object whose id
is edited to another team's id would otherwise take it at once. The operator records it in the object's
status (`modelId`, `modelIdClaimedAt`) so that a restart decides as before; `claimed_at` below says which
time an object gets when nothing is recorded yet.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ClaimKey = tuple[str, str, str]  # (kind, namespace, name)
Target = str | None  # an exact model id, or CATCH_ALL
CATCH_ALL: Target = None
# Every claim that names a target, by target, then by claim key: the Store keeps this index.
ClaimIndex = Mapping[Target, Mapping[ClaimKey, "Claim"]]
_STAMP = "%Y-%m-%dT%H:%M:%SZ"  # what the API server writes; strings of this form sort as the times do


@dataclass(frozen=True)
class Claim:
    """One object's claim on model ids, since `claimed_at` (RFC 3339, UTC, whole seconds)."""

    kind: str
    namespace: str
    name: str
    ids: frozenset[str]
    claimed_at: str
    catch_all: bool = False
    uid: str = ""  # tells a re-created object from the one it replaces

    @property
    def key(self) -> ClaimKey:
        return self.kind, self.namespace, self.name

    @property
    def rank(self) -> tuple[str, str, str, str, str]:
        """Older first; at the same second, namespace/name decides (then kind and uid: the order is total)."""
        return self.claimed_at, self.namespace, self.name, self.kind, self.uid

    @property
    def targets(self) -> tuple[Target, ...]:
        return (*sorted(self.ids), *((CATCH_ALL,) if self.catch_all else ()))

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"


def first(claims: Iterable[Claim]) -> Claim | None:
    """The owner among claims of one target."""
    return min(claims, key=lambda c: c.rank, default=None)


def owners(claims: Iterable[Claim]) -> dict[Target, Claim]:
    """Every claimed target and the claim that owns it."""
    by_target: dict[Target, list[Claim]] = defaultdict(list)
    for claim in claims:
        for target in claim.targets:
            by_target[target].append(claim)
    return {target: min(found, key=lambda c: c.rank) for target, found in by_target.items()}


def lost(claim: Claim, index: ClaimIndex) -> dict[Target, Claim]:
    """The targets of `claim` that another claim owns, with that owner. `index` holds at least every claim
    sharing a target with it (the Store's index holds all of them)."""
    out: dict[Target, Claim] = {}
    for target in claim.targets:
        owner = first((index.get(target) or {}).values())
        if owner is not None and owner.key != claim.key:
            out[target] = owner
    return out


def rivals(claim: Claim, index: ClaimIndex) -> set[ClaimKey]:
    """Every other claim sharing a target with `claim`: whose ownership may change when it does."""
    return {key for target in claim.targets for key in index.get(target) or {} if key != claim.key}


# -- when a claim began ------------------------------------------------------------------------------------

def stamp(text: object) -> str | None:
    """An RFC 3339 time in the API server's form (UTC, whole seconds), or None when it is not one."""
    if not isinstance(text, str):
        return None
    try:
        when = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        return None
    return when.astimezone(datetime.UTC).strftime(_STAMP)


def after(text: str) -> str:
    """One second after a stamp: the first time that ranks strictly later."""
    when = datetime.datetime.strptime(text, _STAMP).replace(tzinfo=datetime.UTC)
    return (when + datetime.timedelta(seconds=1)).strftime(_STAMP)


def claimed_at(*, created: str | None, generation: int | None, recorded: str | None, now: str,
               latest_rival: str | None, after_known: bool) -> str:
    """When an object started claiming its current ids.

    - `recorded` (the status names these very ids): that time, never before the object existed. Only the
      operator writes status; anyone granted `llmmodels/status` could move it (docs/routing.md).
    - nothing recorded, never edited (generation 1): its creation, as its ids are those it was created with.
    - nothing recorded, edited since: `now`, as the ids may have changed a moment ago.

    `after_known`: the claim began after every claim of its ids already known (`latest_rival`): the operator
    saw it begin (an object created, its ids changed), or found it unrecorded and edited on start-up. Without
    a record it is then placed after all of them, so an edit or a create never outranks them, whatever the
    clocks (creationTimestamp is the API server's, `now` the operator's) or the second it fell in.
    """
    if recorded is not None:
        return max(recorded, created) if created is not None else recorded
    at = created if generation == 1 and created is not None else now
    if after_known and latest_rival is not None and latest_rival >= at:
        at = after(latest_rival)
    return at


# -- an LLMModel's claim -----------------------------------------------------------------------------------

def model_ids(body: dict[str, Any]) -> frozenset[str]:
    """The ids an LLMModel claims: its `spec.model.name`, which vLLM serves it as."""
    name: object = body
    for key in ("spec", "model", "name"):  # any JSON: the webhook reads what a review carries, untyped
        name = name.get(key) if isinstance(name, dict) else None
    return frozenset({name}) if isinstance(name, str) and name else frozenset()


def recorded(body: dict[str, Any], ids: frozenset[str]) -> str | None:
    """The claim time the status records for exactly these ids."""
    status = body.get("status") or {}
    if not isinstance(status, dict) or frozenset({status.get("modelId")}) != ids:
        return None
    return stamp(status.get("modelIdClaimedAt"))


def settled(body: dict[str, Any]) -> bool:
    """Whether the body alone says when its claim began (recorded, or never edited): on start-up these are
    known first, and the others placed after them."""
    return recorded(body, model_ids(body)) is not None or (body.get("metadata") or {}).get("generation") == 1


def model_claim(kind: str, body: dict[str, Any], *, previous: Claim | None, index: ClaimIndex, now: str,
                after_known: bool) -> Claim | None:
    """The claim an LLMModel body makes, given what the operator knew of it (`previous`) and of everyone else's
    claims (`index`); None when it names no id."""
    ids = model_ids(body)
    if not ids:
        return None
    meta = body.get("metadata") or {}
    uid = str(meta.get("uid") or "")
    if previous is not None and previous.uid == uid and previous.ids == ids and not previous.catch_all:
        return previous  # the same claim: a status edit moves nothing while the operator remembers it
    key: ClaimKey = (kind, str(meta.get("namespace") or ""), str(meta["name"]))
    latest = max((c.claimed_at for t in ids for k, c in (index.get(t) or {}).items() if k != key), default=None)
    generation = meta.get("generation")
    at = claimed_at(created=stamp(meta.get("creationTimestamp")),
                    generation=generation if isinstance(generation, int) else None,
                    recorded=recorded(body, ids), now=now, latest_rival=latest, after_known=after_known)
    return Claim(kind, key[1], key[2], ids, at, uid=uid)
