"""kwok Stage objects for the test cluster, loaded from the kwok module and given our own delays.

kwok's "general" pod stages walk a pod through create -> init containers running -> init completed ->
ready, which is exactly what an LLMModel pod does (download, then load weights). We keep upstream's stage
logic and only set how long each step takes, so tests see Downloading and Starting for a moment.

`held`: models ("namespace/name") whose Job pods kwok runs but never finishes: whoever asked for that (the demo)
runs their container for real and then marks the pod done itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from llmpack.wellknown import MODEL_LABEL
from llmpack_dev import gomod

KWOK_MODULE = "sigs.k8s.io/kwok@v0.8.0"
POD_STAGES = ("pod-create", "pod-init-container-running", "pod-init-container-completed", "pod-ready",
              "pod-complete", "pod-delete")
NODE_STAGES = (("fast", "node-initialize"), ("heartbeat", "node-heartbeat"))


@dataclass(frozen=True)
class StageDelays:
    """Milliseconds each pod step takes in the fake cluster."""

    create: int = 200
    download: int = 2000  # init containers running
    start: int = 1500     # init done, vLLM loading
    delete: int = 200
    heartbeat: int = 10000


def _with_delay(stage: dict[str, Any], milliseconds: int) -> dict[str, Any]:
    delay = stage["spec"].setdefault("delay", {})
    delay["durationMilliseconds"] = milliseconds
    for key in ("jitterDurationMilliseconds", "jitterDurationFrom"):
        delay.pop(key, None)  # deterministic steps; pod-delete's jitter would wait out the grace period
    return stage


def _held_back(stage: dict[str, Any], held: tuple[str, ...]) -> dict[str, Any]:
    """pod-complete passes over the pods of these models (a pod without the label is "namespace/")."""
    stage["spec"]["selector"]["matchExpressions"].append(
        {"key": f'.metadata.namespace + "/" + .metadata.labels["{MODEL_LABEL}"]', "operator": "NotIn",
         "values": list(held)})
    return stage


def load_stages(delays: StageDelays, module_dir: Path | None = None,
                held: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    root = (module_dir or gomod.module_dir(KWOK_MODULE)) / "kustomize" / "stage"
    by_name = {
        "pod-create": delays.create,
        "pod-init-container-running": 0,
        "pod-init-container-completed": delays.download,
        "pod-ready": delays.start,
        "pod-complete": delays.create,
        "pod-delete": delays.delete,
    }
    stages = [_with_delay(yaml.safe_load((root / "pod" / "general" / f"{n}.yaml").read_text()), by_name[n])
              for n in POD_STAGES]
    if held:
        stages = [_held_back(s, held) if s["metadata"]["name"] == "pod-complete" else s for s in stages]
    for folder, name in NODE_STAGES:
        stage = yaml.safe_load((root / "node" / folder / f"{name}.yaml").read_text())
        stages.append(_with_delay(stage, delays.heartbeat) if name == "node-heartbeat" else stage)
    return stages
