//! Portfolio Intelligence's TradeStation journey over HTTP: an operator
//! configures the `tradestation` preset (its endpoints pointed at the kit's
//! oidc-provider, its API at a local server replaying TradeStation's
//! documented v3 answers), a user signs in through it, their upstream
//! tokens are kept sealed (never in clear in the database), the TradeStation
//! bars route calls the API with the user's own bearer token, an expired
//! access token is refreshed (the rotated refresh token kept), symbol
//! information lands in `market.instruments`, and disconnecting deletes
//! the tokens (revoked at the provider) so the route refuses with
//! `upstream_not_connected`.
use rampart_auth::Role;
use rampart_testkit::OidcProvider;
use rampart_testkit::acme;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{count, exec, mint_token, roomy_limits, url};
use crate::idps::{SIGNED_IN, schema_text, sign_in};
use crate::oauth::{Browser, IDP_CALLBACK};

const BARS: &str = r#"{"Bars":[
 {"High":"188.44","Low":"183.89","Open":"187.15","Close":"185.64","TimeStamp":"2024-01-02T21:00:00Z","TotalVolume":"82488682","DownTicks":1,"UpTicks":2,"IsRealtime":false,"IsEndOfHistory":false,"BarStatus":"Closed"},
 {"High":"185.88","Low":"183.43","Open":"184.22","Close":"184.25","TimeStamp":"2024-01-03T21:00:00Z","TotalVolume":"58414460","BarStatus":"Closed"}
]}"#;

const SYMBOLS: &str = r#"{"Symbols":[{"AssetType":"STOCK","Country":"United States","Currency":"USD","Description":"Apple Inc","Exchange":"NASDAQ","Symbol":"AAPL","PriceFormat":{"Format":"Decimal","Decimals":"2"}}],"Errors":[]}"#;

/// The bearer tokens the replay server was called with, in order.
async fn bearers(api: &MockServer) -> Vec<String> {
    api.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v3/"))
        .map(|r| {
            r.headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        })
        .collect()
}

