//! The axum service against a real PostgreSQL from the test kit: a tenant's
//! own token reads that tenant's users; a missing, malformed or forged token,
//! another tenant's token, or a token sealed for another tenant does not.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use rampart_auth::AuthConfig;
use rampart_example_axum::{AppState, router};
use rampart_tenancy::{TenancyConfig, TenancyError, TenantPool};
use reqwest::StatusCode;

/// The tenant template's `users` table, as far as this reads it.
/// Unqualified: `with_tenant` routes it to the tenant's schema.
mod schema {
    diesel::table! {
        users (id) {
            id -> Uuid,
            email -> Text,
        }
    }
}
use schema::users;

async fn add_user(pool: &TenantPool, tenant: &str, email: &str) -> anyhow::Result<()> {
    pool.with_tenant(tenant, async |conn| {
        diesel::insert_into(users::table)
            .values(users::email.eq(email))
            .execute(conn)
            .await?;
        Ok::<_, TenancyError>(())
    })
    .await?;
    Ok(())
}

/// `GET {base}/t/{tenant}/users` with an optional `Authorization` value.
async fn get_users(
    base: &str,
    tenant: &str,
    authorization: Option<&str>,
) -> anyhow::Result<reqwest::Response> {
    let mut request = reqwest::Client::new().get(format!("{base}/t/{tenant}/users"));
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    Ok(request.send().await?)
}

async fn emails(response: reqwest::Response) -> anyhow::Result<Vec<String>> {
    assert_eq!(response.status(), StatusCode::OK);
    let listed: Vec<serde_json::Value> = response.json().await?;
    Ok(listed
        .iter()
        .filter_map(|user| user["email"].as_str().map(str::to_owned))
        .collect())
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
    let acme = pool.provision("acme", "Acme Capital").await?;
    let globex = pool.provision("globex", "Globex").await?;
    add_user(&pool, "acme", "ada@acme.test").await?;
    add_user(&pool, "globex", "bob@globex.test").await?;

    let state = AppState::with_memory_keys(pool.clone(), AuthConfig::default()).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = router(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let acme_token = format!("Bearer {}", state.issue_token(&acme, "ada")?);
    let globex_token = format!("Bearer {}", state.issue_token(&globex, "bob")?);

    // The tenant's own token: 200 with its users, and only its users.
    let own = get_users(&base, "acme", Some(&acme_token)).await?;
    assert_eq!(emails(own).await?, ["ada@acme.test"]);
    let own = get_users(&base, "globex", Some(&globex_token)).await?;
    assert_eq!(emails(own).await?, ["bob@globex.test"]);

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
    let sealed_for_globex = format!("Bearer {}", state.issue_token(&mislabelled, "ada")?);
    let response = get_users(&base, "acme", Some(&sealed_for_globex)).await?;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // A valid token for a tenant that may no longer serve requests: 404.
    pool.suspend("globex", "unpaid", None).await?;
    let response = get_users(&base, "globex", Some(&globex_token)).await?;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    Ok(())
}
