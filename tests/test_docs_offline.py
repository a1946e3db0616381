"""``/docs`` and ``/redoc`` with no network: every asset from the photon's own environment.

The pages through TestClient (every URL they reference is local and served, behind
the token), then a real archive served air-gapped and rendered by Debian's
headless Chromium, in a network namespace with only loopback.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from photonpack import Photon
from photonpack.serving.app import build_app
from photonpack.serving.docs import ASSETS, assets_dir
from photonpack.serving.errors import ServeError
from tests.support.offline import serve_offline
from tests.support.stack import write_photon


class Counter(Photon):
    """Counts."""

    @Photon.handler
    def add(self, x: int) -> int:
        """Add x."""
        return x

    @Photon.handler("sub")
    def sub(self, x: int) -> int:
        return -x


class _References(HTMLParser):
    """Every URL a page asks the browser to load: ``src``, ``href``, ReDoc's ``spec-url``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "spec-url") and v]


def _references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    # Swagger UI's script names the schema and the OAuth2 redirect as JS strings.
    return parser.urls + re.findall(r"url: '([^']*)'", page) + re.findall(r"\+ '([^']*)'", page)


def test_every_url_the_pages_reference_is_served_locally_from_the_environment() -> None:
    client = TestClient(build_app(Counter()))
    served = assets_dir()
    seen: set[str] = set()
    for page, expected in (
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ):
        reply = client.get(page)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/html; charset=utf-8"
        assert "http://" not in reply.text
        assert "https://" not in reply.text
        urls = _references(reply.text)
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "/openapi.json" in urls
        assets = {u.removeprefix("/docs/assets/") for u in urls if u.startswith("/docs/assets/")}
        assert assets == expected
        for url in urls:
            got = client.get(url)
            assert got.status_code == 200, url
            name = url.removeprefix("/docs/assets/")
            if name in ASSETS:
                assert got.content == (served / name).read_bytes()  # the package's own bytes
        seen |= assets
    assert seen == set(ASSETS)
    assert "/docs/oauth2-redirect" in _references(client.get("/docs").text)
    assert "oauth2" in client.get("/docs/oauth2-redirect").text


def test_the_pages_keep_fastapis_titles_and_stay_out_of_the_schema() -> None:
    client = TestClient(build_app(Counter()))
    assert "<title>counter - Swagger UI</title>" in client.get("/docs").text
    redoc = client.get("/redoc")
    assert "<title>counter - ReDoc</title>" in redoc.text
    # ReDoc's menu would load Redocly's logo from its CDN: images come from here only.
    assert redoc.headers["content-security-policy"] == "img-src 'self' data: blob:"
    assert sorted(client.get("/openapi.json").json()["paths"]) == ["/add", "/sub"]


def test_the_pages_and_their_assets_need_the_token() -> None:
    client = TestClient(build_app(Counter(), token="s3cret"))
    # /docs and /redoc answer a browser's sign-in form (tests/test_docs_login.py).
    paths = ["/docs/oauth2-redirect", *(f"/docs/assets/{a}" for a in ASSETS)]
    for path in paths:
        refused = client.get(path)
        assert refused.status_code == 401, path
        assert refused.json() == {
            "error": "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
        }
        allowed = client.get(path, headers={"Authorization": "Bearer s3cret"})
        assert allowed.status_code == 200, path


def test_behind_a_proxy_prefix_every_url_carries_it() -> None:
    client = TestClient(build_app(Counter()), root_path="/counter")
    for page in ("/docs", "/redoc"):
        urls = _references(client.get(page).text)
        assert urls
        assert all(u.startswith("/counter/") for u in urls), urls


def test_without_the_assets_package_serving_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi_offline", None)  # import now fails, as if absent
    with pytest.raises(ServeError) as raised:
        build_app(Counter())
    assert str(raised.value) == (
        "the /docs and /redoc assets are missing: fastapi-offline is not installed in the "
        f"environment {sys.prefix}; install photonpack's serving stack there "
        "(pip install 'fastapi-offline>=1.7.7'), as every photon's lock does"
    )


