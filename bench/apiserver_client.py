"""The client's CPU for one server-side apply against a real kube-apiserver: through lightkube's httpx2
connection (the operator's writes until apiserver.py) and through apiserver.ApiServer (aiohttp), alternating
in one sitting, 20 in flight as the operator sends them.

Rerun: make testbin && .venv/bin/python bench/apiserver_client.py [--requests 1500] [--rounds 3]

Measured 2026-11-30 (quiet box, 2 cores), `--requests 1500 --rounds 3`, median of 3:
| client CPU per apply | httpx2 0.96 ms | aiohttp 0.23 ms | 0.24 |
The client's CPU is what the operator spends per request (kube.py `_send`, watch.py); the wall time is the
API server's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import msgspec
import uvloop

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightkube import AsyncClient, KubeConfig  # noqa: E402

from llmpack.operator.apiserver import ApiServer  # noqa: E402
from llmpack_dev.cluster import LocalCluster  # noqa: E402

PARAMS = {"fieldManager": "bench", "force": "true"}
HEADERS = {"Content-Type": "application/apply-patch+yaml"}
IN_FLIGHT = 20
Send = Callable[[str, bytes], Awaitable[bytes]]


def path(i: int) -> str:
    return f"/api/v1/namespaces/default/configmaps/bench-{i % 100}"


def body(i: int) -> bytes:
    meta = {"name": f"bench-{i % 100}", "namespace": "default"}
    return msgspec.json.encode({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"i": str(i)}})


async def timed(send: Send, requests: int) -> tuple[float, float]:
    """CPU and wall seconds for `requests` applies, after 50 that warm the connections."""
    limit = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with limit:
            msgspec.json.decode(await send(path(i), body(i)))

    await asyncio.gather(*(one(i) for i in range(50)))
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.gather(*(one(i) for i in range(requests)))
    return time.process_time() - cpu, time.monotonic() - wall


async def through_httpx2(config: KubeConfig, requests: int) -> tuple[float, float]:
    client = AsyncClient(config)
    http = client._client._client

    async def send(where: str, content: bytes) -> bytes:
        response = await http.request("PATCH", where, params=PARAMS, content=content, headers=HEADERS)
        assert response.status_code < 400, response.text
        return response.content

    try:
        return await timed(send, requests)
    finally:
        await client.close()


async def through_aiohttp(config: KubeConfig, requests: int) -> tuple[float, float]:
    single = config.get()
    assert single is not None
    server = ApiServer(single)

    async def send(where: str, content: bytes) -> bytes:
        answer = await server.request("PATCH", where, params=PARAMS, body=content, headers=HEADERS)
        assert answer.status < 400, answer.body
        return answer.body

    try:
        return await timed(send, requests)
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    clients = {"httpx2": through_httpx2, "aiohttp": through_aiohttp}
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", ROOT / ".testbin")
        cluster.up()
        try:
            config = KubeConfig.from_file(str(cluster.kubeconfig))
            runs: dict[str, list[tuple[float, float]]] = {name: [] for name in clients}
            for _ in range(args.rounds):
                for name, run in clients.items():
                    runs[name].append(uvloop.run(run(config, args.requests)))
        finally:
            cluster.down()
    cpu = {name: 1000 * statistics.median(c for c, _ in found) / args.requests for name, found in runs.items()}
    for name, found in runs.items():
        walls = " / ".join(f"{w:.1f}" for _, w in found)
        print(f"{name:8} client CPU per apply {cpu[name]:.2f} ms (median of {args.rounds}); wall s: {walls}")
    print(f"aiohttp / httpx2: {cpu['aiohttp'] / cpu['httpx2']:.2f}")
    print(f"rerun: make testbin && .venv/bin/python bench/apiserver_client.py --requests {args.requests} "
          f"--rounds {args.rounds}")


if __name__ == "__main__":
    main()
