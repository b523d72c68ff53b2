"""Signing in to the web page and out again, as the security bars ask: the server is the OIDC client (code +
PKCE S256, client secret, state and nonce checked) and no token ever reaches the browser; the session cookie
is HttpOnly, SameSite=Lax and Secure when configured; every replica opens it and a logout on one ends it on
all; the issuer being down says to try again; the bearer-token API works beside it all."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import ConfigMap
from playwright.async_api import expect

from llmpack.keymanager.login import s256
from llmpack_dev.cluster import LocalCluster
from tests.browser.conftest import SESSIONS, Tab, password, start_page_server
from tests.browser.steps import check_accessible, shoot, sign_in
from tests.cluster.waiting import eventually
from tests.oidc.issuer import AUTH_PATH, Issuer
from tests.oidc.service import RunningKeyManager


async def through_issuer(http: httpx.AsyncClient, km: RunningKeyManager, username: str) -> tuple[str, httpx.Response]:
    """GET /login, then the issuer's form posted with the password: (the callback URL, /login's answer)."""
    start = await http.get(km.url + "/login")
    assert start.status_code == 303, start.text
    authorize = start.headers["location"]
    assert (await http.get(authorize)).status_code == 200  # the form
    params = dict(parse_qsl(urlsplit(authorize).query))
    answer = await http.post(km.issuer.url + AUTH_PATH, data={**params, "username": username,
                                                               "password": password(username)})
    assert answer.status_code == 302, answer.text
    return answer.headers["location"], start


def set_cookies(answer: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name, each as the browser gets it."""
    return {header.split("=", 1)[0]: header for header in answer.headers.get_list("set-cookie")}


def value_of(header: str) -> str:
    return header.split("=", 1)[1].split(";", 1)[0]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


# -- the protocol ------------------------------------------------------------------------------------------------

async def test_the_server_signs_in_with_code_pkce_and_its_secret_and_no_token_reaches_the_browser(
        km: RunningKeyManager, issuer: Issuer, new_tab: Any) -> None:
    tab: Tab = await new_tab()
    seen: list[str] = []  # what the page's JavaScript could see: every response's headers, then each page's DOM
    tab.page.on("response", lambda response: seen.append(f"{response.url} {response.headers}"))
    issued_before = len(issuer.issued)
    page = await sign_in(tab, km, "alice")
    seen.append(await page.content())
    for path in ("/keys", "/keys/new"):
        await page.goto(km.url + path)
        seen.append(await page.content())

    authorization = issuer.authorizations[-1]
    assert authorization["code_challenge_method"] == "S256"
    assert authorization["state"]
    assert authorization["nonce"]
    assert authorization["client_id"] == km.service.settings.client_id
    redeemed = issuer.token_requests[-1]
    assert redeemed["auth"] == "basic"  # a confidential client: the secret goes with the code
    assert s256(redeemed["code_verifier"]) == authorization["code_challenge"]
    tokens = issuer.issued[issued_before:]
    assert len(tokens) == 2  # an access token and an ID token, to the key manager only
    everything = "\n".join(seen)
    assert "/auth/callback?code=" in everything  # the issuer's answer went through the browser, and no further
    for token in tokens:
        for part in token.split("."):
            assert part not in everything
    assert await page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session
    assert await page.evaluate("localStorage.length + sessionStorage.length") == 0
    [cookie] = [c for c in await tab.context.cookies() if c["name"] == "km-session"]
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Lax", "/")
    assert not any(part in cookie["value"] for token in tokens for part in token.split("."))

    answer = await page.request.get(km.url + "/")
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert answer.headers["cache-control"] == "no-store"


