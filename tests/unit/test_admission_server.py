"""The webhook's HTTPS server: a review in, a verdict out; health; clear answers to anything else."""

from __future__ import annotations

import ssl
from pathlib import Path

import aiohttp

from llmpack.admission.webhook import HANDLER_ID, serving_cert
from llmpack.operator import admission_server
from llmpack_dev.cluster import free_port


def review(spec: dict[str, object]) -> dict[str, object]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "u-1", "operation": "CREATE", "namespace": "ns", "name": "qwen",
        "object": {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                   "metadata": {"name": "qwen", "namespace": "ns"}, "spec": spec}}}


async def test_serves_verdicts_and_health_over_tls(tmp_path: Path) -> None:
    cert = serving_cert(tmp_path, ("127.0.0.1",))
    port = free_port()
    server = await admission_server.start("127.0.0.1", port, cert)
    trust = ssl.create_default_context(cafile=str(cert.ca))
    base = f"https://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            good = review({"model": {"name": "Qwen/Qwen3-8B", "storage": {"size": "30Gi"}}})
            async with session.post(f"{base}/{HANDLER_ID}", json=good, ssl=trust) as answer:
                assert answer.status == 200
                assert (await answer.json())["response"] == {"uid": "u-1", "allowed": True}
            bad = review({"model": {"name": "Qwen/Qwen3-8B", "source": "oci"}})
            async with session.post(f"{base}/{HANDLER_ID}", json=bad, ssl=trust) as answer:
                verdict = (await answer.json())["response"]
                assert verdict["allowed"] is False
                assert "image" in verdict["status"]["message"]
            async with session.post(f"{base}/{HANDLER_ID}", data=b"{not json", ssl=trust) as answer:
                assert answer.status == 400
            async with session.get(f"{base}/healthz", ssl=trust) as answer:
                assert (answer.status, await answer.text()) == (200, "ok")
            async with session.get(f"{base}/other", ssl=trust) as answer:
                assert answer.status == 404
    finally:
        await server.cleanup()