def test_a_release_without_one_of_the_bundles_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    package = tmp_path / "fastapi_offline"
    (package / "static").mkdir(parents=True)
    for name in ASSETS:
        if name != "redoc.standalone.js":
            (package / "static" / name).write_bytes(b"x")
    (package / "__init__.py").write_text("")
    module = types.ModuleType("fastapi_offline")
    module.__file__ = str(package / "__init__.py")
    monkeypatch.setitem(sys.modules, "fastapi_offline", module)
    with pytest.raises(ServeError) as raised:
        build_app(Counter())
    assert str(raised.value) == (
        "the /docs and /redoc assets are incomplete: redoc.standalone.js not found in "
        f"{package / 'static'}; install a fastapi-offline release that ships them"
    )


def test_run_without_the_assets_package_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # A package of that name that cannot be imported stands first on the path.
    hidden = tmp_path / "hidden" / "fastapi_offline"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('not installed')\n")
    photon = write_photon(tmp_path / "src")
    done = subprocess.run(
        [sys.executable, "-m", "photonpack", "run", "-m", str(photon), "--port", "0"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONPATH": str(hidden.parent)},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the /docs and /redoc assets are missing: fastapi-offline ")


# Quiet the browser's own housekeeping; what is left of it (a clock check, say) is
# told apart from the page's requests by its initiator (see _requests).
_CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-domain-reliability", "--no-pings",
    "--disable-breakpad", "--disable-client-side-phishing-detection",
    # Run until the page is idle (scripts, fetches, timers), then dump the DOM.
    "--virtual-time-budget=20000",
]  # fmt: skip

_RENDER = """
for page in ("docs", "redoc"):
    with open({work!r} + f"/{{page}}.html", "w") as dom:
        subprocess.run(
            [{chromium!r}, *{flags!r}, f"--user-data-dir={work}/profile-{{page}}",
             f"--log-net-log={work}/{{page}}.netlog.json", "--dump-dom", f"{{url}}/{{page}}"],
            stdout=dom, stderr=subprocess.DEVNULL, timeout=180, check=True,
        )
print("rendered")
"""


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed here: apt-get install chromium")
    return found


def _requests(netlog: Path) -> list[tuple[str, str]]:
    """``(url, initiator)`` of every request the browser started, from its NetLog."""
    text = netlog.read_text().rstrip()
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # the last events of a log closed mid-write
        log = json.loads(text.rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        (event["params"]["url"], event["params"].get("initiator", ""))
        for event in log["events"]
        if event["type"] == start and "url" in event.get("params", {})
    ]


@pytest.mark.slow
def test_docs_and_redoc_render_in_chromium_with_no_network(
    counter_archive: Path, tmp_path: Path
) -> None:
    chromium = _chromium()
    work = tmp_path / "browser"
    port = 18941
    origin = f"http://127.0.0.1:{port}"
    snippet = _RENDER.format(work=str(work), chromium=chromium, flags=_CHROMIUM_FLAGS)
    assert serve_offline(counter_archive, work, snippet, port=port).split() == ["rendered"]

    swagger = (work / "docs.html").read_text()
    assert re.findall(r'class="opblock-summary-description">([^<]*)<', swagger) == ["add", "sub"]
    assert re.findall(r'class="opblock-summary-path" data-path="([^"]*)"', swagger) == [
        "/add",
        "/sub",
    ]
    redoc = (work / "redoc.html").read_text()
    # The side menu: one entry per operation, its method then its summary (the handler's name).
    assert re.findall(r'operation-type post">post</span><span[^>]*>([^<]*)<', redoc) == [
        "add",
        "sub",
    ]
    assert 'id="operation/add_add_post"' in redoc

    for page, assets in (
        ("docs", {"swagger-ui.css", "swagger-ui-bundle.js", "favicon.png"}),
        ("redoc", {"redoc.standalone.js", "favicon.png"}),
    ):
        requests = _requests(work / f"{page}.netlog.json")
        # The page's own requests carry its origin; the navigation and the browser's
        # housekeeping carry none ("not an origin").
        made_by_page = {url for url, initiator in requests if initiator == origin}
        assert made_by_page == {
            f"{origin}/openapi.json",
            *(f"{origin}/docs/assets/{name}" for name in assets),
        }, page
        assert (f"{origin}/{page}", "not an origin") in requests
        outside = [(u, i) for u, i in requests if not u.startswith(origin + "/")]
        assert all(i == "not an origin" for _, i in outside), outside
