"""The web page at /: sign in, see the models you may use, create a key (shown once, with snippets), list
and revoke your keys; an admin page with everyone's keys.

Server-rendered Jinja2 templates, one style sheet and one small script, all inside the package: no build
step, nothing fetched from elsewhere (clusters are often air-gapped). Every page carries a
Content-Security-Policy that allows this site's own script and style only (nothing inline), no framing,
and forms that post here only; and `Cache-Control: no-store` (a new key is on one page, once). Every POST
carries the session's CSRF token; a missing or forged one changes nothing.
"""

from __future__ import annotations

import datetime
import math
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, StrictUndefined

from llmpack import __version__
from llmpack.keymanager import actions, errors
from llmpack.keymanager.api import MODEL_PATTERN, NAMESPACE_PATTERN
from llmpack.keymanager.auth import Identity
from llmpack.keymanager.catalog import ModelEntry
from llmpack.keymanager.keys import DESCRIPTION_MAX, KeyRecord, stamp, valid_client_id
from llmpack.keymanager.login import Login, SignInError
from llmpack.keymanager.service import Service
from llmpack.keymanager.sessions import LOGIN_LIFETIME, Session
from llmpack.keymanager.snippets import curl, endpoint_for, openai_python

router = APIRouter(include_in_schema=False)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
PAGE_HEADERS = {"Content-Security-Policy": CSP, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
STATIC_TYPES = {"page.css": "text/css; charset=utf-8", "page.js": "text/javascript; charset=utf-8",
                "icon.svg": "image/svg+xml"}
PHASE_HELP = {"Pending": "waiting to start", "Downloading": "fetching its weights", "Starting": "loading",
              "Ready": "answering requests", "Degraded": "some replicas are down: answers may be slow",
              "Error": "not answering: its owner has been told (kubectl describe llmmodel)"}


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


TEMPLATES = Environment(loader=PackageLoader("llmpack.keymanager"), autoescape=True, undefined=StrictUndefined)
TEMPLATES.filters["when"] = _when
TEMPLATES.filters["stamp"] = stamp
_STATIC = {name: (resources.files("llmpack.keymanager") / "static" / name).read_bytes() for name in STATIC_TYPES}


@dataclass(frozen=True)
class Visit:
    """A signed-in request: whom it is for and what renders their pages."""

    service: Service
    login: Login
    session: Session
    user: Identity

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(template, status, user=self.user, csrf=self.login.sealer.csrf(self.session.sid), **context)

    def message(self, status: int, heading: str, message: str, action: tuple[str, str] | None = None) -> HTMLResponse:
        return self.render("message.html", status, title=heading, heading=heading, message=_sentence(message),
                           action_href=action[0] if action else "", action_label=action[1] if action else "")


def render(template: str, status: int = 200, **context: Any) -> HTMLResponse:
    values: dict[str, Any] = {"version": __version__, "user": None, "csrf": "", "current": "", "notice": "",
                              "title": "", **context}
    return HTMLResponse(TEMPLATES.get_template(template).render(values), status, headers=PAGE_HEADERS)


def _sentence(text: str) -> str:
    """A refusal's line (written lower-case for logs and the API) as a sentence on the page."""
    return text[:1].upper() + text[1:]


def message(status: int, heading: str, text: str, action: tuple[str, str] | None = None) -> HTMLResponse:
    return render("message.html", status, title=heading, heading=heading, message=_sentence(text),
                  action_href=action[0] if action else "", action_label=action[1] if action else "")


def _no_store(response: Response) -> Response:
    response.headers.update(PAGE_HEADERS)
    return response


def _set_cookie(response: Response, login: Login, name: str, value: str, max_age: float) -> None:
    response.set_cookie(name, value, max_age=int(max_age), path="/", secure=login.settings.secure_cookies,
                        httponly=True, samesite="lax")


def _clear_cookie(response: Response, login: Login, name: str) -> None:
    response.delete_cookie(name, path="/", secure=login.settings.secure_cookies, httponly=True, samesite="lax")


def _sign_in_at(path: str) -> str:
    return "/login?next=" + quote(path, safe="/")


def _not_set_up() -> HTMLResponse:
    return message(503, "Sign-in is not set up", "This key manager's web page has no sign-in configured "
                   "(keyManager.login in the Helm values; docs/key-manager.md). The API works with a bearer "
                   "token: /docs lists it.")


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _visit(request: Request) -> Visit | Response | None:
    """The signed-in visit; None when nobody is signed in; a page to show instead when nobody can be."""
    service = _service(request)
    login = service.login
    if login is None:
        return _not_set_up()
    if not login.revocations.ready:
        return message(503, "Starting", "The key manager is still starting: reload this page in a few seconds.")
    session = login.session_of(request)
    if session is None:
        return None
    return Visit(service, login, session, session.identity(service.settings.admin_groups))


def _signed_in(request: Request) -> Visit | Response:
    """A page that needs a session (without one, off to sign in and back here afterwards) and the cluster's
    models and keys (until they are read, a page that says to reload)."""
    visit = _visit(request)
    if visit is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _no_store(RedirectResponse(_sign_in_at(target), 303))
    if isinstance(visit, Visit) and not visit.service.synced:
        return _not_synced(visit)
    return visit


async def _form(request: Request) -> dict[str, str] | None:
    """A urlencoded form's fields (the first of each), None for any other body."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
        return None
    try:
        text = (await request.body()).decode()
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


async def _posted(request: Request) -> tuple[Visit, dict[str, str]] | Response:
    """A signed-in POST with this session's CSRF token, and its fields."""
    visit = _visit(request)
    if visit is None:
        return render("signin.html", 401, title="Sign in", error="Your session has ended, so nothing was changed: "
                      "sign in again and repeat what you did.", issuer_host=_issuer_host(request), next="/")
    if isinstance(visit, Response):
        return visit
    form = await _form(request)
    if form is None or not visit.login.csrf_ok(visit.session, form.get("csrf")):
        return visit.message(403, "Nothing was changed", "This form did not come from this page, or it was opened "
                             "before you signed in again (its CSRF token does not match). Go back, reload the page "
                             "and try again.", ("/", "Go to the start page"))
    return visit, form


def _issuer_host(request: Request) -> str:
    return _service(request).settings.oidc_issuer.split("://", 1)[-1].split("/", 1)[0]


def _not_synced(visit: Visit) -> Response:
    return visit.message(503, "Starting", "The key manager is still reading the cluster's models and keys: reload "
                         "this page in a few seconds.")


# -- signing in and out ------------------------------------------------------------------------------------

@router.get("/login")
async def sign_in(request: Request, next: str = "/") -> Response:
    login = _service(request).login
    if login is None:
        return _not_set_up()
    try:
        url, cookie = await login.begin(login.redirect_uri(request), next)
    except SignInError as exc:
        return message(503 if exc.retry else 502, "Cannot sign you in right now", f"{exc}.".replace("..", "."),
                       (_sign_in_at(next), "Try again"))
    response = _no_store(RedirectResponse(url, 303))
    _set_cookie(response, login, login.login_cookie, cookie, LOGIN_LIFETIME)
    return response


@router.get("/auth/callback")
async def signed_in(request: Request) -> Response:
    login = _service(request).login
    if login is None:
        return _not_set_up()
    try:
        session, target = await login.finish(request.cookies.get(login.login_cookie), dict(request.query_params))
        value = login.seal(session)
    except SignInError as exc:
        response: Response = message(503 if exc.retry else 400, "Sign-in did not complete", f"{exc}.",
                                     ("/login", "Try again" if exc.retry else "Sign in again"))
        _clear_cookie(response, login, login.login_cookie)
        return response
    response = _no_store(RedirectResponse(target, 303))
    _set_cookie(response, login, login.session_cookie, value, login.settings.session_lifetime)
    _clear_cookie(response, login, login.login_cookie)
    return response


@router.post("/logout")
async def sign_out(request: Request) -> Response:
    login = _service(request).login
    if login is None:
        return _not_set_up()
    posted = await _posted(request)
    if isinstance(posted, Response) and posted.status_code != 401:
        return posted
    response: Response = _no_store(RedirectResponse("/?signed-out=1", 303))
    if not isinstance(posted, Response):
        try:
            await login.end(posted[0].session)
        except errors.Problem as exc:
            response = message(exc.status, "Signed out in this browser only", f"{exc.detail}.",
                               ("/", "Go to the start page"))
    _clear_cookie(response, login, login.session_cookie)
    return response


# -- pages -------------------------------------------------------------------------------------------------

@router.get("/")
async def models_page(request: Request) -> Response:
    visit = _visit(request)
    if visit is None:
        notice = "You are signed out." if "signed-out" in request.query_params else ""
        return render("signin.html", title="Sign in", error="", notice=notice, issuer_host=_issuer_host(request),
                      next="/")
    if isinstance(visit, Response):
        return visit
    if not visit.service.synced:
        return _not_synced(visit)
    return visit.render("models.html", title="Models", current="models", phase_help=PHASE_HELP,
                        models=visit.service.catalog.visible(visit.user.groups))


def _own_keys(visit: Visit) -> list[KeyRecord]:
    return sorted(visit.service.holdings.records_of(visit.user.username), key=lambda r: r.created_at, reverse=True)


def _revoked_notice(request: Request) -> str:
    client_id = request.query_params.get("revoked", "")
    return f"Key {client_id} is revoked." if valid_client_id(client_id) else ""


@router.get("/keys")
async def keys_page(request: Request) -> Response:
    visit = _signed_in(request)
    if isinstance(visit, Response):
        return visit
    return visit.render("keys.html", title="My keys", current="keys", heading="My keys", everyone=False,
                        keys=_own_keys(visit), notice=_revoked_notice(request))


@router.get("/admin")
async def admin_page(request: Request) -> Response:
    visit = _signed_in(request)
    if isinstance(visit, Response):
        return visit
    if not visit.user.admin:
        return visit.message(403, "For administrators", "Only members of an admin group (keyManager.adminGroups) see "
                             "every user's keys. Your own keys are on My keys.", ("/keys", "Go to my keys"))
    records = sorted(visit.service.holdings.records(), key=lambda r: (r.creator, r.namespace, r.model_name,
                                                                        r.client_id))
    return visit.render("keys.html", title="All keys", current="admin", heading="Everyone's keys", everyone=True,
                        keys=records, notice=_revoked_notice(request))


def _expiry_help(visit: Visit) -> str:
    s = visit.service.settings
    default = f"{s.default_expiry_days:g} days" if s.default_expiry_days else "a key that never expires"
    most = f" At most {s.max_expiry_days:g} days." if s.max_expiry_days else ""
    return f"Leave empty for {default}. Fractions work: 0.5 is 12 hours.{most}"


def _key_form(visit: Visit, status: int = 200, *, form: dict[str, str], error: str = "",
              error_field: str = "") -> HTMLResponse:
    return visit.render("new_key.html", status, title="Create a key", current="keys",
                        models=visit.service.catalog.visible(visit.user.groups), description_max=DESCRIPTION_MAX,
                        expiry_help=_expiry_help(visit), error=error, error_field=error_field,
                        form={"model": form.get("model", ""), "description": form.get("description", ""),
                              "expires": form.get("expires", "")})


@router.get("/keys/new")
async def new_key_page(request: Request, model: str = "") -> Response:
    visit = _signed_in(request)
    if isinstance(visit, Response):
        return visit
    return _key_form(visit, form={"model": model})


def _days(text: str, most: float) -> float | None:
    """Days from the form (ValueError with the line to show): empty is the default."""
    text = text.strip().replace(",", ".")
    if not text:
        return None
    try:
        days = float(text)
    except ValueError:
        raise ValueError(f"Expires in: {text!r} is not a number of days; enter e.g. 30, or leave it empty") from None
    if not math.isfinite(days) or days <= 0:
        raise ValueError("Expires in: enter a number of days above 0, or leave it empty")
    if most and days > most:
        raise ValueError(f"Expires in: at most {most:g} days here")
    return days


def _chosen(visit: Visit, ref: str) -> ModelEntry | None:
    namespace, _, name = ref.partition("/")
    return next((m for m in visit.service.catalog.visible(visit.user.groups)
                 if (m.namespace, m.name) == (namespace, name)), None)


@router.post("/keys")
async def create_key(request: Request) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    visit, form = posted
    if not visit.service.synced:
        return _not_synced(visit)
    model = _chosen(visit, form.get("model", ""))
    if model is None:
        return _key_form(visit, 422, form=form, error="Model: pick one of the models in the list.",
                         error_field="model")
    description = form.get("description", "").strip()
    if len(description) > DESCRIPTION_MAX:
        return _key_form(visit, 422, form=form, error=f"Description: at most {DESCRIPTION_MAX} characters.",
                         error_field="description")
    try:
        days = _days(form.get("expires", ""), visit.service.settings.max_expiry_days)
    except ValueError as exc:
        return _key_form(visit, 422, form=form, error=f"{exc}.", error_field="expires")
    try:
        issued = await actions.create_key(visit.service, visit.user, model_name=model.name, namespace=model.namespace,
                                          description=description, expires_in_days=days)
    except errors.Problem as exc:
        return _key_form(visit, exc.status, form=form, error=f"No key was created: {exc.detail}.")
    endpoint = endpoint_for(issued.model, visit.service.settings.external_url)
    return visit.render("created.html", 201, title="Your new key", current="keys", model=issued.model,
                        record=issued.record, api_key=issued.api_key, endpoint=endpoint,
                        curl=curl(endpoint.url, issued.model.served_name, issued.api_key),
                        python=openai_python(endpoint.url, issued.model.served_name, issued.api_key))


def _record(visit: Visit, namespace: str, model: str, client_id: str) -> KeyRecord | Response:
    """The key a revoke page is about, if the visitor may revoke it."""
    valid = re.match(NAMESPACE_PATTERN, namespace) and re.match(MODEL_PATTERN, model) and valid_client_id(client_id)
    holding = visit.service.holdings.get((namespace, model)) if valid else None
    record = holding.records.get(client_id) if holding else None
    if record is None:
        return visit.message(404, "No such key", f"There is no key {client_id} for model {model}: it may have been "
                             "revoked or have expired already.", ("/keys", "Go to my keys"))
    if record.creator != visit.user.username and not visit.user.admin:
        return visit.message(403, "Not your key", "Only the key's owner or an administrator may revoke it.",
                             ("/keys", "Go to my keys"))
    return record


@router.get("/keys/{namespace}/{model}/{client_id}/revoke")
async def revoke_page(request: Request, namespace: str, model: str, client_id: str) -> Response:
    visit = _signed_in(request)
    if isinstance(visit, Response):
        return visit
    record = _record(visit, namespace, model, client_id)
    if isinstance(record, Response):
        return record
    back = "admin" if request.query_params.get("from") == "admin" else "keys"
    return visit.render("revoke.html", title="Revoke a key", current=back, record=record, back=back)


@router.post("/keys/{namespace}/{model}/{client_id}/revoke")
async def revoke(request: Request, namespace: str, model: str, client_id: str) -> Response:
    posted = await _posted(request)
    if isinstance(posted, Response):
        return posted
    visit, form = posted
    if not visit.service.synced:
        return _not_synced(visit)
    record = _record(visit, namespace, model, client_id)
    if isinstance(record, Response):
        return record
    try:
        await actions.revoke_key(visit.service, visit.user, (record.namespace, record.model_name), record.client_id)
    except errors.Problem as exc:
        return visit.message(exc.status, "The key was not revoked", f"{exc.detail}.", ("/keys", "Go to my keys"))
    back = "/admin" if form.get("from") == "admin" and visit.user.admin else "/keys"
    return _no_store(RedirectResponse(f"{back}?revoked={quote(record.client_id)}", 303))


# -- assets ------------------------------------------------------------------------------------------------

@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The page's own files, by name from a fixed list (no paths): cached for an hour, versioned by ?v=."""
    if name not in _STATIC:
        raise errors.not_found(f"no such file: /static/{name}")
    return Response(_STATIC[name], media_type=STATIC_TYPES[name],
                    headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"})
