//! The browser-style OAuth flow over HTTPS against the real server and
//! real PostgreSQL: authorize → login form → code → token → refresh →
//! revoke, plus refusals; login through an upstream OpenID provider; a
//! third-party client (Python Authlib); and the endpoints' throughput.
use rampart_testkit::{acme, globex, valid_slug};
use std::collections::HashMap;

use actix_web::cookie::Cookie;
use base64::Engine;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{Role, SigningAlg};
use rampart_ratelimit::Quota;
use rampart_server::config::ServerConfig;
use reqwest::StatusCode;

use crate::common::{
    Env, PASSWORD, Pki, REDIRECT, VERIFIER, argon2_bound, client_builder, config, form, hidden,
    machine_client, query_param, roomy_limits,
};

/// Acme's public client `web`: the code flow with refresh.
fn web_client() -> ClientRegistration {
    ClientRegistration {
        client_id: "web".into(),
        name: "Web App".into(),
        redirect_uris: vec![REDIRECT.into()],
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        allowed_scopes: vec!["openid".into(), "email".into(), "portfolio:read".into()],
        auth_method: ClientAuthMethod::None,
        signing_alg: SigningAlg::ES256,
    }
}

/// The server (configuration adjusted by `adjust`) with tenants `acme` and
/// `globex`, acme's client `web` and its user Ada; short login backoff.
pub(crate) async fn oauth_env(adjust: impl FnOnce(&mut ServerConfig)) -> Env {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.auth.backoff_base_ms = 5;
    config.auth.backoff_cap_ms = 40;
    roomy_limits(&mut config);
    adjust(&mut config);
    let env = Env::start(pki, config).await;
    env.state.tenants.provision(&acme(), "Acme").await.unwrap();
    env.state
        .tenants
        .provision(&globex(), "Globex")
        .await
        .unwrap();
    let auth = env.auth();
    auth.register_client(&acme(), &web_client()).await.unwrap();
    auth.register(&acme(), "ada@example.com", "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    env
}

/// The server as a browser sees it: redirects are not followed, cookies are
/// sent by hand.
pub(crate) struct Browser {
    pub(crate) env: Env,
    http: reqwest::Client,
}

impl Browser {
    pub(crate) fn new(env: Env) -> Self {
        let http = client_builder(&env.pki.ca.cert_pem())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser { env, http }
    }

    pub(crate) fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(self.env.url(path))
    }

    /// The token request for `code` (client `web`, verifier [`VERIFIER`]).
    fn redeem(&self, code: &str) -> reqwest::RequestBuilder {
        self.post_form(
            "/t/acme/oauth/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
                ("code_verifier", VERIFIER),
            ],
        )
    }

    pub(crate) fn post_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
        self.http
            .post(self.env.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(pairs))
    }

    /// Posts the form `pairs` to `path`; the response.
    async fn send_form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.post_form(path, pairs).send().await.unwrap()
    }

    /// `GET path`; the response.
    pub(crate) async fn send_get(&self, path: &str) -> reqwest::Response {
        self.get(path).send().await.unwrap()
    }

    /// `GET path` answered with JSON; the body.
    async fn get_json(&self, path: &str) -> serde_json::Value {
        self.send_get(path).await.json().await.unwrap()
    }

    /// `GET path` sending `cookie`.
    async fn get_with(&self, path: &str, cookie: &Cookie<'_>) -> reqwest::Response {
        let req = self
            .get(path)
            .header("cookie", cookie.stripped().to_string());
        req.send().await.unwrap()
    }

    /// `acme`'s sign-in form as ada@example.com with `password`, the CSRF
    /// `token` and, when given, the CSRF `cookie`.
    pub(crate) async fn sign_in(
        &self,
        password: &str,
        return_to: &str,
        token: &str,
        cookie: Option<&Cookie<'_>>,
    ) -> reqwest::Response {
        let pairs = [
            ("email", "ada@example.com"),
            ("password", password),
            ("return_to", return_to),
            ("csrf", token),
        ];
        let mut req = self.post_form("/t/acme/oauth/login", &pairs);
        if let Some(c) = cookie {
            req = req.header("cookie", c.stripped().to_string());
        }
        req.send().await.unwrap()
    }

    /// The refresh-token grant of client `web` for `refresh`.
    async fn refresh(&self, refresh: &str) -> reqwest::Response {
        let grant = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "web"),
        ];
        self.send_form("/t/acme/oauth/token", &grant).await
    }
}

