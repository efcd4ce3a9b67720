//! Users (profile, preferences, own activity, tenant-admin management), the
//! browser-export JSON import and the market routes (batch quotes, daily
//! bars, symbol search) over real TLS against real PostgreSQL, with their
//! refusals (no token, wrong role or scope, wrong tenant, malformed bodies).
use crate::common::{
    Env, PASSWORD, Ws, assert_ws_refused, map_items, next_json, role_token, scoped_token, strs,
    ws_connect, ws_send,
};
use rampart_auth::{AuthServer, ClientContext, Role};
use rampart_testkit::acme;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const SCOPES: &str = "portfolio:read portfolio:write analytics:read market:read";
const ADMIN_SCOPES: &str =
    "portfolio:read portfolio:write analytics:read market:read users:manage tenant:admin";
/// A token without `market:read`.
const NO_MARKET_SCOPES: &str = "portfolio:read portfolio:write";

/// Registers a user and gets an access token through the authorization
/// code flow with PKCE (login → code → token).
async fn user_token(auth: &AuthServer, tenant: &str, email: &str, role: Role) -> (Uuid, String) {
    role_token(auth, tenant, email, role, (SCOPES, ADMIN_SCOPES)).await
}

/// [`crate::common::env`] with a user and token for each of `users`
/// (`name@{tenant}.test`, role): [`crate::common::env_with_users`] with this
/// file's scopes.
async fn env_with_users<const N: usize>(users: [(&str, Role); N]) -> (Env, [(Uuid, String); N]) {
    crate::common::env_with_users((SCOPES, ADMIN_SCOPES), users).await
}

/// A trader of `acme` whose token lacks `market:read`.
async fn no_market_token(auth: &AuthServer) -> String {
    let (_, token) = scoped_token(
        auth,
        "acme",
        "nom@acme.test",
        Role::Trader,
        NO_MARKET_SCOPES,
    )
    .await;
    token
}

const T: &str = "/api/v1/t/acme";

