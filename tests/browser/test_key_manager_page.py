"""The key manager's web page in headless Chromium, against the real API server and the test issuer's sign-in
form: what a user sees, creates, copies and revokes, by mouse, keyboard and at phone width; the admin page;
refusals of forged requests and of script in names; axe-core on every page. The screenshots in
docs/key-manager.md come from these tests (`make screenshots`)."""

from __future__ import annotations

import base64

import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import Secret
from playwright.async_api import Page, expect

from llmpack_dev.cluster import LocalCluster
from tests.browser.conftest import EXTERNAL, Tab, start_page_server
from tests.browser.steps import check_accessible, shoot, sign_in
from tests.oidc.issuer import Issuer
from tests.oidc.service import RunningKeyManager


async def secret_keys(client: AsyncClient, namespace: str, model: str) -> dict[str, str]:
    secret = await client.get(Secret, f"{model}-api-keys", namespace=namespace)
    return {k: base64.b64decode(v).decode() for k, v in (secret.data or {}).items()}


async def model_names(page: Page) -> list[str]:
    return [(await cell.inner_text()).split(" in ")[0].strip()
            for cell in await page.locator("tbody th[scope=row]").all()]


async def create_key(page: Page, model_label: str, description: str, days: str = "") -> str:
    """On the models page: the model's "Create a key" link, the form, and the key from the page that shows it."""
    await page.get_by_role("link", name=f"Create a key for {model_label}").click()
    await page.get_by_label("Description").fill(description)
    await page.get_by_label("Expires in (days)").fill(days)
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    return await page.get_by_label(f"API key for {model_label}").input_value()


# -- what a user sees ----------------------------------------------------------------------------------------

async def test_signing_in_through_the_issuers_form_shows_only_the_models_open_to_the_users_groups(
        km: RunningKeyManager, new_tab: object) -> None:
    tab: Tab = await new_tab()  # type: ignore[operator]
    page = tab.page
    await page.goto(km.url + "/")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await check_accessible(page)
    await shoot(page, "sign-in")

    await sign_in(tab, km, "alice")
    assert page.url == km.url + "/"
    await expect(page.get_by_role("heading", name="Models you may use")).to_be_visible()
    assert await model_names(page) == ["open", "qwen"]
    qwen = page.get_by_role("row").filter(has_text="Qwen/Qwen3-8B")
    await expect(qwen).to_contain_text("Ready")
    await expect(qwen).to_contain_text(f"external: {EXTERNAL}")
    await expect(qwen).to_contain_text("Groups: ml-team, research")
    await expect(page.get_by_role("row").filter(has_text="org/open-model")).to_contain_text("Everyone signed in")
    await expect(page.get_by_role("link", name="All keys")).to_have_count(0)  # not an admin
    await check_accessible(page)
    await shoot(page, "models")

    other: Tab = await new_tab()  # type: ignore[operator]
    await sign_in(other, km, "bob")
    assert await model_names(other.page) == ["open", "ledger"]
    ledger = other.page.get_by_role("row").filter(has_text="org/ledger-model")
    await expect(ledger).to_contain_text("Downloading")
    await expect(ledger).to_contain_text("none yet")
    await expect(other.page.get_by_text("Qwen/Qwen3-8B")).to_have_count(0)
    await other.page.goto(km.url + "/keys/new")
    assert [await o.get_attribute("value") for o in await other.page.locator("#model option").all()] == [
        "team-a/open", "team-b/ledger"]


