//! Members, broker credentials, the snapshot job and the leaderboard over
//! real HTTPS against real PostgreSQL and OpenBao (transit), with the broker
//! (the Alpaca paper-trading API shape) replayed by a local HTTP server.
use diesel_async::RunQueryDsl;
use rampart_auth::Role;
use rampart_auth::SigningAlg;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_members::replay::{ReplayPosition, account_body, position_body};
use rampart_server::app::{AppState, RunningServer};
use rampart_testkit::{acme, valid_slug};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::common::{
    Api, BrowserLogin, PASSWORD, Pki, browser_code_flow, config, count, mint_token, run_job,
    start_with_transit, strs, url,
};

const GOOD1: (&str, &str) = (
    "PKGOOD1AAAAAAAAAAAAA",
    "s3cretGood1s3cretGood1s3cretGood1s3cret1",
);
const GOOD2: (&str, &str) = (
    "PKGOOD2AAAAAAAAAAAAA",
    "s3cretGood2s3cretGood2s3cretGood2s3cret2",
);
const GOOD3: (&str, &str) = (
    "PKGOOD3AAAAAAAAAAAAA",
    "s3cretGood3s3cretGood3s3cretGood3s3cret3",
);
const BAD: (&str, &str) = (
    "PKBROKENAAAAAAAAAAAA",
    "s3cretBrokens3cretBrokens3cretBrokens3cr",
);

/// An access token for `user` in `tenant`, minted by the server's own token
/// service exactly as the token endpoint would (role and its scopes).
async fn token(state: &AppState, tenant: &str, user: Uuid, role: Role) -> String {
    mint_token(state, tenant, user, role, "admin-web").await
}

async fn user(state: &AppState, tenant: &str, email: &str, role: Role) -> (Uuid, String) {
    let auth = crate::common::auth(state);
    let u = auth
        .register(&valid_slug(tenant), email, email, PASSWORD, role)
        .await
        .unwrap();
    let t = token(state, tenant, u.id.into(), role).await;
    (u.id.into(), t)
}

const REDIRECT: &str = "https://admin.example.com/cb";
/// An access token through the browser flow: a public PKCE client, the
/// authorize endpoint, the login form, the code, the token endpoint.
async fn login(
    pki: &Pki,
    server: &RunningServer,
    state: &AppState,
    tenant: &str,
    email: &str,
) -> String {
    let auth = crate::common::auth(state);
    let _ = auth
        .register_client(
            &valid_slug(tenant),
            &ClientRegistration {
                client_id: "admin-web".into(),
                name: "Admin".into(),
                redirect_uris: vec![REDIRECT.into()],
                grant_types: vec!["authorization_code".into()],
                allowed_scopes: vec![
                    "openid".into(),
                    "users:manage".into(),
                    "portfolio:read".into(),
                ],
                auth_method: ClientAuthMethod::None,
                signing_alg: SigningAlg::ES256,
            },
        )
        .await;
    let t = browser_code_flow(
        &pki.ca.cert_pem(),
        &url(server.public_addr, ""),
        &BrowserLogin {
            tenant,
            client_id: "admin-web",
            redirect_uri: REDIRECT,
            scope: "openid users:manage portfolio:read",
            email,
            password: PASSWORD,
        },
    )
    .await;
    t["access_token"].as_str().expect("access token").to_owned()
}

// ------------------------------------------------------------ members, import, keys

