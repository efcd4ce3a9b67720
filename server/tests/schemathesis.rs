//! Property-based API testing from the OpenAPI document: schemathesis (from
//! PyPI, in the project's `.venv`) reads `/openapi.json` from the real server
//! over TLS and sends generated requests, valid and invalid, to every
//! operation: those of the public listener with an admin's bearer token,
//! those of the admin listener with an operator's client certificate. It
//! must find no 5xx, every response must be the documented one (status,
//! content type, body schema, headers), data the document forbids must be
//! refused, and a secured operation must refuse a request without a token.
//!
//! `RAMPART_ST_MAX_EXAMPLES` sets the number of examples per operation (15 by
//! default: ~3,200 requests, about a minute; 200 by hand: ~14,400, ~6 min);
//! `RAMPART_ST_CHECKS` replaces the list of checks (e.g. `all`). The seed is
//! fixed, so a run is reproducible.

use std::path::{Path, PathBuf};

use crate::common::{CLIENT_SCOPES, env_with, kit_smtp, roomy_limits, scoped_token};
use rampart_auth::Role;
use reqwest::Method;
use serde_json::json;

/// The schemathesis CLI in the project's virtualenv.
fn st_binary() -> PathBuf {
    let st = rampart_testkit::repo_root().join(".venv/bin/st");
    assert!(
        st.exists(),
        "schemathesis is not installed ({}): run `python3 -m venv .venv && .venv/bin/pip install schemathesis` in the workspace root",
        st.display()
    );
    st
}

/// What every response is held to.
const CHECKS: &[&str] = &[
    // No 5xx.
    "not_a_server_error",
    // Status, content type, body and headers are the documented ones.
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    // Data the document forbids is refused with a 4xx.
    "negative_data_rejection",
    // A secured operation refuses a request without (or with a broken) token.
    "ignored_auth",
];

/// Operations of the document left out of the run against the public
/// listener.
const PUBLIC_EXCLUDED: &[&str] = &[
    // The admin listener's (mTLS, operator certificate): its own run below.
    "^/admin/",
    "^/metrics$",
    // Logging out revokes the session behind the run's own token.
    "/account/logout$",
    // WebSocket upgrades, not request/response operations.
    "/stream$",
    "^/api/graphql/t/[^/]+/ws$",
];

/// Operations of the run against the admin listener.
const ADMIN_INCLUDED: &str = "^/(admin/|metrics$|health$|ready$)";

