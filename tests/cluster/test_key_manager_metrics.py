"""The key manager's metrics: keys created, revoked and expired, and refused credentials by reason, on a port
of their own."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from lightkube import AsyncClient
from prometheus_client.parser import text_string_to_metric_families

from llmpack.keymanager import metrics
from llmpack_dev.cluster import free_port
from tests.cluster.test_key_manager import _listed, issuer, km, make_model, new_key, ns
from tests.cluster.waiting import eventually
from tests.oidc.service import RunningKeyManager

__all__ = ["issuer", "km", "ns"]


@pytest.fixture
def metrics_url() -> Iterator[str]:
    port = free_port()
    server = metrics.serve("127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/metrics"
    server.shutdown()
    server.server_close()


def scrape(url: str) -> dict[tuple[str, str], float]:
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    return {(s.name, next(iter(s.labels.values()), "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("llmpack_key_manager_") and s.name.endswith("_total")}


async def test_key_actions_and_refused_credentials_are_counted_by_kind_never_by_user(
        client: AsyncClient, ns: str, km: RunningKeyManager, metrics_url: str) -> None:
    before = scrape(metrics_url)
    await make_model(client, ns, "qwen", {"public": True})
    async with km.as_user("alice") as alice, km.http() as anonymous, km.http("not-a-jwt") as forged:
        await eventually(lambda: _listed(alice, ns, "qwen"), within=10, what="the model in the catalog")
        kept = await new_key(alice, "qwen", namespace=ns)
        await new_key(alice, "qwen", namespace=ns, expiresInDays=1 / 86400)
        assert (await alice.delete(f"/api/keys/{ns}/qwen/{kept['clientId']}")).status_code == 204
        assert (await anonymous.get("/api/me")).status_code == 401
        assert (await forged.get("/api/me")).status_code == 401
        assert (await forged.get("/api/keys")).status_code == 401

    def grew(after: dict[tuple[str, str], float]) -> dict[tuple[str, str], float]:
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}

    async def expired() -> dict[tuple[str, str], float] | None:
        change = grew(scrape(metrics_url))
        return change if ("llmpack_key_manager_keys_total", "expired") in change else None

    change = await eventually(expired, within=10, what="the sweep to count the expired key")
    assert change == {("llmpack_key_manager_keys_total", "created"): 2,
                      ("llmpack_key_manager_keys_total", "revoked"): 1,
                      ("llmpack_key_manager_keys_total", "expired"): 1,
                      ("llmpack_key_manager_auth_failures_total", "no_credentials"): 1,
                      ("llmpack_key_manager_auth_failures_total", "invalid_token"): 2}
