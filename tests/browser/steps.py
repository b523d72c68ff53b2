"""What a person does on the page, as the tests do it: sign in through the issuer's form, check a page with
axe-core, take a screenshot."""

from __future__ import annotations

import json
from typing import Any

from playwright.async_api import Page, expect

from tests.browser.conftest import AXE, WAIT_MS, Tab, password, screenshot_dir
from tests.oidc.service import RunningKeyManager

expect.set_options(timeout=WAIT_MS)
BAD = ("serious", "critical")


async def sign_in(tab: Tab, km: RunningKeyManager, username: str, *, start: str = "/") -> Page:
    """From the start page, through the issuer's login form, back on the key manager."""
    page = tab.page
    await page.goto(km.url + start)
    await page.get_by_role("link", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Sign in to the test issuer")).to_be_visible()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(password(username))
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(km.url + "/**")
    await expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


async def accessibility_problems(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it is now (WCAG 2.x A and AA rules and best
    practices). axe is evaluated through the DevTools protocol, which the page's CSP does not govern."""
    await page.evaluate(AXE.read_text())
    result = await page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [{"id": v["id"], "impact": v["impact"], "help": v["help"],
             "where": [n["target"] for n in v["nodes"]][:5]} for v in result["violations"] if v["impact"] in BAD]


async def check_accessible(page: Page) -> None:
    problems = await accessibility_problems(page)
    assert not problems, f"axe-core on {page.url}:\n{json.dumps(problems, indent=2)}"


async def shoot(page: Page, name: str) -> None:
    await page.screenshot(path=str(screenshot_dir() / f"{name}.png"), full_page=True)
