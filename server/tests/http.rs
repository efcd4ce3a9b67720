use rampart_server::app::RunningServer;

use crate::common::{Pki, config, get_text, start, url};

/// The server, an operator's client for the admin listener and a client of
/// the public one.
async fn server_and_clients() -> (Pki, RunningServer, reqwest::Client, reqwest::Client) {
    let pki = Pki::new();
    let (server, _state) = start(config(&pki).await).await;
    let admin = pki.client(Some(&pki.operator()));
    let public = pki.client(None);
    (pki, server, admin, public)
}

/// The JSON answer to `GET url`.
async fn get_json(client: &reqwest::Client, url: String) -> serde_json::Value {
    let res = client.get(url).send().await.unwrap();
    res.json().await.unwrap()
}

/// The `error.code` of an error envelope.
async fn error_code(res: reqwest::Response) -> serde_json::Value {
    res.json::<serde_json::Value>().await.unwrap()["error"]["code"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn envelope_request_ids_headers_and_admin_routes() {
    let (_pki, server, admin, public) = server_and_clients().await;

    // Errors use the envelope with a stable code and the request id.
    let with_request_id = |path: &str, id: &'static str| {
        let req = public.get(url(server.public_addr, path));
        req.header("x-request-id", id).send()
    };
    let res = with_request_id("/no/such/route", "req-12345678")
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["x-request-id"], "req-12345678");
    for h in [
        "strict-transport-security",
        "x-content-type-options",
        "content-security-policy",
    ] {
        assert!(res.headers().contains_key(h), "{h}");
    }
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["success"], false);
    assert_eq!(body["error"]["code"], "route_not_found");
    assert_eq!(body["meta"]["requestId"], "req-12345678");
    // A malformed id is replaced by a generated one.
    let res = with_request_id("/health", "bad id with spaces")
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "bad id with spaces");

    // Provision through the admin listener; the operator is the recorded actor.
    let tenants = url(server.admin_addr, "/admin/tenants");
    let provision = |body: serde_json::Value| admin.post(&tenants).json(&body).send();
    let res = provision(serde_json::json!({"slug": "acme", "display_name": "Acme"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = provision(serde_json::json!({"slug": "acme", "display_name": "Acme"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "tenant_already_exists");
    // Hostile slug → 400 with a typed code; malformed JSON → 400; unknown field → 400.
    let res = provision(serde_json::json!({"slug": "a; drop schema public", "display_name": "x"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "tenant_invalid_slug");
    let res = admin
        .post(url(server.admin_addr, "/admin/tenants"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "invalid_request");
    // Oversized body → 413 in the envelope.
    let big = "x".repeat(300 * 1024);
    let res = provision(serde_json::json!({"slug": "big", "display_name": big}))
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    let res = admin
        .post(url(server.admin_addr, "/admin/tenants/acme/suspend"))
        .json(&serde_json::json!({"reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = admin
        .get(url(server.admin_addr, "/admin/tenants/acme"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["tenant"]["status"], "suspended");
    // A suspended tenant's OAuth endpoints refuse.
    let res = public
        .get(url(
            server.public_addr,
            "/t/acme/.well-known/openid-configuration",
        ))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());

    // Every change on the admin listener is in the audit trail with the
    // operator's certificate identity (the refused ones too).
    let audit: serde_json::Value = get_json(&admin, url(server.admin_addr, "/admin/audit")).await;
    let records = audit["data"].as_array().unwrap();
    let routes: Vec<(&str, i64)> = records
        .iter()
        .map(|r| (r["route"].as_str().unwrap(), r["status"].as_i64().unwrap()))
        .collect();
    assert!(routes.contains(&("/admin/tenants", 201)), "{routes:?}");
    assert!(routes.contains(&("/admin/tenants", 409)), "{routes:?}");
    assert!(
        routes.contains(&("/admin/tenants/{slug}/{action}", 200)),
        "{routes:?}"
    );
    assert!(
        records
            .iter()
            .all(|r| r["subject"].as_str().unwrap().contains("CN=ops"))
    );
    assert!(
        records
            .iter()
            .all(|r| r["sans"][0] == "email:ops@rampart.local")
    );

    // OpenAPI is served and names the routes.
    let doc: serde_json::Value = get_json(&public, url(server.public_addr, "/openapi.json")).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/admin/tenants"].is_object());
    server.stop().await;
}

/// A known route asked with a method it does not have is 405 with `Allow`
/// (RFC 9110 §15.5.6) in the error envelope; an unknown path stays 404, and
/// a route of the other listener is unknown here.
#[tokio::test(flavor = "multi_thread")]
async fn a_known_route_with_another_method_is_405_with_allow() {
    let (_pki, server, admin, public) = server_and_clients().await;
    let send = async |client: &reqwest::Client, method: &str, addr, path: &str| {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let res = client
            .request(method, url(addr, path))
            .send()
            .await
            .unwrap();
        let allow = res
            .headers()
            .get("allow")
            .map(|v| v.to_str().unwrap().to_owned());
        let status = res.status().as_u16();
        let body: serde_json::Value = res.json().await.unwrap();
        (status, allow, body)
    };
    let (p, a) = (server.public_addr, server.admin_addr);
    let (status, allow, body) = send(&public, "DELETE", p, "/health").await;
    assert_eq!(
        (status, allow.as_deref()),
        (405, Some("GET, HEAD")),
        "{body}"
    );
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert!(body["meta"]["requestId"].is_string(), "{body}");
    // A path with parameters: every method of the route is listed.
    let (status, allow, _) = send(&public, "PUT", p, "/api/v1/t/acme/portfolios").await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD, POST")));
    let (status, allow, _) = send(&admin, "DELETE", a, "/metrics").await;
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")));
    // HEAD is not GET where GET has an effect (a verification link spends
    // its token): link scanners probing with HEAD change nothing.
    let verify = "/api/v1/t/acme/email/verify?token=abc";
    let head = public.head(url(p, verify)).send().await.unwrap();
    assert_eq!(head.status(), 405);
    assert_eq!(head.headers()["allow"], "GET");
    // Unknown paths, and the admin listener's routes on the public one.
    for (client, addr, path) in [(&public, p, "/no/such/route"), (&public, p, "/metrics")] {
        let (status, allow, body) = send(client, "DELETE", addr, path).await;
        assert_eq!((status, allow), (404, None), "{path}");
        assert_eq!(body["error"]["code"], "route_not_found");
    }
}

/// HEAD answers as GET does, without the body (RFC 9110 §9.3.2): status,
/// headers and `Content-Length` of the GET answer, on both listeners.
#[tokio::test(flavor = "multi_thread")]
async fn head_answers_like_get_without_a_body() {
    let (_pki, server, admin, public) = server_and_clients().await;
    let length = |res: &reqwest::Response| {
        res.headers()
            .get("content-length")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    for (client, addr, path, expected) in [
        (&public, server.public_addr, "/health", 200),
        (&public, server.public_addr, "/openapi.json", 200),
        (&public, server.public_addr, "/api/v1/t/acme/me", 401),
        (&public, server.public_addr, "/no/such/route", 404),
        (&admin, server.admin_addr, "/health", 200),
    ] {
        let get = client.get(url(addr, path)).send().await.unwrap();
        assert_eq!(get.status(), expected, "GET {path}");
        let (get_type, get_length) = (get.headers().get("content-type").cloned(), length(&get));
        let body = get.bytes().await.unwrap();
        let head = client.head(url(addr, path)).send().await.unwrap();
        assert_eq!(head.status(), expected, "HEAD {path}");
        assert_eq!(
            head.headers().get("content-type").cloned(),
            get_type,
            "{path}"
        );
        assert!(head.headers().contains_key("x-request-id"), "{path}");
        assert_eq!(get_length, Some(body.len().to_string()), "GET {path}");
        assert_eq!(
            length(&head),
            get_length,
            "HEAD {path}: the GET answer's length"
        );
        assert!(
            head.bytes().await.unwrap().is_empty(),
            "HEAD {path} has no body"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_are_valid_prometheus_exposition_with_the_expected_series() {
    let (_pki, server, admin, public) = server_and_clients().await;
    admin
        .post(url(server.admin_addr, "/admin/tenants"))
        .json(&serde_json::json!({"slug": "metr", "display_name": "M"}))
        .send()
        .await
        .unwrap();
    public
        .get(url(
            server.public_addr,
            "/t/metr/.well-known/openid-configuration",
        ))
        .send()
        .await
        .unwrap();
    public
        .post(url(server.public_addr, "/t/metr/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password")
        .send()
        .await
        .unwrap();
    public
        .get(url(server.public_addr, "/ready"))
        .send()
        .await
        .unwrap();

    let text = get_text(&admin, &url(server.admin_addr, "/metrics")).await;
    let scrape = prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).unwrap();
    let names: std::collections::BTreeSet<&str> =
        scrape.samples.iter().map(|s| s.metric.as_str()).collect();
    for expected in [
        "rampart_http_requests_total",
        "rampart_http_request_duration_seconds",
        "rampart_http_requests_in_flight",
        "rampart_db_pool_connections",
        "rampart_tenant_provision_duration_seconds_count",
        "rampart_auth_events_total",
        "rampart_process_start_time_seconds",
    ] {
        assert!(
            names.contains(expected),
            "{expected} missing from {names:?}"
        );
    }
    // Routes are patterns, never raw paths with tenant slugs.
    for s in scrape
        .samples
        .iter()
        .filter(|s| s.metric == "rampart_http_requests_total")
    {
        let route = s.labels.get("route").unwrap();
        assert!(!route.contains("metr"), "unbounded label {route}");
    }
    let token_errors = scrape
        .samples
        .iter()
        .find(|s| s.metric == "rampart_auth_events_total" && s.labels.get("event") == Some("token"))
        .unwrap();
    assert!(matches!(token_errors.value, prometheus_parse::Value::Counter(v) if v >= 1.0));
    server.stop().await;
}