async def test_secure_cookies_are_host_only_secure_httponly_and_lax(
        cluster: LocalCluster, issuer: Issuer, http: httpx.AsyncClient) -> None:
    secure = await start_page_server(cluster, issuer, secure_cookies=True)
    try:
        callback, start = await through_issuer(http, secure, "alice")
        [login] = set_cookies(start).values()
        assert login.startswith("__Host-km-login=")
        assert {"secure", "httponly", "samesite=lax", "path=/"} <= {a.strip().lower() for a in login.split(";")}
        # httpx, like a browser, would not send a Secure cookie over http: send it by hand.
        done = await http.get(callback, headers={"Cookie": f"__Host-km-login={value_of(login)}"})
        assert done.status_code == 303, done.text
        session = set_cookies(done)["__Host-km-session"]
        attributes = {a.strip().lower() for a in session.split(";")[1:]}
        assert {"secure", "httponly", "samesite=lax", "path=/", "max-age=28800"} <= attributes
        assert not any(a.startswith("domain") for a in attributes)
        me = await http.get(secure.url + "/api/me", headers={"Cookie": f"__Host-km-session={value_of(session)}"})
        assert me.json()["username"] == "alice"
    finally:
        await secure.stop()


async def test_an_answer_with_another_state_or_nonce_or_without_the_sign_in_cookie_starts_no_session(
        km: RunningKeyManager, issuer: Issuer, http: httpx.AsyncClient) -> None:
    callback, _ = await through_issuer(http, km, "alice")
    forged = re.sub(r"state=[^&]+", "state=someone-elses", callback)
    refused = await http.get(forged)
    assert refused.status_code == 400
    assert "does not belong to this sign-in" in refused.text
    assert "km-session" not in set_cookies(refused)

    callback, _ = await through_issuer(http, km, "alice")
    async with httpx.AsyncClient(timeout=10) as elsewhere:  # another browser: no sign-in cookie
        refused = await elsewhere.get(callback)
    assert refused.status_code == 400
    assert "sign in again" in refused.text

    issuer.id_token_claims = {"nonce": "from-another-sign-in"}
    try:
        callback, _ = await through_issuer(http, km, "alice")
        refused = await http.get(callback)
    finally:
        issuer.id_token_claims = {}
    assert refused.status_code == 400
    assert "nonce" in refused.text
    assert "km-session" not in set_cookies(refused)

    callback, _ = await through_issuer(http, km, "alice")
    assert (await http.get(callback)).status_code == 303
    assert (await http.get(callback)).status_code == 400  # a code is good once


def test_the_test_issuer_redeems_a_code_only_with_the_pkce_verifier_and_the_client_secret(issuer: Issuer) -> None:
    issuer.add_client("probe", "probe-secret", ["http://127.0.0.1:1/cb"])
    verifier = "v" * 64

    def code() -> str:
        status, _, headers = issuer.authorize({
            "client_id": "probe", "redirect_uri": "http://127.0.0.1:1/cb", "response_type": "code",
            "scope": "openid", "code_challenge": s256(verifier), "code_challenge_method": "S256",
            "username": "alice", "password": password("alice")})
        assert status == 302
        return dict(parse_qsl(urlsplit(headers["Location"]).query))["code"]

    form = {"grant_type": "authorization_code", "redirect_uri": "http://127.0.0.1:1/cb"}
    assert issuer.exchange({**form, "code": code(), "code_verifier": "w" * 64}, ("probe", "probe-secret"))[0] == 400
    assert issuer.exchange({**form, "code": code(), "code_verifier": verifier}, ("probe", "wrong"))[0] == 401
    assert issuer.exchange({**form, "code": code(), "code_verifier": verifier}, ("probe", "probe-secret"))[0] == 200
    plain = {"client_id": "probe", "redirect_uri": "http://127.0.0.1:1/cb", "response_type": "code",
             "scope": "openid", "code_challenge": verifier, "code_challenge_method": "plain"}
    assert issuer.authorize(plain)[0] == 400


# -- sessions, replicas, logout ------------------------------------------------------------------------------------

