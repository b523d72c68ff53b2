"""Pure functions from (LLMModel, Config) to the Kubernetes objects that should exist for it: `render` for
the model's own objects, `plan` (render/plan.py) for what routing adds as the cluster allows."""

from __future__ import annotations

from typing import Any

from llmpack.api import LLMModel
from llmpack.assess.sizing import HubFacts, pinned
from llmpack.config import Config
from llmpack.render import auth, coordination, download_job, serving, sizing
from llmpack.render.plan import Facts, Plan, offline_facts, plan
from llmpack.render.storage import StorageLayout, build_storage, downloader


def render(model: LLMModel, config: Config, *, hold: bool = False, weights_ready: bool = False,
           hub: HubFacts | None = None, image_volumes: bool = True) -> list[dict[str, Any]]:
    """Every object the model needs, in a stable order (dependencies before dependents).

    `hold` renders the Deployment at 0 replicas: used while something outside the spec (a missing Secret)
    stops the model from progressing, so no pod sits on a GPU waiting for it. `weights_ready` says the
    download Job for the current weights has succeeded; until then a model that downloads through a Job
    is held at 0 replicas too, so GPUs start only when the weights are there.

    `hub` is what the sizing step reported (render/sizing.py): until it has, a model without a size has no PVC
    and no download is rendered. None renders offline: every step, the download as the spec alone says it.
    `image_volumes`: the cluster mounts image volumes, so an OCI model's image is mounted rather than copied.
    """
    facts = hub or HubFacts()
    layout = build_storage(model, config, hub, image_volumes)
    objects = [serving.service_account(model)]
    if layout.pvc is not None:
        objects.append(layout.pvc)
    objects += coordination.objects(model)
    if download_job.needs_job(model):
        if sizing.needs_sizing(model, facts):
            objects.append(sizing.job(model, config, downloader(model, config), layout.volumes))
        if layout.pvc is not None and (hub is None or sizing.download_may_start(model, facts)):
            objects.append(download_job.job(model, config, layout, pinned(facts)))
        hold = hold or not weights_ready
    # The NetworkPolicy comes before any pod: vLLM is never reachable around the gateway's auth.
    objects += [auth.network_policy(model, config), serving.service(model),
                serving.deployment(model, config, layout, hold=hold)]
    return objects


__all__ = ["Facts", "HubFacts", "Plan", "StorageLayout", "build_storage", "offline_facts", "plan", "render"]
