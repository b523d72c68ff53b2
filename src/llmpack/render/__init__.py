"""Pure functions from (LLMModel, Config) to the Kubernetes objects that should exist for it: `render` for
the model's own objects, `plan` (render/plan.py) for what routing adds as the cluster allows."""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel
from llmpack.config import Config
from llmpack.render import auth, coordination, download_job, serving
from llmpack.render.plan import Facts, Plan, offline_facts, plan
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


__all__ = ["Facts", "Plan", "StorageLayout", "build_storage", "offline_facts", "plan", "render"]
