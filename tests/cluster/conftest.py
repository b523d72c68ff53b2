"""Session fixtures: one real control plane for all cluster tests, started and stopped by the tests."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from llmpack_dev.cluster import LocalCluster, install_admission
from tests.cluster.operator_process import OperatorProcess

if TYPE_CHECKING:  # chart_operator imports this module
    from tests.cluster.chart_operator import Gateway

ROOT = Path(__file__).resolve().parents[2]
# Routing settings of the session's operator (tests/cluster/test_routing.py reads them back).
OPERATOR_ENV = {"LLMPACK_BASE_DOMAIN": "example.test", "LLMPACK_OIDC_ISSUER": "https://id.example.test/realms/llm",
                "LLMPACK_EXTERNAL_GATEWAY_NAMESPACE": "gateways", "LLMPACK_MONITORING_NAMESPACE": "monitoring"}
OPERATOR_LOG_LINES = 150


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in str(item.fspath):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test that used an operator process shows the end of its log: the cluster's state directory,
    where the log lives, is gone when the run ends."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, OperatorProcess) and value.log.exists():
            lines = value.log.read_text(errors="replace").splitlines()[-OPERATOR_LOG_LINES:]
            report.sections.append((f"operator log, last {len(lines)} lines ({value.log})", "\n".join(lines)))
            break


@contextmanager
def own_cluster(state: Path) -> Iterator[LocalCluster]:
    """A control plane of a test module's own (for tests that swap what the session's shares), stopped after."""
    local = LocalCluster(state, Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin")))
    try:
        local.up()
        yield local
    finally:
        local.down(keep_state=bool(os.environ.get("LLMPACK_KEEP_CLUSTER")))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    bin_dir = Path(os.environ.get("LLMPACK_TESTBIN", ROOT / ".testbin"))
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), bin_dir)
    try:
        local.up()
        yield local
    finally:
        local.down(keep_state=bool(os.environ.get("LLMPACK_KEEP_CLUSTER")))


@pytest.fixture(scope="session")
def kubeconfig(cluster: LocalCluster) -> Path:
    return cluster.kubeconfig


@pytest.fixture(scope="session")
async def client(cluster: LocalCluster) -> AsyncIterator[AsyncClient]:
    api = AsyncClient(KubeConfig.from_file(str(cluster.kubeconfig)), field_manager="llmpack-tests")
    yield api
    await api.close()


@pytest.fixture
async def namespace(client: AsyncClient) -> AsyncIterator[str]:
    """A fresh namespace per test, deleted afterwards."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    await client.create(Namespace(metadata=ObjectMeta(name=name)))
    yield name
    await client.delete(Namespace, name)


@pytest.fixture(scope="session")
def crd_installed(cluster: LocalCluster) -> None:
    """The CRD and the admission policies, as `llmpack crd` and `llmpack policies` print them."""
    install_admission(cluster)


@pytest.fixture(scope="session")
def operator(cluster: LocalCluster, crd_installed: None) -> Iterator[OperatorProcess]:
    """`llmpack run` as the llmpack-operator identity; its log is printed when a test fails. Nothing waits for its
    webhook: it only adds warnings that read other objects (failurePolicy Ignore), so admission never needs it; a
    test of those warnings waits for it itself (wait_for_webhook)."""
    from llmpack_dev.cluster import free_port

    port = free_port()
    process = OperatorProcess(cluster.kubeconfig_for("operator"), cluster.state / "logs" / "operator.log",
                              ["--webhook-port", str(port), "--webhook-listen", "127.0.0.1",
                               "--webhook-cert-dir", str(cluster.state / "webhook"),
                               "--metrics", f"http://127.0.0.1:{free_port()}/metrics"],
                              env=OPERATOR_ENV)
    process.start()
    yield process
    process.stop()


@pytest.fixture
def running_operator(cluster: LocalCluster, operator: OperatorProcess) -> OperatorProcess:
    """The session's operator, started again if an earlier test left it stopped."""
    if not operator.alive():
        operator.start()
    return operator


@pytest.fixture
async def gw_client(gateway: Gateway) -> AsyncIterator[AsyncClient]:
    """A client of the control plane of the module's own `gateway` fixture ."""
    api = AsyncClient(KubeConfig.from_file(str(gateway.cluster.kubeconfig)), field_manager="llmpack-tests")
    yield api
    await api.close()
