"""A third-party OAuth client (Authlib) driving Rampart's authorization server.

Run by server/tests/oauth.rs:
    python authlib_client.py ISSUER CLIENT_ID REDIRECT_URI EMAIL PASSWORD

Uses only the discovery document: PKCE S256 code flow through the login
form (posted with requests, as a browser would), code exchange, refresh,
revocation, and the access token's signature checked against the JWKS
(joserfc, Authlib's JOSE library). Prints one JSON line; exits non-zero on
any failure.
"""

import html
import json
import re
import sys
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet


def hidden(page, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), page)
    assert m, "no %s in the page" % name
    return html.unescape(m.group(1))


def main():
    issuer, client_id, redirect_uri, email, password = sys.argv[1:6]
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta["issuer"]
    assert "S256" in meta["code_challenge_methods_supported"]

    client = OAuth2Session(
        client_id,
        redirect_uri=redirect_uri,
        scope="openid email",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
    )
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = client.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )

    # The browser: the login form, posted like a user would.
    browser = requests.Session()
    page = browser.get(url, allow_redirects=False, timeout=10)
    assert page.status_code == 200, page.status_code
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    # The CSRF token is double-submitted: hidden field + cookie (kept by the Session).
    form = {
        "return_to": hidden(page.text, "return_to"),
        "csrf": hidden(page.text, "csrf"),
        "email": email,
        "password": password,
    }
    r = browser.post(urljoin(url, html.unescape(action)), data=form, allow_redirects=False, timeout=10)
    assert r.status_code == 303, (r.status_code, r.text[:300])
    r = browser.get(urljoin(url, r.headers["location"]), allow_redirects=False, timeout=10)
    assert r.status_code == 302, (r.status_code, r.text[:300])
    callback = r.headers["location"]
    assert callback.startswith(redirect_uri), callback
    query = parse_qs(urlparse(callback).query)
    # RFC 9207: the response names its issuer.
    assert query["iss"] == [issuer], query

    token = client.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        state=state,
        code_verifier=verifier,
    )
    assert token["token_type"].lower() == "bearer"

    # Signatures against the published JWKS.
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    access = jwt.decode(token["access_token"], keys, algorithms=["ES256", "RS256"])
    assert access.header["typ"] == "at+jwt", access.header
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        exp={"essential": True},
        client_id={"essential": True, "value": client_id},
    ).validate(access.claims)
    assert "tid" in access.claims
    id_token = jwt.decode(token["id_token"], keys, algorithms=["ES256", "RS256"])
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        nonce={"essential": True, "value": nonce},
    ).validate(id_token.claims)

    userinfo = client.get(meta["userinfo_endpoint"], timeout=10).json()
    assert userinfo["email"] == email, userinfo

    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert refreshed["access_token"] != token["access_token"]

    r = client.revoke_token(
        meta["revocation_endpoint"],
        token=refreshed["refresh_token"],
        token_type_hint="refresh_token",
    )
    assert r.status_code == 200, r.status_code
    try:
        client.refresh_token(meta["token_endpoint"], refresh_token=refreshed["refresh_token"])
        raise AssertionError("a revoked refresh token still works")
    except OAuthError as e:
        assert e.error == "invalid_grant", e.error

    print(json.dumps({"ok": True, "sub": access.claims["sub"], "alg": access.header["alg"]}))


if __name__ == "__main__":
    main()