#[tokio::test(flavor = "multi_thread")]
async fn tenant_admin_manages_members_imports_and_broker_keys() {
    let pki = Pki::new();
    let mut cfg = config(&pki).await;
    cfg.http.upload_limit_bytes = 64 * 1024;
    let (server, state) = start_with_transit(cfg).await;
    for slug in ["acme", "globex"] {
        state
            .tenants
            .provision(&valid_slug(slug), slug)
            .await
            .unwrap();
    }
    // The admin logs in through the browser flow; the others get tokens
    // minted by the same token service.
    user(&state, "acme", "root@acme.test", Role::Admin).await;
    let admin = login(&pki, &server, &state, "acme", "root@acme.test").await;
    let (_, trader) = user(&state, "acme", "tess@acme.test", Role::Trader).await;
    let (_, globex_admin) = user(&state, "globex", "root@globex.test", Role::Admin).await;
    let api = Api {
        http: pki.client(None),
        addr: server.public_addr,
    };
    let members = "/api/v1/t/acme/admin/members";
    let ada = json!({"name": "Ada Lovelace", "email": "Ada@Acme.test", "role": "trader"});

    // Refusals: no token, a trader, another tenant's admin (like no token).
    for (refusal, bearer) in [
        ((401, "unauthorized"), None),
        ((403, "forbidden"), Some(&trader)),
    ] {
        let bearer = bearer.map(String::as_str);
        api.expect_error(refusal, Method::POST, members, bearer, Some(ada.clone()))
            .await;
    }
    api.with(&globex_admin)
        .post(401, members, ada.clone())
        .await;
    api.expect_get(403, members, &trader).await;

    // Upsert: created, then updated by the same email in another case.
    let body = api.with(&admin).post(201, members, ada.clone()).await;
    assert_eq!(body["data"]["created"], true);
    assert_eq!(body["data"]["member"]["email"], "ada@acme.test");
    let ada_id: Uuid = body["data"]["member"]["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let body = api
        .with(&admin)
        .post(
            200,
            members,
            json!({"name": "Ada King", "email": "ada@acme.test", "role": "viewer"}),
        )
        .await;
    assert_eq!(body["data"]["created"], false);
    assert_eq!(body["data"]["member"]["role"], "viewer");
    assert_eq!(body["data"]["member"]["id"], ada_id.to_string());

    // Malformed bodies.
    let body = api
        .with(&admin)
        .post(
            400,
            members,
            json!({"name": "", "email": "nope", "role": "king"}),
        )
        .await;
    let fields = strs(&body["error"]["details"]["problems"], "field");
    assert_eq!(fields, ["name", "email", "role"]);
    api.with(&admin)
        .post(400, members, json!({"email": "x@y.z"}))
        .await;
    api.with(&admin)
        .post(
            400,
            members,
            json!({"name": "X", "email": "x@y.z", "role": "viewer", "extra": 1}),
        )
        .await;

    // CSV with broken rows: every row judged, nothing can be committed.
    let before = count(&state, "acme", "SELECT count(*) AS n FROM users").await;
    let preview = format!("{members}/import/preview");
    let (s, pv) = api
        .csv(
            &preview,
            &admin,
            "name,email,role\nGrace Hopper,grace@acme.test,trader\nNo Mail,,viewer\n\
             Bad Role,bad@acme.test,emperor\nGrace Again,GRACE@acme.test,viewer\nAda King,ada@acme.test,admin\n",
        )
        .await;
    assert_eq!(s, 200, "{pv}");
    let rows = pv["data"]["rows"].as_array().unwrap();
    let verdicts: Vec<(u64, &str)> = rows
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        verdicts,
        [
            (2, "create"),
            (3, "refused"),
            (4, "refused"),
            (5, "refused"),
            (6, "update")
        ]
    );
    assert_eq!(rows[1]["problems"][0]["field"], "email");
    assert_eq!(rows[2]["problems"][0]["field"], "role");
    assert!(
        rows[3]["problems"][0]["message"]
            .as_str()
            .unwrap()
            .contains("line 2")
    );
    assert_eq!(pv["data"]["refused"], 3);
    commit_refused(&api, members, &admin, &pv, "import_has_refused_rows").await;
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM users").await,
        before
    );
    // An oversized file is refused before it is read.
    let big = format!("name,email,role\n{}", "X,x@acme.test,viewer\n".repeat(4000));
    let res = api
        .http
        .post(url(server.public_addr, &preview))
        .bearer_auth(&admin)
        .header("content-type", "text/csv")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // A file without the columns is refused as a whole.
    let (s, _) = api.csv(&preview, &admin, "who,what\na,b\n").await;
    assert_eq!(s, 400);
    let (s, _) = api.csv(&preview, &trader, "name,email,role\n").await;
    assert_eq!(s, 403);

    // A clean file: preview, wrong hash refused, commit applies exactly it.
    let clean = "email,name,role\ngrace@acme.test,Grace Hopper,trader\nlin@acme.test,Lin,viewer\nada@acme.test,Ada King,admin\n";
    let (s, pv) = api.csv(&preview, &admin, clean).await;
    assert_eq!(s, 200, "{pv}");
    assert_eq!(
        (
            &pv["data"]["created"],
            &pv["data"]["updated"],
            &pv["data"]["refused"]
        ),
        (&json!(2), &json!(1), &json!(0))
    );
    let commit = format!(
        "{members}/import/{}/commit",
        pv["data"]["id"].as_str().unwrap()
    );
    let mismatch = (409, "import_hash_mismatch");
    let digest = Some(json!({"digest": "00"}));
    api.expect_error(mismatch, Method::POST, &commit, Some(&admin), digest)
        .await;
    api.with(&admin)
        .post(400, &commit, json!({"hash": "x"}))
        .await;
    // Another tenant's admin cannot commit it, and it is not found there.
    api.with(&globex_admin)
        .post(
            404,
            &commit.replace("/t/acme/", "/t/globex/"),
            json!({"digest": pv["data"]["digest"]}),
        )
        .await;
    let body = api
        .with(&admin)
        .post(200, &commit, json!({"digest": pv["data"]["digest"]}))
        .await;
    assert_eq!(body["data"]["created"], 2);
    assert_eq!(body["data"]["updated"], 1);
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM users").await,
        before + 2
    );
    commit_refused(&api, members, &admin, &pv, "import_already_committed").await;

    // Data changed since the preview: refused, nothing applied.
    let (_, pv) = api
        .csv(
            &preview,
            &admin,
            "name,email,role\nNew Person,new@acme.test,viewer\nLin,lin@acme.test,trader\n",
        )
        .await;
    api.call(
        Method::POST,
        members,
        Some(&admin),
        Some(json!({"name": "Lin Changed", "email": "lin@acme.test", "role": "viewer"})),
    )
    .await;
    commit_refused(&api, members, &admin, &pv, "import_stale").await;
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM users WHERE email = 'new@acme.test'"
        )
        .await,
        0
    );

    // Member list, paginated.
    let page1 = api
        .expect_get(200, &format!("{members}?limit=2"), &admin)
        .await;
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    let cursor = page1["meta"]["nextCursor"].as_str().unwrap();
    let (_, page2) = api
        .get(&format!("{members}?limit=50&cursor={cursor}"), &admin)
        .await;
    assert_eq!(
        page2["data"].as_array().unwrap().len() as i64,
        before + 2 - 2
    );

    // Broker keys: live keys and malformed keys refused without echoing them.
    let broker = format!("{members}/{ada_id}/broker");
    let live = json!({"keyId": "AKLIVEKEYAAAAAAAAAAA", "secretKey": GOOD1.1});
    let (s, text) = api
        .send(Method::PUT, &broker, Some(&admin), Some(live))
        .await;
    assert_eq!(s, 400, "{text}");
    assert!(
        text.contains("live-trading") && !text.contains("AKLIVEKEY") && !text.contains(GOOD1.1)
    );
    let keys = json!({"keyId": GOOD1.0, "secretKey": GOOD1.1});
    let unknown = format!("{members}/{}/broker", Uuid::new_v4());
    for (status, path, bearer, body) in [
        (
            400,
            broker.clone(),
            Some(&admin),
            json!({"keyId": GOOD1.0, "secretKey": "short"}),
        ),
        (400, broker.clone(), Some(&admin), json!({"keyId": GOOD1.0})),
        (403, broker.clone(), Some(&trader), keys.clone()),
        (401, broker.clone(), None, keys.clone()),
        // acme's member through globex: not found.
        (
            404,
            broker.replace("/t/acme/", "/t/globex/"),
            Some(&globex_admin),
            keys.clone(),
        ),
        (404, unknown, Some(&admin), keys.clone()),
    ] {
        let bearer = bearer.map(String::as_str);
        api.expect(status, Method::PUT, &path, bearer, Some(body))
            .await;
    }
    let (s, text) = api
        .send(Method::PUT, &broker, Some(&admin), Some(keys.clone()))
        .await;
    assert_eq!(s, 200, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["data"]["paper"], true);
    assert_eq!(body["data"]["broker"], "alpaca");
    assert!(!text.contains(GOOD1.0) && !text.contains(GOOD1.1));
    let (_, text) = api
        .send(
            Method::GET,
            &format!("{members}?limit=200"),
            Some(&admin),
            None,
        )
        .await;
    assert!(text.contains("\"brokerAttached\":true"));
    assert!(!text.contains(GOOD1.0) && !text.contains(GOOD1.1));
    // Stored sealed, bound to the member: no plaintext in the database.
    assert_eq!(
        count(
            &state,
            "acme",
            &format!(
                "SELECT count(*) AS n FROM broker_accounts WHERE sealed_credentials LIKE '%{}%' \
                 OR sealed_credentials LIKE '%{}%'",
                GOOD1.0, GOOD1.1
            )
        )
        .await,
        0
    );

    // Detach, then detach again: not found.
    api.with(&admin).delete(200, &broker).await;
    api.with(&admin).delete(404, &broker).await;
    assert_eq!(
        count(&state, "acme", "SELECT count(*) AS n FROM broker_accounts").await,
        0
    );

    // Every admin action is in the audit log, with no key in it.
    let log = crate::common::auth(&state)
        .audit_log(&acme(), 200)
        .await
        .unwrap();
    let actions: Vec<(String, String)> = log
        .iter()
        .map(|r| (r.action.clone(), r.result.clone()))
        .collect();
    for want in [
        ("member.upsert", "success"),
        ("member.upsert", "failure"),
        ("member.import.preview", "success"),
        ("member.import.commit", "success"),
        ("member.import.commit", "failure"),
        ("broker.attach", "success"),
        ("broker.attach", "failure"),
        ("broker.detach", "success"),
    ] {
        assert!(
            actions.iter().any(|(a, r)| a == want.0 && r == want.1),
            "{want:?} not in {actions:?}"
        );
    }
    let dump = serde_json::to_string(&log).unwrap();
    assert!(!dump.contains(GOOD1.0) && !dump.contains(GOOD1.1) && !dump.contains("AKLIVEKEY"));
    server.stop().await;
}

