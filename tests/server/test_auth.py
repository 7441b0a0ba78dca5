"""No route is left open: every route × verb needs Jupyter's authentication, writes need
the XSRF token when authenticated by cookie, and the server raises no auth warning with
``allow_unauthenticated_access = False``."""

from __future__ import annotations

import json
import re
import warnings
from http.cookies import SimpleCookie
from typing import Any

import pytest
from api_helpers import Populated
from jupyter_server.serverapp import JupyterServerAuthWarning, ServerWebApplication
from jupyter_server.utils import url_path_join

from nbmlops.server.handlers import ROUTES

RUN = "0" * 32
SAMPLES = {"run_id": RUN, "key": "f1", "path": "figures/a.png", "name": "churn", "rest": "nope"}
VERBS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]


def concrete(route: str) -> str:
    """A route pattern with sample values in its named groups."""
    return re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: SAMPLES[m.group(1)], route)


ROUTE_URLS = [concrete(route) for route, _ in ROUTES]


def test_every_route_is_listed_and_every_method_authenticated() -> None:
    handlers = {handler for _, handler in ROUTES}
    for handler in handlers:
        missing = ServerWebApplication._check_handler_auth(None, "nbmlops", handler)  # type: ignore[arg-type]
        assert missing == [], missing
    assert len(ROUTE_URLS) == len(set(ROUTE_URLS)) == len(ROUTES)


def test_server_starts_without_any_auth_warning(jp_configurable_serverapp: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        app = jp_configurable_serverapp()
    auth = [w for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
    assert auth == [], [str(w.message) for w in auth]
    assert app.allow_unauthenticated_access is False
    assert "nbmlops_service" in app.web_app.settings  # the extension really loaded


@pytest.mark.parametrize("route", ROUTE_URLS)
async def test_every_route_and_verb_is_403_without_credentials(
    http_server_client: Any, jp_base_url: str, populated: Populated, route: str
) -> None:
    url = url_path_join(jp_base_url, "nbmlops/api", route) + f"?notebook={populated.notebook}"
    for verb in VERBS:
        body = (
            json.dumps({"alias": "x", "version": 1}) if verb in ("POST", "PUT", "PATCH") else None
        )
        for headers in ({}, {"Authorization": "token wrong-token"}):
            response = await http_server_client.fetch(
                url, method=verb, body=body, headers=headers, raise_error=False
            )
            assert response.code == 403, (verb, route, headers, response.code, response.body)
            assert b"churn" not in response.body and b"analysis" not in response.body
    # CORS preflight is jupyter_server's own unauthenticated OPTIONS: it returns no data.
    response = await http_server_client.fetch(url, method="OPTIONS", raise_error=False)
    assert response.code in (200, 204, 403)
    assert response.body == b""


async def _cookie_login(http_server_client: Any, jp_base_url: str, token: str) -> dict[str, str]:
    """Sign in with the token the way a browser does; return the cookies set."""
    login = url_path_join(jp_base_url, "login")
    page = await http_server_client.fetch(login, raise_error=False)
    jar: SimpleCookie = SimpleCookie()
    for header in page.headers.get_list("Set-Cookie"):
        jar.load(header)
    xsrf = jar["_xsrf"].value
    response = await http_server_client.fetch(
        login,
        method="POST",
        body=f"password={token}&_xsrf={xsrf}",
        headers={"Cookie": f"_xsrf={xsrf}"},
        follow_redirects=False,
        raise_error=False,
    )
    assert response.code == 302, response.code
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return {name: morsel.value for name, morsel in jar.items()}


async def test_writes_need_the_xsrf_token_with_cookie_auth(
    http_server_client: Any, jp_base_url: str, jp_serverapp: Any, populated: Populated
) -> None:
    cookies = await _cookie_login(
        http_server_client, jp_base_url, jp_serverapp.identity_provider.token
    )
    cookie_header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    url = (
        url_path_join(jp_base_url, "nbmlops/api/models/churn/aliases")
        + f"?notebook={populated.notebook}"
    )
    body = json.dumps({"alias": "challenger", "version": 2})

    read = await http_server_client.fetch(
        url_path_join(jp_base_url, "nbmlops/api/models/churn") + f"?notebook={populated.notebook}",
        headers={"Cookie": cookie_header},
        raise_error=False,
    )
    assert read.code == 200  # the cookie signs reads in

    without = await http_server_client.fetch(
        url, method="POST", body=body, headers={"Cookie": cookie_header}, raise_error=False
    )
    assert without.code == 403
    assert b"challenger" not in without.body

    with_token = await http_server_client.fetch(
        url,
        method="POST",
        body=body,
        headers={"Cookie": cookie_header, "X-XSRFToken": cookies["_xsrf"]},
        raise_error=False,
    )
    assert with_token.code == 200, with_token.body
    assert json.loads(with_token.body)["model"]["aliases"]["challenger"] == 2
