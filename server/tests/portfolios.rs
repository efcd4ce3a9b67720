//! `/api/v1/t/{tenant}/portfolios…` over real TLS against real PostgreSQL:
//! CRUD and versions, sharing rights and expiry, comments, activity, CSV,
//! and the refusals (no token, wrong role, wrong tenant, malformed bodies,
//! oversized uploads, broken CSV rows).
use crate::common::{Env, map_items, role_token, strs};
use rampart_auth::{AuthServer, Role};
use rampart_testkit::acme;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

const SCOPES: &str = "portfolio:read portfolio:write analytics:read";
const ADMIN_SCOPES: &str = "portfolio:read portfolio:write analytics:read tenant:admin";

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

const P: &str = "/api/v1/t/acme/portfolios";

/// The body of a share of `access` with `user`.
fn share_body(user: Uuid, access: &str) -> Value {
    json!({"user_id": user, "access": access})
}

/// Shares the portfolio at `pp` (its path) with `user` as `owner` (a token
/// with the right to share) with `access`: the answer (200).
async fn share(env: &Env, pp: &str, owner: &str, user: Uuid, access: &str) -> Value {
    let body = share_body(user, access);
    env.with(owner)
        .post(200, &format!("{pp}/shares"), body)
        .await
}

/// A CSV upload by `PUT` with `bearer`, if any: status and body text.
async fn put_csv(
    env: &Env,
    path: &str,
    bearer: Option<&str>,
    csv: impl Into<Vec<u8>>,
) -> (u16, String) {
    env.raw(Method::PUT, path, bearer, "text/csv", csv.into())
        .await
}

/// The status of a `GET` with `bearer`, if any, whatever the body.
async fn get_status(env: &Env, path: &str, bearer: Option<&str>) -> u16 {
    env.raw(Method::GET, path, bearer, "text/plain", vec![])
        .await
        .0
}

