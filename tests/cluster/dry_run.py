"""LLMModels sent to the real API server over HTTPS, as kubectl sends them (fieldValidation=Strict), read back as a
user sees the answer: admitted or not, the message, the fields it names, the warnings kubectl would print."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from llmpack.api import GROUP, PLURAL, VERSION

_WARNING = re.compile(r'^\d{3} \S+ "((?:[^"\\]|\\.)*)"')
_FIELD = re.compile(r"\b(?:spec|metadata)(?:\.[A-Za-z][A-Za-z0-9]*|\[[^\]]+\])+")


@dataclass(frozen=True)
class Verdict:
    status: int
    message: str  # "" when admitted
    fields: tuple[str, ...]  # every field the answer names (its causes, and paths in its message), dotted
    warnings: tuple[str, ...]

    @property
    def admitted(self) -> bool:
        return self.status < 300


def dotted(field: str) -> str:
    """spec.resources.limits[memory] -> spec.resources.limits.memory (list indexes stay): pydantic's spelling."""
    return re.sub(r"\[([^\]0-9][^\]]*)\]", r".\1", field)


def verdict_of(response: httpx.Response) -> Verdict:
    warnings = tuple(re.sub(r"\\(.)", r"\1", m.group(1)) for value in response.headers.get_list("warning")
                     if (m := _WARNING.match(value)))
    if response.status_code < 300:
        return Verdict(response.status_code, "", (), warnings)
    body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    message = str(body.get("message", response.text))
    causes = [str(c["field"]) for c in (body.get("details") or {}).get("causes", []) if c.get("field")]
    named = [*causes, *_FIELD.findall(message)]
    return Verdict(response.status_code, message, tuple(dict.fromkeys(dotted(f) for f in named if f != "<nil>")),
                   warnings)


class ApiServer:
    """An HTTPS client of the test cluster's API server, as its admin, for LLMModels."""

    def __init__(self, kubeconfig: Path, connections: int = 64) -> None:
        config = yaml.safe_load(kubeconfig.read_text())
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        tls = ssl.create_default_context(cafile=cluster["certificate-authority"])
        tls.load_cert_chain(user["client-certificate"], user["client-key"])
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self.http = httpx.AsyncClient(base_url=cluster["server"], verify=tls, limits=limits, timeout=60)

    @staticmethod
    def path(namespace: str, name: str | None = None) -> str:
        return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}" + (f"/{name}" if name else "")

    async def create(self, body: dict[str, Any], dry_run: bool = True) -> Verdict:
        params = {"fieldValidation": "Strict", **({"dryRun": "All"} if dry_run else {})}
        return verdict_of(await self.http.post(self.path(body["metadata"]["namespace"]), params=params, json=body))

    async def update(self, body: dict[str, Any]) -> Verdict:
        """A dry-run replace of the stored object by `body` (a whole object, as kubectl replace sends it)."""
        meta = body["metadata"]
        stored = await self.get(meta["namespace"], meta["name"])
        versioned = {**body, "metadata": {**meta, "resourceVersion": stored["metadata"]["resourceVersion"]}}
        return verdict_of(await self.http.put(self.path(meta["namespace"], meta["name"]), json=versioned,
                                              params={"fieldValidation": "Strict", "dryRun": "All"}))

    async def get(self, namespace: str, name: str) -> dict[str, Any]:
        response = await self.http.get(self.path(namespace, name))
        response.raise_for_status()
        return dict(response.json())

    async def put_status(self, namespace: str, name: str, status: dict[str, Any]) -> None:
        response = await self.http.patch(f"{self.path(namespace, name)}/status", json={"status": status},
                                         headers={"Content-Type": "application/merge-patch+json"})
        response.raise_for_status()

    async def delete(self, namespace: str, name: str) -> None:
        await self.http.delete(self.path(namespace, name))

    async def aclose(self) -> None:
        await self.http.aclose()
