"""How `llmpack run` logs: INFO tells what changed for a model (one line per transition, with its reason),
DEBUG adds every API request and every quiet retry. `--log-format json` writes one JSON object per line for
log pipelines: time, level, logger, message, and the model (namespace/name) when a line is about one."""

from __future__ import annotations

import datetime
import json
import logging

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every request at INFO: their lines are for debugging.
CHATTY = ("httpx", "httpx2", "httpcore", "httpcore2", "aiohttp.access", "asyncio")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (model := getattr(record, "model", None)) is not None:
            line["model"] = model
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def _as_debug(record: logging.LogRecord) -> bool:
    """A library's per-request line is debugging, whatever level it chose."""
    if record.levelno == logging.INFO:
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return True


def configure(*, verbose: bool = False, fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in CHATTY:
        chatty = logging.getLogger(name)
        chatty.setLevel(logging.DEBUG if verbose else logging.WARNING)
        chatty.addFilter(_as_debug)