async def test_a_user_with_no_model_is_told_who_can_open_one(
        cluster: LocalCluster, issuer: Issuer, km: RunningKeyManager, new_tab: object) -> None:
    only_b = await start_page_server(cluster, issuer, namespaces=("team-b",))  # ledger only: finance's
    try:
        tab: Tab = await new_tab()  # type: ignore[operator]
        page = await sign_in(tab, only_b, "alice")
        await expect(page.get_by_role("heading", name="No models are open to you yet")).to_be_visible()
        await expect(page.get_by_text("Your groups: ml-team.")).to_be_visible()
        await expect(page.get_by_text("add one of your groups to it")).to_be_visible()
        await check_accessible(page)
        await shoot(page, "models-empty")
        await page.get_by_role("link", name="My keys").click()
        await expect(page.get_by_role("heading", name="You have no keys yet")).to_be_visible()
        await check_accessible(page)
        await shoot(page, "keys-empty")
    finally:
        await only_b.stop()


# -- a key's life ----------------------------------------------------------------------------------------------

async def test_a_key_is_shown_once_with_snippets_that_hold_it_then_listed_revoked_and_the_user_logs_out(
        client: AsyncClient, km: RunningKeyManager, issuer: Issuer, new_tab: object) -> None:
    tab: Tab = await new_tab()  # type: ignore[operator]
    await tab.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=km.url)
    page = await sign_in(tab, km, "alice")
    await page.get_by_role("link", name="Create a key for qwen").click()
    await expect(page.get_by_label("Model")).to_have_value("team-a/qwen")
    await check_accessible(page)
    await page.get_by_label("Description").fill("laptop")
    await page.get_by_label("Expires in (days)").fill("30")
    await shoot(page, "create-key")
    await page.get_by_role("button", name="Create key").click()

    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    key = await page.get_by_label("API key for qwen").input_value()
    assert key.startswith("sk-")
    assert key in (await secret_keys(client, "team-a", "qwen")).values()  # the real key, where Envoy reads it
    curl = await page.locator("#snippet-curl").inner_text()
    python = await page.locator("#snippet-python").inner_text()
    assert curl.startswith(f"curl {EXTERNAL}/v1/chat/completions")
    assert f"'Authorization: Bearer {key}'" in curl
    assert '"model": "Qwen/Qwen3-8B"' in curl
    assert f"base_url='{EXTERNAL}/v1'" in python
    assert f"api_key='{key}'" in python
    assert "model='Qwen/Qwen3-8B'" in python
    await page.get_by_role("button", name="Copy key").click()
    await expect(page.locator("#api-key-status")).to_have_text("Copied to the clipboard.")
    assert await page.evaluate("navigator.clipboard.readText()") == key
    await page.get_by_role("button", name="Copy curl command").click()
    await expect(page.locator("#snippet-curl-status")).to_have_text("Copied to the clipboard.")
    copied = await page.evaluate("navigator.clipboard.readText()")
    assert copied == curl
    assert key in copied
    await check_accessible(page)
    await shoot(page, "key-created")

    await page.get_by_role("link", name="Done: back to my keys").click()
    row = page.get_by_role("row").filter(has_text="laptop")
    await expect(row).to_contain_text("qwen")
    await expect(row).to_contain_text("UTC")
    client_id = (await row.locator("code").inner_text()).strip()
    assert client_id.startswith("qwen_alice_")
    assert key not in await page.content()  # never shown again
    assert key not in await (await page.request.get(km.url + "/api/keys")).text()
    await check_accessible(page)
    await shoot(page, "keys")

    await row.get_by_role("link", name="Revoke laptop").click()
    await expect(page.get_by_role("heading", name="Revoke this key?")).to_be_visible()
    await check_accessible(page)
    await shoot(page, "revoke")
    await page.get_by_role("link", name="Cancel, keep it").click()
    await expect(page.get_by_role("row").filter(has_text="laptop")).to_have_count(1)
    assert client_id in await secret_keys(client, "team-a", "qwen")

    await page.get_by_role("link", name="Revoke laptop").click()
    await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_role("status")).to_have_text(f"Key {client_id} is revoked.")
    await expect(page.get_by_role("row").filter(has_text="laptop")).to_have_count(0)
    assert client_id not in await secret_keys(client, "team-a", "qwen")

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_text("You are signed out.")).to_be_visible()
    await page.goto(km.url + "/keys")
    await expect(page.get_by_role("heading", name="Sign in to the test issuer")).to_be_visible()
    assert page.url.startswith(issuer.url)


