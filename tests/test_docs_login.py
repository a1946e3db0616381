"""A token-protected photon's ``/docs`` in a browser: a sign-in form and an HttpOnly cookie.

Through TestClient first (the form, the cookie's attributes, what it opens and
what it does not), then in Debian's headless Chromium driven over the DevTools
protocol: sign in with the form, see the handlers listed, call one with
Swagger UI's own request, all without a script ever seeing the cookie.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from photonpack import Photon
from photonpack.serving.app import build_app
from photonpack.serving.docslogin import COOKIE
from tests.support.cdp import Browser
from tests.support.serving import Served
from tests.support.stack import write_photon


class Counter(Photon):
    @Photon.handler
    def add(self, x: int) -> int:
        return x


def _client() -> TestClient:
    return TestClient(build_app(Counter(), token="s3cret"), follow_redirects=False)


def test_docs_without_the_token_is_a_sign_in_form_not_json() -> None:
    for page in ("/docs", "/redoc"):
        form = _client().get(page)
        assert form.status_code == 401
        assert form.headers["content-type"] == "text/html; charset=utf-8"
        assert '<form method="post" action="/docs/login">' in form.text
        assert f'<input type="hidden" name="next" value="{page}">' in form.text
        assert "https://" not in form.text and "<script" not in form.text
    # Everything else keeps the API's answer.
    api = _client().post("/add", json={"x": 1})
    assert api.status_code == 401
    assert api.json() == {
        "error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
    }


def test_the_right_token_sets_a_strict_httponly_cookie_that_opens_docs_and_api() -> None:
    client = _client()
    signed = client.post("/docs/login", data={"token": "s3cret", "next": "/redoc"})
    assert signed.status_code == 303
    assert signed.headers["location"] == "/redoc"
    cookie = signed.headers["set-cookie"]
    value = re.match(rf"{COOKIE}=([0-9a-f]{{64}}); Path=/; HttpOnly; SameSite=Strict$", cookie)
    assert value is not None, cookie
    assert "s3cret" not in cookie  # a derived session, not the token itself
    assert "swagger-ui-bundle.js" in client.get("/docs").text
    assert client.get("/openapi.json").status_code == 200
    assert client.post("/add", json={"x": 4}).json() == 4
    out = client.post("/docs/logout")
    assert out.status_code == 303
    assert out.headers["set-cookie"].startswith(f"{COOKIE}=; Path=/; HttpOnly")
    assert "Max-Age=0" in out.headers["set-cookie"]


def test_a_wrong_token_shows_the_form_again_and_sets_nothing() -> None:
    wrong = _client().post("/docs/login", data={"token": "guess", "next": "https://evil.example"})
    assert wrong.status_code == 401
    assert "set-cookie" not in wrong.headers
    assert "That is not this photon&#x27;s token." in wrong.text
    assert 'name="next" value="/docs"' in wrong.text  # never a redirect off the photon
    forged = TestClient(build_app(Counter(), token="s3cret"), cookies={COOKIE: "0" * 64})
    assert forged.post("/add", json={"x": 1}).status_code == 401


def test_a_photon_without_a_token_has_no_sign_in() -> None:
    client = TestClient(build_app(Counter()), follow_redirects=False)
    assert "swagger-ui-bundle.js" in client.get("/docs").text
    assert client.post("/docs/login", data={"token": "x"}).status_code in (404, 405)


def test_behind_a_proxy_the_form_and_cookie_carry_the_prefix() -> None:
    client = TestClient(
        build_app(Counter(), token="s3cret"), root_path="/counter", follow_redirects=False
    )
    assert 'action="/counter/docs/login"' in client.get("/docs").text
    signed = client.post("/docs/login", data={"token": "s3cret", "next": "/docs"})
    assert signed.headers["location"] == "/counter/docs"
    assert "; Path=/counter; " in signed.headers["set-cookie"]


# Quiet the browser's own housekeeping (as tests/test_docs_offline.py does).
_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--no-pings", "--disable-breakpad",
]  # fmt: skip

PHOTON = """
from photonpack import Photon


class Counter(Photon):
    @Photon.handler
    def add(self, x: int) -> int:
        return x + 1

    @Photon.handler("sub")
    def sub(self, x: int) -> int:
        return -x
"""


@pytest.mark.slow
def test_chromium_signs_in_at_docs_and_tries_a_handler_with_the_cookie(
    tmp_path: Path, serve_photon: Callable[..., Served]
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed here: apt-get install chromium")
    served = serve_photon(
        str(write_photon(tmp_path / "src", PHOTON)), env={"PHOTONPACK_TOKEN": "s3cret"}
    )
    browser = Browser(chromium, tmp_path / "profile", _FLAGS)
    try:
        browser.navigate(f"{served.url}/docs")
        assert browser.evaluate("document.title") == "Sign in to the API docs"
        browser.evaluate(
            "document.getElementById('token').value = 's3cret';"
            "document.querySelector('form').submit(); true"
        )
        paths = browser.wait_for(
            "Array.from(document.querySelectorAll('.opblock-summary-path'))"
            ".map(e => e.dataset.path).join(' ')"
        )
        assert paths == "/add /sub"
        assert browser.evaluate("location.pathname") == "/docs"
        assert browser.evaluate("document.cookie") == ""  # HttpOnly: no script sees it
        # Swagger UI's "Try it out" on /add, as a person would click it.
        browser.evaluate(
            "const add = document.querySelector('.opblock-summary-path[data-path=\"/add\"]')"
            ".closest('.opblock');"
            "(add.querySelector('.opblock-summary-control') || add).click(); true"
        )
        browser.wait_for("!!document.querySelector('.try-out__btn')")
        browser.evaluate("document.querySelector('.try-out__btn').click(); true")
        browser.wait_for("!!document.querySelector('.execute')")
        browser.evaluate(
            "const area = document.querySelector('textarea.body-param__text');"
            "const set = Object.getOwnPropertyDescriptor(HTMLTextAreaElement.prototype, 'value');"
            "set.set.call(area, '{\"x\": 2}');"
            "area.dispatchEvent(new Event('input', {bubbles: true})); true"
        )
        browser.evaluate("document.querySelector('.execute').click(); true")
        status = browser.wait_for(
            "document.querySelector('.live-responses-table tbody .response-col_status')?.innerText"
        )
        assert status.strip() == "200"
        body = browser.evaluate(
            "document.querySelector('.live-responses-table tbody .microlight').innerText"
        )
        assert body.strip() == "3"
        # ReDoc is open too, with the same cookie, and nothing left the machine.
        browser.navigate(f"{served.url}/redoc")
        browser.wait_for("!!document.querySelector('[id=\"operation/add_add_post\"]')")
        network = [u for u in browser.requested() if not u.startswith(("data:", "blob:"))]
        assert f"{served.url}/docs/login" in network
        # ReDoc's footer asks for its logo on cdn.redoc.ly; the page's CSP (img-src 'self')
        # stops it in the browser, so nothing is sent. Anything else outside is a failure.
        outcomes = browser.outcomes()
        outside = {
            url: outcome
            for url, outcome in outcomes.items()
            if not url.startswith((served.url + "/", "data:", "blob:"))
        }
        assert all(outcome == "blocked:csp" for outcome in outside.values()), outside
    finally:
        browser.close()
