"""`llmpack key-manager`: the service under uvicorn, logging one JSON object per line."""

from __future__ import annotations

import json
import logging
from typing import Any

import uvicorn
from lightkube import AsyncClient, KubeConfig

from llmpack.keymanager import metrics, pages
from llmpack.keymanager.app import create_app
from llmpack.keymanager.service import FIELD_MANAGER, build
from llmpack.keymanager.settings import Settings

_STANDARD = set(vars(logging.makeLogRecord({})))


class JsonLines(logging.Formatter):
    """time, level, logger, message, and whatever the call passed in `extra` (the audit's fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"), "level": record.levelname,
                                "logger": record.name, "message": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonLines())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def serve(settings: Settings, *, host: str, port: int, verbose: bool = False, metrics_port: int = 0) -> None:
    configure_logging(verbose)
    if metrics_port:
        metrics.serve(host, metrics_port)
    client = AsyncClient(KubeConfig.from_env(), field_manager=FIELD_MANAGER)
    app = create_app(build(settings, client), routers=[pages.router])
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=verbose, loop="uvloop",
                proxy_headers=True, server_header=False)
