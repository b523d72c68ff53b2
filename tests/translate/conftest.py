"""Fixtures of the translator tests: the listeners' certificate, and egctl run on a cluster's objects."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest

from llmpack.certs import KeyPair, issue, make_ca
from llmpack.render.auth import hostname
from tests.translate.cluster_state import CONFIG
from tests.translate.egctl import Translation, translate

Translate = Callable[[Iterable[dict[str, Any]]], Translation]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A certificate for both hostnames (Envoy Gateway refuses a listener whose Secret holds none)."""
    directory = tmp_path_factory.mktemp("tls")
    hosts = tuple(h for side in ("external", "internal") if (h := hostname(CONFIG, side)))
    return issue(make_ca(directory), directory, "listeners", common_name=hosts[0], hosts=hosts, server=True)


@pytest.fixture(scope="session")
def egctl(tmp_path_factory: pytest.TempPathFactory) -> Translate:
    def run(objects: Iterable[dict[str, Any]]) -> Translation:
        return translate(objects, tmp_path_factory.mktemp("egctl"))
    return run
