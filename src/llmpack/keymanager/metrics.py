"""The key manager's Prometheus metrics, served on their own port (`llmpack key-manager --metrics-port`), never
on the API's: the API may be routed to the internet, the counts are for the cluster's Prometheus.

Labels are bounded: an action (created, revoked, expired, ...) or a reason (below), never a user, model or key.
"""

from __future__ import annotations

from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, ProcessCollector, start_http_server

from llmpack.keymanager.errors import Problem

REGISTRY = CollectorRegistry(auto_describe=True)
KEYS = Counter("llmpack_key_manager_keys", "Key actions: created, revoked, expired (by the sweeper), repaired, "
               "retired and kept (a deleted model's keys).", ["action"], registry=REGISTRY)
AUTH_FAILURES = Counter("llmpack_key_manager_auth_failures", "Refused credentials by reason: no_credentials, "
                        "invalid_token (malformed, expired, wrong issuer or audience, bad signature), unavailable "
                        "(the issuer's keys or the sign-out list not read yet).", ["reason"], registry=REGISTRY)
ProcessCollector(registry=REGISTRY)


def auth_failed(problem: Problem, *, credentials: bool = True) -> None:
    reason = "no_credentials" if not credentials else "unavailable" if problem.status == 503 else "invalid_token"
    AUTH_FAILURES.labels(reason).inc()


def serve(host: str, port: int) -> WSGIServer:
    """In a thread of its own: the counters are thread-safe, and a scrape never waits for the API's loop.
    Returns the server (`shutdown()` stops it)."""
    server, _ = start_http_server(port, host, registry=REGISTRY)
    return server
