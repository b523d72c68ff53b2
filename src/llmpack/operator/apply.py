"""Apply, in order, each object the cluster does not already hold, and remember what the server answered."""

from __future__ import annotations

from collections.abc import Iterable
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


async def apply_what_differs(client: AsyncClient, store: Store, key: Key,
                             objects: Iterable[dict[str, Any]]) -> Problem | None:
    """The first refusal (a guard's, or the server's: retrying will not help) as a Problem; the objects after
    it are still applied. Any other API error is raised, for the reconcile to be retried."""
    problem: Problem | None = None
    for obj in objects:
        kind, name = obj["kind"], obj["metadata"]["name"]
        observed = store.child(key, kind, name)
        taken = False
        if observed is None and key in store.adopting:
            observed, taken = await adopt(client, obj)
        obj, refused = kept_immutable(obj, observed)
        if refused is None and kind == "PersistentVolumeClaim":
            refused = pvc_problem(obj, observed)
        if refused is not None:
            problem = problem or refused
            continue
        if (not taken and observed is not None and holds(observed, obj)
                and not written_in_another_version(observed, obj)):
            continue
        try:
            # Remember what the server answered: until its watch delivers the object (a kind whose CRD was
            # just installed may take a while), the next pass must not apply it again.
            store.put_child(kind, await kube.apply(client, obj))
        except ApiError as exc:
            if classify(exc) is not Failure.REFUSED:
                raise
            problem = problem or Problem("ApplyFailed", f"{kind} {name} was refused: {exc.status.message}")
    return problem
