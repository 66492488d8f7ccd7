"""Sign in with Hackatime: OAuth 2 code + PKCE with a real loopback redirect, against the stand-in."""

from __future__ import annotations

import threading

import httpx
import pytest

from agent.oauth import LoopbackSignIn, SignInError, revoke
from tests.conftest import API_KEY
from tests.standin import HackatimeStandin

CLIENT_ID = "hackatime-desktop-test"


class Browser:
    """The system browser: follows the authorize URL's redirects to the app's loopback listener."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.page: httpx.Response | None = None
        self.thread = threading.Thread(target=self._run, name="browser")
        self.thread.start()

    def _run(self) -> None:
        self.page = httpx.get(self.url, follow_redirects=True, timeout=30)

    def join(self) -> httpx.Response:
        self.thread.join()
        assert self.page is not None
        return self.page


def test_sign_in_round_trip_fetches_the_key_and_the_token_is_not_a_key(
    standin: HackatimeStandin,
) -> None:
    standin.register_oauth_app(CLIENT_ID)
    sign_in = LoopbackSignIn(standin.url, CLIENT_ID)
    assert (
        sign_in.redirect_uri.startswith("http://127.0.0.1:") and "code_challenge_method=S256" in sign_in.authorize_url
    )
    browser = Browser(sign_in.authorize_url)
    signed = sign_in.finish(wait=30)
    page = browser.join()
    assert page.status_code == 200 and "Signed in" in page.text
    assert (signed.api_key, signed.user_id, signed.email) == (API_KEY, 1, "orpheus@example.org")

    bearer = {"Authorization": f"Bearer {signed.token}"}
    assert httpx.get(f"{standin.url}/api/v1/authenticated/me", headers=bearer).status_code == 200
    # A token is not an API key, and an API key is not a token (hackatime-api.md §1.1).
    assert httpx.get(f"{standin.api_url}/users/current", headers=bearer).status_code == 401
    as_key = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.get(f"{standin.url}/api/v1/authenticated/me", headers=as_key).status_code == 401

    revoke(standin.url, CLIENT_ID, signed.token)
    assert httpx.get(f"{standin.url}/api/v1/authenticated/me", headers=bearer).status_code == 401


def test_a_user_who_declines_gets_the_servers_reason(standin: HackatimeStandin) -> None:
    standin.register_oauth_app(CLIENT_ID)
    standin.sign_in_browser(None)
    sign_in = LoopbackSignIn(standin.url, CLIENT_ID)
    browser = Browser(sign_in.authorize_url)
    with pytest.raises(SignInError, match="did not sign you in: access_denied"):
        sign_in.finish(wait=30)
    assert "Sign-in failed" in browser.join().text


def test_an_unregistered_app_never_reaches_the_listener_and_can_be_cancelled(standin: HackatimeStandin) -> None:
    sign_in = LoopbackSignIn(standin.url, "not-registered")
    page = httpx.get(sign_in.authorize_url, follow_redirects=True)
    assert page.status_code == 400 and "unknown client" in page.text
    sign_in.cancel()
    with pytest.raises(SignInError, match="cancelled"):
        sign_in.finish(wait=30)


def test_a_sign_in_without_a_client_id_says_how_to_get_one(standin: HackatimeStandin) -> None:
    with pytest.raises(SignInError, match="/oauth/applications"):
        LoopbackSignIn(standin.url, "")