/// The loopback callback of the test provider `idp` at `acme` (the tests
/// follow the provider's redirect themselves, so any port will do).
pub(crate) const IDP_CALLBACK: &str = "http://127.0.0.1:9/t/acme/login/upstream/idp/callback";

/// The test provider `idp` ("Test IdP", scopes email and profile) at `acme`,
/// with e-mail linking as `link_verified_email`.
pub(crate) fn test_idp(
    idp: &rampart_testkit::OidcProvider,
    link_verified_email: bool,
) -> rampart_auth::UpstreamProvider {
    rampart_auth::UpstreamProvider {
        name: "idp".into(),
        display_name: "Test IdP".into(),
        issuer: idp.issuer(),
        client_id: rampart_testkit::OidcProvider::CLIENT_ID.into(),
        redirect_uri: IDP_CALLBACK.into(),
        scopes: vec!["email".into(), "profile".into()],
        link_verified_email,
        ..Default::default()
    }
}

/// The `Location` a response redirects to.
pub(crate) fn location_of(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

/// The cookies a response sets.
pub(crate) fn cookies(r: &reqwest::Response) -> Vec<Cookie<'static>> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .collect()
}

pub(crate) fn authorize_uri(tenant: &str, challenge: Option<&str>) -> String {
    let mut u = url::Url::parse(&format!("http://x/t/{tenant}/oauth/authorize")).unwrap();
    {
        let mut q = u.query_pairs_mut();
        q.append_pair("response_type", "code")
            .append_pair("client_id", "web")
            .append_pair("redirect_uri", REDIRECT)
            .append_pair("scope", "openid email portfolio:read")
            .append_pair("state", "xyz")
            .append_pair("nonce", "n-1");
        if let Some(c) = challenge {
            q.append_pair("code_challenge", c)
                .append_pair("code_challenge_method", "S256");
        }
    }
    format!("{}?{}", u.path(), u.query().unwrap())
}

