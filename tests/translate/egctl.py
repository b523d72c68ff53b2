"""Run Envoy Gateway's own translator (`egctl x translate`, built into .testbin/ by `make testbin`) on the
objects a cluster would hold, and read what it answers: the resources' status and Envoy's configuration."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_NAMESPACE = "envoy-gateway-system"  # where Envoy Gateway runs (egctl's default -n)


def binary() -> Path:
    path = Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin")) / "egctl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: run `make testbin` first")
    return path


@dataclass(frozen=True)
class Translation:
    resources: dict[str, Any]  # the input resources with the status Envoy Gateway gives them
    xds: dict[str, Any]  # per Gateway (`namespace/name`), Envoy's config dump
    ir: dict[str, Any]  # per Gateway, Envoy Gateway's own model of it, which xDS is built from

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        """`kind` as egctl lists it (`securityPolicies`, `httpRoutes`, `gateways`)."""
        for obj in self.resources.get(kind) or []:
            meta = obj["metadata"]
            if meta.get("namespace") == namespace and meta["name"] == name:
                return dict(obj.get("status") or {})
        raise KeyError(f"{kind} {namespace}/{name} is not in egctl's output")

    def destination_settings(self, gateway: str, destination: str) -> list[dict[str, Any]]:
        """The IR's backends of one route destination (an Envoy cluster): what the config dump leaves out, as the
        Secrets (egctl dumps none) that Envoy Gateway builds from them."""
        for listener in self.ir[gateway].get("http") or []:
            for route in listener.get("routes") or []:
                if (route.get("destination") or {}).get("name") == destination:
                    return list(route["destination"].get("settings") or [])
        raise KeyError(f"no route of {gateway} goes to {destination}")

    def config(self, gateway: str) -> list[dict[str, Any]]:
        """The config dump's parts (bootstrap, listeners, clusters, routes, secrets) of one Gateway."""
        return list(self.xds[gateway]["configs"])

    def resources_of(self, gateway: str, type_suffix: str) -> Iterator[dict[str, Any]]:
        """Every dynamic resource of one kind (`ListenersConfigDump`, `RoutesConfigDump`, ...) of a Gateway."""
        for part in self.config(gateway):
            if part["@type"].endswith(type_suffix):
                for key, items in part.items():
                    if key.startswith("dynamic") and isinstance(items, list):
                        yield from items


def translate(objects: Iterable[dict[str, Any]], workdir: Path) -> Translation:
    """egctl's answer for `objects`, to Gateway API status, to xDS and to its IR, in one run."""
    source = workdir / "cluster.yaml"
    source.write_text(yaml.safe_dump_all(list(objects), sort_keys=False))
    done = subprocess.run(
        [str(binary()), "x", "translate", "--from", "gateway-api", "--to", "gateway-api,xds,ir", "--type", "all",
         "--output", "json", "--file", str(source), "--namespace", GATEWAY_NAMESPACE],
        capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"egctl failed ({done.returncode}): {done.stderr.strip()}")
    out = json.loads(done.stdout)
    xds, ir = out.pop("xds", None) or {}, out.pop("xdsIR", None) or {}
    out.pop("infraIR", None)
    return Translation(resources=out, xds=xds, ir=ir)
