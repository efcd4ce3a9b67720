//! The axum service against a real PostgreSQL from the test kit: a tenant's
//! own token reads that tenant's users, page by page; a missing, malformed or
//! forged token, another tenant's token, or a token sealed for another tenant
//! does not. Users are registered through rampart-auth's accounts service,
//! the owner of the `users` table, never inserted directly.

use rampart_auth::{AuthConfig, Role};
use rampart_example_axum::{AppState, MAX_PAGE_LIMIT, router};
use rampart_tenancy::{TenancyConfig, TenantPool};
use rampart_testkit::{acme, globex, valid_slug};
use reqwest::StatusCode;
use uuid::Uuid;

/// Meets the platform's password policy (12 characters or more, not a
/// common password, not the e-mail address) and the tenants' default.
const PASSWORD: &str = "Quiet-lantern-harbour-2031";

/// Registers a user through rampart-auth's accounts service (the owner of
/// the `users` table) and returns its id.
async fn add_user(
    state: &AppState,
    tenant: &str,
    email: &str,
    display_name: &str,
    role: Role,
) -> anyhow::Result<Uuid> {
    let user = state
        .auth()
        .accounts()
        .register(&valid_slug(tenant), email, display_name, PASSWORD, role)
        .await?;
    Ok(user.id.into())
}

/// `GET {base}/t/{tenant}/users{query}` with an optional `Authorization`
/// value.
async fn get_users_with(
    base: &str,
    tenant: &str,
    query: &str,
    authorization: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = reqwest::Client::new().get(format!("{base}/t/{tenant}/users{query}"));
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    Ok(request.send().await?)
}

/// `GET {base}/t/{tenant}/users` with an optional `Authorization` value.
async fn get_users(
    base: &str,
    tenant: &str,
    authorization: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    get_users_with(base, tenant, "", authorization).await
}

/// The users a `200` lists, in the order it lists them.
async fn listed(response: reqwest::Response) -> anyhow::Result<Vec<serde_json::Value>> {
    assert_eq!(response.status(), StatusCode::OK);
    Ok(response.json().await?)
}

fn emails(listed: &[serde_json::Value]) -> Vec<String> {
    listed
        .iter()
        .filter_map(|user| user["email"].as_str().map(str::to_owned))
        .collect()
}

fn ids(listed: &[serde_json::Value]) -> Vec<Uuid> {
    listed
        .iter()
        .filter_map(|user| user["id"].as_str()?.parse().ok())
        .collect()
}