/// A token of the same shape as `token` but different.
fn new_token_like(token: &str) -> String {
    let mut t: Vec<char> = token.chars().collect();
    t[0] = if t[0] == 'A' { 'B' } else { 'A' };
    t.into_iter().collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn browser_flow_authorize_login_code_token_refresh_revoke() {
    // An http:// issuer base (as before this test ran the whole server): the
    // login form's cookies then carry no `__Secure-` prefix, the names this
    // test checks.
    let b = Browser::new(oauth_env(|c| c.public_base_url = "http://127.0.0.1:8080".into()).await);
    let auth = b.env.auth();
    let challenge = crate::common::challenge(VERIFIER);

    // Discovery and JWKS.
    let d = b.get_json("/t/acme/.well-known/openid-configuration").await;
    assert_eq!(d["issuer"], auth.issuer(&acme()));
    let d2 = b
        .get_json("/t/acme/.well-known/oauth-authorization-server")
        .await;
    assert_eq!(d, d2);
    let jwks = b.get_json("/t/acme/jwks.json").await;
    assert!(jwks["keys"].as_array().unwrap().len() >= 4);
    let r = b
        .send_get("/t/nosuch/.well-known/openid-configuration")
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Missing PKCE → redirect back with invalid_request; wrong redirect → page.
    let r = b.send_get(&authorize_uri("acme", None)).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = location_of(&r);
    assert!(
        loc.starts_with(REDIRECT)
            && loc.contains("error=invalid_request")
            && loc.contains("state=xyz"),
        "{loc}"
    );
    let bad =
        authorize_uri("acme", Some(&challenge)).replace("app.example.com", "evil.example.com");
    let r = b.send_get(&bad).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());

    // 1. Authorize without a session: the login page.
    let r = b.send_get(&authorize_uri("acme", Some(&challenge))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let csrf_cookie = cookies(&r)
        .into_iter()
        .find(|c| c.name() == "rampart_csrf")
        .unwrap()
        .into_owned();
    assert!(csrf_cookie.http_only().unwrap_or(false));
    assert_eq!(
        csrf_cookie.same_site(),
        Some(actix_web::cookie::SameSite::Strict)
    );
    assert_eq!(csrf_cookie.path(), Some("/t/acme/oauth"));
    let html = r.text().await.unwrap();
    assert!(html.contains("Web App") && html.contains("name=\"password\""));
    let return_to = hidden(&html, "return_to");
    let csrf = hidden(&html, "csrf");
    assert_eq!(csrf, csrf_cookie.value());

    // 2a. No CSRF cookie, or a token that is not the cookie's: refused with
    // the form again (400), no session.
    for (cookie, token) in [
        (None, csrf.clone()),
        (Some(csrf_cookie.clone()), String::new()),
        (Some(csrf_cookie.clone()), new_token_like(&csrf)),
    ] {
        let r = b
            .sign_in(PASSWORD, &return_to, &token, cookie.as_ref())
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(
            cookies(&r)
                .into_iter()
                .all(|c| c.name() != "rampart_session_acme")
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("name=\"password\"") && html.contains("expired"));
    }
    // And the MFA form the same way.
    let mfa = [
        ("challenge", "x"),
        ("code", "123456"),
        ("return_to", return_to.as_str()),
        ("csrf", csrf.as_str()),
    ];
    let r = b.send_form("/t/acme/oauth/mfa", &mfa).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // 2. Wrong password: the form again, no cookie.
    let r = b
        .sign_in("wrong-password-1", &return_to, &csrf, Some(&csrf_cookie))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(cookies(&r).into_iter().next().is_none());
    // Open redirect attempt is refused.
    let open_redirect = [
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("return_to", "https://evil.example.com/"),
    ];
    let r = b.send_form("/t/acme/oauth/login", &open_redirect).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    // 3. Right password: session cookie and back to authorize.
    let r = b
        .sign_in(PASSWORD, &return_to, &csrf, Some(&csrf_cookie))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = cookies(&r).into_iter().next().unwrap().into_owned();
    assert!(cookie.http_only().unwrap_or(false));
    let back = location_of(&r);
    assert_eq!(back, return_to);

    // 4. Authorize with the session: redirect with code, state and iss.
    let r = b.get_with(&back, &cookie).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = url::Url::parse(&location_of(&r)).unwrap();
    let q: HashMap<_, _> = loc.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "xyz");
    assert_eq!(q["iss"], auth.issuer(&acme()));
    let code = q["code"].clone();

    // OIDC prompt and max_age: `prompt=login` and a sign-in older than
    // `max_age` show the sign-in page again (coming back without them),
    // `max_age` the session meets issues a code, `prompt=none` without a
    // session answers login_required at the client, an unknown prompt is
    // an error there too.
    let status_and_location = |query: String, with_session: bool| {
        let mut req = b.get(&format!("{back}&{query}"));
        if with_session {
            req = req.header("cookie", cookie.clone().stripped().to_string());
        }
        async move {
            let r = req.send().await.unwrap();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_owned());
            (r.status(), location, r.text().await.unwrap())
        }
    };
    let (status, _, page) = status_and_location("prompt=login".into(), true).await;
    assert_eq!(status, StatusCode::OK, "the sign-in page");
    assert_eq!(hidden(&page, "return_to"), return_to);
    let (status, location, _) = status_and_location("max_age=3600".into(), true).await;
    assert_eq!(status, StatusCode::FOUND);
    assert!(location.unwrap().contains("code="));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, _, page) = status_and_location("max_age=0".into(), true).await;
    assert_eq!(status, StatusCode::OK, "signed in more than 0 s ago");
    assert_eq!(hidden(&page, "return_to"), return_to);
    let (status, location, _) = status_and_location("prompt=none".into(), false).await;
    assert_eq!(status, StatusCode::FOUND);
    let location = location.unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    assert_eq!(query_param(&location, "error"), "login_required");
    assert_eq!(query_param(&location, "state"), "xyz");
    let (status, location, _) = status_and_location("prompt=bogus".into(), true).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(query_param(&location.unwrap(), "error"), "invalid_request");

    // 5. Token with a wrong verifier fails; the right one works.
    let wrong_verifier = "z".repeat(43);
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("client_id", "web"),
        ("code_verifier", wrong_verifier.as_str()),
    ];
    let r = b.send_form("/t/acme/oauth/token", &grant).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    // The code was consumed by that attempt; get a new one.
    let r = b.get_with(&back, &cookie).await;
    let code = query_param(&location_of(&r), "code");
    let r = b.redeem(&code).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers().get("cache-control").unwrap(), "no-store");
    let t: serde_json::Value = r.json().await.unwrap();
    let access = t["access_token"].as_str().unwrap().to_owned();
    let refresh = t["refresh_token"].as_str().unwrap().to_owned();
    assert!(t["id_token"].is_string());

    // Userinfo with the bearer; the same token at another tenant is refused.
    let info = crate::common::send_json(
        b.get("/t/acme/oauth/userinfo")
            .header("Authorization", format!("Bearer {access}")),
    )
    .await;
    assert_eq!(info["email"], "ada@example.com");
    let r = b
        .get("/t/globex/oauth/userinfo")
        .header("Authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // 6. Refresh (rotation).
    let r = b.refresh(&refresh).await;
    assert_eq!(r.status(), StatusCode::OK);
    let t2: serde_json::Value = r.json().await.unwrap();
    let refresh2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(refresh, refresh2);

    // 7. Revoke the new refresh token: the family is gone.
    let revoke = [("token", refresh2.as_str()), ("client_id", "web")];
    let r = b.send_form("/t/acme/oauth/revoke", &revoke).await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = b.refresh(&refresh2).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");

    // Unsupported grant, unknown client.
    let password_grant = [("grant_type", "password"), ("client_id", "web")];
    let r = b.send_form("/t/acme/oauth/token", &password_grant).await;
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    let r = b
        .post_form(
            "/t/acme/oauth/token",
            &[("grant_type", "client_credentials")],
        )
        .header("Authorization", "Basic bm9wZTpub3Bl")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

/// Drives oidc-provider's development login like a browser (any name, then
/// consent) and returns the redirect to our callback.
/// Completes at `tenant` the login at the upstream provider `idp` that its
/// redirect `back` answers, with the `pending` cookie's value.
async fn complete_upstream(
    auth: &rampart_auth::AuthServer,
    tenant: &str,
    back: &url::Url,
    iss: Option<&str>,
    pending: &str,
) -> Result<rampart_auth::upstream::UpstreamOutcome, rampart_auth::AuthError> {
    let q: HashMap<_, _> = back.query_pairs().into_owned().collect();
    let ctx = rampart_auth::ClientContext::ip("127.0.0.1");
    auth.complete_login(
        &valid_slug(tenant),
        "idp",
        &q["code"],
        &q["state"],
        iss,
        pending,
        &ctx,
    )
    .await
}

pub(crate) async fn idp_sign_in(authorization_url: &str, name: &str) -> url::Url {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cookies: HashMap<String, String> = HashMap::new();
    let mut url = url::Url::parse(authorization_url).unwrap();
    let idp_port = url.port();
    let mut form: Option<String> = None;
    for _ in 0..20 {
        let jar = cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let req = match form.take() {
            Some(body) => http
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => http.get(url.clone()),
        };
        let resp = req.header("cookie", jar).send().await.unwrap();
        for set in resp.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                cookies.insert(k.trim().to_owned(), v.to_owned());
            }
        }
        if resp.status().is_redirection() {
            let next = url
                .join(resp.headers()["location"].to_str().unwrap())
                .unwrap();
            if next.port() != idp_port {
                return next;
            }
            url = next;
            continue;
        }
        let status = resp.status();
        let html = resp.text().await.unwrap();
        assert_eq!(status, 200, "{html}");
        let start = html.find("action=\"").expect("a form") + 8;
        let action = &html[start..start + html[start..].find('"').unwrap()];
        url = url.join(action).unwrap();
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        if html.contains("name=\"login\"") {
            body.append_pair("prompt", "login")
                .append_pair("login", name)
                .append_pair("password", "any");
        } else {
            assert!(html.contains("value=\"consent\""), "{html}");
            body.append_pair("prompt", "consent");
        }
        form = Some(body.finish());
    }
    panic!("no redirect to the callback");
}

