"""The ASGI application: probes, the JSON API (api.py), one JSON shape for every refusal, and a cap on
request bodies. The web page adds its routers here, next to the API's, without changing either."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmpack import __version__
from llmpack.keymanager import api, errors
from llmpack.keymanager.service import Service

MAX_BODY = 64 * 1024  # a key request is a few hundred bytes; nothing legitimate comes near this


class BodyLimit:
    """413 for a body over MAX_BODY, declared (Content-Length) or streamed, before anything reads it whole."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = JSONResponse({"detail": f"the request body is larger than {self.limit} bytes"}, status_code=413)
        await response(scope, receive, send)


class _TooLarge(Exception):
    pass


def _validation_line(exc: RequestValidationError) -> tuple[int, str]:
    """One line for the first problem: 400 for a body that is not JSON, 422 for a field that is wrong."""
    error = exc.errors()[0]
    if error.get("type") == "json_invalid":
        return 400, f"the body is not valid JSON: {error.get('ctx', {}).get('error', error.get('msg'))}"
    where = ".".join(str(p) for p in error.get("loc", ())[1:]) or "the body"
    message = error.get("msg", "invalid")
    if error.get("type") == "model_attributes_type":
        return 400, "the body must be a JSON object such as {\"modelName\": \"...\", \"description\": \"...\"}"
    if error.get("type") == "string_too_long":
        message = f"at most {error.get('ctx', {}).get('max_length')} characters"
    return 422, f"{where}: {message}"


def create_app(service: Service, *, manage: bool = True, routers: Sequence[APIRouter] = ()) -> FastAPI:
    """`manage`: start the service with the app and stop it after (False when the caller does that).
    `routers`: more pages next to the API (the web page's), sharing its service, identity and errors."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage:
            await service.start()
        try:
            yield
        finally:
            if manage:
                await service.stop()

    app = FastAPI(title="llmpack key manager", version=__version__, lifespan=lifespan,
                  description="API keys for the models you may use (OIDC bearer token on every /api call). "
                  "Compatible with the LLM Serving Pack's key manager.")
    app.state.service = service
    app.state.answers = api.Answers()
    app.add_middleware(BodyLimit)

    @app.exception_handler(errors.Problem)
    async def problem(_: Request, exc: errors.Problem) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        status, line = _validation_line(exc)
        return JSONResponse({"detail": line}, status_code=status)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        detail: Any = exc.detail
        if exc.status_code == 404:
            detail = f"no such endpoint: {request.method} {request.url.path}; /docs lists them"
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}; /docs lists what is"
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz", response_class=PlainTextResponse, include_in_schema=False)
    async def healthz() -> str:
        """Liveness: the process serves. It does not wait for the issuer (a slow issuer must not restart us)."""
        return "ok\n"

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> JSONResponse:
        """Readiness: the issuer's keys are fetched and the caches are filled."""
        missing = service.missing()
        return JSONResponse({"ready": not missing, "waitingFor": missing}, status_code=503 if missing else 200)

    app.include_router(api.router)
    for router in routers:
        app.include_router(router)
    return app
