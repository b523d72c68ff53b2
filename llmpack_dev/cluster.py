"""Start and stop a local control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok.

Everything listens on 127.0.0.1 on free ports; all state (certificates, etcd data, logs, pids,
kubeconfigs) lives in one state directory. `up` returns once /readyz answers, the fake nodes are Ready
and the default ServiceAccount exists; `down` stops every process it started (by pid) and removes the
state. Used by `make cluster-up`, the pytest session fixture and `make demo` alike.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from llmpack import certs as pki
from llmpack.admission.table import Settings
from llmpack_dev.nodes import bootstrap_objects
from llmpack_dev.stages import StageDelays, load_stages

HOST = "127.0.0.1"
SERVICE_CIDR = "10.96.0.0/16"
STARTUP_TIMEOUT = 90.0


class ClusterError(RuntimeError):
    """The control plane could not be started; the message says which process and shows its log."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class LocalCluster:
    state: Path
    bin_dir: Path
    delays: StageDelays = field(default_factory=StageDelays)
    audit: bool = True
    audit_reads: bool = False  # benchmarks count every request; tests only need writes
    held: tuple[str, ...] = ()  # models ("namespace/name") whose Job pods kwok never finishes (stages.py)

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kubeconfig"

    @property
    def audit_log(self) -> Path:
        return self.state / "logs" / "audit.log"

    def kubeconfig_for(self, user: str) -> Path:
        """A kubeconfig for another client identity (see `up`: operator)."""
        return self.state / f"kubeconfig-{user}"

    # -- processes ---------------------------------------------------------------------------------------

    def _pids(self) -> dict[str, int]:
        path = self.state / "pids.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def _start(self, name: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        log = (self.state / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        pids = self._pids() | {name: proc.pid}
        (self.state / "pids.json").write_text(json.dumps(pids))
        (self.state / "argv.json").write_text(json.dumps(self._argv() | {name: list(argv)}))
        return proc

    def start_process(self, name: str, argv: Sequence[str]) -> int:
        """Run another process with the cluster (the demo's operator): logged, and stopped by `down`."""
        return self._start(name, argv).pid

    def running(self) -> bool:
        return any(_alive(pid) for pid in self._pids().values())

    def _argv(self) -> dict[str, list[str]]:
        path = self.state / "argv.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def restart(self, name: str) -> None:
        """Kill one component (SIGKILL, as a crash would) and start it again with the same flags."""
        pid = self._pids()[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
        proc = self._start(name, self._argv()[name])
        if name == "kube-apiserver":
            self._wait("the API server's /readyz after a restart", self._ready, {name: proc})

    def _bin(self, name: str) -> str:
        path = self.bin_dir / name
        if not path.exists():
            raise ClusterError(f"{path} is missing: run `make testbin` first")
        return str(path)

    def _log_tail(self, name: str, lines: int = 15) -> str:
        path = self.state / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _wait(self, what: str, check: Any, procs: dict[str, subprocess.Popen[bytes]],
              timeout: float = STARTUP_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in procs.items():
                if proc.poll() is not None:
                    raise ClusterError(f"{name} exited with {proc.returncode} while waiting for {what}:\n"
                                       f"{self._log_tail(name)}")
            try:
                if check():
                    return
            except (httpx.HTTPError, OSError, subprocess.SubprocessError):
                pass
            time.sleep(0.2)
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}")

    def kubectl(self, *args: str, stdin: str | None = None, kubeconfig: Path | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self._bin("kubectl"), "--kubeconfig", str(kubeconfig or self.kubeconfig), *args],
                              input=stdin, capture_output=True, text=True, check=check, timeout=60)

    # -- bring-up ----------------------------------------------------------------------------------------

    def _write_kubeconfig(self, path: Path, server: str, ca: pki.KeyPair, client: pki.KeyPair, user: str) -> None:
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "llmpack-test",
            "clusters": [{"name": "llmpack-test",
                          "cluster": {"server": server, "certificate-authority": str(ca.cert)}}],
            "users": [{"name": user,
                       "user": {"client-certificate": str(client.cert), "client-key": str(client.key)}}],
            "contexts": [{"name": "llmpack-test", "context": {"cluster": "llmpack-test", "user": user,
                                                               "namespace": "default"}}],
        }))
        path.chmod(0o600)

    def up(self) -> Path:
        if self._pids():
            raise ClusterError(f"a cluster is already running from {self.state}: run `make cluster-down` first")
        shutil.rmtree(self.state, ignore_errors=True)
        for sub in ("pki", "logs", "etcd"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            self._up()
        except BaseException:
            self.down(keep_state=True)  # leave logs for the post-mortem, stop every process
            raise
        (self.state / "started.json").write_text(json.dumps({"seconds": round(time.monotonic() - started, 2)}))
        return self.kubeconfig

    def _up(self) -> None:
        pkid = self.state / "pki"
        ca = pki.make_ca(pkid)
        serving = pki.issue(ca, pkid, "apiserver", common_name="kube-apiserver", server=True,
                            hosts=(HOST, "localhost", "10.96.0.1", "kubernetes", "kubernetes.default",
                                   "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"))
        admin = pki.issue(ca, pkid, "admin", common_name="admin", organization="system:masters")
        operator = pki.issue(ca, pkid, "operator", common_name="llmpack-operator", organization="system:masters")
        sa = pki.make_service_account_keys(pkid)

        etcd_port, etcd_peer, api_port = free_port(), free_port(), free_port()
        server = f"https://{HOST}:{api_port}"
        self._write_kubeconfig(self.kubeconfig, server, ca, admin, "admin")
        self._write_kubeconfig(self.kubeconfig_for("operator"), server, ca, operator, "llmpack-operator")
        procs: dict[str, subprocess.Popen[bytes]] = {}

        procs["etcd"] = self._start("etcd", [
            self._bin("etcd"), "--name", "default", "--data-dir", str(self.state / "etcd"),
            "--listen-client-urls", f"http://{HOST}:{etcd_port}", "--advertise-client-urls", f"http://{HOST}:{etcd_port}",
            "--listen-peer-urls", f"http://{HOST}:{etcd_peer}", "--initial-advertise-peer-urls",
            f"http://{HOST}:{etcd_peer}", "--initial-cluster", f"default=http://{HOST}:{etcd_peer}",
            "--unsafe-no-fsync", "--log-level", "warn",
        ])
        audit = []
        if self.audit:
            policy = self.state / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                                              "omitStages": ["RequestReceived"],
                                              "rules": [*([] if self.audit_reads else
                                                          [{"level": "None", "verbs": ["get", "list", "watch"]}]),
                                                        {"level": "Metadata"}]}))
            audit = ["--audit-policy-file", str(policy), "--audit-log-path", str(self.audit_log),
                     "--audit-log-format", "json", "--audit-log-mode", "batch", "--audit-log-batch-max-wait", "1s"]
        procs["kube-apiserver"] = self._start("kube-apiserver", [
            self._bin("kube-apiserver"), f"--etcd-servers=http://{HOST}:{etcd_port}",
            f"--bind-address={HOST}", f"--advertise-address={HOST}", f"--secure-port={api_port}",
            f"--tls-cert-file={serving.cert}", f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={ca.cert}", f"--service-account-key-file={sa.cert}",
            f"--service-account-signing-key-file={sa.key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,DefaultStorageClass,"
            "PersistentVolumeClaimResize,StorageObjectInUseProtection,ValidatingAdmissionWebhook,"
            "MutatingAdmissionWebhook,ValidatingAdmissionPolicy",
            "--allow-privileged=true", "--profiling=false", "--v=1", *audit,
        ])
        self._wait("the API server's /readyz", self._ready, procs)
        common = [f"--kubeconfig={self.kubeconfig}", f"--authentication-kubeconfig={self.kubeconfig}",
                  f"--authorization-kubeconfig={self.kubeconfig}", f"--bind-address={HOST}", "--leader-elect=false"]
        procs["kube-controller-manager"] = self._start("kube-controller-manager", [
            self._bin("kube-controller-manager"), *common, f"--secure-port={free_port()}",
            f"--service-account-private-key-file={sa.key}", f"--root-ca-file={ca.cert}",
            f"--cluster-signing-cert-file={ca.cert}", f"--cluster-signing-key-file={ca.key}",
            "--use-service-account-credentials=false", "--controllers=*", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-gc-syncs=5", "--v=1",
        ])
        procs["kube-scheduler"] = self._start("kube-scheduler", [
            self._bin("kube-scheduler"), *common, f"--secure-port={free_port()}", "--v=1",
        ])
        stages = self._write_stages()
        procs["kwok"] = self._start("kwok", [
            self._bin("kwok"), f"--kubeconfig={self.kubeconfig}", f"--config={stages}",
            "--manage-all-nodes=false", "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--cidr=10.244.0.1/16", f"--node-ip={HOST}", f"--server-address={HOST}:{free_port()}",
        ])
        procs["provisioner"] = self._start("provisioner", [
            # By path: whatever the working directory, and it needs nothing of llmpack_dev.
            sys.executable, str(Path(__file__).with_name("provisioner.py")), "--kubeconfig", str(self.kubeconfig)])

        self._wait("the bootstrap objects to apply",
                   lambda: self.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(bootstrap_objects())), procs)
        self._wait("the kwok nodes to be Ready", lambda: self.kubectl(
            "wait", "--for=condition=Ready", "node", "--all", "--timeout=2s", check=False).returncode == 0, procs)
        self._wait("the default ServiceAccount", lambda: self.kubectl(
            "get", "serviceaccount", "default", "-n", "default", check=False).returncode == 0, procs)

    def _write_stages(self) -> Path:
        path = self.state / "kwok.yaml"
        path.write_text(yaml.safe_dump_all(load_stages(self.delays, held=self.held)))
        return path

    def hold_job_pods(self, *models: str) -> None:
        """From now on kwok never finishes the Job pods of these models ("namespace/name"): the caller plays
        them. A running kwok started without them is restarted with the new stages."""
        self.held = tuple(sorted({*self.held, *models}))
        path = self.state / "kwok.yaml"
        before = path.read_text() if path.exists() else None
        if self._write_stages().read_text() != before and "kwok" in self._pids():
            self.restart("kwok")

    def _ready(self) -> bool:
        config = yaml.safe_load(self.kubeconfig.read_text())
        user = config["users"][0]["user"]
        tls = ssl.create_default_context(cafile=config["clusters"][0]["cluster"]["certificate-authority"])
        tls.load_cert_chain(user["client-certificate"], user["client-key"])
        with httpx.Client(verify=tls, timeout=2) as http:
            return http.get(f"{config['clusters'][0]['cluster']['server']}/readyz").status_code == 200

    # -- tear-down ---------------------------------------------------------------------------------------

    def down(self, keep_state: bool = False) -> None:
        pids = self._pids()
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for pid in pids.values():
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
        (self.state / "pids.json").unlink(missing_ok=True)
        (self.state / "argv.json").unlink(missing_ok=True)
        if not keep_state:
            shutil.rmtree(self.state, ignore_errors=True)