#[tokio::test(flavor = "multi_thread")]
async fn the_api_conforms_to_its_openapi_document() {
    let st = st_binary();
    // Mail goes to the kit's SMTP server, so the mail routes run for real;
    // generous limits: the run sends thousands of requests from one IP.
    let env = env_with(|config| {
        config.notify = kit_smtp();
        roomy_limits(config);
    })
    .await;
    let auth = env.auth();
    let (_, token) =
        scoped_token(&auth, "acme", "admin@acme.test", Role::Admin, CLIENT_SCOPES).await;

    // Seed one of each resource, so the operations reach real rows and not
    // only "not found": a portfolio with a position, a second user it is
    // shared with, a price alert and a member.
    let (viewer, _) = scoped_token(
        &auth,
        "acme",
        "vic@acme.test",
        Role::Viewer,
        "portfolio:read",
    )
    .await;
    let seed = |method: Method, path: &str, body: serde_json::Value| {
        let env = &env;
        let token = token.clone();
        let path = format!("/api/v1/t/acme{path}");
        async move {
            let (s, body) = env.call(method, &path, Some(&token), Some(body)).await;
            assert!(s == 200 || s == 201, "seeding {path}: {s} {body}");
            body["data"].clone()
        }
    };
    let portfolio = seed(
        Method::POST,
        "/portfolios",
        json!({
            "name": "Seed", "base_currency": "USD",
            "positions": [{"symbol": "MSFT", "quantity": 10, "purchase_price": 25.5,
                           "purchase_date": "2005-01-03"}]
        }),
    )
    .await;
    let id = portfolio["id"].as_str().unwrap().to_owned();
    let position = portfolio["positions"][0]["id"].as_str().unwrap().to_owned();
    seed(
        Method::POST,
        &format!("/portfolios/{id}/shares"),
        json!({"user_id": viewer, "access": "view"}),
    )
    .await;
    seed(
        Method::POST,
        &format!("/portfolios/{id}/comments"),
        json!({"body": "first"}),
    )
    .await;
    let alert = seed(
        Method::POST,
        "/price-alerts",
        json!({"symbol": "MSFT", "direction": "above", "threshold": 500.0}),
    )
    .await;
    let alert = alert["id"].as_str().unwrap().to_owned();
    let member = seed(
        Method::POST,
        "/admin/members",
        json!({"name": "Mia", "email": "mia@acme.test", "role": "trader"}),
    )
    .await;
    let member = member["member"]["id"].as_str().unwrap().to_owned();

    let max_examples = std::env::var("RAMPART_ST_MAX_EXAMPLES").unwrap_or_else(|_| "15".into());
    let checks = std::env::var("RAMPART_ST_CHECKS").unwrap_or_else(|_| CHECKS.join(","));
    let dir = tempfile::tempdir().unwrap();
    // Path parameters point at the seeded rows; an `{id}` means a different
    // thing under each resource. The portfolio itself is not deleted by the
    // run (its delete gets other ids), so the rest keeps reaching it. The
    // admin run works on `globex` (suspends, deactivates, purges it): it
    // comes after the public run, which only uses `acme`.
    let config = format!(
        r#"[parameters]
"path.tenant" = "acme"
"path.position" = "{position}"
"path.version" = 1
"path.user" = "{viewer}"
"path.member" = "{member}"
"path.slug" = "globex"

[[operations]]
include-path-regex = '/portfolios/\{{id\}}/'
parameters = {{ "path.id" = "{id}" }}

[[operations]]
include-path-regex = '/portfolios/\{{id\}}$'
include-method-regex = '^(GET|PATCH)$'
parameters = {{ "path.id" = "{id}" }}

[[operations]]
include-path-regex = '/price-alerts/\{{id\}}$'
parameters = {{ "path.id" = "{alert}" }}

[[operations]]
include-path-regex = '/users/\{{id\}}/'
parameters = {{ "path.id" = "{viewer}" }}
"#
    );
    let config_file = dir.path().join("schemathesis.toml");
    std::fs::write(&config_file, config).unwrap();

    let ca = env.pki.files.client_ca_file.clone();
    let public = Run {
        schema: env.url("/openapi.json"),
        base: env.url(""),
        ca: ca.clone(),
        config: config_file.clone(),
        checks: checks.clone(),
        max_examples: max_examples.clone(),
        extra: vec![
            "--header".into(),
            format!("Authorization: Bearer {token}"),
            "--exclude-path-regex".into(),
            PUBLIC_EXCLUDED.join("|"),
        ],
    };
    let public_ok = public.run(&st).await;

    // The admin listener's operations, with an operator's client certificate.
    let operator = env
        .pki
        .ca
        .issue_client("ops", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let cert = dir.path().join("ops.pem");
    let key = dir.path().join("ops-key.pem");
    std::fs::write(&cert, &operator.cert_pem).unwrap();
    std::fs::write(&key, &operator.key_pem).unwrap();
    let admin = Run {
        schema: env.url("/openapi.json"),
        base: format!("https://localhost:{}", env.server.admin_addr.port()),
        ca,
        config: config_file,
        checks,
        max_examples,
        extra: vec![
            "--request-cert".into(),
            cert.display().to_string(),
            "--request-cert-key".into(),
            key.display().to_string(),
            "--include-path-regex".into(),
            ADMIN_INCLUDED.into(),
        ],
    };
    let admin_ok = admin.run(&st).await;

    // What the runs found (and the retention overflow, found reading the
    // handler they pointed at), pinned: a 500, a panic, a malformed body
    // silently taken for "no body", an array taken for an object.
    let pem = format!("{}{}", operator.cert_pem, operator.key_pem);
    let ops = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(env.pki.ca.cert_pem().as_bytes()).unwrap()])
        .identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap())
        .resolve("localhost", "127.0.0.1:0".parse().unwrap())
        .build()
        .unwrap();
    let admin_url =
        |path: &str| format!("https://localhost:{}{path}", env.server.admin_addr.port());
    for (path, body) in [
        (
            "/admin/tenants",
            json!({"slug": "initech", "display_name": " "}),
        ),
        (
            "/admin/tenants/acme/deactivate",
            json!({"retention_days": u32::MAX}),
        ),
        ("/admin/keys/rotate", json!({"kind": "rs256", "typo": 1})),
        ("/admin/tenants/acme/suspend", json!({"reason": 5})),
    ] {
        let res = ops.post(admin_url(path)).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 400, "{path} {body}");
    }
    for (path, body) in [
        (
            "/api/v1/t/acme/me/preferences".to_owned(),
            json!([null, null]),
        ),
        ("/api/v1/t/acme/me/profile".to_owned(), json!([null])),
        (format!("/api/v1/t/acme/portfolios/{id}"), json!([null])),
    ] {
        let (s, res) = env
            .call(Method::PATCH, &path, Some(&token), Some(body))
            .await;
        assert_eq!(s, 400, "{path}: {res}");
    }
    // Every JSON body of the API is an object: a struct read from an array
    // (serde accepts that) is refused on the POST routes too.
    for path in [
        "/api/v1/t/acme/portfolios".to_owned(),
        format!("/api/v1/t/acme/portfolios/{id}/positions"),
        format!("/api/v1/t/acme/portfolios/{id}/comments"),
        "/api/v1/t/acme/price-alerts".to_owned(),
    ] {
        let (s, res) = env
            .call(
                Method::POST,
                &path,
                Some(&token),
                Some(json!(["Array portfolio", "x", "USD", false, {}])),
            )
            .await;
        assert_eq!(s, 400, "{path}: {res}");
        assert_eq!(res["error"]["code"], "invalid_request", "{path}: {res}");
    }
    env.server.stop().await;
    assert!(
        public_ok && admin_ok,
        "schemathesis found problems (public listener ok: {public_ok}, admin listener ok: {admin_ok}); its reports are above"
    );
}