#[tokio::test(flavor = "multi_thread")]
async fn portfolio_crud_versions_activity_and_refusals() {
    let (env, [(ada, owner), (_, viewer)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("vic@acme.test", Role::Viewer),
    ])
    .await;

    // Create with a position.
    let body = env
        .with(&owner)
        .post(
            201,
            P,
            json!({
                "name": "Core", "description": "long only", "base_currency": "usd",
                "settings": {"benchmark": "^GSPC"},
                "positions": [{"symbol": "msft", "quantity": 10, "purchase_price": 25.5,
                               "purchase_date": "2005-01-03", "sector": "Tech"}]
            }),
        )
        .await;
    let p = &body["data"];
    let id = p["id"].as_str().unwrap().to_owned();
    assert_eq!(p["version"], 1);
    assert_eq!(p["access"], "owner");
    assert_eq!(p["owner_id"], ada.to_string());
    assert_eq!(p["base_currency"], "USD");
    assert_eq!(p["positions"][0]["symbol"], "MSFT");
    let pos = p["positions"][0]["id"].as_str().unwrap().to_owned();

    // Read, list.
    let (s, body) = env.get(&format!("{P}/{id}"), &owner).await;
    assert_eq!((s, body["data"]["name"].as_str()), (200, Some("Core")));
    let body = env.expect_get(200, P, &owner).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);

    // Update, positions: each a new version.
    let as_owner = env.with(&owner);
    let body = as_owner
        .patch(
            200,
            &format!("{P}/{id}"),
            json!({"name": "Core 2", "is_public": false}),
        )
        .await;
    assert_eq!(body["data"]["version"], 2, "{body}");
    let body = as_owner
        .post(
            201,
            &format!("{P}/{id}/positions"),
            json!({"symbol": "IBM", "allocation_type": "weight", "target_weight": 0.4}),
        )
        .await;
    assert_eq!(body["data"]["version"], 3, "{body}");
    let body = as_owner
        .put(
            200,
            &format!("{P}/{id}/positions/{pos}"),
            json!({"symbol": "MSFT", "quantity": 12}),
        )
        .await;
    assert_eq!(body["data"]["version"], 4, "{body}");
    let ibm = body["data"]["positions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["symbol"] == "IBM")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = as_owner
        .delete(200, &format!("{P}/{id}/positions/{ibm}"))
        .await;
    assert_eq!(body["data"]["version"], 5, "{body}");
    as_owner
        .delete(404, &format!("{P}/{id}/positions/{ibm}"))
        .await;

    // Versions: paginated, each readable.
    let body = env
        .expect_get(200, &format!("{P}/{id}/versions?limit=2"), &owner)
        .await;
    assert_eq!(body["data"][0]["version"], 5);
    let cursor = body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, body) = env
        .get(
            &format!("{P}/{id}/versions?limit=10&cursor={cursor}"),
            &owner,
        )
        .await;
    assert_eq!(body["data"].as_array().unwrap().len(), 3);
    let body = env
        .expect_get(200, &format!("{P}/{id}/versions/3"), &owner)
        .await;
    assert_eq!(body["data"]["change"], "add_position");
    assert_eq!(
        body["data"]["snapshot"]["positions"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(body["data"]["snapshot"]["positions"][1]["quantity"], 10.0);
    env.expect_get(404, &format!("{P}/{id}/versions/42"), &owner)
        .await;

    // Activity: who, what, before/after, IP.
    let body = env
        .expect_get(200, &format!("{P}/{id}/activity"), &owner)
        .await;
    let items = body["data"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    let update = items.iter().find(|a| a["action"] == "update").unwrap();
    assert_eq!(update["before"]["name"], "Core");
    assert_eq!(update["after"]["name"], "Core 2");
    assert_eq!(update["actor_id"], ada.to_string());
    assert_eq!(update["ip"], "127.0.0.1");
    assert!(update["occurred_at"].is_string());

    // Refusals: no token / garbage token → 401.
    for token in [None, Some("not.a.jwt")] {
        let body = env.expect(401, Method::GET, P, token, None).await;
        assert_eq!(body["error"]["code"], "unauthorized");
        env.expect(401, Method::POST, P, token, Some(json!({"name": "x"})))
            .await;
    }
    // Wrong role: a viewer may read (nothing visible) but not write.
    let (s, body) = env.get(P, &viewer).await;
    assert_eq!((s, body["data"].as_array().map(Vec::len)), (200, Some(0)));
    let body = env
        .with(&viewer)
        .post(403, P, json!({"name": "mine"}))
        .await;
    assert_eq!(body["error"]["code"], "forbidden");
    // Not visible to the viewer: not found, never forbidden.
    env.expect_get(404, &format!("{P}/{id}"), &viewer).await;

    // Malformed bodies and paths.
    for (method, path, body) in [
        (Method::POST, P.to_owned(), json!({"nme": "typo"})),
        (Method::POST, P.to_owned(), json!({"name": ""})),
        (
            Method::POST,
            P.to_owned(),
            json!({"name": "x", "base_currency": "dollars"}),
        ),
        (
            Method::POST,
            P.to_owned(),
            json!({"name": "x", "settings": [1, 2]}),
        ),
        (Method::POST, P.to_owned(), json!({"name": 5})),
        (
            Method::POST,
            format!("{P}/{id}/positions"),
            json!({"symbol": "DROP TABLE", "quantity": 1}),
        ),
        (
            Method::POST,
            format!("{P}/{id}/positions"),
            json!({"symbol": "AAPL", "quantity": -3}),
        ),
        (
            Method::POST,
            format!("{P}/{id}/positions"),
            json!({"symbol": "AAPL", "allocation_type": "weight", "target_weight": 2}),
        ),
        (
            Method::PATCH,
            format!("{P}/{id}"),
            json!({"is_public": "yes"}),
        ),
        (Method::GET, format!("{P}/not-a-uuid"), Value::Null),
        (
            Method::GET,
            format!("{P}/{id}/versions?cursor=zz"),
            Value::Null,
        ),
    ] {
        let body = (!body.is_null()).then_some(body);
        let (s, res) = env
            .call(method.clone(), &path, Some(&owner), body.clone())
            .await;
        assert_eq!(s, 400, "{method} {path} {body:?}: {res}");
        assert_eq!(res["success"], false);
    }
    let (s, _) = env
        .raw(
            Method::POST,
            P,
            Some(&owner),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(s, 400);
    let huge = json!({"name": "x", "description": "a".repeat(2 * 1024 * 1024)});
    env.with(&owner).post(413, P, huge).await;

    // Delete: gone for everyone, then 404.
    env.with(&owner).delete(200, &format!("{P}/{id}")).await;
    env.expect_get(404, &format!("{P}/{id}"), &owner).await;
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sharing_rights_expiry_comments_and_tenant_isolation() {
    let (env, users) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Trader),
        ("eve@acme.test", Role::Trader),
        ("root@acme.test", Role::Admin),
        ("gus@globex.test", Role::Admin),
    ])
    .await;
    let [
        (_, owner),
        (bob, bob_t),
        (eve, eve_t),
        (_, admin_t),
        (gus, gus_t),
    ] = users;

    let id = env
        .create(
            P,
            &owner,
            json!({"name": "Shared", "positions": [{"symbol": "AAPL", "quantity": 1}]}),
        )
        .await;
    let pp = format!("{P}/{id}");

    // Not shared yet: bob gets 404 everywhere.
    for (m, path) in [
        (Method::GET, pp.clone()),
        (Method::GET, format!("{pp}/versions")),
        (Method::GET, format!("{pp}/activity")),
        (Method::GET, format!("{pp}/comments")),
        (Method::GET, format!("{pp}/positions.csv")),
    ] {
        let (s, body) = env.call(m, &path, Some(&bob_t), None).await;
        assert_eq!(s, 404, "{path}: {body}");
    }

    // view: read everything readable, nothing else.
    let body = share(&env, &pp, &owner, bob, "view").await;
    assert_eq!(body["data"]["access"], "view", "{body}");
    let (s, body) = env.get(&pp, &bob_t).await;
    assert_eq!((s, body["data"]["access"].as_str()), (200, Some("view")));
    for path in [
        format!("{pp}/versions"),
        format!("{pp}/versions/1"),
        format!("{pp}/activity"),
        format!("{pp}/comments"),
    ] {
        let (s, _) = env.get(&path, &bob_t).await;
        assert_eq!(s, 200, "{path}");
    }
    let csv = format!("{pp}/positions.csv");
    assert_eq!(get_status(&env, &csv, Some(&bob_t)).await, 200);
    let refused_with_view = [
        (
            Method::POST,
            format!("{pp}/comments"),
            Some(json!({"body": "hi"})),
        ),
        (Method::PATCH, pp.clone(), Some(json!({"name": "mine"}))),
        (
            Method::POST,
            format!("{pp}/positions"),
            Some(json!({"symbol": "IBM", "quantity": 1})),
        ),
        (
            Method::POST,
            format!("{pp}/shares"),
            Some(share_body(eve, "view")),
        ),
        (Method::GET, format!("{pp}/shares"), None),
        (Method::DELETE, pp.clone(), None),
    ];
    for (m, path, b) in refused_with_view.clone() {
        let (s, body) = env.call(m.clone(), &path, Some(&bob_t), b).await;
        assert_eq!(s, 403, "{m} {path}: {body}");
    }

    // comment: may comment (and reply), still not edit.
    share(&env, &pp, &owner, bob, "comment").await;
    let body = env
        .with(&bob_t)
        .post(201, &format!("{pp}/comments"), json!({"body": "why AAPL?"}))
        .await;
    let c1 = body["data"]["id"].as_str().unwrap().to_owned();
    let (s, body) = env
        .call(
            Method::POST,
            &format!("{pp}/comments"),
            Some(&owner),
            Some(json!({"body": "because", "parent_id": c1})),
        )
        .await;
    assert_eq!(
        (s, body["data"]["parent_id"].as_str()),
        (201, Some(c1.as_str()))
    );
    env.with(&owner)
        .post(400, &format!("{pp}/comments"), json!({"body": ""}))
        .await;
    let (_, body) = env.get(&format!("{pp}/comments"), &bob_t).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    env.with(&bob_t)
        .patch(403, &pp, json!({"name": "mine"}))
        .await;

    // edit: may change positions and fields, not share or delete.
    share(&env, &pp, &owner, bob, "edit").await;
    env.with(&bob_t)
        .post(
            201,
            &format!("{pp}/positions"),
            json!({"symbol": "IBM", "quantity": 1}),
        )
        .await;
    env.with(&bob_t)
        .patch(200, &pp, json!({"description": "by bob"}))
        .await;
    env.with(&bob_t)
        .post(403, &format!("{pp}/shares"), share_body(eve, "view"))
        .await;
    env.with(&bob_t).delete(403, &pp).await;

    // admin: may share and revoke.
    share(&env, &pp, &owner, bob, "admin").await;
    share(&env, &pp, &bob_t, eve, "view").await;
    let (s, body) = env.get(&format!("{pp}/shares"), &bob_t).await;
    assert_eq!((s, body["data"].as_array().map(Vec::len)), (200, Some(2)));
    env.expect_get(200, &pp, &eve_t).await;
    env.with(&bob_t)
        .delete(200, &format!("{pp}/shares/{eve}"))
        .await;
    env.expect_get(404, &pp, &eve_t).await;
    env.with(&bob_t)
        .delete(404, &format!("{pp}/shares/{eve}"))
        .await;

    // Share refusals: a user of another tenant, the owner, "owner", past expiry, bad body.
    let bad_shares = [
        share_body(gus, "view"),
        share_body(Uuid::new_v4(), "view"),
        share_body(eve, "owner"),
        share_body(eve, "superuser"),
        json!({"user_id": eve, "access": "view", "expires_at": "2001-01-01T00:00:00Z"}),
        json!({"user": eve}),
    ];
    env.with(&owner)
        .each(400, Method::POST, &format!("{pp}/shares"), bad_shares)
        .await;

    // Expiry: a share that has expired is no share.
    let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    env.with(&owner)
        .post(
            200,
            &format!("{pp}/shares"),
            json!({"user_id": eve, "access": "edit", "expires_at": expires}),
        )
        .await;
    env.with(&eve_t)
        .patch(200, &pp, json!({"description": "eve"}))
        .await;
    let expire = format!(
        "UPDATE document_shares SET expires_at = now() - interval '1 second' WHERE user_id = '{eve}'"
    );
    crate::common::exec(&env.state, "acme", expire).await;
    env.expect_get(404, &pp, &eve_t).await;
    env.with(&eve_t)
        .patch(404, &pp, json!({"description": "eve"}))
        .await;

    // A tenant admin sees every portfolio of the tenant.
    let (s, body) = env.get(&pp, &admin_t).await;
    assert_eq!((s, body["data"]["access"].as_str()), (200, Some("admin")));

    // Public: every user of the tenant may view.
    env.with(&owner)
        .patch(200, &pp, json!({"is_public": true}))
        .await;
    let (s, body) = env.get(&pp, &eve_t).await;
    assert_eq!((s, body["data"]["access"].as_str()), (200, Some("view")));

    // Another tenant: acme's token at globex is refused like no token; globex's
    // own admin asking globex for acme's portfolio id finds nothing.
    let other = format!("/api/v1/t/globex/portfolios/{id}");
    env.expect_get(401, &other, &owner).await;
    for (m, path) in [
        (Method::GET, other.clone()),
        (Method::GET, format!("{other}/versions")),
        (Method::GET, format!("{other}/activity")),
        (Method::DELETE, other.clone()),
    ] {
        env.expect_error((404, "not_found"), m, &path, Some(&gus_t), None)
            .await;
    }
    let (s, body) = env.get("/api/v1/t/globex/portfolios", &gus_t).await;
    assert_eq!((s, body["data"].as_array().map(Vec::len)), (200, Some(0)));
    // And gus's token on acme's path: refused like no token.
    env.expect_get(401, &pp, &gus_t).await;

    // The trail has the sharing history.
    let (_, body) = env.get(&format!("{pp}/activity?limit=100"), &owner).await;
    let actions = strs(&body["data"], "action");
    for a in [
        "create",
        "share",
        "revoke",
        "comment",
        "add_position",
        "update",
    ] {
        assert!(actions.contains(&a), "{a} missing from {actions:?}");
    }
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn csv_import_export_with_row_report_and_limits() {
    let (env, [(_, owner), (bob, bob_t)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Trader),
    ])
    .await;
    let id = env
        .create(
            P,
            &owner,
            json!({"name": "CSV", "positions": [{"symbol": "AAPL", "quantity": 1}]}),
        )
        .await;
    let csv_path = format!("{P}/{id}/positions.csv");

    // Broken rows: 422, each reported, nothing applied.
    let broken = "symbol,quantity,target_weight,purchase_date\nMSFT,10,,2005-01-03\n,1,,\nIBM,ten,,\nGOOG,1,,03/01/2005\nAMZN,1,1.5,\n";
    let (s, text) = put_csv(&env, &csv_path, Some(&owner), broken).await;
    assert_eq!(s, 422, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["error"]["code"], "csv_rejected");
    let details = &body["error"]["details"];
    assert_eq!(details["rows"], 5);
    assert_eq!(details["applied"], 0);
    let rows: Vec<(i64, &str)> = map_items(&details["errors"], |e| {
        (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap())
    });
    assert_eq!(
        rows,
        [
            (3, "symbol"),
            (4, "quantity"),
            (5, "purchase_date"),
            (6, "target_weight")
        ]
    );
    let (_, body) = env.get(&format!("{P}/{id}"), &owner).await;
    assert_eq!(body["data"]["version"], 1);
    assert_eq!(body["data"]["positions"].as_array().unwrap().len(), 1);

    // Ragged row and unknown column.
    for bad in ["symbol,quantity\nMSFT,1,extra\n", "symbol,shares\nMSFT,1\n"] {
        let (s, text) = put_csv(&env, &csv_path, Some(&owner), bad).await;
        assert_eq!(s, 422, "{bad}: {text}");
    }
    // Too large: by bytes, and by rows.
    let big = vec![b'A'; rampart_portfolio::transfer::MAX_BYTES + 10];
    let (s, text) = put_csv(&env, &csv_path, Some(&owner), big).await;
    assert_eq!(s, 413, "{text}");
    let mut many = String::from("symbol,quantity\n");
    for _ in 0..=rampart_portfolio::transfer::MAX_ROWS {
        many.push_str("A,1\n");
    }
    let (s, _) = put_csv(&env, &csv_path, Some(&owner), many).await;
    assert_eq!(s, 413);
    let merge = format!("{csv_path}?mode=merge");
    let (s, _) = put_csv(&env, &merge, Some(&owner), "symbol\nA\n").await;
    assert_eq!(s, 400);

    // Good file: replaces, one new version; append adds.
    let good = "symbol,allocation_type,quantity,target_weight,purchase_price,purchase_date,sector,notes\n\
                MSFT,quantity,10,,25.5,2005-01-03,Tech,core\nIBM,weight,,0.2,,,Tech,\"x, y\"\n";
    let (s, text) = put_csv(&env, &csv_path, Some(&owner), good).await;
    assert_eq!(s, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["data"]["report"]["applied"], 2);
    assert_eq!(body["data"]["portfolio"]["version"], 2);
    let append = format!("{csv_path}?mode=append");
    let (s, _) = put_csv(&env, &append, Some(&owner), "symbol,quantity\nGOOG,3\n").await;
    assert_eq!(s, 200);

    // Export.
    let exported = env.expect_csv(&csv_path, &owner).await;
    let lines: Vec<&str> = exported.lines().collect();
    assert_eq!(
        lines[0],
        "symbol,allocation_type,quantity,target_weight,purchase_price,purchase_date,sector,notes"
    );
    assert_eq!(lines.len(), 4, "{exported}");
    assert!(
        lines.contains(&"MSFT,quantity,10,,25.5,2005-01-03,Tech,core"),
        "{exported}"
    );
    assert!(
        lines.contains(&"IBM,weight,,0.2,,,Tech,\"x, y\""),
        "{exported}"
    );

    // Rights: a viewer may export but not import; unauthenticated neither.
    share(&env, &format!("{P}/{id}"), &owner, bob, "view").await;
    assert_eq!(get_status(&env, &csv_path, Some(&bob_t)).await, 200);
    let (s, _) = put_csv(&env, &csv_path, Some(&bob_t), good).await;
    assert_eq!(s, 403);
    let (s, _) = put_csv(&env, &csv_path, None, good).await;
    assert_eq!(s, 401);
    assert_eq!(get_status(&env, &csv_path, None).await, 401);
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn analytics_series_csv_and_svg_charts_through_the_market_chain() {
    let (env, [(_, owner), (bob, bob_t)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Viewer),
    ])
    .await;
    let id = env.create(P, &owner, json!({"name": "Tech", "positions": [
                {"symbol": "AAPL", "quantity": 100, "target_weight": 0.5, "sector": "Technology"},
                {"symbol": "MSFT", "quantity": 200, "purchase_date": "2006-06-01", "sector": "Technology"},
                {"symbol": "IBM", "quantity": 10, "sector": "Services"}
            ]})).await;
    let q = "from=2005-01-01&to=2009-12-31&benchmark=%5EGSPC";
    let pa = format!("{P}/{id}");

    let (s, body) = env.get(&format!("{pa}/analytics?{q}"), &owner).await;
    assert_eq!(s, 200, "{body}");
    let report = &body["data"]["report"];
    assert_eq!(report["frequency"], "monthly", "{report}");
    assert_eq!(report["benchmark"], "^GSPC");
    let points = report["points"].as_u64().unwrap();
    assert!((50..=61).contains(&points), "{points}");
    assert_eq!(
        body["data"]["series"].as_array().unwrap().len() as u64,
        points
    );
    for key in ["twr", "twr_annualized", "mwr"] {
        assert!(report["performance"][key].is_f64(), "{key}: {report}");
    }
    for key in [
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "beta",
        "var_historical",
        "cvar_historical",
        "var_gaussian",
        "var_cornish_fisher",
    ] {
        assert!(report["risk"][key].is_f64(), "{key}: {report}");
    }
    assert!(
        report["risk"]["cvar_historical"].as_f64() <= report["risk"]["var_historical"].as_f64()
    );
    assert_eq!(report["allocation_by_symbol"].as_array().unwrap().len(), 3);
    assert_eq!(report["allocation_by_sector"].as_array().unwrap().len(), 2);
    let weights: f64 = report["allocation_by_symbol"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["weight"].as_f64().unwrap())
        .sum();
    assert!((weights - 1.0).abs() < 1e-9);
    assert_eq!(report["rebalancing"][0]["symbol"], "AAPL");
    // MSFT bought mid-window is a flow: a jump in NAV, not in the return.
    let series = body["data"]["series"].as_array().unwrap();
    assert!(series.iter().any(|p| p["flow"].as_f64().unwrap() > 0.0));

    // Stored in portfolio_metrics_daily.
    let stored: i64 = env
        .state
        .tenants
        .with_tenant(&acme(), async |conn| {
            use diesel_async::RunQueryDsl;
            #[derive(diesel::QueryableByName)]
            struct N {
                #[diesel(sql_type = diesel::sql_types::BigInt)]
                n: i64,
            }
            let n: N = diesel::sql_query("SELECT count(*) AS n FROM portfolio_metrics_daily")
                .get_result(conn)
                .await?;
            Ok::<_, rampart_tenancy::TenancyError>(n.n)
        })
        .await
        .unwrap();
    assert_eq!(stored as u64, points);

    // CSV and SVG.
    let get = |path: String, token: Option<String>| {
        let mut r = env.http.get(env.url(&path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let res = get(format!("{pa}/performance.csv?{q}"), Some(owner.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = res.text().await.unwrap();
    assert!(
        csv.starts_with("date,nav,daily_return,cumulative_return,volatility_30d,max_drawdown\n")
    );
    assert_eq!(csv.lines().count() as u64, points + 1);
    let res = get(format!("{pa}/charts/equity.svg?{q}"), Some(owner.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("Drawdown") && svg.contains("<polyline"),
        "{svg}"
    );
    let res = get(format!("{pa}/charts/returns.svg?{q}"), Some(owner.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let svg = res.text().await.unwrap();
    assert!(
        svg.contains("VaR 95%") && svg.contains("CVaR 95%") && svg.contains("<rect"),
        "{svg}"
    );

    // No dates: the window ends on the latest day every holding has a price
    // (the embedded monthly data end on 2010-03-01), not today, and says so.
    let res = get(format!("{pa}/charts/equity.svg"), Some(owner.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["rampart-analysis-window"],
        "2005-03-02/2010-03-01; basis=available-data"
    );
    let (s, body) = env.get(&format!("{pa}/analytics"), &owner).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(
        body["data"]["window"],
        json!({"from": "2005-03-02", "to": "2010-03-01", "basis": "available-data"})
    );
    assert!(body["data"]["report"]["points"].as_u64().unwrap() > 50);
    let res = get(format!("{pa}/performance.csv?{q}"), Some(owner.clone()))
        .await
        .unwrap();
    assert_eq!(
        res.headers()["rampart-analysis-window"],
        "2005-01-01/2009-12-31; basis=requested"
    );

    // Correlation of the holdings over the same window: symmetric, unit
    // diagonal, every entry a correlation.
    let (s, body) = env.get(&format!("{pa}/correlation?{q}"), &owner).await;
    assert_eq!(s, 200, "{body}");
    let c = &body["data"]["correlation"];
    assert_eq!(c["symbols"], json!(["AAPL", "IBM", "MSFT"]));
    assert!(c["observations"].as_u64().unwrap() >= 50, "{c}");
    let m: Vec<Vec<f64>> = serde_json::from_value(c["matrix"].clone()).unwrap();
    assert_eq!(m.len(), 3);
    for (i, row) in m.iter().enumerate() {
        assert_eq!(row.len(), 3);
        assert!((row[i] - 1.0).abs() < 1e-12);
        for (j, v) in row.iter().enumerate() {
            assert!((v - m[j][i]).abs() < 1e-12 && v.abs() <= 1.0 + 1e-12);
        }
    }

    // Monte Carlo: seeded, so the same query gives the same numbers and
    // another seed others; bands ordered; the fan chart draws them.
    let mc = format!("{pa}/monte-carlo?{q}&horizon=12&paths=1000&seed=7");
    let (s, first) = env.get(&mc, &owner).await;
    assert_eq!(s, 200, "{first}");
    let (_, again) = env.get(&mc, &owner).await;
    assert_eq!(first["data"], again["data"]);
    let (_, other) = env.get(&mc.replace("seed=7", "seed=8"), &owner).await;
    assert_ne!(first["data"]["bands"], other["data"]["bands"]);
    let d = &first["data"];
    assert_eq!(d["frequency"], "monthly");
    assert_eq!(d["bands"].as_array().unwrap().len(), 12);
    for b in d["bands"].as_array().unwrap() {
        let p = |k: &str| b[k].as_f64().unwrap();
        assert!(
            p("p5") <= p("p25")
                && p("p25") <= p("p50")
                && p("p50") <= p("p75")
                && p("p75") <= p("p95"),
            "{b}"
        );
    }
    assert!(
        d["horizon_cvar"].as_f64() <= d["horizon_var"].as_f64(),
        "{d}"
    );
    assert!(
        d["cvar_one_period"].as_f64() <= d["var_one_period"].as_f64(),
        "{d}"
    );
    let res = get(
        format!("{pa}/charts/fan.svg?{q}&horizon=12&paths=500"),
        Some(owner.clone()),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/svg+xml");
    let svg = res.text().await.unwrap();
    assert!(svg.contains("median") && svg.contains("<polygon"), "{svg}");
    for bad in ["horizon=0", "paths=5", "model=garch", "horizon=9999"] {
        let (s, body) = env.get(&format!("{pa}/monte-carlo?{bad}"), &owner).await;
        assert_eq!(s, 400, "{bad}: {body}");
    }

    // Refusals: no token, not shared (404), bad window, unknown symbol (422).
    for path in [
        format!("{pa}/analytics?{q}"),
        format!("{pa}/performance.csv?{q}"),
        format!("{pa}/charts/equity.svg?{q}"),
        format!("{pa}/charts/returns.svg?{q}"),
        format!("{pa}/correlation?{q}"),
        format!("{pa}/monte-carlo?{q}"),
        format!("{pa}/charts/fan.svg?{q}"),
    ] {
        assert_eq!(
            get(path.clone(), None).await.unwrap().status(),
            401,
            "{path}"
        );
        assert_eq!(
            get(path.clone(), Some(bob_t.clone()))
                .await
                .unwrap()
                .status(),
            404,
            "{path}"
        );
    }
    for bad in [
        "from=2010-01-01&to=2005-01-01",
        "from=yesterday",
        "from=1900-01-01&to=2009-01-01",
    ] {
        let (s, _) = env.get(&format!("{pa}/analytics?{bad}"), &owner).await;
        assert_eq!(s, 400, "{bad}");
    }
    // Shared read-only: the viewer may read the analytics.
    share(&env, &pa, &owner, bob, "view").await;
    env.expect_get(200, &format!("{pa}/analytics?{q}"), &bob_t)
        .await;
    env.call(
        Method::POST,
        &format!("{pa}/positions"),
        Some(&owner),
        Some(json!({"symbol": "ZZZZ", "quantity": 1})),
    )
    .await;
    env.expect_get_error(422, "no_prices", &format!("{pa}/analytics?{q}"), &owner)
        .await;
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nightly_metrics_job_stores_every_portfolio_and_the_metrics_routes_read_it() {
    let (env, [(_, owner), (_, bob_t), (_, globex)]) = env_with_users([
        ("ada@acme.test", Role::Trader),
        ("bob@acme.test", Role::Viewer),
        ("gus@globex.test", Role::Trader),
    ])
    .await;
    let tech = env
        .create(
            P,
            &owner,
            json!({"name": "Tech", "positions": [
                {"symbol": "AAPL", "quantity": 100},
                {"symbol": "MSFT", "quantity": 200, "purchase_date": "2006-06-01"}
            ]}),
        )
        .await;
    let unpriced = env
        .create(
            P,
            &owner,
            json!({"name": "Odd", "positions": [{"symbol": "ZZZZ", "quantity": 1}]}),
        )
        .await;
    let globex_pf = env
        .create(
            "/api/v1/t/globex/portfolios",
            &globex,
            json!({"name": "G", "positions": [{"symbol": "IBM", "quantity": 5}]}),
        )
        .await;
    let window = "from=2000-01-01&to=2012-12-31";
    let metrics = format!("{P}/{tech}/metrics?{window}");

    // Nothing stored before any analysis or run.
    let body = env.expect_get(200, &metrics, &owner).await;
    assert_eq!(body["data"]["days"], json!([]), "{body}");

    // The trigger on the admin listener runs the job over every tenant.
    let report = env.run_job("metrics").await;
    assert_eq!(report["tenants"], 2, "{report}");
    assert_eq!(report["succeeded"], 2, "{report}");
    assert_eq!(
        report["failed"],
        json!([{"tenant": "acme", "portfolio": unpriced, "code": "no_prices"}]),
        "{report}"
    );

    // What it stored is the default analysis window's series, day by day.
    let days = env.expect_get(200, &metrics, &owner).await["data"]["days"].clone();
    let days = days.as_array().unwrap().clone();
    assert!(days.len() > 40, "{}", days.len());
    let analysis = env
        .expect_get(200, &format!("{P}/{tech}/analytics"), &owner)
        .await;
    let series = analysis["data"]["series"].as_array().unwrap();
    assert_eq!(series.len(), days.len());
    for (day, point) in days.iter().zip(series) {
        assert_eq!(day["date"], point["date"]);
        assert_eq!(day["nav"], point["nav"]);
        assert_eq!(day["daily_return"], point["daily_return"]);
        assert_eq!(day["max_drawdown"], point["max_drawdown"]);
    }
    assert!(days.iter().all(|d| d["nav"].as_f64().unwrap() > 0.0));
    assert_eq!(days[0]["daily_return"], Value::Null);
    assert!(days.iter().skip(1).all(|d| d["daily_return"].is_f64()));

    // Idempotent: a second run the same day stores the same days, no more.
    let again = env.run_job("metrics").await;
    assert_eq!(again["succeeded"], 2, "{again}");
    let days_again = env.expect_get(200, &metrics, &owner).await["data"]["days"].clone();
    assert_eq!(days_again, json!(days));
    let rows = crate::common::count(
        &env.state,
        "acme",
        "SELECT count(*) AS n FROM portfolio_metrics_daily",
    )
    .await;
    assert_eq!(rows as usize, days.len());

    // A narrower window, the CSV, and globex's own portfolio.
    let first = days[0]["date"].as_str().unwrap();
    let narrow = env
        .expect_get(
            200,
            &format!("{P}/{tech}/metrics?from={first}&to={first}"),
            &owner,
        )
        .await;
    assert_eq!(narrow["data"]["days"], json!([days[0]]));
    let csv = env
        .expect_csv(&format!("{P}/{tech}/metrics.csv?{window}"), &owner)
        .await;
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("date,nav,daily_return,cumulative_return,volatility_30d,max_drawdown")
    );
    assert_eq!(lines.count(), days.len());
    let g = env
        .expect_get(
            200,
            &format!("/api/v1/t/globex/portfolios/{globex_pf}/metrics?{window}"),
            &globex,
        )
        .await;
    assert!(!g["data"]["days"].as_array().unwrap().is_empty(), "{g}");

    // Refusals: not visible, no token, another tenant's token, bad window.
    env.expect_get(404, &metrics, &bob_t).await;
    assert_eq!(get_status(&env, &metrics, None).await, 401);
    let (s, _) = env.get(&metrics, &globex).await;
    assert_eq!(s, 401);
    let backwards = format!("{P}/{tech}/metrics?from=2010-01-02&to=2010-01-01");
    env.expect_get_error(400, "invalid_request", &backwards, &owner)
        .await;
    env.server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_ingestion_job_keeps_held_and_listed_symbols_up_to_date() {
    let env = crate::common::env_with(|c| {
        // Far enough back to reach the embedded data set (it ends in 2010
        // for stocks, 2020 for the index).
        c.market.update_lookback_days = 30_000;
        c.market_ingest.symbols = vec!["^gspc".into()];
        c.market_ingest.enabled = false;
    })
    .await;
    let auth = env.auth();
    let (_, owner) = user_token(&auth, "acme", "ina@acme.test", Role::Trader).await;
    env.with(&owner)
        .post(
            201,
            P,
            json!({"name": "Held", "positions": [{"symbol": "MSFT", "quantity": 1}]}),
        )
        .await;
    let ops = env.pki.client(Some(&env.pki.operator()));
    let admin = |path: &str| crate::common::url(env.server.admin_addr, path);

    // Held symbols of every active tenant plus the configured ones, each
    // stored from the store's first missing day up to today.
    let first = env.run_job("ingest").await;
    assert_eq!(first["tenants"], 2, "{first}");
    assert_eq!(strs(&first["symbols"], "symbol"), ["MSFT", "^GSPC"]);
    let mut inserted = 0;
    for s in first["symbols"].as_array().unwrap() {
        assert!(s["error"].is_null(), "{s}");
        assert!(s["inserted"].as_u64().unwrap() > 100, "{s}");
        inserted += s["inserted"].as_u64().unwrap();
    }
    assert_eq!(first["inserted"], inserted);
    // Again: nothing new to store (a run after a crash resumes the same way).
    let second = env.run_job("ingest").await;
    assert_eq!(
        (&second["inserted"], &second["failed"]),
        (&json!(0), &json!(0)),
        "{second}"
    );

    // Progress and rows in /metrics.
    let text = crate::common::get_text(&ops, &admin("/metrics")).await;
    for line in [
        "rampart_market_ingest_symbols{state=\"total\"} 2".to_owned(),
        "rampart_market_ingest_symbols{state=\"done\"} 2".to_owned(),
        format!("rampart_market_ingest_rows_total{{kind=\"inserted\"}} {inserted}"),
        "rampart_job_runs_total{job=\"market_ingest\",result=\"success\"} 2".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing");
    }
    // Not on the public listener, and not without an operator certificate.
    let anonymous = env.pki.client(None);
    let res = anonymous.post(admin("/admin/jobs/ingest")).send().await;
    assert!(res.map(|r| r.status() != 200).unwrap_or(true));
}