// ------------------------------------------------------------ snapshot job and leaderboard

async fn alpaca(mock: &MockServer, keys: (&str, &str), status: u16, equity: &str, last: &str) {
    if status != 200 {
        Mock::given(method("GET"))
            .and(header("APCA-API-KEY-ID", keys.0))
            .respond_with(ResponseTemplate::new(status).set_body_string("internal"))
            .mount(mock)
            .await;
        return;
    }
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .and(header("APCA-API-KEY-ID", keys.0))
        .and(header("APCA-API-SECRET-KEY", keys.1))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(account_body("PA1234", equity, last, "25000.5")),
        )
        .mount(mock)
        .await;
    let held = ReplayPosition {
        symbol: "AAPL".into(),
        qty: 10.into(),
        avg_entry_price: 150.into(),
        current_price: 190.into(),
    };
    Mock::given(method("GET"))
        .and(path("/v2/positions"))
        .and(header("APCA-API-KEY-ID", keys.0))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([position_body(&held)])))
        .mount(mock)
        .await;
}

/// Commits the import previewed as `pv` with the digest of the preview.
/// Committing the import previewed as `pv` (its digest) is refused: 409
/// with the error `code`.
async fn commit_refused(api: &Api, members: &str, admin: &str, pv: &Value, code: &str) {
    let commit = format!(
        "{members}/import/{}/commit",
        pv["data"]["id"].as_str().unwrap()
    );
    let digest = json!({"digest": pv["data"]["digest"]});
    api.expect_error(
        (409, code),
        Method::POST,
        &commit,
        Some(admin),
        Some(digest),
    )
    .await;
}

