"""Walk a model's routing plan (render/plan.py), top to bottom: a closed gate is reported, an open group is
applied where the cluster differs, and what the gateway says of it is read back from the Store. Routing is
never worth failing the whole reconcile: a refusal becomes its condition's message; only what retrying
fixes (an unwell API server, a conflict) or a namespace being deleted is raised."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError

from llmpack.assess.report import Problem
from llmpack.assess.routing import Routes, refusal, routes
from llmpack.operator import kube
from llmpack.operator.apply import apply_what_differs
from llmpack.operator.errors import Failure, classify
from llmpack.operator.keys import ApiKeys
from llmpack.operator.store import Key, Store
from llmpack.render.plan import Group, Plan

Step = Callable[[Group], Awaitable[Problem | None]]


async def walk(plan: Plan, carry_out: Step, remove: Callable[[Group], Awaitable[None]]) -> Routes:
    """The plan's groups in order: a group whose condition stopped waits, a closed gate stops its condition,
    and so does a group that `carry_out` could not put in place."""
    stopped: dict[str, Problem] = {}  # condition -> what stopped it
    for group in plan.groups:
        await remove(group)
        if group.condition in stopped:
            continue
        problem = group.gate.problem if group.gate else await carry_out(group)
        if problem is not None:
            stopped[group.condition] = problem
    return routes(plan, stopped)


class Router:
    def __init__(self, client: AsyncClient, store: Store, keys: ApiKeys) -> None:
        self.client, self.store, self.keys = client, store, keys

    async def walk(self, key: Key, plan: Plan) -> Routes:
        return await walk(plan, partial(self._carry_out, key), partial(self._remove, key))

    async def _carry_out(self, key: Key, group: Group) -> Problem | None:
        try:
            for obj in group.creates:
                made = await kube.create(self.client, obj)
                if obj["kind"] == "Secret":  # learn that it exists; what it holds only when created empty here
                    (self.keys.created if made else self.keys.exists)(key)
            refused = await apply_what_differs(self.client, self.store, key, group.applies)
        except ApiError as exc:
            # e.g. a RoleBinding that names a Role the server refused to create comes back 404
            if classify(exc) not in (Failure.MISSING, Failure.REFUSED):
                raise
            return Problem("ApplyFailed", f"{exc.status.message}")
        if refused is not None:
            return refused
        if group.judged:
            for obj in group.applies:
                kind, name = obj["kind"], obj["metadata"]["name"]
                if why := refusal(self.store.child(key, kind, name)):  # applied is not enforced
                    return Problem("NotAccepted", f"the gateway did not accept {kind} {name}: {why}")
        return None

    async def _remove(self, key: Key, group: Group) -> None:
        for ref in group.removes:
            if (observed := self.store.child(key, ref.kind, ref.name)) is not None:
                await kube.delete(self.client, observed)
                self.store.drop_child(ref.kind, observed)  # as with applies: do not wait for the watch to say so
