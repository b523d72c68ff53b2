"""The web page's pure parts: sealed session cookies and CSRF tokens, where a sign-in may send the browser
back to, the authorization request, the snippets (whatever a model id holds, they send exactly it), the
sign-in settings, and the templates' escaping."""

from __future__ import annotations

import ast
import json
import shlex
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmpack.config import ConfigError
from llmpack.keymanager.auth import Identity
from llmpack.keymanager.catalog import ModelEntry
from llmpack.keymanager.kinds import LLMMODEL
from llmpack.keymanager.login import authorization_url, local_path, pkce_pair, s256
from llmpack.keymanager.pages import CSP, render
from llmpack.keymanager.revocations import parse, pruned
from llmpack.keymanager.sessions import SESSION, Sealer, Session, new_session, open_session
from llmpack.keymanager.settings import load_settings
from llmpack.keymanager.snippets import PLACEHOLDER, curl, endpoint_for, openai_python

KEY = "k" * 32
ALICE = Identity(username="alice", name="Alice", email="alice@example.test", groups=("ml-team",))


# -- sessions ------------------------------------------------------------------------------------------------

def test_a_sealed_session_opens_on_any_replica_with_the_key_and_nowhere_else() -> None:
    session = new_session(ALICE, 3600, moment=1000.0)
    cookie = Sealer([KEY]).seal(SESSION, session.payload())
    assert open_session(Sealer([KEY]), cookie, moment=2000.0) == session  # another replica, same Secret
    assert open_session(Sealer(["x" * 32]), cookie, moment=2000.0) is None
    assert open_session(Sealer([KEY]), cookie, moment=4601.0) is None  # ended
    assert Sealer([KEY]).open("km-login", cookie) is None  # a session cannot pass for a sign-in in progress
    assert "alice" not in cookie
    assert "ml-team" not in cookie


def test_a_rotated_session_key_still_opens_the_old_sessions_and_seals_with_the_new() -> None:
    old = Sealer(["o" * 32]).seal(SESSION, new_session(ALICE, 3600).payload())
    rotated = Sealer(["n" * 32, "o" * 32])
    assert open_session(rotated, old) is not None
    assert open_session(Sealer(["n" * 32]), rotated.seal(SESSION, new_session(ALICE, 3600).payload())) is not None


@given(st.binary(min_size=0, max_size=200), st.integers(min_value=0, max_value=100))
def test_a_changed_or_made_up_cookie_never_opens(noise: bytes, position: int) -> None:
    sealer = Sealer([KEY])
    cookie = sealer.seal(SESSION, new_session(ALICE, 3600).payload())
    flipped = cookie[:position] + ("A" if cookie[position % len(cookie)] != "A" else "B") + cookie[position + 1:]
    assert open_session(sealer, flipped) is None or flipped == cookie
    assert open_session(sealer, noise.hex()) is None


def test_a_csrf_token_belongs_to_one_session_and_one_key() -> None:
    sealer = Sealer([KEY])
    token = sealer.csrf("session-1")
    assert sealer.csrf_ok("session-1", token)
    assert not sealer.csrf_ok("session-2", token)
    assert not sealer.csrf_ok("session-1", None)
    assert not sealer.csrf_ok("session-1", token[:-1] + ("A" if token[-1] != "A" else "B"))
    assert not Sealer(["x" * 32]).csrf_ok("session-1", token)


def test_admin_is_decided_from_the_groups_at_each_request() -> None:
    session = Session("s", "ada", "Ada", "", ("llm-admins",), 0.0)
    assert session.identity(["llm-admins"]).admin
    assert not session.identity([]).admin


def test_ended_sessions_are_kept_only_until_they_would_have_expired() -> None:
    entries = parse({"a": "100", "b": "300", "junk": "soon"})
    assert entries == {"a": 100.0, "b": 300.0}
    assert pruned(entries, 200.0) == {"b": 300.0}


# -- the sign-in -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("asked", "goes"), [
    ("/keys", "/keys"), ("/keys/new?model=a/b", "/keys/new?model=a/b"), (None, "/"), ("", "/"),
    ("https://evil.example/", "/"), ("//evil.example/", "/"), ("/\\evil.example", "/"), ("keys", "/"),
    ("/ok\r\nSet-Cookie: x", "/"),
])
def test_after_signing_in_the_browser_goes_only_to_a_page_of_this_site(asked: str | None, goes: str) -> None:
    assert local_path(asked) == goes


