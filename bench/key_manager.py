"""The key manager under 20 concurrent users against the real API server with 500 models: latency of
GET /api/models and POST /api/keys (p50, p99), measured at the client, the service in its own process.

Rerun: make testbin && .venv/bin/python bench/key_manager.py [--models 500] [--users 20] [--gets 50] [--posts 25]
Targets (issue 18): GET /api/models p99 <= 50 ms, POST /api/keys p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lightkube import AsyncClient, KubeConfig, codecs  # noqa: E402

from llmpack.api import LLMModel  # noqa: E402
from llmpack.keymanager.kinds import LLMMODEL  # noqa: E402
from llmpack.render.auth import api_key_objects  # noqa: E402
from llmpack_dev.cluster import LocalCluster, free_port  # noqa: E402
from llmpack_dev.crds import install_ours  # noqa: E402
from tests.oidc.issuer import Issuer  # noqa: E402

NAMESPACE = "bench"
TEAMS = 10


def access(i: int) -> dict[str, object]:
    return {"public": True} if i % 5 == 0 else {"groups": [f"team-{i % TEAMS}"]}


async def create_models(cluster: LocalCluster, count: int) -> None:
    """Every model and its key objects (as the operator creates them), 50 requests at a time."""
    client = AsyncClient(KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="llmpack")
    limit = asyncio.Semaphore(50)

    async def one(i: int) -> None:
        body = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
                "metadata": {"name": f"m{i:04d}", "namespace": NAMESPACE},
                "spec": {"model": {"name": f"org/model-{i}", "storage": {"size": "1Gi"}}, "access": access(i)}}
        async with limit:
            created = (await client.create(LLMMODEL.resource.from_dict(body))).to_dict()
            for obj in api_key_objects(LLMModel.from_body(created)):
                await client.apply(codecs.from_dict(obj), force=True)

    await asyncio.gather(*(one(i) for i in range(count)))
    await client.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def load(url: str, issuer: Issuer, users: int, gets: int, posts: int, models: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"GET /api/models": [], "POST /api/keys": []}
    tokens = [issuer.token(f"user{u}", [f"team-{u % TEAMS}"], expires_in=3600) for u in range(users)]
    usable = {u: [i for i in range(models) if i % 5 == 0 or i % TEAMS == u % TEAMS] for u in range(users)}
    start = asyncio.Event()

    async def user(u: int) -> None:
        async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {tokens[u]}"},
                                     timeout=30) as http:
            await http.get("/api/models")  # warm: connection and caches
            await start.wait()
            actions = ["get"] * gets + ["post"] * posts
            random.Random(u).shuffle(actions)  # both kinds of request interleaved, the same each run
            for action in actions:
                began = time.perf_counter()
                if action == "get":
                    answer = await http.get("/api/models")
                    timings["GET /api/models"].append(time.perf_counter() - began)
                else:
                    model = f"m{random.choice(usable[u]):04d}"
                    answer = await http.post("/api/keys", json={"modelName": model, "namespace": NAMESPACE,
                                                                "description": "bench"})
                    timings["POST /api/keys"].append(time.perf_counter() - began)
                answer.raise_for_status()

    tasks = [asyncio.create_task(user(u)) for u in range(users)]
    await asyncio.sleep(1)
    start.set()
    await asyncio.gather(*tasks)
    return timings


def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the key manager exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("the key manager never got ready")


def wait_idle(pid: int, within: float = 120) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(1)
        if cpu_seconds(pid) - before < 0.05:
            return


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def busy_elsewhere() -> str:
    """What else was running: load average and the busiest other processes, for the note."""
    top = subprocess.run(["ps", "-eo", "pcpu,comm", "--sort=-pcpu", "--no-headers"], capture_output=True,
                         text=True, check=False).stdout.splitlines()[:6]
    load1, load5, _ = os.getloadavg()
    return f"load average {load1:.2f} (1 min), {load5:.2f} (5 min); busiest: " + \
        ", ".join(" ".join(line.split()[::-1]) + "%" for line in top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--gets", type=int, default=50, help="GET /api/models per user")
    parser.add_argument("--posts", type=int, default=25, help="POST /api/keys per user")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as tmp:
        cluster = LocalCluster(Path(tmp) / "cluster", ROOT / ".testbin", audit=False)
        cluster.up()
        issuer = Issuer().start()
        proc = None
        try:
            install_ours(cluster)
            cluster.kubectl("create", "namespace", NAMESPACE)
            began = time.monotonic()
            asyncio.run(create_models(cluster, args.models))
            print(f"{args.models} models and their key objects created in {time.monotonic() - began:.1f}s")
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "LLMPACK_OIDC_ISSUER": issuer.url, "LLMPACK_OIDC_JWKS_URI": issuer.jwks_uri,
                   "LLMPACK_KEY_MANAGER_MAX_KEYS_PER_USER": "1000"}
            log = (Path(tmp) / "key-manager.log").open("wb")
            profile = ["-m", "cProfile", "-o", os.environ["BENCH_PROFILE"]] if os.environ.get("BENCH_PROFILE") else []
            proc = subprocess.Popen([sys.executable, *profile, "-m", "llmpack.cli", "key-manager", "--kubeconfig",
                                     str(cluster.kubeconfig), "--listen", "127.0.0.1", "--port", str(port)],
                                    env=env, stdout=log, stderr=subprocess.STDOUT)
            wait_ready(url, proc)
            wait_idle(proc.pid)  # its first sweep reads (and adopts) every key Secret: not part of the load
            elsewhere = busy_elsewhere()
            began, cpu = time.monotonic(), cpu_seconds(proc.pid)
            timings = asyncio.run(load(url, issuer, args.users, args.gets, args.posts, args.models))
            took, cpu = time.monotonic() - began, cpu_seconds(proc.pid) - cpu
        finally:
            if proc is not None:
                proc.send_signal(signal.SIGINT)  # as Ctrl-C: a profile (BENCH_PROFILE=FILE) is written on the way out
                proc.wait(20)
            issuer.stop()
            cluster.down()

    print(f"\n{args.users} concurrent users, {args.models} models, {took:.1f}s of load "
          "(the key manager in its own process; client, API server and etcd on the same 2 cores)")
    targets = {"GET /api/models": 50.0, "POST /api/keys": 250.0}
    for what, values in timings.items():
        if not values:
            continue
        ms = [v * 1000 for v in values]
        p99 = percentile(ms, 99)
        verdict = "met" if p99 <= targets[what] else "MISSED"
        print(f"  {what:16} n={len(ms):4}  p50 {statistics.median(ms):6.1f} ms  p99 {p99:6.1f} ms  "
              f"max {max(ms):6.1f} ms  (target p99 <= {targets[what]:.0f} ms: {verdict})")
    requests = sum(len(v) for v in timings.values())
    print(f"key manager CPU: {cpu * 1000 / requests:.2f} ms per request ({cpu:.1f}s for {requests} requests)")
    print(f"before the load: {elsewhere}")
    print("rerun: make testbin && .venv/bin/python bench/key_manager.py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