#[tokio::test]
async fn a_bearer_token_reads_its_own_tenant_only() -> anyhow::Result<()> {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::postgres()?.fresh_database().await?;
    let pool = TenantPool::connect(TenancyConfig {
        database_url: db.url.clone(),
        ..TenancyConfig::default()
    })
    .await?;
    let acme = pool.provision(&acme(), "Acme Capital").await?;
    let globex = pool.provision(&globex(), "Globex").await?;

    let state = AppState::with_memory_keys(pool.clone(), AuthConfig::default()).await?;
    let ada = add_user(
        &state,
        "acme",
        "ada@acme.test",
        "Ada Lovelace",
        Role::Trader,
    )
    .await?;
    let cy = add_user(&state, "acme", "cy@acme.test", "Cy Young", Role::Viewer).await?;
    let dee = add_user(&state, "acme", "dee@acme.test", "Dee Dee", Role::Analyst).await?;
    let bob = add_user(&state, "globex", "bob@globex.test", "Bob Page", Role::Admin).await?;
    // The listing's order: by id.
    let mut acme_ids = vec![ada, cy, dee];
    acme_ids.sort();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let acme_token = format!("Bearer {}", state.issue_token(&acme, &ada.to_string())?);
    let globex_token = format!("Bearer {}", state.issue_token(&globex, &bob.to_string())?);

    // The tenant's own token: 200 with its users by id, and only its users.
    let own = listed(get_users(&base, "acme", Some(&acme_token)).await?).await?;
    assert_eq!(ids(&own), acme_ids);
    let mut own_emails = emails(&own);
    own_emails.sort();
    assert_eq!(
        own_emails,
        ["ada@acme.test", "cy@acme.test", "dee@acme.test"]
    );
    let ada_listed = own
        .iter()
        .find(|user| user["id"] == ada.to_string())
        .ok_or_else(|| anyhow::anyhow!("ada is not listed: {own:?}"))?;
    assert_eq!(ada_listed["email"], "ada@acme.test");
    assert_eq!(ada_listed["display_name"], "Ada Lovelace");
    assert_eq!(ada_listed["role"], "trader");
    let own = listed(get_users(&base, "globex", Some(&globex_token)).await?).await?;
    assert_eq!(emails(&own), ["bob@globex.test"]);
    assert_eq!(ids(&own), [bob]);

    // Paging by id: `limit` users after `after`; the pages put together are
    // the whole list, and past the last id there is nothing.
    let first = get_users_with(&base, "acme", "?limit=2", Some(&acme_token)).await?;
    assert_eq!(ids(&listed(first).await?), acme_ids[..2]);
    let query = format!("?after={}&limit=2", acme_ids[1]);
    let second = get_users_with(&base, "acme", &query, Some(&acme_token)).await?;
    assert_eq!(ids(&listed(second).await?), acme_ids[2..]);
    let query = format!("?after={}", acme_ids[2]);
    let past = get_users_with(&base, "acme", &query, Some(&acme_token)).await?;
    assert_eq!(listed(past).await?, Vec::<serde_json::Value>::new());
    let query = format!("?limit={MAX_PAGE_LIMIT}");
    let widest = get_users_with(&base, "acme", &query, Some(&acme_token)).await?;
    assert_eq!(ids(&listed(widest).await?), acme_ids);
    // Invalid paging: 400 (after the token check: without one, 401).
    let too_many = format!("?limit={}", MAX_PAGE_LIMIT + 1);
    for query in [
        "?limit=0",
        "?limit=-1",
        too_many.as_str(),
        "?limit=ten",
        "?after=not-a-uuid",
    ] {
        let response = get_users_with(&base, "acme", query, Some(&acme_token)).await?;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        let body: serde_json::Value = response.json().await?;
        assert_eq!(body["error"], "bad_request", "{query}");
    }
    let response = get_users_with(&base, "acme", "?limit=0", None).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // No token, not a bearer token, a malformed token: 401 with a challenge.
    for authorization in [None, Some("Basic YWRhOnB3"), Some("Bearer not.a.jwt")] {
        let response = get_users(&base, "acme", authorization).await?;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization:?}"
        );
        assert_eq!(
            response.headers()[reqwest::header::WWW_AUTHENTICATE],
            "Bearer"
        );
    }

    // A well-formed token signed by keys this service does not have: 401.
    let stranger = AppState::with_memory_keys(pool.clone(), AuthConfig::default()).await?;
    let forged = format!("Bearer {}", stranger.issue_token(&acme, "mallory")?);
    let response = get_users(&base, "acme", Some(&forged)).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Another tenant's token: 401, whichever way round, and for an unknown
    // tenant too (no token, no hint whether a tenant exists).
    for (tenant, token) in [
        ("globex", &acme_token),
        ("acme", &globex_token),
        ("initech", &acme_token),
    ] {
        let response = get_users(&base, tenant, Some(token)).await?;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{tenant}");
    }

    // acme's issuer but globex's id sealed inside: 401.
    let mut mislabelled = acme.clone();
    mislabelled.id = globex.id;
    let sealed_for_globex = format!(
        "Bearer {}",
        state.issue_token(&mislabelled, &ada.to_string())?
    );
    let response = get_users(&base, "acme", Some(&sealed_for_globex)).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A valid token for a tenant that may no longer serve requests: 404.
    pool.suspend(&valid_slug("globex"), "unpaid", None).await?;
    let response = get_users(&base, "globex", Some(&globex_token)).await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}
