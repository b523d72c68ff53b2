"""Play the pods of a model's Jobs with the real container run on this machine: kwok schedules the pod and
marks it running (LocalCluster.hold_job_pods keeps it from finishing it), and here its container's own args and
env run as `llmpack download` in a subprocess; when that exits the pod is marked Succeeded or Failed, as the
kubelet would. Only the pod is played: the download, its Lease, and what the operator makes of both are real.

What differs from the pod, and why:
- a volume claim's mount path is a directory of the state directory (`volumes/<namespace>/<claim>`);
- the API token mounted into the pod is a token for the pod's own ServiceAccount, in a kubeconfig (so the Lease
  is reached with exactly the pod's RBAC);
- HF_ENDPOINT names the local Hub, and nothing of this machine's Hugging Face or proxy settings leaks in.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from llmpack.wellknown import MODEL_LABEL
from llmpack_dev.cluster import LocalCluster

ERROR_PREFIX = "llmpack download: "
_LEAK = ("KUBECONFIG", "HF_", "HUGGING_FACE_", "LLMPACK_")


def _dropped(name: str) -> bool:
    return name.startswith(_LEAK) or name.lower().endswith("_proxy")


@dataclass
class Played:
    pod: str
    containers: list[tuple[str, str]]  # (name, image), for the status the kubelet would write
    proc: subprocess.Popen[bytes]
    log: Path
    started: str


def _container(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    (container,) = pod["spec"]["containers"]  # our Jobs run one: the downloader (or its sizing step)
    return cast(Mapping[str, Any], container)


def claims(pod: Mapping[str, Any]) -> dict[str, str]:
    """Volume name -> the claim it mounts; the other volumes (the API token) have no place here."""
    return {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["spec"].get("volumes") or []
            if "persistentVolumeClaim" in v}


def local_args(pod: Mapping[str, Any], volumes: Path) -> list[str]:
    """The container's args, each claim's mount path (or a path below it) moved to `volumes/<claim>`."""
    container, by_volume = _container(pod), claims(pod)
    args = [str(a) for a in container.get("args") or []]
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in by_volume:
            continue
        at, local = mount["mountPath"].rstrip("/"), str(volumes / by_volume[mount["name"]])
        args = [local + a[len(at):] if a == at or a.startswith(at + "/") else a for a in args]
    return args


def container_env(pod: Mapping[str, Any], secret: Callable[[str, str], str | None]) -> dict[str, str]:
    """The container's env as the kubelet resolves it: values, the pod's own fields, Secret keys (`secret`:
    name, key -> value, None when it is not there: then the variable is left out)."""
    env: dict[str, str] = {}
    for item in _container(pod).get("env") or []:
        source = item.get("valueFrom") or {}
        if "value" in item:
            env[item["name"]] = str(item["value"])
        elif "fieldRef" in source:
            value: Any = pod
            for part in source["fieldRef"]["fieldPath"].split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
            env[item["name"]] = "" if value is None else str(value)
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            if (found := secret(ref["name"], ref["key"])) is not None:
                env[item["name"]] = found
    return env


def exited(code: int, message: str, containers: list[tuple[str, str]], started: str, finished: str) -> dict[str, Any]:
    """The pod's status as the kubelet leaves it once its only container has exited with `code`."""
    terminated = {"exitCode": code, "reason": "Error" if code else "Completed", "startedAt": started,
                  "finishedAt": finished, **({"message": message[:1024]} if message else {})}
    return {"phase": "Failed" if code else "Succeeded",
            "containerStatuses": [{"name": name, "image": image, "ready": False, "restartCount": 0,
                                   "started": False, "state": {"terminated": terminated}}
                                  for name, image in containers]}


def error_line(log: Path) -> str:
    """The downloader's one error line (else its last line): what a user would read in `kubectl logs`."""
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return next((ln for ln in reversed(lines) if ln.startswith(ERROR_PREFIX)), lines[-1] if lines else "")