async def test_a_key_can_be_made_with_the_keyboard_alone_and_focus_is_always_visible(
        km: RunningKeyManager, new_tab: object) -> None:
    tab: Tab = await new_tab()  # type: ignore[operator]
    page = await sign_in(tab, km, "alice")
    await page.keyboard.press("Tab")
    focused = page.locator(":focus")
    await expect(focused).to_have_text("Skip to content")
    outline = await focused.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline not in ("", "none")
    for _ in range(20):  # the skip link, the brand, the menu, sign out, then the page
        await page.keyboard.press("Tab")
        if (await focused.inner_text()).strip() == "Create a key":
            break
    else:
        raise AssertionError("Tab never reached the Create a key button")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Create a key")).to_be_visible()
    await page.keyboard.press("Tab")  # from the top: the skip link again
    await page.keyboard.press("Enter")
    for _ in range(10):
        await page.keyboard.press("Tab")
        if await focused.get_attribute("id") == "description":
            break
    await page.keyboard.type("typed, not clicked")
    await page.keyboard.press("Tab")
    await expect(focused).to_have_attribute("id", "expires")
    await page.keyboard.type("1")
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Your new key")).to_be_visible()
    await expect(page.get_by_text("typed, not clicked")).to_have_count(0)  # the description is not on this page
    await page.goto(km.url + "/keys")
    await expect(page.get_by_role("row").filter(has_text="typed, not clicked")).to_contain_text("open in team-a")


async def test_form_errors_say_what_to_fix_and_keep_what_was_typed(km: RunningKeyManager, new_tab: object) -> None:
    tab: Tab = await new_tab()  # type: ignore[operator]
    page = await sign_in(tab, km, "alice")
    await page.goto(km.url + "/keys/new")
    await page.get_by_label("Description").fill("too long to live")
    await page.get_by_label("Expires in (days)").fill("9999")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("alert")).to_have_text("Expires in: at most 365 days here.")
    await expect(page.get_by_label("Expires in (days)")).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_label("Description")).to_have_value("too long to live")
    await check_accessible(page)
    await shoot(page, "create-key-error")
    await page.get_by_label("Expires in (days)").fill("soon")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("alert")).to_contain_text("'soon' is not a number of days")


# -- the admin ---------------------------------------------------------------------------------------------------

async def test_an_admin_sees_and_revokes_everyones_keys_and_others_are_turned_away(
        client: AsyncClient, km: RunningKeyManager, new_tab: object) -> None:
    alice: Tab = await new_tab()  # type: ignore[operator]
    await sign_in(alice, km, "alice")
    await create_key(alice.page, "open", "for the admin to see")
    await alice.page.goto(km.url + "/admin")
    await expect(alice.page.get_by_role("heading", name="For administrators")).to_be_visible()
    await check_accessible(alice.page)

    ada: Tab = await new_tab()  # type: ignore[operator]
    page = await sign_in(ada, km, "ada")
    await page.get_by_role("link", name="All keys").click()
    await expect(page.get_by_role("heading", name="Everyone's keys")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="for the admin to see")
    await expect(row).to_contain_text("alice")
    await check_accessible(page)
    await shoot(page, "admin")
    client_id = (await row.locator("code").inner_text()).strip()
    await row.get_by_role("link", name="Revoke for the admin to see").click()
    await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_role("heading", name="Everyone's keys")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text(f"Key {client_id} is revoked.")
    assert client_id not in await secret_keys(client, "team-a", "open")


# -- refusals ----------------------------------------------------------------------------------------------------

@pytest.fixture
async def alice_tab(km: RunningKeyManager, new_tab: object) -> Tab:
    tab: Tab = await new_tab()  # type: ignore[operator]
    await sign_in(tab, km, "alice")
    return tab