PROBE: dict[str, Any] = {"apiVersion": "llm.nebari.dev/v1alpha1", "kind": "LLMModel", "metadata": {"name": "probe"},
                         "spec": {"model": {"name": "org/probe", "storage": {"size": "1Gi"}}}}


def _until(what: str, done: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while True:
        ok, why = done()
        if ok:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"{what} never happened: {why}")
        time.sleep(0.3)


def install_admission(cluster: LocalCluster, settings: Settings | None = None) -> None:
    """The CRDs (LLMModel, PassthroughModel) and the admission policies, as `llmpack crd` and `llmpack policies`
    print them; returns once the API server enforces both (it loads policies a moment after they are written)."""
    from llmpack.admission.policies import objects
    from llmpack_dev.crds import install_ours  # crds.py imports this module

    install_ours(cluster)
    cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects(settings or Settings())))
    wait_for_admission(cluster)


def remove_policies(cluster: LocalCluster) -> None:
    """The admission policies and their bindings gone (before a Helm release of the chart brings its own)."""
    from llmpack.admission.policies import POLICIES

    for kind in ("validatingadmissionpolicybinding", "validatingadmissionpolicy"):
        cluster.kubectl("delete", kind, *[p.name for p in POLICIES], "--ignore-not-found")


def wait_for_admission(cluster: LocalCluster, within: float = 30) -> None:
    """Until the API server answers with both admission policies: a dry run warned by one, refused by the other."""
    from llmpack.admission.policies import POLICIES

    warned = {**PROBE, "spec": {"model": {"name": "org/probe", "storage": {"type": "emptyDir"}}}}
    refused = {**PROBE, "spec": {**PROBE["spec"], "advanced": {"inferencePool": {"schedulerConfig": [1]}}}}

    def answered() -> tuple[bool, str]:
        warning = cluster.kubectl("apply", "--dry-run=server", "-n", "default", "-f", "-", check=False,
                                  stdin=yaml.safe_dump(warned))
        denial = cluster.kubectl("apply", "--dry-run=server", "-n", "default", "-f", "-", check=False,
                                 stdin=yaml.safe_dump(refused))
        seen = f"{warning.stderr.strip()} | {denial.stderr.strip()}"
        return all(f"ValidatingAdmissionPolicy '{p.name}'" in seen for p in POLICIES), seen

    _until("the admission policies answering", answered, within)


