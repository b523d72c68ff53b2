"""A control plane of a test module's own, with our CRDs and the third-party CRDs it names, and the operator
running as the chart's ServiceAccount with exactly the chart's RBAC (rendered by `helm template`): what proves
that RBAC for whatever the module's tests make the operator do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from llmpack_dev.cluster import LocalCluster
from llmpack_dev.crds import install, install_ours
from tests.cluster.conftest import OPERATOR_ENV, ROOT
from tests.cluster.operator_process import OperatorProcess
from tests.cluster.test_key_manager_rbac import NAMESPACE, OPERATOR_SA, RBAC_KINDS, render, token_kubeconfig


@dataclass
class Gateway:
    cluster: LocalCluster
    operator: OperatorProcess


@contextmanager
def chart_operator(state: Path, crds: list[Path], *, audit_reads: bool = False) -> Iterator[Gateway]:
    cluster = LocalCluster(state, Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin")), audit_reads=audit_reads)
    operator: OperatorProcess | None = None
    try:
        cluster.up()
        install_ours(cluster)
        install(cluster, crds)
        cluster.kubectl("create", "namespace", NAMESPACE)
        rbac = [o for o in render(cluster, "--set", f"auth.oidc.issuer={OPERATOR_ENV['LLMPACK_OIDC_ISSUER']}")
                if o["kind"] in RBAC_KINDS]
        cluster.kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(rbac))
        operator = OperatorProcess(token_kubeconfig(cluster, OPERATOR_SA, state / "kubeconfig-chart"),
                                   state / "operator.log", env=OPERATOR_ENV)
        operator.start()
        yield Gateway(cluster, operator)
    finally:
        if operator is not None:
            operator.stop()
        cluster.down(keep_state=bool(os.environ.get("LLMPACK_KEEP_CLUSTER")))