async def test_a_forged_csrf_token_is_refused_and_nothing_is_written(
        client: AsyncClient, km: RunningKeyManager, alice_tab: Tab) -> None:
    page = alice_tab.page
    before = await secret_keys(client, "team-a", "open")
    await page.goto(km.url + "/keys/new?model=team-a/open")
    await page.get_by_label("Description").fill("forged")
    await page.locator("input[name=csrf]").last.evaluate("e => { e.value = 'forged-' + e.value.slice(7) }")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_role("heading", name="Nothing was changed")).to_be_visible()
    await check_accessible(page)
    await shoot(page, "csrf-refused")
    # The same form posted from elsewhere: the session cookie goes with it, a token does not.
    answer = await page.request.post(km.url + "/keys", form={"model": "team-a/open", "description": "no token"})
    assert answer.status == 403
    assert await secret_keys(client, "team-a", "open") == before

    # The JSON API with the page's session: changes need the X-CSRF-Token header, reads do not.
    await page.goto(km.url + "/keys")
    token = await page.locator("meta[name=csrf-token]").get_attribute("content")
    assert token
    body = {"modelName": "open", "namespace": "team-a", "description": "by script"}
    refused = await page.request.post(km.url + "/api/keys", data=body, headers={"X-CSRF-Token": "forged"})
    assert refused.status == 403
    assert "CSRF token" in (await refused.json())["detail"]
    assert (await page.request.get(km.url + "/api/me")).ok
    created = await page.request.post(km.url + "/api/keys", data=body, headers={"X-CSRF-Token": token})
    assert created.status == 201
    client_id = (await created.json())["clientId"]

    # Revoking with a forged token: refused, the key stays.
    await page.goto(km.url + "/keys")
    await page.get_by_role("link", name="Revoke by script").click()
    await page.locator("input[name=csrf]").last.evaluate("e => { e.value = e.value.split('').reverse().join('') }")
    await page.get_by_role("button", name="Revoke key").click()
    await expect(page.get_by_role("heading", name="Nothing was changed")).to_be_visible()
    assert client_id in await secret_keys(client, "team-a", "open")


async def test_script_in_a_username_display_name_or_description_is_shown_as_text_and_never_runs(
        km: RunningKeyManager, new_tab: object) -> None:
    tab: Tab = await new_tab()  # type: ignore[operator]
    page = await sign_in(tab, km, "<script>alert('user')</script>")
    await expect(page.locator(".who")).to_have_text("Signed in as <img src=x onerror=alert('name')>")
    description = "<script>alert('description')</script><b>bold?</b>"
    await create_key(page, "qwen", description)
    await page.goto(km.url + "/keys")
    await expect(page.get_by_role("row").filter(has_text=description)).to_have_count(1)
    assert await page.locator("script").count() == 1  # the page's own
    assert await page.locator("b").count() == 0
    assert await page.locator("img").count() == 1  # the brand icon, not the display name's
    await page.get_by_role("link", name=f"Revoke {description}").click()
    await expect(page.get_by_text(description)).to_be_visible()
    # the `new_tab` fixture fails the test if any alert() opened or the CSP refused anything


# -- phones -------------------------------------------------------------------------------------------------------

async def test_the_pages_fit_a_phone_screen_390_pixels_wide(km: RunningKeyManager, new_tab: object) -> None:
    tab: Tab = await new_tab(390, 844)  # type: ignore[operator]
    page = await sign_in(tab, km, "alice")
    for path, name in (("/", "phone-models"), ("/keys/new", "phone-create-key"), ("/keys", "phone-keys")):
        await page.goto(km.url + path)
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390, f"{path} scrolls sideways"
        await check_accessible(page)
        await shoot(page, name)
    await page.goto(km.url + "/")
    await create_key(page, "qwen", "phone")
    assert await page.evaluate("document.documentElement.scrollWidth") <= 390
    await shoot(page, "phone-key-created")
