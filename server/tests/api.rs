use rampart_auth::oauth::ClientAuthMethod;
use rampart_testkit::{acme, valid_slug};

use crate::common::{Pki, client, config, get_text, machine_client, start, url};

#[tokio::test(flavor = "multi_thread")]
async fn api_v1_is_tenant_scoped_and_authenticated() {
    let pki = Pki::new();
    let (server, state) = start(config(&pki).await).await;
    for slug in ["acme", "globex"] {
        state
            .tenants
            .provision(&valid_slug(slug), slug)
            .await
            .unwrap();
    }
    let auth = crate::common::auth(&state);
    let secret = auth
        .register_client(
            &acme(),
            &machine_client(
                "robot",
                "Robot",
                &["market:read"],
                ClientAuthMethod::ClientSecretBasic,
            ),
        )
        .await
        .unwrap()
        .unwrap();
    let http = client(&pki.ca.cert_pem(), None);
    let token = crate::common::send_json(
        http.post(url(server.public_addr, "/t/acme/oauth/token"))
            .basic_auth("robot", Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&scope=market%3Aread"),
    )
    .await;
    let access = token["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    // A bad bearer token is challenged as RFC 6750 §3 says.
    let challenge =
        |r: &reqwest::Response| r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    let refused = http
        .get(url(server.public_addr, "/t/acme/oauth/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(challenge(&refused), "Bearer error=\"invalid_token\"");

    // A quote through the chain (embedded data), then from L1.
    let get = |path: &str, bearer: Option<&str>| {
        let mut r = http.get(url(server.public_addr, path));
        if let Some(b) = bearer {
            r = r.bearer_auth(b);
        }
        r.send()
    };
    let quote = async || -> serde_json::Value {
        let res = get("/api/v1/t/acme/quotes/%5EGSPC", Some(&access)).await;
        res.unwrap().json().await.unwrap()
    };
    let first = quote().await;
    assert_eq!(first["success"], true, "{first}");
    assert_eq!(first["data"]["quote"]["price"], 2506.85);
    assert_eq!(first["data"]["source"]["layer"], "provider");
    let second = quote().await;
    assert_eq!(second["data"]["source"]["layer"], "l1");
    let unknown = get("/api/v1/t/acme/quotes/NOPE", Some(&access))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);

    // No token, a garbage token, and acme's token at globex: all 401 alike.
    for (path, bearer) in [
        ("/api/v1/t/acme/quotes/%5EGSPC", None),
        ("/api/v1/t/acme/quotes/%5EGSPC", Some("not.a.jwt")),
        ("/api/v1/t/globex/quotes/%5EGSPC", Some(access.as_str())),
        (
            "/api/v1/t/nosuchtenant/quotes/%5EGSPC",
            Some(access.as_str()),
        ),
    ] {
        let res = get(path, bearer).await.unwrap();
        assert_eq!(res.status(), 401, "{path} {bearer:?}");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body["meta"]["requestId"].is_string());
    }
    // A machine client has no profile.
    let me = get("/api/v1/t/acme/me", Some(&access)).await.unwrap();
    assert_eq!(me.status(), 403);

    // Market metrics are in the exposition.
    let operator = pki.client(Some(&pki.operator()));
    let text = get_text(&operator, &url(server.admin_addr, "/metrics")).await;
    assert!(text.contains("rampart_market_"), "market metrics missing");
    server.stop().await;
}