@dataclass
class JobPlayer:
    """Runs the Job pods of `model` in `namespace` (call `tick` every second or so; `stop` at the end)."""

    cluster: LocalCluster
    namespace: str
    model: str
    hub_url: str
    say: Callable[[str], None] = print
    running: dict[str, Played] = field(default_factory=dict)
    finished: dict[str, int] = field(default_factory=dict)  # pod -> exit code

    @property
    def _dir(self) -> Path:
        return self.cluster.state / "played"

    @property
    def volumes(self) -> Path:
        """Where the claims' volumes are (one directory per claim)."""
        return self._dir / "volumes" / self.namespace

    def _pods(self) -> list[dict[str, Any]]:
        got = self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", f"{MODEL_LABEL}={self.model}",
                                   "-o", "json", check=False)
        items = json.loads(got.stdout).get("items", []) if got.returncode == 0 else []
        return [p for p in items if any(o.get("kind") == "Job" for o in p["metadata"].get("ownerReferences") or [])]

    def tick(self) -> None:
        pods = {p["metadata"]["name"]: p for p in self._pods()}
        for name, played in list(self.running.items()):
            code = played.proc.poll()
            if name not in pods or pods[name]["metadata"].get("deletionTimestamp"):
                self._end(played)  # the Job (or its pod) was deleted: so is the container
                del self.running[name]
            elif code is not None:
                del self.running[name]
                self.finished[name] = code
                self._report(played, code)
        for name, pod in pods.items():
            status = pod.get("status") or {}
            if name in self.running or name in self.finished or pod["metadata"].get("deletionTimestamp"):
                continue
            if status.get("phase") == "Running":
                self.running[name] = self._start(pod)

    def stop(self) -> None:
        """Every downloader this player started ends (SIGTERM, then SIGKILL), whatever state it is in."""
        for played in self.running.values():
            self._end(played)
        self.running.clear()

    # -- a pod's container, here --------------------------------------------------------------------------

    def _start(self, pod: dict[str, Any]) -> Played:
        name = pod["metadata"]["name"]
        args = local_args(pod, self.volumes)
        for claim in claims(pod).values():
            (self.volumes / claim).mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not _dropped(k)}
        env |= container_env(pod, self._secret)
        env |= {"HF_ENDPOINT": self.hub_url, "HF_HOME": str(self._dir / "hf-home"),
                "KUBECONFIG": str(self._kubeconfig(pod["spec"].get("serviceAccountName") or "default"))}
        log = self.cluster.state / "logs" / f"played-{name}.log"
        self.say(f"{name}: llmpack download {' '.join(args)}")
        with log.open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "llmpack.cli", "download", *args], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # a Ctrl-C reaches the demo, which ends it
        return Played(name, [(c["name"], c.get("image", "")) for c in pod["spec"]["containers"]], proc, log, _now())

    def _secret(self, name: str, key: str) -> str | None:
        got = self.cluster.kubectl("get", "secret", name, "-n", self.namespace, "-o", "json", check=False)
        data = json.loads(got.stdout).get("data", {}) if got.returncode == 0 else {}
        return base64.b64decode(data[key]).decode() if key in data else None

    def _kubeconfig(self, account: str) -> Path:
        """The pod's ServiceAccount, as its projected token would authenticate it."""
        token = self.cluster.kubectl("create", "token", account, "-n", self.namespace, "--duration", "1h").stdout
        admin = yaml.safe_load(self.cluster.kubeconfig.read_text())
        path = self._dir / f"kubeconfig-{self.namespace}-{account}"
        path.parent.mkdir(parents=True, exist_ok=True)
        config = yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "pod",
            "clusters": [{"name": "local", "cluster": admin["clusters"][0]["cluster"]}],
            "users": [{"name": account, "user": {"token": token.strip()}}],
            "contexts": [{"name": "pod", "context": {"cluster": "local", "user": account,
                                                    "namespace": self.namespace}}],
        })
        # Created owner-only (a new file: an old one would keep its mode): never readable by others, even briefly.
        path.unlink(missing_ok=True)
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as out:
            out.write(config)
        return path

    def _report(self, played: Played, code: int) -> None:
        message = error_line(played.log) if code else ""
        self.say(f"{played.pod}: exited {code}: {message}" if code else f"{played.pod}: done")
        status = exited(code, message, played.containers, played.started, _now())
        self.cluster.kubectl("patch", "pod", played.pod, "-n", self.namespace, "--subresource=status",
                             "--type=merge", "-p", json.dumps({"status": status}), check=False)

    @staticmethod
    def _end(played: Played) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(played.proc.pid, signal.SIGTERM)
        try:
            played.proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(played.proc.pid, signal.SIGKILL)
            played.proc.wait()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
