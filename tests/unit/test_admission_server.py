"""The webhook's HTTPS server: a review in, a verdict with the claims' warnings out; health; clear answers to
anything else; each review counted in the operator's metrics by verdict, with its latency."""

from __future__ import annotations

import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmpack.admission.reviews import MAX_BYTES, MAX_DEPTH
from llmpack.admission.webhook import HANDLER_ID, serving_cert
from llmpack.assess.claims import Claim, ClaimIndex
from llmpack.operator import admission_server
from llmpack.operator.metrics import Metrics
from llmpack.operator.store import Store
from llmpack_dev.cluster import free_port


def review(spec: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "operation": "CREATE", "namespace": "ns", "name": "qwen",
        "object": {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                   "metadata": {"name": "qwen", "namespace": "ns"}, "spec": spec}}}


@dataclass(frozen=True)
class Webhook:
    base: str
    trust: ssl.SSLContext
    metrics: Metrics

    @property
    def reviews(self) -> str:
        return f"{self.base}/{HANDLER_ID}"


OWNER = Claim("LLMModel", "team-a", "owner", frozenset({"Qwen/Qwen3-14B"}), "2026-01-01T00:00:00Z", uid="a")
OWNED: ClaimIndex = {"Qwen/Qwen3-14B": {OWNER.key: OWNER}}


@pytest.fixture
async def webhook(tmp_path: Path) -> AsyncIterator[Webhook]:
    cert = serving_cert(tmp_path, ("127.0.0.1",))
    port = free_port()
    metrics = Metrics(Store(), depth=lambda: 0, failing=lambda: 0)
    server = await admission_server.start("127.0.0.1", port, cert, claims=lambda: OWNED, observe=metrics.reviewed)
    try:
        yield Webhook(f"https://127.0.0.1:{port}", ssl.create_default_context(cafile=str(cert.ca)), metrics)
    finally:
        await server.cleanup()


async def test_serves_verdicts_and_health_over_tls(webhook: Webhook) -> None:
    trust = webhook.trust
    async with aiohttp.ClientSession() as session:
        good = review({"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}}})
        async with session.post(webhook.reviews, json=good, ssl=trust) as answer:
            assert answer.status == 200
            assert (await answer.json())["response"] == {"uid": "u-1", "allowed": True}
        warned = review({"model": {"name": "Qwen/Qwen3-14B", "storage": {"size": "30Gi"}}})
        async with session.post(webhook.reviews, json=warned, ssl=trust) as answer:
            response = (await answer.json())["response"]
            assert (response["allowed"], len(response["warnings"])) == (True, 1)
            assert "already claimed by LLMModel team-a/owner" in response["warnings"][0]
        async with session.post(webhook.reviews, data=b"{not json", ssl=trust) as answer:
            assert answer.status == 400
        async with session.get(f"{webhook.base}/healthz", ssl=trust) as answer:
            assert (answer.status, await answer.text()) == (200, "ok")
        async with session.get(f"{webhook.base}/other", ssl=trust) as answer:
            assert answer.status == 404


async def test_hostile_bodies_get_a_clear_answer_and_never_a_server_error(webhook: Webhook) -> None:
    url, trust = webhook.reviews, webhook.trust
    good = json.dumps(review({"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}}}))
    async with aiohttp.ClientSession() as session:
        async with session.post(url, data=b"[" * 200_000 + b"]" * 200_000, ssl=trust) as answer:
            assert answer.status == 400
            assert f"nests deeper than {MAX_DEPTH} levels" in await answer.text()
        async with session.post(url, data=good.replace('"u-1"', "NaN"), ssl=trust) as answer:
            assert answer.status == 200
            assert json.loads(await answer.text(), parse_constant=_refuse)["response"]["uid"] == "NaN"
        huge = review({"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "1e99999999"}}})
        async with session.post(url, json=huge, ssl=trust) as answer:
            assert (await answer.json())["response"] == {"uid": "u-1", "allowed": True}  # no LLMModel: no rule asked
        async with session.post(url, data=b" " * (MAX_BYTES + 1), ssl=trust) as answer:
            assert answer.status == 413


async def test_each_review_is_counted_by_verdict_with_how_long_its_answer_took(webhook: Webhook) -> None:
    def scraped() -> dict[tuple[str, str], float]:
        return {(s.name, s.labels.get("verdict", "")): s.value
                for family in text_string_to_metric_families(webhook.metrics.page()[1].decode())
                for s in family.samples if s.name.startswith("llmpack_webhook_")}

    before = scraped()
    assert {v: before["llmpack_webhook_reviews_total", v] for v in ("allowed", "warned", "invalid")} == \
        {"allowed": 0, "warned": 0, "invalid": 0}  # every verdict's series exists before the first review
    bodies = [json.dumps(review({"model": {"name": name, "storage": {"size": "30Gi"}}})).encode()
              for name in ("Qwen/Qwen3-8B", "Qwen/Qwen3-14B", "Qwen/Qwen3-8B")]
    async with aiohttp.ClientSession() as session:
        for body in [*bodies, b"{not json", b" " * (MAX_BYTES + 1)]:
            async with session.post(webhook.reviews, data=body, ssl=webhook.trust) as answer:
                await answer.read()
        async with session.get(f"{webhook.base}/healthz", ssl=webhook.trust) as answer:
            await answer.read()  # not a review: not counted
    after = scraped()
    assert {v: after["llmpack_webhook_reviews_total", v] for v in ("allowed", "warned", "invalid")} == \
        {"allowed": 2, "warned": 1, "invalid": 2}
    assert after["llmpack_webhook_review_duration_seconds_count", ""] == 5
    assert 0 < after["llmpack_webhook_review_duration_seconds_sum", ""] < 5  # seconds: each well under the 2 s timeout


def _refuse(token: str) -> None:
    raise ValueError(f"{token} is not JSON")