/// One `st run` against one listener.
struct Run {
    /// Where the document is read (the public listener serves it).
    schema: String,
    /// The listener the requests go to.
    base: String,
    ca: PathBuf,
    config: PathBuf,
    checks: String,
    max_examples: String,
    extra: Vec<String>,
}

impl Run {
    /// Runs schemathesis, prints its report, and says whether it passed.
    async fn run(&self, st: &Path) -> bool {
        let out = tokio::process::Command::new(st)
            .current_dir(self.config.parent().unwrap())
            .arg("--config-file")
            .arg(&self.config)
            .arg("--no-color")
            .arg("run")
            .arg(&self.schema)
            .args(["--url", &self.base])
            .args(["--checks", &self.checks])
            .args(["--max-examples", &self.max_examples])
            .arg("--tls-verify")
            .arg(&self.ca)
            // One worker: CPython 3.11 before 3.11.8 shares the AST recursion
            // counter between threads (gh-106905), which hypothesis trips over.
            .args(["--workers", "1", "--seed", "1"])
            .args(["--generation-database", "none"])
            // Hypothesis' own health checks judge the generator, not the
            // API: free-form path strings are mostly filtered out (a `/`
            // cannot go in a path segment), and a loaded CI machine is slow.
            .args(["--suppress-health-check", "filter_too_much,too_slow"])
            .args(&self.extra)
            .output()
            .await
            .unwrap();
        println!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.status.success()
    }
}
