"""Admission latency, old against new, side by side in one sitting: `--concurrent` server-side dry-run creates in
flight at once (the API server runs every admission layer and stores nothing), for each of
- old:  the CRD's rules and the operator's webhook as at FAILING_WEBHOOK_COMMIT (tests/cluster/old_release.py):
        every warning and most denials in the webhook, failurePolicy Fail, an HTTPS round trip to Python for
        every admission;
- new:  the CRD's rules, the ValidatingAdmissionPolicies, and the operator's warnings-only webhook
        (failurePolicy Ignore), as the chart ships them;
- policies only: the same where the webhook is not called (`webhook.enabled: false`): a namespace its
        configuration skips.
Old and new each get their own control plane (one CRD per group and version per API server), and the wrk
runs take turns: old, new, new without the webhook, and round again.
The model sent is warned about (emptyDir with preload), so the warning path runs; each setup is checked to
answer it from the layer it should before it is measured.

The load comes from wrk (apt-get install wrk), a C load generator: a Python client on two cores measures
itself more than the API server.

Rerun: make testbin && .venv/bin/python bench/webhook_latency.py [--concurrent 200 --seconds 10 --runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from llmpack.admission.webhook import CONFIGURATION_NAME  # noqa: E402
from llmpack_dev.cluster import LocalCluster, free_port, install_admission  # noqa: E402
from llmpack_dev.cluster import wait_for_webhook as wait_for_healthz  # noqa: E402
from tests.cluster.dry_run import ApiServer, Verdict  # noqa: E402
from tests.cluster.old_release import checkout  # noqa: E402
from tests.cluster.operator_process import OperatorProcess  # noqa: E402

SPEC = {"model": {"name": "Qwen/Qwen3-8B", "storage": {"type": "emptyDir", "size": "4Gi"}}}
WARNING = "emptyDir with preload"
DRAINED = 0.2  # seconds: a lone dry-run create slower than this is queued behind earlier ones
BARE = "no-webhook"  # the new cluster's namespace that its webhook configuration skips


def model(i: int, namespace: str) -> dict[str, object]:
    return {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel",
            "metadata": {"name": f"bench-{i}", "namespace": namespace}, "spec": SPEC}


@dataclass
class Setup:
    name: str
    cluster: LocalCluster
    namespace: str
    by_policy: bool  # its warning comes from a policy (else from the webhook)
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def warned(self, answer: Verdict) -> bool:
        return answer.admitted and any(WARNING in w and ("ValidatingAdmissionPolicy" in w) == self.by_policy
                                       for w in answer.warnings)

    async def ready(self, within: float = 60) -> None:
        """Until the setup answers the model as it should: admitted, warned by the layer it should be."""
        deadline = time.monotonic() + within
        while True:
            api = ApiServer(self.cluster.kubeconfig)
            try:
                answer = await api.create(model(0, self.namespace))
            finally:
                await api.aclose()
            if self.warned(answer):
                return
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: {self.name} never warned as it should: {answer}")
            await asyncio.sleep(0.3)

    def script(self, workdir: Path) -> Path:
        """wrk's request: a dry-run create as kubectl sends it, with a token of a cluster-admin service account."""
        c = self.cluster
        c.kubectl("create", "serviceaccount", "bench", "-n", "default", check=False)
        c.kubectl("create", "clusterrolebinding", "bench", "--clusterrole=cluster-admin",
                  "--serviceaccount=default:bench", check=False)
        token = c.kubectl("create", "token", "bench", "-n", "default", "--duration=1h").stdout.strip()
        body = workdir / f"{self.namespace}-{id(self)}.json"
        body.write_text(json.dumps(model(0, self.namespace)))
        script = workdir / f"{self.namespace}-{id(self)}.lua"
        script.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                          f'wrk.headers["Authorization"] = "Bearer {token}"\n'
                          f'wrk.body = io.open("{body}"):read("*a")\n')
        return script

    def url(self) -> str:
        server = yaml.safe_load(self.cluster.kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        return f"{server}{ApiServer.path(self.namespace)}?dryRun=All&fieldValidation=Strict"

    async def drained(self, within: float = 120) -> None:
        """Until one request is answered at once again: a run's cancelled requests still queue in the API server
        when it ends, and would weigh on the next run."""
        api = ApiServer(self.cluster.kubeconfig)
        try:
            deadline = time.monotonic() + within
            while time.monotonic() < deadline:
                started = time.perf_counter()
                await api.create(model(0, self.namespace))
                if time.perf_counter() - started < DRAINED:
                    return
                await asyncio.sleep(0.5)
        finally:
            await api.aclose()
        raise SystemExit(f"bench: {self.name}: the API server never drained")

    def run(self, script: Path, concurrent: int, seconds: int) -> None:
        asyncio.run(self.drained())
        out = subprocess.run(["wrk", "-t1", f"-c{concurrent}", f"-d{seconds}s", "--timeout", "30s", "--latency",
                              "-s", str(script), self.url()], capture_output=True, text=True, check=True,
                             timeout=seconds + 60).stdout
        if failed := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
            raise SystemExit(f"bench: {self.name}: {failed.group(1)} answers were not 2xx:\n{out}")
        figures = dict(re.findall(r"^\s+(50%|99%)\s+(\S+)\s*$", out, re.M))
        if len(figures) != 2 or _ms(figures["50%"]) == 0:
            raise SystemExit(f"bench: {self.name}: wrk gave no latency distribution:\n{out}")
        self.p50s.append(_ms(figures["50%"]))
        self.p99s.append(_ms(figures["99%"]))
        rate = re.search(r"Requests/sec:\s+(\S+)", out)
        self.rates.append(float(rate.group(1)) if rate else float("nan"))


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([0-9.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def measure(setups: list[Setup], workdir: Path, concurrent: int, seconds: int, runs: int) -> None:
    """Run after run, one wrk run per setup in turn (so the machine's load, which other work changes, weighs on
    each alike)."""
    for setup in setups:
        asyncio.run(setup.ready())
    scripts = [setup.script(workdir) for setup in setups]
    for _ in range(runs):
        for setup, script in zip(setups, scripts, strict=True):
            setup.run(script, concurrent, seconds)


def operator(cluster: LocalCluster, tmp: Path, name: str, env: dict[str, str]) -> OperatorProcess:
    return OperatorProcess(cluster.kubeconfig_for("operator"), tmp / f"{name}.log",
                           ["--webhook-port", str(free_port()), "--webhook-listen", "127.0.0.1",
                            "--webhook-cert-dir", str(tmp / f"{name}-certs")], env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrent", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10, help="how long each wrk run loads the API server")
    parser.add_argument("--runs", type=int, default=3, help="wrk runs per setup; medians are reported")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llmpack-bench-") as name:
        tmp = Path(name)
        old_src = checkout("src", tmp / "old")  # needs the git history
        before = LocalCluster(tmp / "old-cluster", ROOT / ".testbin", audit=False)
        after = LocalCluster(tmp / "new-cluster", ROOT / ".testbin", audit=False)
        old = operator(before, tmp, "old", {"PYTHONPATH": str(old_src)})
        new = operator(after, tmp, "new", {})
        try:
            before.up()
            after.up()
            # old: its CRD (printed by its own `llmpack crd`) and its operator, which applies its webhook.
            old_crd = subprocess.run([sys.executable, "-m", "llmpack.cli", "crd"], capture_output=True, text=True,
                                     check=True, env={**os.environ, "PYTHONPATH": str(old_src)}).stdout
            before.kubectl("apply", "--server-side", "-f", "-", stdin=old_crd)
            before.kubectl("wait", "--for=condition=Established", "crd/llmmodels.llm.nebari.dev")
            old.start()
            wait_for_healthz(before)
            # new: this tree's CRD and policies, and its operator's webhook (Ignore), which skips one namespace.
            install_admission(after)
            new.start()
            wait_for_healthz(after)
            hook = yaml.safe_load(after.kubectl("get", "validatingwebhookconfiguration", CONFIGURATION_NAME,
                                                "-o", "yaml").stdout)
            assert hook["webhooks"][0]["failurePolicy"] == "Ignore", hook
            after.kubectl("create", "namespace", BARE)
            skip = {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                          "values": [BARE]}]}
            after.kubectl("patch", "validatingwebhookconfiguration", CONFIGURATION_NAME, "--type=json", "-p",
                          json.dumps([{"op": "add", "path": "/webhooks/0/namespaceSelector", "value": skip}]))
            setups = [Setup("old: CRD + webhook (Fail)", before, "default", by_policy=False),
                      Setup("new: CRD + policies + webhook (Ignore)", after, "default", by_policy=True),
                      Setup("new: CRD + policies, no webhook call", after, BARE, by_policy=True)]
            measure(setups, tmp, args.concurrent, args.seconds, args.runs)
        finally:
            old.stop()
            new.stop()
            before.down()
            after.down()
    old_p50, old_p99 = statistics.median(setups[0].p50s), statistics.median(setups[0].p99s)
    print(f"{args.concurrent} concurrent dry-run creates through the API server (wrk, {args.seconds} s a run), "
          f"medians of {args.runs} runs per setup, the setups' runs taking turns; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    for setup in setups:
        p50, p99 = statistics.median(setup.p50s), statistics.median(setup.p99s)
        print(f"  {setup.name:40} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms  {statistics.median(setup.rates):6.0f}/s  "
              f"(old/this: p50 x{old_p50 / p50:.2f}, p99 x{old_p99 / p99:.2f}; p99 of each run "
              f"{', '.join(f'{p:.0f}' for p in setup.p99s)} ms)")
    print(f"rerun: .venv/bin/python bench/webhook_latency.py --concurrent {args.concurrent} --seconds {args.seconds} "
          f"--runs {args.runs}")


if __name__ == "__main__":
    main()