def wait_for_webhook(cluster: LocalCluster, within: float = 30) -> None:
    """Until the operator's webhook answers its /healthz at the URL its configuration names (local runs), with the
    configuration's CA: the operator is up and serving. (With failurePolicy Ignore, a dry run passes either way.)"""
    def healthy() -> tuple[bool, str]:
        got = cluster.kubectl("get", "validatingwebhookconfiguration", "llmpack-validating-webhook", "-o", "json",
                              check=False)
        if got.returncode != 0:
            return False, got.stderr.strip()
        client = json.loads(got.stdout)["webhooks"][0]["clientConfig"]
        base = client["url"].rsplit("/", 1)[0]
        try:  # the configuration may still be an earlier run's, its CA not (yet) the serving one's
            tls = ssl.create_default_context(cadata=base64.b64decode(client["caBundle"]).decode())
            with httpx.Client(verify=tls, timeout=2) as http:
                status = http.get(f"{base}/healthz").status_code
        except (ssl.SSLError, ValueError, httpx.HTTPError) as exc:
            return False, str(exc)
        return status == 200, f"/healthz answered {status}"

    _until("the admission webhook answering", healthy, within)


def _alive(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmpack_dev.cluster",
                                     description="Start or stop the local test control plane.")
    parser.add_argument("action", choices=["up", "down"])
    parser.add_argument("--state", type=Path, default=Path(".testcluster"), help="state directory")
    parser.add_argument("--bin", type=Path, default=Path(".testbin"), help="where `make testbin` put the binaries")
    args = parser.parse_args(argv)
    cluster = LocalCluster(args.state.resolve(), args.bin.resolve())
    if args.action == "down":
        cluster.down()
        print(f"cluster stopped; {args.state} removed")
        return 0
    started = time.monotonic()
    try:
        kubeconfig = cluster.up()
    except ClusterError as exc:
        print(f"cluster up failed: {exc}\nlogs are in {args.state}/logs", file=sys.stderr)
        return 1
    print(f"cluster up in {time.monotonic() - started:.1f}s\n"
          f"  export KUBECONFIG={kubeconfig}\n  {args.bin}/kubectl get nodes\n  make cluster-down   # to stop it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