fn path_and_query(u: &url::Url) -> String {
    format!("{}?{}", u.path(), u.query().unwrap_or(""))
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_openid_login_links_the_identity_and_continues_the_flow() {
    use rampart_auth::UpstreamProvider;
    let idp = rampart_testkit::oidc_provider().unwrap();
    let b = Browser::new(oauth_env(|_| {}).await);
    let auth = b.env.auth();
    // The port of a loopback redirect may vary (native client): IDP_CALLBACK.
    let callback = IDP_CALLBACK;
    let provider = UpstreamProvider {
        new_user_role: Role::Viewer,
        ..test_idp(idp, false)
    };
    auth.add_upstream_provider(&acme(), provider).await.unwrap();
    let challenge = crate::common::challenge(VERIFIER);

    // The login page offers the provider, carrying the authorize request.
    let r = b.send_get(&authorize_uri("acme", Some(&challenge))).await;
    let html = r.text().await.unwrap();
    assert!(html.contains("Sign in with Test IdP"), "{html}");
    let return_to = hidden(&html, "return_to");
    let start_uri = format!(
        "/t/acme/login/upstream/idp?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("return_to", &return_to)
            .finish()
    );
    // An open redirect through return_to is refused.
    let r = b
        .send_get("/t/acme/login/upstream/idp?return_to=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = b.send_get("/t/acme/login/upstream/nosuch").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let begin = |uri: String| b.get(&uri).send();
    let r = begin(start_uri.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let pending = cookies(&r).into_iter().next().unwrap().into_owned();
    assert!(pending.http_only().unwrap_or(false));
    let to_idp = url::Url::parse(&location_of(&r)).unwrap();
    let q: HashMap<_, _> = to_idp.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["redirect_uri"], callback);
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert!(q["state"].len() >= 32 && q["nonce"].len() >= 32);

    // The provider's login page (any name) and consent, then our callback.
    let back = idp_sign_in(to_idp.as_str(), "grace").await;
    let bq: HashMap<_, _> = back.query_pairs().into_owned().collect();
    assert_eq!(bq["state"], q["state"]);
    assert_eq!(bq["iss"], idp.issuer());

    // Refusals first (none consumes the code): no pending cookie, wrong state,
    // a response claiming another issuer.
    let r = b.send_get(&path_and_query(&back)).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let wrong_state =
        path_and_query(&back).replace(&format!("state={}", bq["state"]), "state=forged");
    let r = b.get_with(&wrong_state, &pending).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let mut other_iss = back.clone();
    other_iss
        .query_pairs_mut()
        .clear()
        .extend_pairs(bq.iter().map(|(k, v)| {
            (
                k.as_str(),
                if k == "iss" {
                    "https://evil.example"
                } else {
                    v.as_str()
                },
            )
        }));
    let r = b.get_with(&path_and_query(&other_iss), &pending).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The real callback: session cookie, back to the authorize request.
    let r = b.get_with(&path_and_query(&back), &pending).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location_of(&r), return_to);
    let session = cookies(&r)
        .into_iter()
        .find(|c| c.name() == "rampart_session_acme")
        .unwrap()
        .into_owned();
    // The same code again: the provider refuses it.
    let r = b.get_with(&path_and_query(&back), &pending).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // The authorize request goes on with the upstream session: code → tokens
    // for the linked local user.
    let r = b.get_with(&return_to, &session).await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let code = query_param(&location_of(&r), "code");
    let r = b.redeem(&code).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let t: serde_json::Value = r.json().await.unwrap();
    let info = crate::common::send_json(b.get("/t/acme/oauth/userinfo").header(
        "Authorization",
        format!("Bearer {}", t["access_token"].as_str().unwrap()),
    ))
    .await;
    assert_eq!(info["email"], "grace@upstream.example");
    let first_user = info["sub"].clone();

    // A second login with the same upstream account finds the same user.
    let r = begin(start_uri.clone()).await.unwrap();
    let pending = cookies(&r).into_iter().next().unwrap().into_owned();
    let back = idp_sign_in(&location_of(&r), "grace").await;
    let issuer = idp.issuer();
    let done = complete_upstream(&auth, "acme", &back, Some(&issuer), pending.value())
        .await
        .unwrap();
    assert!(!done.created);
    assert_eq!(serde_json::json!(done.user.id.to_string()), first_user);
    // Another upstream account is another local user; a pending login of
    // one provider cannot finish at another tenant.
    let r = begin(start_uri).await.unwrap();
    let pending = cookies(&r).into_iter().next().unwrap().into_owned();
    let back = idp_sign_in(&location_of(&r), "alan").await;
    assert!(matches!(
        complete_upstream(&auth, "globex", &back, None, pending.value()).await,
        Err(rampart_auth::AuthError::AccessDenied(_))
    ));
    let done = complete_upstream(&auth, "acme", &back, Some(&issuer), pending.value())
        .await
        .unwrap();
    assert!(done.created);
    assert_eq!(done.user.email, "alan@upstream.example");
    assert_ne!(serde_json::json!(done.user.id.to_string()), first_user);
}

/// The project venv's Python with Authlib, or an error saying how to get it.
fn authlib_python() -> std::path::PathBuf {
    let python = rampart_testkit::repo_root().join(".venv/bin/python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import authlib, joserfc, requests"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "Python with Authlib is missing: `python3 -m venv .venv && .venv/bin/pip install authlib requests`, or run ./scripts/test, which does"
    );
    python
}

/// A real third-party client (Python Authlib) against the server on a real
/// port: discovery, PKCE S256 through the login form, code exchange,
/// refresh, revocation, and the access token checked against our JWKS.
#[tokio::test(flavor = "multi_thread")]
async fn authlib_client_drives_the_code_flow() {
    let python = authlib_python();
    // The issuer names the port the client will use.
    let port = rampart_testkit::free_port().unwrap();
    let env = oauth_env(|c| {
        c.public_addr = format!("127.0.0.1:{port}").parse().unwrap();
        c.public_base_url = format!("https://localhost:{port}");
    })
    .await;
    let auth = env.auth();
    auth.register_client(
        &acme(),
        &ClientRegistration {
            client_id: "authlib".into(),
            name: "Authlib".into(),
            // A loopback redirect: the port may vary (RFC 8252).
            redirect_uris: vec!["http://127.0.0.1/cb".into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["openid".into(), "email".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();

    let script = rampart_testkit::package_dir().join("tests/authlib_client.py");
    let out = tokio::process::Command::new(python)
        .env("REQUESTS_CA_BUNDLE", &env.pki.files.client_ca_file)
        .arg(script)
        .arg(auth.issuer(&acme()))
        .args([
            "authlib",
            "http://127.0.0.1:53117/cb",
            "ada@example.com",
            PASSWORD,
        ])
        .output()
        .await
        .unwrap();
    env.server.stop().await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "authlib client failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(result["ok"], true);
    assert_eq!(result["alg"], "ES256");
}

const REFRESH_LUA: &str = r#"
-- Each thread rotates its own refresh tokens: pop one, send it, push the
-- successor from the response.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end
function init(args)
  queue = {}
  local per, first, i = tonumber(args[2]), id * tonumber(args[2]), 0
  for line in io.lines(args[1]) do
    if i >= first and i < first + per then table.insert(queue, line) end
    i = i + 1
  end
end
function request()
  local t = table.remove(queue, 1)
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"},
    "grant_type=refresh_token&client_id=web&refresh_token=" .. t)
end
function response(status, headers, body)
  local t = body:match('"refresh_token":"([^"]+)"')
  if t then table.insert(queue, t) end
end
"#;

fn post_lua(body: &str, extra_header: Option<(&str, &str)>) -> String {
    let extra = extra_header
        .map(|(k, v)| format!("wrk.headers[\"{k}\"] = \"{v}\"\n"))
        .unwrap_or_default();
    format!(
        "wrk.method = \"POST\"\nwrk.body = \"{body}\"\nwrk.headers[\"Content-Type\"] = \"application/x-www-form-urlencoded\"\n{extra}"
    )
}

/// Runs wrk and returns (requests/s, full output).
async fn wrk(
    url: &str,
    script: &std::path::Path,
    connections: u32,
    seconds: u32,
    args: &[&str],
) -> (f64, String) {
    let mut cmd = tokio::process::Command::new("wrk");
    cmd.args([
        "-t1",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "-s",
    ])
    .arg(script)
    .arg(url);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    let out = cmd
        .output()
        .await
        .expect("wrk is missing: `apt-get install -y wrk`");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no rate in wrk output:\n{text}"));
    (rps, text)
}

/// HTTP throughput of the token endpoint (refresh grant), introspection and
/// login (Argon2id with the production parameters) against the server on a
/// real port over TLS, measured with wrk. A measurement, not a pass/fail
/// test:
/// `cargo test --release -p rampart-server --test tests -- --ignored --nocapture oauth::http_throughput`
#[tokio::test(flavor = "multi_thread")]
#[ignore = "load measurement: run with --release, needs wrk (apt-get install -y wrk)"]
async fn http_throughput() {
    assert!(
        std::process::Command::new("wrk").arg("-v").output().is_ok(),
        "wrk is missing: `apt-get install -y wrk`"
    );
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let env = oauth_env(|c| {
        // Production Argon2id parameters (m = 19 MiB, t = 2, p = 1).
        let defaults = rampart_auth::AuthConfig::default();
        c.auth.argon2_m_kib = defaults.argon2_m_kib;
        c.auth.argon2_t = defaults.argon2_t;
        c.auth.argon2_p = defaults.argon2_p;
        c.database.max_connections = 16;
        c.http.workers = cores;
        let lots = Quota::new(100_000_000, std::time::Duration::from_secs(60), 10_000_000);
        c.rate_limit.per_ip = lots;
        c.rate_limit.per_tenant = lots;
        c.rate_limit.per_tenant_authenticated = lots;
    })
    .await;
    let base = env.url("");
    // wrk checks no certificate; by address, as it would try `::1` first.
    let wrk_base = format!("https://127.0.0.1:{}", env.addr.port());
    let auth = env.auth();
    let rs_secret = auth
        .register_client(
            &acme(),
            &machine_client(
                "rs",
                "Resource server",
                &[],
                ClientAuthMethod::ClientSecretBasic,
            ),
        )
        .await
        .unwrap()
        .unwrap();

    // Refresh tokens to rotate: code flows through HTTP.
    let browser = Browser::new(env);
    let http = &browser.http;
    let session = crate::common::login(&auth, "acme", "ada@example.com", PASSWORD)
        .await
        .token;
    let challenge = crate::common::challenge(VERIFIER);
    let authorize = format!("{base}{}", authorize_uri("acme", Some(&challenge)));
    let connections = 32;
    let mut refresh_tokens = Vec::new();
    let mut access = String::new();
    for _ in 0..connections * 2 {
        let r = http
            .get(&authorize)
            .header("cookie", format!("rampart_session_acme={session}"))
            .send()
            .await
            .unwrap();
        let code = query_param(&location_of(&r), "code");
        let t = crate::common::send_json(browser.redeem(&code)).await;
        refresh_tokens.push(t["refresh_token"].as_str().unwrap().to_owned());
        access = t["access_token"].as_str().unwrap().to_owned();
    }
    let dir = tempfile::tempdir().unwrap();
    let tokens_file = dir.path().join("refresh_tokens.txt");
    std::fs::write(&tokens_file, refresh_tokens.join("\n") + "\n").unwrap();
    let refresh_lua = dir.path().join("refresh.lua");
    std::fs::write(&refresh_lua, REFRESH_LUA).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("rs:{rs_secret}"));
    let introspect_lua = dir.path().join("introspect.lua");
    std::fs::write(
        &introspect_lua,
        post_lua(
            &format!("token={access}"),
            Some(("Authorization", &format!("Basic {basic}"))),
        ),
    )
    .unwrap();
    let return_to = authorize_uri("acme", Some(&challenge));
    let login_body = form(&[
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("return_to", &return_to),
        ("csrf", "load-test-csrf-token"),
    ]);
    let login_lua = dir.path().join("login.lua");
    // Double submit: the form field and the cookie carry the same value.
    std::fs::write(
        &login_lua,
        post_lua(
            &login_body,
            Some(("Cookie", "rampart_csrf=load-test-csrf-token")),
        ),
    )
    .unwrap();

    let per_thread = (connections * 2).to_string();
    let (refresh_rps, refresh_out) = wrk(
        &format!("{wrk_base}/t/acme/oauth/token"),
        &refresh_lua,
        connections,
        10,
        &[tokens_file.to_str().unwrap(), &per_thread],
    )
    .await;
    let (introspect_rps, introspect_out) = wrk(
        &format!("{wrk_base}/t/acme/oauth/introspect"),
        &introspect_lua,
        connections,
        10,
        &[],
    )
    .await;
    // Argon2id bound: one hash per login, `cores` hashes at a time, so the
    // bound is the rate of `cores` threads doing nothing but hashing (single
    // hash time reported too).
    let (hash_ms, bound) = argon2_bound(&auth).await;
    let (login_rps, login_out) = wrk(
        &format!("{wrk_base}/t/acme/oauth/login"),
        &login_lua,
        8,
        10,
        &[],
    )
    .await;
    browser.env.server.stop().await;
    println!(
        "--- refresh grant\n{refresh_out}\n--- introspection\n{introspect_out}\n--- login\n{login_out}"
    );
    println!(
        "RESULT refresh {refresh_rps:.0}/s, introspection {introspect_rps:.0}/s, login {login_rps:.0}/s; \
         Argon2id {hash_ms:.1} ms/hash, {cores} threads hashing {bound:.0}/s ({:.0} % of that bound)",
        login_rps * 100.0 / bound
    );
    for out in [&refresh_out, &introspect_out, &login_out] {
        assert!(!out.contains("Non-2xx"), "errors under load:\n{out}");
    }
}