/// `GET path` (a market route) is refused without a token (401) and with
/// `no_market`, a token without `market:read` (403).
async fn refused_without_market(env: &Env, path: &str, no_market: &str) {
    env.expect(401, Method::GET, path, None, None).await;
    env.expect_get(403, path, no_market).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn market_routes_batch_quotes_bars_and_search_with_provenance() {
    let (env, [(_, viewer), (_, globex)]) = env_with_users([
        ("vic@acme.test", Role::Viewer),
        ("gil@globex.test", Role::Admin),
    ])
    .await;
    let no_market = no_market_token(&env.auth()).await;

    // Batch quotes: known ones with provenance, unknown ones as errors.
    let path = format!("{T}/quotes?symbols=aapl,MSFT,%5EGSPC,ZZZZ,msft");
    let body = env.expect_get(200, &path, &viewer).await;
    let quotes = body["data"]["quotes"].as_array().unwrap();
    assert_eq!(quotes.len(), 3, "{body}");
    let symbols: Vec<&str> = quotes
        .iter()
        .map(|q| q["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["AAPL", "MSFT", "^GSPC"]);
    for q in quotes {
        assert!(q["quote"]["price"].as_f64().unwrap() > 0.0, "{q}");
        assert_eq!(q["source"]["layer"], "provider", "{q}");
        assert!(q["ageMs"].is_u64() && q["stale"] == false, "{q}");
    }
    assert_eq!(
        body["data"]["errors"],
        json!([{"symbol": "ZZZZ", "code": "unknown_symbol"}])
    );
    // Asked again: the in-process cache answers.
    let (_, body) = env.get(&format!("{T}/quotes?symbols=AAPL"), &viewer).await;
    assert_eq!(body["data"]["quotes"][0]["source"]["layer"], "l1", "{body}");
    assert_eq!(body["data"]["quotes"][0]["origin"], "embedded", "{body}");

    // Daily bars.
    let body = env
        .expect_get(
            200,
            &format!("{T}/bars/%5Egspc?from=2008-01-01&to=2008-01-31"),
            &viewer,
        )
        .await;
    let d = &body["data"];
    assert_eq!(d["symbol"], "^GSPC");
    let bars = d["bars"].as_array().unwrap();
    assert!((19..=23).contains(&bars.len()), "{}", bars.len());
    assert_eq!(bars[0]["date"], "2008-01-02");
    assert!(d["source"].is_object() && d["ageMs"].is_u64());
    env.expect_get(
        404,
        &format!("{T}/bars/ZZZZ?from=2008-01-01&to=2008-01-31"),
        &viewer,
    )
    .await;

    // Search.
    let body = env
        .expect_get(200, &format!("{T}/symbols?q=micro"), &viewer)
        .await;
    assert!(
        body["data"]["matches"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["symbol"] == "MSFT"),
        "{body}"
    );
    assert_eq!(body["data"]["source"]["layer"], "provider");
    let (_, body) = env.get(&format!("{T}/symbols?q=MICRO"), &viewer).await;
    assert_eq!(body["data"]["source"]["layer"], "l1", "cached: {body}");
    assert_eq!(body["data"]["origin"], "embedded");

    // Every route of this file is in the OpenAPI document.
    let (_, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    for path in [
        "/api/v1/t/{tenant}/quotes",
        "/api/v1/t/{tenant}/bars/{symbol}",
        "/api/v1/t/{tenant}/symbols",
        "/api/v1/t/{tenant}/me/profile",
        "/api/v1/t/{tenant}/me/preferences",
        "/api/v1/t/{tenant}/me/activity",
        "/api/v1/t/{tenant}/me/import",
        "/api/v1/t/{tenant}/users",
        "/api/v1/t/{tenant}/users/{id}/role",
        "/api/v1/t/{tenant}/users/{id}/status",
        "/api/v1/t/{tenant}/portfolios/{id}/stream",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} not in /openapi.json"
        );
    }

    // Refusals.
    for bad in [
        format!("{T}/quotes?symbols="),
        format!("{T}/quotes?symbols=A%20B"),
        format!(
            "{T}/quotes?symbols={}",
            (0..51)
                .map(|i| format!("S{i}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
        format!("{T}/quotes"),
        format!("{T}/bars/AAPL?from=2009-01-01&to=2008-01-01"),
        format!("{T}/bars/AAPL?from=yesterday"),
        format!("{T}/bars/A%20B"),
        format!("{T}/symbols?q=%20"),
        format!("{T}/symbols"),
    ] {
        env.expect_get(400, &bad, &viewer).await;
    }
    for path in [
        format!("{T}/quotes?symbols=AAPL"),
        format!("{T}/bars/AAPL"),
        format!("{T}/symbols?q=apple"),
    ] {
        refused_without_market(&env, &path, &no_market).await;
        // A token of another tenant.
        env.expect_get(401, &path, &globex).await;
    }
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_preferences_activity_and_user_management() {
    let (env, users) = env_with_users([
        ("adm@acme.test", Role::Admin),
        ("ada@acme.test", Role::Trader),
        ("vic@acme.test", Role::Viewer),
        ("gil@globex.test", Role::Admin),
    ])
    .await;
    let [
        (admin_id, admin),
        (ada_id, ada),
        (vic_id, vic),
        (gil_id, globex),
    ] = users;
    let auth = env.auth();

    // Profile.
    let profile = format!("{T}/me/profile");
    let body = env.expect_get(200, &profile, &ada).await;
    assert_eq!(body["data"]["id"], ada_id.to_string());
    assert_eq!(body["data"]["email"], "ada@acme.test");
    assert_eq!(body["data"]["role"], "trader");
    let body = env
        .with(&ada)
        .patch(200, &profile, json!({"display_name": "  Ada Lovelace "}))
        .await;
    assert_eq!(body["data"]["display_name"], "Ada Lovelace", "{body}");
    let bad_profiles = [
        json!({"display_name": ""}),
        json!({"display_name": "x".repeat(101)}),
        json!({"display_name": "a\u{7}b"}),
        json!({"email": "evil@acme.test"}),
        json!({"display_name": 5}),
    ];
    env.with(&ada)
        .each(400, Method::PATCH, &profile, bad_profiles)
        .await;

    // Preferences: defaults, partial change, refusals.
    let preferences = format!("{T}/me/preferences");
    let body = env.expect_get(200, &preferences, &ada).await;
    assert_eq!(
        body["data"],
        json!({"base_currency": "USD", "theme": "system", "default_benchmark": "^GSPC",
               "notifications": true, "refresh_seconds": 15, "weekly_report": false})
    );
    let body = env
        .with(&ada)
        .patch(
            200,
            &preferences,
            json!({"theme": "dark", "base_currency": "eur", "notifications": false}),
        )
        .await;
    assert_eq!(body["data"]["theme"], "dark");
    assert_eq!(body["data"]["base_currency"], "EUR");
    assert_eq!(body["data"]["notifications"], false);
    assert_eq!(body["data"]["default_benchmark"], "^GSPC");
    let (_, body) = env
        .call(
            Method::PATCH,
            &preferences,
            Some(&ada),
            Some(json!({"default_benchmark": "qqq"})),
        )
        .await;
    assert_eq!(body["data"]["theme"], "dark", "kept: {body}");
    assert_eq!(body["data"]["default_benchmark"], "QQQ");
    let bad_preferences = [
        json!({"theme": "pink"}),
        json!({"base_currency": "euro"}),
        json!({"refresh_seconds": 1}),
        json!({"default_benchmark": "a b"}),
        json!({"colour": "red"}),
        json!([1, 2]),
    ];
    env.with(&ada)
        .each(400, Method::PATCH, &preferences, bad_preferences)
        .await;
    // Someone else's preferences are untouched.
    let (_, body) = env.get(&preferences, &vic).await;
    assert_eq!(body["data"]["theme"], "system");

    // Own activity: portfolio changes and auth audit rows.
    let body = env
        .with(&ada)
        .post(201, &format!("{T}/portfolios"), json!({"name": "Core"}))
        .await;
    let pid = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = env.get(&format!("{T}/me/activity"), &ada).await;
    assert_eq!(s, 200, "{body}");
    let portfolio = body["data"]["portfolio"].as_array().unwrap();
    assert_eq!(portfolio.len(), 1, "{body}");
    assert_eq!(portfolio[0]["portfolio_id"], pid.as_str());
    assert_eq!(portfolio[0]["action"], "create");
    let audit = body["data"]["auth"].as_array().unwrap();
    assert!(!audit.is_empty(), "{body}");
    assert!(audit.iter().all(|a| a["action"].is_string()));
    let (_, body) = env.get(&format!("{T}/me/activity"), &vic).await;
    assert_eq!(body["data"]["portfolio"], json!([]), "only one's own");

    // Admin: list users.
    let body = env
        .expect_get(200, &format!("{T}/users?limit=2"), &admin)
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    let cursor = body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, body2) = env
        .get(&format!("{T}/users?limit=2&cursor={cursor}"), &admin)
        .await;
    assert_eq!(body2["data"].as_array().unwrap().len(), 1, "{body2}");
    assert!(body2["meta"]["nextCursor"].is_null());
    let all: Vec<Value> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .chain(body2["data"].as_array().unwrap())
        .cloned()
        .collect();
    assert!(all.iter().all(|u| u["email"] != "gil@globex.test"));

    // Admin: role and status.
    let (vic_role, vic_status) = (
        format!("{T}/users/{vic_id}/role"),
        format!("{T}/users/{vic_id}/status"),
    );
    let as_admin = env.with(&admin);
    let body = as_admin
        .put(200, &vic_role, json!({"role": "trader"}))
        .await;
    assert_eq!(body["data"]["role"], "trader");
    let body = as_admin
        .put(200, &vic_status, json!({"status": "disabled"}))
        .await;
    assert_eq!(body["data"]["status"], "disabled");
    // The access token the user holds is refused at once (it was accepted
    // above, so a cached "not revoked" verdict must have been dropped).
    let (s, body) = env.get(&format!("{T}/me/activity"), &vic).await;
    assert_eq!(s, 401, "disabled user's access token: {body}");
    // A disabled user cannot sign in again.
    let vic_logs_in = async || {
        matches!(
            auth.login(
                &acme(),
                "vic@acme.test",
                PASSWORD,
                &ClientContext::ip("127.0.0.1")
            )
            .await,
            Ok(rampart_auth::accounts::LoginOutcome::LoggedIn(_))
        )
    };
    assert!(!vic_logs_in().await, "disabled user logged in");
    let body = as_admin
        .put(200, &vic_status, json!({"status": "active"}))
        .await;
    assert_eq!(body["data"]["status"], "active");
    assert!(vic_logs_in().await);

    // Refusals: malformed bodies, self-lockout, unknown user, wrong role,
    // wrong tenant, no token.
    let bad_roles = [
        json!({"role": "root"}),
        json!({"role": "api_user"}),
        json!({}),
        json!({"role": "viewer", "x": 1}),
    ];
    as_admin.each(400, Method::PUT, &vic_role, bad_roles).await;
    for (path, bad) in [
        (vic_status, json!({"status": "gone"})),
        (
            format!("{T}/users/{admin_id}/role"),
            json!({"role": "viewer"}),
        ),
        (
            format!("{T}/users/{admin_id}/status"),
            json!({"status": "disabled"}),
        ),
        (
            format!("{T}/users/not-a-uuid/role"),
            json!({"role": "viewer"}),
        ),
    ] {
        as_admin.put(400, &path, bad).await;
    }
    as_admin
        .put(
            404,
            &format!("{T}/users/{}/role", Uuid::new_v4()),
            json!({"role": "viewer"}),
        )
        .await;
    // A user of another tenant is not found here.
    as_admin
        .put(
            404,
            &format!("{T}/users/{gil_id}/status"),
            json!({"status": "disabled"}),
        )
        .await;
    for (method, path, body) in [
        (Method::GET, format!("{T}/users"), None),
        (
            Method::PUT,
            format!("{T}/users/{ada_id}/role"),
            Some(json!({"role": "admin"})),
        ),
        (
            Method::PUT,
            format!("{T}/users/{ada_id}/status"),
            Some(json!({"status": "disabled"})),
        ),
    ] {
        // A trader, a token of another tenant, no token.
        for (status, bearer) in [(403, Some(&ada)), (401, Some(&globex)), (401, None)] {
            let bearer = bearer.map(String::as_str);
            env.expect(status, method.clone(), &path, bearer, body.clone())
                .await;
        }
    }
    for path in [&profile, &preferences, &format!("{T}/me/activity")] {
        env.expect(401, Method::GET, path, None, None).await;
        env.expect_get(401, path, &globex).await;
    }
    // Unchanged after the refusals.
    let (_, body) = env.get(&profile, &ada).await;
    assert_eq!(
        (
            body["data"]["role"].as_str(),
            body["data"]["status"].as_str()
        ),
        (Some("trader"), Some("active"))
    );
    env.server.stop().await;
}

fn export() -> Value {
    json!({
        "version": 1,
        "exportedAt": "2024-06-01T10:00:00.000Z",
        "portfolios": [
            {
                "id": "p-1700000000001",
                "name": "Retirement",
                "description": "long term",
                "createdAt": "2024-01-01T00:00:00.000Z",
                "investments": [
                    {"id": "i-1", "symbol": "aapl", "name": "Apple Inc.", "shares": 10,
                     "purchasePrice": 150.0, "purchaseDate": "2024-01-15", "sector": "Technology"},
                    {"id": "i-2", "symbol": "MSFT", "shares": "5.5",
                     "purchasePrice": 300, "purchaseDate": "2024-02-01T00:00:00.000Z"}
                ]
            },
            {"id": "p-1700000000002", "name": "Play money", "investments": []}
        ]
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn json_import_is_validated_idempotent_and_reported_item_by_item() {
    let (env, [(_, ada), (_, bob), (_, vic), (_, globex)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Trader),
        ("vic@acme.test", Role::Viewer),
        ("gil@globex.test", Role::Trader),
    ])
    .await;
    let import = format!("{T}/me/import");
    let count = |token: String| {
        let env = &env;
        async move {
            let (_, body) = env.get(&format!("{T}/portfolios"), &token).await;
            body["data"].as_array().unwrap().len()
        }
    };

    // A broken export: every problem reported, item by item; nothing applied.
    let mut broken = export();
    broken["portfolios"].as_array_mut().unwrap().extend([
        json!({"id": "p-3", "name": "Bad", "investments": [
            {"symbol": "GOOD", "shares": 1},
            {"symbol": "", "shares": -1, "purchaseDate": "15/01/2024"},
            {"symbol": "IBM"},
            "not an object"
        ]}),
        json!({"name": "No id"}),
        json!({"id": "p-1700000000002", "name": "Duplicate id"}),
        json!({"id": "p-6", "name": "Bad currency", "currency": "dollars"}),
    ]);
    let body = env.with(&ada).post(422, &import, broken).await;
    assert_eq!(body["error"]["code"], "import_rejected");
    let report = &body["error"]["details"];
    assert_eq!(report["applied"], false);
    assert_eq!(report["refused"], 4, "{report}");
    let items = report["items"].as_array().unwrap();
    assert_eq!(items.len(), 6);
    assert_eq!(items[0]["outcome"], "created");
    assert_eq!(items[1]["outcome"], "created");
    assert_eq!(items[2]["outcome"], "refused");
    let reasons: Vec<&str> = map_items(&items[2]["reasons"], |r| r.as_str().unwrap());
    for prefix in [
        "portfolios[2].investments[1].symbol",
        "portfolios[2].investments[1].purchaseDate",
        "portfolios[2].investments[2].shares",
        "portfolios[2].investments[3]",
    ] {
        assert!(reasons.iter().any(|r| r.starts_with(prefix)), "{reasons:?}");
    }
    assert!(items[3]["reasons"][0].as_str().unwrap().contains(".id"));
    assert!(
        items[4]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("appears twice")
    );
    assert!(
        items[5]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("currency")
    );
    assert_eq!(count(ada.clone()).await, 0, "nothing half-applied");

    // The valid export.
    let body = env.with(&ada).post(200, &import, export()).await;
    let report = &body["data"];
    assert_eq!(
        (&report["applied"], &report["created"], &report["skipped"]),
        (&json!(true), &json!(2), &json!(0)),
        "{report}"
    );
    let first = report["items"][0]["portfolio_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, body) = env.get(&format!("{T}/portfolios/{first}"), &ada).await;
    let p = &body["data"];
    assert_eq!(p["name"], "Retirement");
    assert_eq!(p["description"], "long term");
    assert_eq!(p["settings"]["import_id"], "p-1700000000001");
    assert_eq!(p["version"], 1);
    let positions = p["positions"].as_array().unwrap();
    assert_eq!(positions.len(), 2);
    assert_eq!(positions[0]["symbol"], "AAPL");
    assert_eq!(positions[0]["quantity"], 10.0);
    assert_eq!(positions[0]["purchase_price"], 150.0);
    assert_eq!(positions[0]["purchase_date"], "2024-01-15");
    assert_eq!(positions[0]["sector"], "Technology");
    assert_eq!(positions[0]["notes"], "Apple Inc.");
    assert_eq!(positions[1]["quantity"], 5.5);
    assert_eq!(positions[1]["purchase_date"], "2024-02-01");
    let (_, body) = env
        .get(&format!("{T}/portfolios/{first}/activity"), &ada)
        .await;
    assert_eq!(body["data"][0]["action"], "import");

    // Re-import: nothing new.
    let body = env.with(&ada).post(200, &import, export()).await;
    assert_eq!(
        (&body["data"]["created"], &body["data"]["skipped"]),
        (&json!(0), &json!(2))
    );
    assert_eq!(body["data"]["items"][0]["portfolio_id"], first.as_str());
    assert_eq!(count(ada.clone()).await, 2);
    // Another user importing the same export gets their own copies.
    let (s, body) = env
        .call(Method::POST, &import, Some(&bob), Some(export()))
        .await;
    assert_eq!((s, &body["data"]["created"]), (200, &json!(2)));
    // A bare array of portfolios is accepted too.
    let bare =
        json!([{"id": "p-9", "name": "Bare", "investments": [{"symbol": "IBM", "quantity": 3}]}]);
    let (s, body) = env
        .call(Method::POST, &import, Some(&ada), Some(bare))
        .await;
    assert_eq!((s, &body["data"]["created"]), (200, &json!(1)), "{body}");
    assert_eq!(count(ada.clone()).await, 3);

    // Not an export, malformed JSON, wrong role, wrong tenant, no token.
    let not_exports = [
        json!({"portfolio": []}),
        json!({"portfolios": {}}),
        json!("text"),
    ];
    env.with(&ada)
        .each(400, Method::POST, &import, not_exports)
        .await;
    let (s, _) = env
        .raw(
            Method::POST,
            &import,
            Some(&ada),
            "application/json",
            b"{\"portfolios\": [".to_vec(),
        )
        .await;
    assert_eq!(s, 400);
    env.with(&vic).post(403, &import, export()).await;
    env.with(&globex).post(401, &import, export()).await;
    let (s, _) = env.call(Method::POST, &import, None, Some(export())).await;
    assert_eq!(s, 401);
    assert_eq!(count(ada.clone()).await, 3);
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn live_price_stream_over_websocket_with_token_and_access_checks() {
    let (env, [(_, ada), (bob_id, bob), (_, globex)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Viewer),
        ("gil@globex.test", Role::Trader),
    ])
    .await;
    let no_market = no_market_token(&env.auth()).await;
    let id = env
        .create(
            &format!("{T}/portfolios"),
            &ada,
            json!({"name": "Live", "positions": [
                {"symbol": "MSFT", "quantity": 1}, {"symbol": "AAPL", "quantity": 2}
            ]}),
        )
        .await;
    let stream = format!("{T}/portfolios/{id}/stream");

    // Token as a query parameter: a message every second.
    let mut ws = ws_query_token(&env, &stream, "interval=1", &ada).await;
    let first = next_json(&mut ws).await.unwrap();
    assert_eq!(first["type"], "quotes", "{first}");
    assert_eq!(first["portfolioId"], id.as_str());
    let symbols = strs(&first["quotes"], "symbol");
    assert_eq!(symbols, ["AAPL", "MSFT"], "{first}");
    for q in first["quotes"].as_array().unwrap() {
        assert!(q["price"].as_f64().unwrap() > 0.0);
        assert!(q["source"].is_object() && q["ageMs"].is_u64(), "{q}");
    }
    let second = next_json(&mut ws).await.unwrap();
    assert_eq!(second["type"], "quotes");
    assert!(second["at"].as_str().unwrap() > first["at"].as_str().unwrap());
    ws.close(None).await.unwrap();

    // Token as the `bearer` subprotocol (what a browser can send).
    let (mut ws, res) = ws_connect(&env, &format!("{stream}?interval=1"), Some(&ada))
        .await
        .unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "bearer");
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "quotes");
    ws.close(None).await.unwrap();

    // Refused: no token, a bad token, another tenant's token, no access to
    // the portfolio, no market:read, an unknown portfolio.
    let unknown = format!("{T}/portfolios/{}/stream", Uuid::new_v4());
    let cases = [
        (None, None, 401),
        (Some("nope"), None, 401),
        (None, Some("nope"), 401),
        (Some(globex.as_str()), None, 401),
        (Some(bob.as_str()), None, 404),
        (Some(no_market.as_str()), None, 403),
    ];
    assert_ws_refused(&env, &stream, &cases).await;
    assert_ws_refused(&env, &unknown, &[(Some(ada.as_str()), None, 404)]).await;

    // A shared user streams until the share is revoked.
    env.with(&ada)
        .post(
            200,
            &format!("{T}/portfolios/{id}/shares"),
            json!({"user_id": bob_id, "access": "view"}),
        )
        .await;
    let mut ws = ws_query_token(&env, &stream, "interval=1", &bob).await;
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "quotes");
    env.with(&ada)
        .delete(200, &format!("{T}/portfolios/{id}/shares/{bob_id}"))
        .await;
    let mut ended = false;
    for _ in 0..5 {
        match next_json(&mut ws).await {
            Some(m) if m["type"] == "closed" => {
                ended = true;
                break;
            }
            Some(_) => {}
            None => {
                ended = true;
                break;
            }
        }
    }
    assert!(ended, "the stream went on after the share was revoked");
    assert!(next_json(&mut ws).await.is_none());
    env.server.stop().await;
}

/// Fundamentals and news through the market chain: an Alpha Vantage
/// adapter against a local server replaying its documented `OVERVIEW` and
/// `NEWS_SENTIMENT` answers, in front of the embedded provider (which has
/// neither). Provenance and the L1 cache like quotes; refusals like the
/// other market routes.
#[tokio::test(flavor = "multi_thread")]
async fn market_fundamentals_and_news_come_through_the_chain_and_are_cached() {
    use wiremock::matchers::{method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let vendor = MockServer::start().await;
    for (function, param, body) in [
        (
            "OVERVIEW",
            "symbol",
            include_str!("../../crates/market/tests/fixtures/alpha_vantage_overview.json"),
        ),
        (
            "NEWS_SENTIMENT",
            "tickers",
            include_str!("../../crates/market/tests/fixtures/alpha_vantage_news.json"),
        ),
    ] {
        Mock::given(method("GET"))
            .and(path("/query"))
            .and(query_param("function", function))
            .and(query_param(param, "IBM"))
            .and(query_param("apikey", "test-key"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1) // the second ask is answered from L1
            .mount(&vendor)
            .await;
    }
    // Alpha Vantage's documented answer for a symbol it does not know.
    for (function, param) in [("OVERVIEW", "symbol"), ("NEWS_SENTIMENT", "tickers")] {
        Mock::given(method("GET"))
            .and(path("/query"))
            .and(query_param("function", function))
            .and(query_param(param, "ZZZZ"))
            .respond_with(ResponseTemplate::new(200).set_body_raw(
                include_str!("../../crates/market/tests/fixtures/alpha_vantage_error.json"),
                "application/json",
            ))
            .mount(&vendor)
            .await;
    }
    let uri = vendor.uri();
    let env = crate::common::env_with(move |c| {
        let embedded = c.market.providers.clone();
        let mut av: rampart_market::ProviderConfig = serde_json::from_value(json!({
            "kind": "alpha_vantage",
            "base_url": uri,
            "api_key": "test-key",
            // Not the free quota (5 calls a minute): this test makes more.
            "rate_limit": {"capacity": 100, "per_second": 100.0, "max_wait_ms": 0},
        }))
        .unwrap();
        av.retry = None;
        c.market.providers = std::iter::once(av).chain(embedded).collect();
    })
    .await;
    let auth = env.auth();
    let (_, viewer) = user_token(&auth, "acme", "vic@acme.test", Role::Viewer).await;
    let no_market = no_market_token(&auth).await;

    let body = env
        .expect_get(200, &format!("{T}/fundamentals/ibm"), &viewer)
        .await;
    let d = &body["data"];
    assert_eq!(d["symbol"], "IBM");
    assert_eq!(d["fundamentals"]["name"], "International Business Machines");
    assert_eq!(d["fundamentals"]["pe_ratio"], 22.19);
    assert_eq!(d["source"]["layer"], "provider", "{body}");
    assert_eq!(d["origin"], "alpha_vantage");
    let (_, body) = env.get(&format!("{T}/fundamentals/IBM"), &viewer).await;
    assert_eq!(body["data"]["source"]["layer"], "l1", "cached: {body}");
    assert_eq!(body["data"]["origin"], "alpha_vantage");

    let body = env
        .expect_get(200, &format!("{T}/news/IBM?limit=5"), &viewer)
        .await;
    let news = body["data"]["news"].as_array().unwrap();
    assert_eq!(news.len(), 1, "{body}");
    assert_eq!(news[0]["headline"], "IBM Unveils New Mainframe");
    assert_eq!(news[0]["published_at"], "2024-03-08T14:30:00Z");
    assert_eq!(body["data"]["source"]["layer"], "provider");
    let (_, body) = env.get(&format!("{T}/news/IBM?limit=5"), &viewer).await;
    assert_eq!(body["data"]["source"]["layer"], "l1", "cached: {body}");

    // Refusals: no token, no market:read, another tenant, bad input.
    for path in [format!("{T}/fundamentals/IBM"), format!("{T}/news/IBM")] {
        refused_without_market(&env, &path, &no_market).await;
        let other = path.replace("/t/acme/", "/t/globex/");
        env.expect_get(401, &other, &viewer).await;
    }
    for path in [
        format!("{T}/news/IBM?limit=0"),
        format!("{T}/news/IBM?limit=51"),
        format!("{T}/news/%3Cscript%3E"),
        format!("{T}/fundamentals/%3Cscript%3E"),
    ] {
        env.expect_get_error(400, "invalid_request", &path, &viewer)
            .await;
    }
    // A symbol the vendor does not answer for: the embedded provider next
    // (its name, no ratios; no articles); one nobody knows: 404.
    let body = env
        .expect_get(200, &format!("{T}/fundamentals/%5EGSPC"), &viewer)
        .await;
    assert_eq!(body["data"]["origin"], "embedded", "{body}");
    assert_eq!(body["data"]["fundamentals"]["name"], "S&P 500 Index");
    assert!(body["data"]["fundamentals"]["pe_ratio"].is_null());
    let body = env
        .expect_get(200, &format!("{T}/news/MSFT"), &viewer)
        .await;
    assert_eq!(body["data"]["news"], json!([]), "{body}");
    assert_eq!(body["data"]["origin"], "embedded");
    for path in [format!("{T}/fundamentals/ZZZZ"), format!("{T}/news/ZZZZ")] {
        env.expect_get_error(404, "not_found", &path, &viewer).await;
    }

    let (_, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    for p in [
        "/api/v1/t/{tenant}/fundamentals/{symbol}",
        "/api/v1/t/{tenant}/news/{symbol}",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} not documented");
    }
}

/// A WebSocket on `stream` with `query` and `token` as the `access_token`
/// query parameter.
async fn ws_query_token(env: &Env, stream: &str, query: &str, token: &str) -> Ws {
    let path = format!("{stream}?{query}&access_token={token}");
    ws_connect(env, &path, None).await.unwrap().0
}

/// The next message that is not a tick's quotes.
async fn next_not_quotes(ws: &mut Ws) -> Value {
    loop {
        let m = next_json(ws).await.unwrap();
        if m["type"] != "quotes" {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn market_stream_subscribes_bounds_heartbeats_and_refuses_like_the_api() {
    let (env, [(_, ada), (_, globex)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("gil@globex.test", Role::Trader),
    ])
    .await;
    let no_market = no_market_token(&env.auth()).await;
    let stream = format!("{T}/market/stream");

    let (mut ws, res) = ws_connect(&env, &format!("{stream}?interval=1"), Some(&ada))
        .await
        .unwrap();
    assert_eq!(res.headers()["sec-websocket-protocol"], "bearer");
    // Subscribing answers the whole set, then its quotes at once.
    ws_send(
        &mut ws,
        json!({"type": "subscribe", "symbols": ["msft", "AAPL"]}),
    )
    .await;
    let sub = next_json(&mut ws).await.unwrap();
    assert_eq!(
        sub,
        json!({"type": "subscribed", "symbols": ["AAPL", "MSFT"]})
    );
    let quotes = next_json(&mut ws).await.unwrap();
    assert_eq!(quotes["type"], "quotes", "{quotes}");
    assert_eq!(
        strs(&quotes["quotes"], "symbol"),
        ["AAPL", "MSFT"],
        "{quotes}"
    );
    assert!(quotes["quotes"][0]["price"].as_f64().unwrap() > 0.0);
    // An unknown symbol is reported per symbol, the others still priced.
    ws_send(&mut ws, json!({"type": "subscribe", "symbols": ["ZZZZ"]})).await;
    let sub = next_not_quotes(&mut ws).await;
    assert_eq!(sub["symbols"], json!(["AAPL", "MSFT", "ZZZZ"]));
    let quotes = next_json(&mut ws).await.unwrap();
    assert_eq!(
        quotes["errors"],
        json!([{"symbol": "ZZZZ", "code": "unknown_symbol"}])
    );
    // Unsubscribe.
    ws_send(
        &mut ws,
        json!({"type": "unsubscribe", "symbols": ["ZZZZ", "msft"]}),
    )
    .await;
    // (A tick of the old set may come before the answer.)
    assert_eq!(next_not_quotes(&mut ws).await["symbols"], json!(["AAPL"]));
    let quotes = next_json(&mut ws).await.unwrap();
    assert_eq!(strs(&quotes["quotes"], "symbol"), ["AAPL"]);
    // Ticks keep coming for the set.
    let tick = next_json(&mut ws).await.unwrap();
    assert_eq!(strs(&tick["quotes"], "symbol"), ["AAPL"], "{tick}");
    // Bad messages and too many symbols: an error, the set unchanged.
    let too_many: Vec<String> = (0..50).map(|i| format!("S{i}")).collect();
    for (bad, code) in [
        (
            json!({"type": "subscribe", "symbols": too_many}),
            "too_many_symbols",
        ),
        (
            json!({"type": "subscribe", "symbols": ["a b"]}),
            "invalid_symbol",
        ),
        (json!({"type": "dance"}), "bad_message"),
        (
            json!({"type": "subscribe", "symbols": "AAPL"}),
            "bad_message",
        ),
    ] {
        ws_send(&mut ws, bad).await;
        let answer = next_not_quotes(&mut ws).await;
        assert_eq!(
            (answer["type"].as_str(), answer["code"].as_str()),
            (Some("error"), Some(code)),
            "{answer}"
        );
    }
    let mut next = next_json(&mut ws).await.unwrap();
    while next["type"] != "quotes" {
        next = next_json(&mut ws).await.unwrap();
    }
    assert_eq!(
        strs(&next["quotes"], "symbol"),
        ["AAPL"],
        "unchanged: {next}"
    );
    ws.close(None).await.unwrap();

    // A client that answers nothing (no pong, no message) for two
    // heartbeats is closed.
    let mut silent = ws_query_token(&env, &stream, "heartbeat=5", &ada).await;
    tokio::time::sleep(std::time::Duration::from_secs(16)).await;
    let last = next_json(&mut silent).await.unwrap();
    assert_eq!(last, json!({"type": "closed", "reason": "heartbeat"}));
    assert_eq!(next_json(&mut silent).await, None);

    // Refused like the API: no token, a bad one, another tenant's, no
    // market:read.
    let cases = [
        (None, None, 401),
        (None, Some("nope"), 401),
        (Some(globex.as_str()), None, 401),
        (Some(no_market.as_str()), None, 403),
    ];
    assert_ws_refused(&env, &stream, &cases).await;
    env.server.stop().await;
}