def test_the_authorization_request_asks_for_a_code_with_an_s256_challenge_state_and_nonce() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert challenge == s256(verifier)
    assert challenge != verifier
    url = authorization_url("https://id.example/auth?kc_idp_hint=x", client_id="km", redirect_uri="https://k/cb",
                            scopes=("openid", "email"), state="st", nonce="no", challenge=challenge)
    query = dict(parse_qsl(urlsplit(url).query))
    assert query == {"kc_idp_hint": "x", "response_type": "code", "client_id": "km", "redirect_uri": "https://k/cb",
                     "scope": "openid email", "state": "st", "nonce": "no", "code_challenge": challenge,
                     "code_challenge_method": "S256"}


def test_the_sign_in_settings_come_whole_or_not_at_all_and_secrets_only_from_the_environment(
        tmp_path: pytest.TempPathFactory) -> None:
    base = {"LLMPACK_OIDC_ISSUER": "https://id.example/realms/main"}
    assert not load_settings(None, base).login_enabled
    whole = {**base, "LLMPACK_KEY_MANAGER_CLIENT_ID": "km", "LLMPACK_KEY_MANAGER_CLIENT_SECRET": "the-secret",
             "LLMPACK_KEY_MANAGER_SESSION_KEY": f"{'n' * 32} {'o' * 32}", "LLMPACK_KEY_MANAGER_SECURE_COOKIES": "false",
             "LLMPACK_KEY_MANAGER_SESSION_LIFETIME": "1h", "LLMPACK_BASE_DOMAIN": "example.org"}
    settings = load_settings(None, whole)
    assert settings.login_enabled
    assert settings.session_keys == ("n" * 32, "o" * 32)
    assert (settings.secure_cookies, settings.session_lifetime) == (False, 3600.0)
    assert settings.external_url == "https://llm.example.org"
    assert "the-secret" not in repr(settings)  # secrets stay out of logs
    assert "n" * 32 not in repr(settings)
    with pytest.raises(ConfigError, match=r"^the web page's sign-in needs LLMPACK_KEY_MANAGER_CLIENT_SECRET"):
        load_settings(None, {**whole, "LLMPACK_KEY_MANAGER_CLIENT_SECRET": ""})
    with pytest.raises(ConfigError, match="shorter than 32 characters"):
        load_settings(None, {**whole, "LLMPACK_KEY_MANAGER_SESSION_KEY": "short"})
    values = tmp_path / "values.yaml"  # type: ignore[operator]
    values.write_text("keyManager:\n  login:\n    clientId: km\n    clientSecret: in-a-file\n")
    with pytest.raises(ConfigError, match="needs LLMPACK_KEY_MANAGER_CLIENT_SECRET"):  # a values file holds none
        load_settings(values, base)


# -- snippets ---------------------------------------------------------------------------------------------------

def _model(endpoints: dict[str, str], served: str = "Qwen/Qwen3-8B") -> ModelEntry:
    return ModelEntry(kind=LLMMODEL, namespace="ns", name="qwen", uid="", served_name=served, public=True,
                      groups=(), phase="Ready", endpoints=endpoints)


def test_the_snippets_use_the_models_endpoint_else_the_base_domains_else_a_placeholder() -> None:
    assert endpoint_for(_model({"external": "https://llm.a.org/"}), "https://llm.b.org").url == "https://llm.a.org"
    assert endpoint_for(_model({"internal": "https://i"}), "https://llm.b.org").url == "https://llm.b.org"
    assert endpoint_for(_model({}), "").url == PLACEHOLDER


@given(st.text(min_size=1, max_size=40), st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_0123456789", min_size=1))
def test_whatever_the_model_id_the_snippets_send_exactly_it_and_the_key(model_id: str, key: str) -> None:
    words = shlex.split(curl("https://llm.example.org", model_id, key))
    assert words[1] == "https://llm.example.org/v1/chat/completions"
    assert words[words.index("-H") + 1] == f"Authorization: Bearer {key}"
    assert json.loads(words[words.index("-d") + 1])["model"] == model_id
    tree = ast.parse(openai_python("https://llm.example.org", model_id, key))
    constants = {kw.arg: kw.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)  # type: ignore[attr-defined]
                 for kw in node.keywords if isinstance(kw.value, ast.Constant)}
    assert constants["model"] == model_id
    assert constants["api_key"] == key
    assert constants["base_url"] == "https://llm.example.org/v1"


# -- templates --------------------------------------------------------------------------------------------------

def test_what_users_wrote_is_escaped_and_every_page_carries_the_policy() -> None:
    page = render("signin.html", title="<script>t</script>", error="<img src=x onerror=alert(1)>",
                  issuer_host="<b>h</b>", next="/\"><script>")
    body = page.body.decode()
    assert "<script>t</script>" not in body
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
    assert "<b>h</b>" not in body
    assert page.headers["content-security-policy"] == CSP
    assert "'unsafe-inline'" not in CSP
    assert page.headers["cache-control"] == "no-store"