async def test_replicas_share_sessions_and_a_logout_on_one_ends_the_session_on_all(
        client: AsyncClient, cluster: LocalCluster, issuer: Issuer, km: RunningKeyManager, new_tab: Any,
        http: httpx.AsyncClient) -> None:
    replica = await start_page_server(cluster, issuer)
    try:
        tab: Tab = await new_tab()
        page = await sign_in(tab, km, "alice")
        [cookie] = [c for c in await tab.context.cookies() if c["name"] == "km-session"]
        await page.goto(replica.url + "/keys")  # the other replica opens the same cookie
        await expect(page.get_by_role("heading", name="My keys")).to_be_visible()

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_text("You are signed out.")).to_be_visible()
        assert not [c for c in await tab.context.cookies() if c["name"] == "km-session"]

        # The old cookie, replayed: refused by the replica that signed out and, through the ConfigMap, by the other.
        jar = {"Cookie": f"km-session={cookie['value']}"}
        for server in (replica, km):
            async def refused(url: str = server.url) -> bool:
                return (await http.get(url + "/api/me", headers=jar)).status_code == 401

            await eventually(refused, within=5, interval=0.1, what=f"the ended session refused by {server.url}")
            page_answer = await http.get(server.url + "/keys", headers=jar)
            assert page_answer.status_code == 303
            assert page_answer.headers["location"].startswith("/login")
        recorded = await client.get(ConfigMap, SESSIONS[1], namespace=SESSIONS[0])
        assert len(recorded.data or {}) >= 1
    finally:
        await replica.stop()


async def test_a_logout_without_the_csrf_token_is_refused(km: RunningKeyManager, new_tab: Any) -> None:
    tab: Tab = await new_tab()
    page = await sign_in(tab, km, "alice")
    answer = await page.request.post(km.url + "/logout", form={"csrf": "forged"})
    assert answer.status == 403
    await page.goto(km.url + "/keys")
    await expect(page.get_by_role("heading", name="My keys")).to_be_visible()


# -- the issuer down, and the API beside the page -------------------------------------------------------------------

async def test_when_the_issuer_is_down_the_page_says_to_try_again_and_trying_again_works(
        cluster: LocalCluster, issuer: Issuer, new_tab: Any) -> None:
    fresh = await start_page_server(cluster, issuer)  # nothing cached from the issuer yet
    issuer.down = True
    try:
        tab: Tab = await new_tab()
        page = tab.page
        await page.goto(fresh.url + "/")
        await page.get_by_role("link", name="Sign in").click()
        await expect(page.get_by_role("heading", name="Cannot sign you in right now")).to_be_visible()
        await expect(page.get_by_role("alert")).to_contain_text("did not answer")
        await expect(page.get_by_role("alert")).to_contain_text("try again in a minute")
        await check_accessible(page)
        await shoot(page, "issuer-down")
        issuer.down = False
        await page.get_by_role("link", name="Try again").click()
        await expect(page.get_by_role("heading", name="Sign in to the test issuer")).to_be_visible()
    finally:
        issuer.down = False
        await fresh.stop()


async def test_the_bearer_token_api_works_beside_the_page_without_csrf_tokens(km: RunningKeyManager) -> None:
    async with km.as_user("alice", ["ml-team"]) as alice:
        assert (await alice.get("/api/me")).json()["username"] == "alice"
        created = await alice.post("/api/keys", json={"modelName": "open", "namespace": "team-a"})
        assert created.status_code == 201, created.text
        assert (await alice.delete(f"/api/keys/team-a/open/{created.json()['clientId']}")).status_code == 204
    async with km.http() as nobody:
        answer = await nobody.get("/api/me")
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


async def test_without_the_sessions_configmap_the_key_manager_is_not_ready_and_the_page_says_so(
        cluster: LocalCluster, issuer: Issuer, http: httpx.AsyncClient) -> None:
    lost = await start_page_server(cluster, issuer, wait_ready=False, sessions_config_map="llmpack-system/missing")
    try:
        async def waiting() -> dict[str, Any] | None:
            answer = await http.get(lost.url + "/readyz")
            body: dict[str, Any] = answer.json()
            return body if answer.status_code == 503 and "ConfigMap llmpack-system/missing" in str(body) else None

        readiness = await eventually(waiting, within=10, what="readiness naming the missing ConfigMap")
        assert readiness["ready"] is False
        page = await http.get(lost.url + "/")
        assert page.status_code == 503
        assert "still starting" in page.text
    finally:
        await lost.stop()
