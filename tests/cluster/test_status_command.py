"""`llmpack status` as a user with read access to LLMModels runs it: under a pseudo-terminal, the download's
bar moves and the model ends Ready; through a pipe, plain lines; without the right, one line."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import AsyncClient
from lightkube.types import PatchType

from llmpack.operator.kube import LLMModelResource
from llmpack.show.live import HIDE, SHOW
from llmpack_dev.cluster import LocalCluster
from tests.cluster import models
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.waiting import eventually

COLUMNS, LINES = 120, 30
VIEWER_ROLE = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "model-viewer"},
               "rules": [{"apiGroups": ["llm.nebari.dev"], "resources": ["llmmodels"],
                          "verbs": ["get", "list", "watch"]}]}


@pytest.fixture
def viewer(cluster: LocalCluster, namespace: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may only get, list and watch the namespace's LLMModels; its
    context's namespace is that one."""
    cluster.kubectl("create", "serviceaccount", "viewer", "-n", namespace)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", stdin=yaml.safe_dump(VIEWER_ROLE))
    cluster.kubectl("create", "rolebinding", "viewer", "-n", namespace, "--role=model-viewer",
                    f"--serviceaccount={namespace}:viewer")
    token = cluster.kubectl("create", "token", "viewer", "-n", namespace, "--duration=1h").stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": "viewer", "user": {"token": token}}]
    config["contexts"][0]["context"].update(user="viewer", namespace=namespace)
    path = tmp_path / "viewer.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


async def write_status(client: AsyncClient, namespace: str, status: dict[str, Any]) -> None:
    """What the operator would write (it is stopped, so nothing writes it back)."""
    await client.patch(LLMModelResource.Status, "qwen", {"status": status}, namespace=namespace,
                       patch_type=PatchType.MERGE)


def downloading(percent: int, eta: str) -> dict[str, Any]:
    total = 20 << 30
    return {"phase": "Downloading", "replicas": {"ready": 0, "desired": 1},
            "download": {"bytesDone": total * percent // 100, "bytesTotal": total, "percent": percent,
                         "rate": "200.0Mi/s", "eta": eta, "holder": "qwen-download-abcde"}}


class Terminal:
    """A child process on a pseudo-terminal of COLUMNS x LINES; everything it wrote is in `seen`."""

    def __init__(self, argv: list[str]) -> None:
        self.fd, child = pty.openpty()
        fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")} | {"TERM": "xterm"}
        self.proc = subprocess.Popen(argv, stdin=child, stdout=child, stderr=child, env=env, start_new_session=True)
        os.close(child)
        self.seen = ""

    def read_until(self, text: str, within: float = 20.0) -> str:
        deadline = time.monotonic() + within
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {text!r} on the terminal within {within}s; it shows:\n{self.seen[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    self.seen += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    if self.proc.poll() is not None:
                        raise AssertionError(f"exited before {text!r}:\n{self.seen[-2000:]}") from None
        return self.seen

    def interrupt(self, within: float = 10.0) -> int:
        """Ctrl-C, then read the terminal until the view exits, as a real terminal does: a view blocked writing
        to a full terminal buffer (nobody reading it) cannot finish its last write and exit."""
        os.killpg(self.proc.pid, signal.SIGINT)
        deadline = time.monotonic() + within
        try:
            while (code := self.proc.poll()) is None:
                if time.monotonic() > deadline:
                    raise AssertionError(f"still running {within}s after Ctrl-C; it shows:\n{self.seen[-2000:]}")
                if select.select([self.fd], [], [], 0.2)[0]:
                    with contextlib.suppress(OSError):  # the child closed the terminal
                        self.seen += os.read(self.fd, 65536).decode(errors="replace")
        finally:
            self.close()
        return code

    def close(self) -> None:
        if self.fd < 0:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        with_output = select.select([self.fd], [], [], 0.2)[0]
        while with_output:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.seen += chunk.decode(errors="replace")
            with_output = select.select([self.fd], [], [], 0.2)[0]
        os.close(self.fd)
        self.fd = -1


@pytest.fixture
def quiet_operator(cluster: LocalCluster, running_operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The operator, stopped by the test once its model exists; started again after."""
    yield running_operator
    if not running_operator.alive():
        running_operator.start()


def status_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "llmpack.cli", "status", *args]


async def test_the_watch_view_moves_the_bar_and_ends_ready_on_a_terminal(
        cluster: LocalCluster, client: AsyncClient, namespace: str, quiet_operator: OperatorProcess,
        viewer: Path) -> None:
    models.apply(cluster, "qwen", namespace)
    await eventually(lambda: models.phase(client, "qwen", namespace), what="a first status")
    quiet_operator.stop()  # from here on the test writes status, as the operator would
    await write_status(client, namespace, downloading(40, "61s"))

    terminal = Terminal(status_command("--watch", "--kubeconfig", str(viewer)))
    try:
        first = terminal.read_until("ETA 1m01s")
        assert first.startswith(HIDE)
        frame = first.rsplit("\x1b[J", 1)[-1]
        line = next(line for line in frame.splitlines() if "qwen" in line)
        assert f"{namespace}/qwen" in line
        assert "Downloading" in line
        assert "█" * 12 + "░" * 18 + "  40%  8.0Gi/20.0Gi  200.0Mi/s  ETA 1m01s" in line
        assert all(len(line) <= COLUMNS for line in frame.replace("\x1b[0m", "").splitlines())

        await write_status(client, namespace, downloading(70, "31s"))
        moved = terminal.read_until("ETA 31s")[len(first):]
        assert "\x1b[2F\x1b[J" in moved  # drawn over the previous two lines (header and model), not below them
        assert "█" * 21 + "░" * 9 + "  70%  14.0Gi/20.0Gi" in moved

        await write_status(client, namespace, {"phase": "Ready", "replicas": {"ready": 1, "desired": 1},
                                               "download": None})
        done = terminal.read_until("\x1b[32mReady")[len(first) + len(moved):]
        assert "Downloading" not in done.rsplit("\x1b[J", 1)[-1]
        assert " 1/1" in done
        assert terminal.interrupt() == 0
        assert terminal.seen.endswith(SHOW)
    finally:
        terminal.close()


async def test_through_a_pipe_each_model_is_one_plain_line(
        cluster: LocalCluster, client: AsyncClient, namespace: str, quiet_operator: OperatorProcess,
        viewer: Path) -> None:
    models.apply(cluster, "qwen", namespace)
    await eventually(lambda: models.phase(client, "qwen", namespace), what="a first status")
    quiet_operator.stop()
    await write_status(client, namespace, downloading(40, "61s"))
    shown = await asyncio.to_thread(subprocess.run, status_command("--kubeconfig", str(viewer)),
                                    capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"{namespace}/qwen Downloading ready=0/1 download=40% 8.0Gi/20.0Gi "
                                   "rate=200.0Mi/s eta=1m01s")
    assert "\x1b" not in shown.stdout


def test_a_user_who_may_not_list_models_gets_one_line(viewer: Path) -> None:
    refused = subprocess.run(status_command("-A", "--kubeconfig", str(viewer)), capture_output=True, text=True,
                             timeout=60, check=False)
    assert refused.returncode == 2
    assert refused.stderr.startswith("llmpack status: not allowed to list and watch LLMModels: ")
    assert refused.stderr.count("\n") == 1
