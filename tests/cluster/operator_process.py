"""The real operator (`llmpack run`) as a child process of the tests, with its own client identity."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

OPERATOR_USER = "llmpack-operator"


@dataclass
class OperatorProcess:
    kubeconfig: Path
    log: Path
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # LLMPACK_* settings on top of the tests' environment
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        out = self.log.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llmpack.cli", "run", "--kubeconfig", str(self.kubeconfig), *self.extra_args],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
        )

    def stop(self, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: the operator dies mid-whatever, as on a node failure."""
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.kill()
        self.start()

    @property
    def metrics_url(self) -> str:
        """Where it serves Prometheus metrics (--metrics)."""
        return self.extra_args[self.extra_args.index("--metrics") + 1]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def writes_by(audit_log: Path, user: str = OPERATOR_USER, *, conflicts: bool = True) -> list[str]:
    """The write requests (`verb uri`) a user made, from the API server's audit log (reads are not logged);
    without `conflicts`, leaving out those refused with 409 (a create of what exists: nothing changed)."""
    if not audit_log.exists():
        return []
    out = []
    for line in audit_log.read_text().splitlines():
        entry = json.loads(line)
        if entry.get("user", {}).get("username") == user and (
                conflicts or (entry.get("responseStatus") or {}).get("code") != 409):
            out.append(f"{entry['verb']} {entry['requestURI']}")
    return out


def settle_audit(seconds: float = 2.0) -> None:
    time.sleep(seconds)  # the audit log is written in batches of at most 1 s