/// The sealed tokens column of `acme`'s row (one connection).
async fn sealed(env: &crate::common::Env) -> String {
    let dump = schema_text(env, "acme").await;
    dump.lines()
        .find(|l| l.contains("dev:v1:"))
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_signs_in_with_tradestation_and_reads_bars_with_their_own_token() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let api = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v3/marketdata/barcharts/AAPL"))
        .and(query_param("interval", "1"))
        .and(query_param("unit", "Daily"))
        .and(query_param("firstdate", "2024-01-02"))
        .and(query_param("lastdate", "2024-01-03"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(BARS, "application/json"))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/v3/marketdata/symbols/AAPL"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(SYMBOLS, "application/json"))
        .mount(&api)
        .await;
    Mock::given(method("POST"))
        .and(path("/oauth/revoke"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&api)
        .await;
    let api_url = api.uri();
    let b = Browser::new(
        crate::common::env_with(|c| {
            roomy_limits(c);
            // Sealed like members' broker keys: the development transit key.
            c.dev_transit = true;
            c.tradestation.api_url = api_url.clone();
        })
        .await,
    );
    let env = &b.env;
    let ops = env.pki.client(Some(&env.pki.operator()));

    // The operator configures the preset; only the endpoints are pointed
    // at the local provider (TradeStation's own are filled in otherwise).
    let iss = idp.issuer();
    let r = ops
        .post(url(env.server.admin_addr, "/admin/t/acme/idps"))
        .json(&json!({
            "preset": "tradestation", "name": "idp",
            "clientId": OidcProvider::CLIENT_ID, "redirectUri": IDP_CALLBACK,
            "issuer": iss,
            "authorizationEndpoint": format!("{iss}/auth"),
            "tokenEndpoint": format!("{iss}/token"),
            "jwksUri": format!("{iss}/jwks"),
            "revocationEndpoint": format!("{}/oauth/revoke", api.uri()),
            // oidc-provider follows OpenID Connect strictly: a refresh
            // token for `offline_access` only with consent asked for.
            "prompt": "consent",
        }))
        .send()
        .await
        .unwrap();
    let created: Value = r.json().await.unwrap();
    let p = &created["data"];
    assert_eq!(p["preset"], "tradestation", "{created}");
    assert_eq!(p["displayName"], "TradeStation");
    assert_eq!(p["audience"], "https://api.tradestation.com");
    assert_eq!(
        p["userinfoEndpoint"],
        "https://signin.tradestation.com/userinfo"
    );
    assert_eq!(
        p["scopes"],
        json!(["offline_access", "profile", "MarketData", "ReadAccount"])
    );
    // The authorization request carries the audience and the scopes.
    let start = env
        .auth()
        .upstream()
        .begin_login(&acme(), "idp", None)
        .await
        .unwrap();
    let auth_url = url::Url::parse(&start.authorization_url).unwrap();
    let q: std::collections::HashMap<_, _> = auth_url.query_pairs().into_owned().collect();
    assert_eq!(q["audience"], "https://api.tradestation.com");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(
        q["scope"],
        "openid offline_access profile MarketData ReadAccount"
    );

    // The user signs in through TradeStation (no `email` scope: the
    // user is found by the `name` the `profile` scope gives).
    assert_eq!(sign_in(&b, "acme", "idp", "trader-ts").await, SIGNED_IN);
    let user = env
        .auth()
        .accounts()
        .list_users(&acme(), None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.display_name == "trader-ts")
        .unwrap();
    let token = mint_token(&env.state, "acme", user.id.into(), Role::Viewer, "web").await;
    let me = env.with(&token);
    let listed = me.get(200, "/api/v1/t/acme/me/connections").await;
    let conns = listed["data"]["connections"].as_array().unwrap();
    assert_eq!(conns.len(), 1, "{listed}");
    assert_eq!(conns[0]["provider"], "idp");
    assert_eq!(conns[0]["preset"], "tradestation");
    let listed_text = listed.to_string();

    // Bars through the user's own token.
    let bars_path = "/api/v1/t/acme/market/tradestation/bars/AAPL?from=2024-01-02&to=2024-01-03";
    let bars = me.get(200, bars_path).await;
    let list = bars["data"]["bars"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{bars}");
    assert_eq!(list[0]["date"], "2024-01-02");
    assert_eq!(list[0]["close"], 185.64);
    assert_eq!(list[1]["volume"], 58_414_460);
    let seen = bearers(&api).await;
    assert_eq!(seen.len(), 1);
    let first = seen[0].strip_prefix("Bearer ").unwrap().to_owned();
    assert!(first.len() > 10, "{first}");
    // Sealed in the database: the token is nowhere in clear, nor in an answer.
    let dump = schema_text(env, "acme").await;
    assert!(
        !dump.contains(&first),
        "access token in clear in the database"
    );
    let before = sealed(env).await;
    assert!(before.contains("dev:v1:"), "{before}");
    assert!(!listed_text.contains(&first) && !bars.to_string().contains(&first));

    // Symbol information is recorded as an instrument.
    let symbols = me
        .get(200, "/api/v1/t/acme/market/tradestation/symbols/AAPL")
        .await;
    assert_eq!(
        symbols["data"]["symbols"][0]["name"], "Apple Inc",
        "{symbols}"
    );
    let instrument = env
        .state
        .market
        .store()
        .unwrap()
        .instrument("AAPL")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            instrument.name.as_str(),
            instrument.exchange.as_deref(),
            instrument.asset_type.as_deref()
        ),
        ("Apple Inc", Some("NASDAQ"), Some("STOCK"))
    );

    // The access token expires: the next call refreshes it first (and the
    // rotated refresh token is kept).
    exec(
        &env.state,
        "acme",
        "UPDATE upstream_tokens SET access_expires_at = now() - interval '1 minute'".into(),
    )
    .await;
    me.get(200, bars_path).await;
    let seen = bearers(&api).await;
    let last = seen.last().unwrap().strip_prefix("Bearer ").unwrap();
    assert_ne!(last, first, "the expired token was used");
    assert_ne!(
        sealed(env).await,
        before,
        "the refreshed tokens were not stored"
    );
    assert_eq!(
        count(
            &env.state,
            "acme",
            "SELECT count(*) AS n FROM upstream_tokens WHERE access_expires_at > now()"
        )
        .await,
        1
    );
    assert!(!schema_text(env, "acme").await.contains(last));

    // Disconnecting deletes the tokens and revokes the refresh token.
    let out = me.delete(200, "/api/v1/t/acme/me/connections/idp").await;
    assert_eq!(out["data"]["disconnected"], true);
    let revoked: Vec<String> = api
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/oauth/revoke")
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(revoked.len(), 1);
    assert!(
        revoked[0].contains("token_type_hint=refresh_token"),
        "{revoked:?}"
    );
    assert_eq!(
        count(
            &env.state,
            "acme",
            "SELECT count(*) AS n FROM upstream_tokens"
        )
        .await,
        0
    );
    let listed = me.get(200, "/api/v1/t/acme/me/connections").await;
    assert_eq!(listed["data"]["connections"], json!([]));
    let refused = me.get(409, bars_path).await;
    assert_eq!(
        refused["error"]["code"], "upstream_not_connected",
        "{refused}"
    );
    me.delete(404, "/api/v1/t/acme/me/connections/idp").await;
    assert_eq!(bearers(&api).await.len(), 3, "no call without a connection");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_connection_the_tradestation_routes_refuse() {
    let env = crate::common::env().await;
    let user = env
        .auth()
        .register(
            &acme(),
            "nots@acme.example",
            "Test",
            crate::common::PASSWORD,
            Role::Viewer,
        )
        .await
        .unwrap();
    let token = mint_token(&env.state, "acme", user.id.into(), Role::Viewer, "web").await;
    for p in [
        "/api/v1/t/acme/market/tradestation/bars/AAPL",
        "/api/v1/t/acme/market/tradestation/symbols/AAPL,MSFT",
    ] {
        let v = env.with(&token).get(409, p).await;
        assert_eq!(v["error"]["code"], "upstream_not_connected", "{v}");
    }
    let v = env
        .with(&token)
        .get(
            400,
            "/api/v1/t/acme/market/tradestation/bars/AAPL?from=2024-02-01&to=2024-01-01",
        )
        .await;
    assert_eq!(v["error"]["code"], "invalid_request", "{v}");
}
