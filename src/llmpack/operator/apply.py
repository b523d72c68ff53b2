"""Apply each object the cluster does not already hold, dependencies first, and remember what the server answered."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
from typing import Any

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from llmpack.assess.adopt import kept_immutable, takeover, takeover_patch
from llmpack.assess.diff import holds, written_in_another_version
from llmpack.assess.guards import pvc_problem
from llmpack.assess.report import Problem
from llmpack.operator import kube
from llmpack.operator.errors import Failure, classify
from llmpack.operator.store import Key, Store


async def adopt(client: AsyncClient, obj: dict[str, Any]) -> tuple[dict[str, Any] | None, bool]:
    """For a model the Serving Pack ran: the object as the cluster holds it (our watches do not see the pack's
    children), and whether its manager's fields were just handed to ours (then it must be applied once, even
    where it holds our fields: the apply removes what the pack set and we do not render)."""
    observed = await kube.read(client, obj)
    if observed is None or (fields := takeover(observed)) is None:
        return observed, False
    # Written since it was read, the patch's test fails and the error is raised: the pass is retried.
    return await kube.json_patch(client, observed, takeover_patch(observed, fields)), True


class Held:
    """Per model, the children last found to hold what was rendered, by the identity of what the Store keeps
    of them (Store.kept), with what the rendering was a function of (`stamp`: the generation and the facts
    render() was given). The Store replaces a child only when what it keeps changed, so most passes (woken by
    another object) compare, and decode, nothing again: the comparison was an eighth of the operator's CPU at
    200 models. What is kept is referenced here, so an id cannot be reused while it is remembered."""

    def __init__(self) -> None:
        self._pairs: dict[Key, dict[tuple[str, str], tuple[bytes, Hashable]]] = {}

    def known(self, key: Key, ref: tuple[str, str], kept: bytes | None, stamp: Hashable) -> bool:
        pair = self._pairs.get(key, {}).get(ref)
        return stamp is not None and pair is not None and pair[0] is kept and pair[1] == stamp

    def remember(self, key: Key, ref: tuple[str, str], kept: bytes, stamp: Hashable) -> None:
        if stamp is not None:
            self._pairs.setdefault(key, {})[ref] = (kept, stamp)

    def forget(self, key: Key) -> None:
        self._pairs.pop(key, None)


# Their pods need every other object first: the ServiceAccount, the PVC, the download's Role, and the
# NetworkPolicy (vLLM is never reachable around the gateway's auth).
WORKLOADS = frozenset({"Job", "Deployment"})


async def apply_what_differs(client: AsyncClient, store: Store, key: Key, objects: Iterable[dict[str, Any]],
                             held: Held | None = None, *, stamp: Hashable = None,
                             waves: bool = False) -> Problem | None:
    """The first refusal (a guard's, or the server's: retrying soon will not help) as a Problem; the objects after
    it are still applied. Any other API error is raised, for the reconcile to be retried.

    In order, one at a time; with `waves` (a model's own children, whose only dependencies are of workloads
    on the rest), every object but the workloads at once, then the workloads: a model's first pass waits on
    two round trips to the API server instead of ten, and etcd commits the concurrent writes together."""
    held = held or Held()
    objects = list(objects)
    batches = [[o for o in objects if o["kind"] not in WORKLOADS], [o for o in objects if o["kind"] in WORKLOADS]] \
        if waves else [[o] for o in objects]
    problem: Problem | None = None
    for batch in batches:
        results = await asyncio.gather(*(_apply(client, store, key, held, stamp, o) for o in batch),
                                       return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
            problem = problem or result
    return problem


async def _apply(client: AsyncClient, store: Store, key: Key, held: Held, stamp: Hashable,
                 desired: dict[str, Any]) -> Problem | None:
    kind, name = desired["kind"], desired["metadata"]["name"]
    kept = store.kept(key, kind, name)
    if held.known(key, (kind, name), kept, stamp):
        return None
    observed = store.child(key, kind, name)
    taken = False
    if observed is None and key in store.adopting:
        observed, taken = await adopt(client, desired)
    obj, refused = kept_immutable(desired, observed)
    if refused is None and kind == "PersistentVolumeClaim":
        refused = pvc_problem(obj, observed)
    if refused is not None:
        return refused
    if (not taken and observed is not None and holds(observed, obj)
            and not written_in_another_version(observed, obj)):
        if kept is not None:  # not read from the server (adoption): the Store has it
            held.remember(key, (kind, name), kept, stamp)  # all above is a function of these two
        return None
    try:
        # Remember what the server answered: until its watch delivers the object (a kind whose CRD was
        # just installed may take a while), the next pass must not apply it again.
        store.put_child(kind, await kube.apply(client, obj))
    except ApiError as exc:
        if classify(exc) is not Failure.REFUSED:
            raise
        return Problem("ApplyFailed", f"{kind} {name} was refused: {exc.status.message}")
    return None
