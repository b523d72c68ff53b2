"""Pure functions from (LLMModel, Config) to the Kubernetes objects that should exist for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llmpack.api import LLMModel
from llmpack.config import Config
from llmpack.render import auth, coordination, download_job, keymanager_rbac, routing, serving
from llmpack.render.storage import StorageLayout, build_storage


def render(model: LLMModel, config: Config, *, hold: bool = False, weights_ready: bool = False) -> list[dict[str, Any]]:
    """Every object the model needs, in a stable order (dependencies before dependents).

    `hold` renders the Deployment at 0 replicas: used while something outside the spec (a missing Secret)
    stops the model from progressing, so no pod sits on a GPU waiting for it. `weights_ready` says the
    download Job for the current weights has succeeded; until then a model that downloads through a Job
    is held at 0 replicas too, so GPUs start only when the weights are there.
    """
    layout = build_storage(model, config)
    objects = [serving.service_account(model)]
    if layout.pvc is not None:
        objects.append(layout.pvc)
    objects += coordination.objects(model)
    if download_job.needs_job(model):
        objects.append(download_job.job(model, config, layout))
        hold = hold or not weights_ready
    # The NetworkPolicy comes before any pod: vLLM is never reachable around the gateway's auth.
    objects += [auth.network_policy(model, config), serving.service(model),
                serving.deployment(model, config, layout, hold=hold)]
    return objects


def routed(model: LLMModel, config: Config, *, credential_secrets: Sequence[str] | None = None,
           client_ids: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What routing adds once a replica is Ready and every CRD is installed, policies before their routes.

    `credential_secrets` defaults to the model's own key Secret (siblings are known only in a cluster).
    """
    objects = routing.routing(model, config)
    secrets = [auth.api_keys_secret(model.name)] if credential_secrets is None else list(credential_secrets)
    sides: tuple[auth.Side, ...] = ("external", "internal")
    for side in (side for side in sides if auth.served(model, config, side)):
        if side == "external":
            objects += keymanager_rbac.key_objects(model, config)
        objects += [auth.policy(model, config, side, secrets, client_ids), auth.route(model, config, side)]
    return objects


__all__ = ["StorageLayout", "build_storage", "render", "routed"]