async fn attach(api: &Api, tenant: &str, admin: &str, member: Uuid, keys: (&str, &str)) {
    let (s, text) = api
        .send(
            Method::PUT,
            &format!("/api/v1/t/{tenant}/admin/members/{member}/broker"),
            Some(admin),
            Some(json!({"keyId": keys.0, "secretKey": keys.1})),
        )
        .await;
    assert_eq!(s, 200, "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_job_survives_failures_reruns_and_feeds_the_leaderboard() {
    let mock = MockServer::start().await;
    alpaca(&mock, GOOD1, 200, "110000", "100000").await;
    alpaca(&mock, GOOD2, 200, "95000", "100000").await;
    alpaca(&mock, GOOD3, 200, "101000", "100000").await;
    alpaca(&mock, BAD, 500, "", "").await;
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.snapshot = rampart_members::SnapshotConfig {
        broker_base_url: mock.uri(),
        ..Default::default()
    };
    let (server, state) = start_with_transit(config).await;
    for slug in ["acme", "globex", "initech"] {
        state
            .tenants
            .provision(&valid_slug(slug), slug)
            .await
            .unwrap();
    }
    let api = Api {
        http: pki.client(None),
        addr: server.public_addr,
    };
    let (_, acme_admin) = user(&state, "acme", "root@acme.test", Role::Admin).await;
    let (_, globex_admin) = user(&state, "globex", "root@globex.test", Role::Admin).await;
    let (_, initech_admin) = user(&state, "initech", "root@initech.test", Role::Admin).await;
    let (winner, winner_token) = user(&state, "acme", "win@acme.test", Role::Trader).await;
    let (loser, _) = user(&state, "acme", "lose@acme.test", Role::Trader).await;
    let (broken, _) = user(&state, "acme", "broken@acme.test", Role::Trader).await;
    let (steady, _) = user(&state, "globex", "steady@globex.test", Role::Trader).await;
    let (initech_member, _) = user(&state, "initech", "m@initech.test", Role::Trader).await;
    attach(&api, "acme", &acme_admin, winner, GOOD1).await;
    attach(&api, "acme", &acme_admin, loser, GOOD2).await;
    attach(&api, "acme", &acme_admin, broken, BAD).await;
    attach(&api, "globex", &globex_admin, steady, GOOD3).await;
    attach(&api, "initech", &initech_admin, initech_member, GOOD3).await;
    // initech's schema breaks: the job cannot even list its accounts.
    state
        .tenants
        .with_tenant(&valid_slug("initech"), async |conn| {
            diesel::sql_query("DROP TABLE broker_accounts CASCADE")
                .execute(conn)
                .await
                .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();

    // The trigger lives on the admin listener (client certificate).
    let operator = pki.operator();
    let ops = pki.client(Some(&operator));
    let trigger = async |date: &str| {
        let date = Some(json!({"date": date}));
        run_job(&pki, server.admin_addr, "snapshot", date).await
    };
    let res = ops
        .post(url(server.admin_addr, "/admin/jobs/snapshot"))
        .body("{\"date\": \"yesterday\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let report = trigger("2026-11-20").await;
    assert_eq!(report["ran"], true);
    assert_eq!(report["succeeded"], 3, "{report}");
    assert_eq!(report["failedMembers"], 1, "{report}");
    assert_eq!(report["failedTenants"], 1, "{report}");
    let acme = report["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tenant"] == "acme")
        .unwrap();
    assert_eq!(acme["failed"][0]["memberId"], broken.to_string());
    assert!(acme["failed"][0]["error"].as_str().unwrap().contains("500"));
    let dump = report.to_string();
    for k in [GOOD1, GOOD2, GOOD3, BAD] {
        assert!(!dump.contains(k.0) && !dump.contains(k.1));
    }

    // Rerun: same day, no duplicates.
    let again = trigger("2026-11-20").await;
    assert_eq!(again["succeeded"], 3);
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM portfolio_snapshots"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM leaderboard_daily"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &state,
            "acme",
            "SELECT count(*) AS n FROM portfolio_snapshots WHERE jsonb_array_length(positions) = 1 AND cash = 25000.5"
        )
        .await,
        2
    );

    // The run is audited per tenant with its counts.
    let log = crate::common::auth(&state)
        .audit_log(&valid_slug("acme"), 50)
        .await
        .unwrap();
    let run = log.iter().find(|r| r.action == "snapshot.run").unwrap();
    assert_eq!(run.result, "partial");
    assert!(run.actor.as_deref().unwrap().starts_with("mtls:"));
    let detail: Value = serde_json::from_str(&run.detail).unwrap();
    assert_eq!(
        (&detail["accounts"], &detail["succeeded"], &detail["failed"]),
        (&json!(3), &json!(2), &json!(1))
    );

    // Another replica holding the lock: this one does nothing.
    let mut holder = state.tenants.raw_pool().get().await.unwrap();
    diesel::sql_query("SELECT pg_advisory_lock(8241989122805096816)")
        .execute(&mut holder)
        .await
        .unwrap();
    let skipped = trigger("2026-11-21").await;
    assert_eq!(skipped["ran"], false);
    diesel::sql_query("SELECT pg_advisory_unlock(8241989122805096816)")
        .execute(&mut holder)
        .await
        .unwrap();
    drop(holder);

    // Leaderboard: day, sorted by return, cursor-paginated.
    let lb = "/api/v1/t/acme/leaderboard";
    api.expect(401, Method::GET, lb, None, None).await;
    // With the tenant's publicLeaderboard on, no token is needed; a bad
    // token is still refused, and turning it off closes it again.
    let settings = "/api/v1/t/acme/settings";
    let on = json!({"publicLeaderboard": true});
    api.with(&acme_admin).patch(200, settings, on).await;
    let public = api.expect(200, Method::GET, lb, None, None).await;
    assert_eq!(
        public["data"],
        api.expect_get(200, lb, &winner_token).await["data"]
    );
    for period in ["week", "month"] {
        let q = format!("{lb}?period={period}&sort=pnl");
        let public = api.expect(200, Method::GET, &q, None, None).await;
        assert_eq!(
            public["data"],
            api.expect_get(200, &q, &winner_token).await["data"]
        );
        assert_eq!(public["data"]["period"], period);
    }
    api.with("not-a-token").get(401, lb).await;
    api.expect(401, Method::GET, "/api/v1/t/globex/leaderboard", None, None)
        .await;
    let off = json!({"publicLeaderboard": false});
    api.with(&acme_admin).patch(200, settings, off).await;
    api.expect(401, Method::GET, lb, None, None).await;
    let body = api
        .expect_get(200, &format!("{lb}?period=day&limit=1"), &winner_token)
        .await;
    assert_eq!(body["data"]["asOf"], "2026-11-20");
    assert_eq!(body["data"]["entries"][0]["memberId"], winner.to_string());
    assert_eq!(body["data"]["entries"][0]["rank"], 1);
    assert!((body["data"]["entries"][0]["returnPct"].as_f64().unwrap() - 0.1).abs() < 1e-9);
    assert_eq!(body["data"]["entries"][0]["pnl"], 10000.0);
    let cursor = body["meta"]["nextCursor"].as_str().unwrap().to_owned();
    let (_, body) = api
        .get(
            &format!("{lb}?period=day&limit=1&cursor={cursor}"),
            &winner_token,
        )
        .await;
    assert_eq!(body["data"]["entries"][0]["memberId"], loser.to_string());
    assert_eq!(body["data"]["entries"][0]["rank"], 2);
    assert!(body["meta"]["nextCursor"].is_null());
    api.expect_get(400, &format!("{lb}?period=year"), &winner_token)
        .await;
    api.expect_get(400, &format!("{lb}?cursor=%%%"), &winner_token)
        .await;

    // A second day: the week spans both.
    let day2 = trigger("2026-11-21").await;
    assert_eq!(day2["succeeded"], 3);
    let (_, body) = api
        .get(&format!("{lb}?period=week&sort=pnl"), &winner_token)
        .await;
    assert_eq!(body["data"]["asOf"], "2026-11-21");
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 2);
    assert_eq!(body["data"]["entries"][0]["memberId"], winner.to_string());

    // Each member reads its own series from the snapshots: exact amounts,
    // total P&L since the first snapshot (carried into a later window).
    let mine = "/api/v1/t/acme/me/portfolio";
    let body = api.expect_get(200, mine, &winner_token).await;
    let d = &body["data"];
    assert_eq!(
        (&d["from"], &d["to"]),
        (&json!("2026-11-20"), &json!("2026-11-21"))
    );
    let points = d["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{body}");
    assert_eq!(points[0]["equity"], 110000.0);
    assert_eq!(points[0]["cash"], 25000.5);
    assert_eq!(points[0]["positions"], 1);
    assert_eq!(points[0]["daily_pnl"], 10000.0);
    assert_eq!(points[1]["total_pnl"], 20000.0);
    let body = api
        .expect_get(200, &format!("{mine}?from=2026-11-21"), &winner_token)
        .await;
    assert_eq!(body["data"]["points"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"]["points"][0]["total_pnl"], 20000.0);
    let loser_token = token(&state, "acme", loser, Role::Trader).await;
    let body = api.expect_get(200, mine, &loser_token).await;
    assert_eq!(body["data"]["member"], loser.to_string());
    assert_eq!(body["data"]["points"][1]["total_pnl"], -10000.0);
    assert_eq!(
        api.expect_csv(&format!("{mine}.csv?to=2026-11-20"), &winner_token)
            .await,
        "date,equity,cash,positions,daily_pnl,daily_return,total_pnl\n\
         2026-11-20,110000,25000.5,1,10000,0.1,10000\n"
    );
    // The equity chart of the two days, as SVG; none from fewer than two.
    let (status, svg) = api
        .send(
            Method::GET,
            &format!("{mine}.svg"),
            Some(&winner_token),
            None,
        )
        .await;
    assert_eq!(status, 200, "{svg}");
    assert!(svg.starts_with("<svg") && svg.contains("Equity"), "{svg}");
    assert!(svg.contains("2026-11-20") && svg.contains("2026-11-21"));
    let (status, _) = api
        .send(Method::GET, &format!("{mine}.svg"), Some(&acme_admin), None)
        .await;
    assert_eq!(status, 400);
    api.expect(401, Method::GET, &format!("{mine}.svg"), None, None)
        .await;
    // No snapshots yet: an empty series. Refusals: a bad window, no token,
    // another tenant's token.
    let body = api.expect_get(200, mine, &acme_admin).await;
    assert_eq!(body["data"]["points"], json!([]));
    for bad in [
        "from=2026-11-22&to=2026-11-21",
        "from=2000-01-01&to=2026-11-21",
        "since=1",
    ] {
        api.expect_get(400, &format!("{mine}?{bad}"), &winner_token)
            .await;
    }
    api.expect(401, Method::GET, mine, None, None).await;
    api.expect_get(401, "/api/v1/t/globex/me/portfolio", &winner_token)
        .await;

    // Opt-out hides the member.
    api.with(&winner_token)
        .put(200, &format!("{lb}/opt-out"), json!({"optOut": true}))
        .await;
    let (_, body) = api.get(lb, &winner_token).await;
    let ids = strs(&body["data"]["entries"], "memberId");
    assert_eq!(ids, [loser.to_string()]);
    // The public board honours the opt-out too.
    api.with(&acme_admin)
        .patch(200, settings, json!({"publicLeaderboard": true}))
        .await;
    let public = api.expect(200, Method::GET, lb, None, None).await;
    assert_eq!(public["data"], body["data"]);
    api.with(&acme_admin)
        .patch(200, settings, json!({"publicLeaderboard": false}))
        .await;

    // Detach removes the key and everything derived from it.
    let body = api
        .with(&acme_admin)
        .delete(200, &format!("/api/v1/t/acme/admin/members/{loser}/broker"))
        .await;
    assert_eq!(body["data"]["snapshotsRemoved"], 2);
    assert_eq!(
        count(
            &state,
            "acme",
            &format!("SELECT count(*) AS n FROM portfolio_snapshots WHERE user_id = '{loser}'")
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &state,
            "acme",
            &format!("SELECT count(*) AS n FROM leaderboard_daily WHERE user_id = '{loser}'")
        )
        .await,
        0
    );
    let (_, body) = api.get(lb, &winner_token).await;
    assert_eq!(body["data"]["entries"].as_array().unwrap().len(), 0);
    server.stop().await;
}
