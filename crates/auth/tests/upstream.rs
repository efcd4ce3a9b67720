//! Upstream providers persisted per tenant, against a real oidc-provider:
//! they survive a new `AuthServer`, secrets stay out of the database,
//! explicit endpoints skip discovery, a bad issuer is a typed error,
//! tenants do not see each other's providers, disabling stops logins.
use rampart_testkit::{acme, globex};
use std::sync::Arc;

use rampart_auth::{
    AuthError, AuthServer, KeyEncryptionKey, KeyRing, MemoryKeyStore, MemoryUpstreamSecrets,
    RotationPolicy, UpstreamProvider, UpstreamProviderUpdate, UpstreamSecrets,
};
use rampart_testkit::OidcProvider;
use secrecy::{ExposeSecret, SecretString};

use crate::common::{TestServer, config, server};

const SECRET: &str = "upstream-client-secret-9f3b";

fn provider(idp: &OidcProvider, name: &str) -> UpstreamProvider {
    UpstreamProvider {
        name: name.into(),
        display_name: "Test IdP".into(),
        issuer: idp.issuer(),
        client_id: OidcProvider::CLIENT_ID.into(),
        redirect_uri: "http://127.0.0.1:9/callback".into(),
        scopes: vec!["email".into(), "profile".into()],
        ..UpstreamProvider::default()
    }
}

/// The provider "idp" with the client secret [`SECRET`].
fn provider_with_secret(idp: &OidcProvider) -> UpstreamProvider {
    UpstreamProvider {
        client_secret: Some(SecretString::from(SECRET)),
        ..provider(idp, "idp")
    }
}

/// Another AuthServer over the same database (a restart, another replica).
async fn reopen(t: &TestServer, secrets: Arc<dyn UpstreamSecrets>) -> AuthServer {
    let tenancy = rampart_tenancy::TenancyConfig::new(t.db_url.clone(), 4);
    let pool = rampart_tenancy::TenantPool::connect(tenancy).await.unwrap();
    let kek = KeyEncryptionKey::generate();
    let ring = KeyRing::open(
        Arc::new(MemoryKeyStore::new()),
        kek.clone(),
        RotationPolicy::from_config(&config()),
    )
    .await
    .unwrap();
    AuthServer::new(pool, config(), ring, kek)
        .unwrap()
        .with_upstream_secrets(secrets)
}

#[tokio::test(flavor = "multi_thread")]
async fn providers_persist_with_their_secret_in_the_store_only() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let t = server().await;
    let secrets = Arc::new(MemoryUpstreamSecrets::new());
    let first = reopen(&t, secrets.clone()).await;
    let info = first
        .upstream()
        .put_provider(&acme(), provider_with_secret(idp), false, "test")
        .await
        .unwrap();
    assert!(info.has_client_secret);
    assert!(!serde_json::to_string(&info).unwrap().contains(SECRET));
    assert_eq!(
        secrets
            .get(&acme(), "idp")
            .await
            .unwrap()
            .unwrap()
            .expose_secret(),
        SECRET
    );
    // Creating it again is a conflict; replacing the same thing is a no-op.
    let again = first
        .upstream()
        .put_provider(&acme(), provider(idp, "idp"), false, "test")
        .await;
    assert!(matches!(again, Err(AuthError::Conflict(_))), "{again:?}");

    // A new server over the same database and store sees it and logs in.
    let second = reopen(&t, secrets.clone()).await;
    let listed = second.upstream().list_providers(&acme()).await.unwrap();
    assert_eq!(listed, vec![info.clone()]);
    assert_eq!(
        second.upstream_providers(&acme()).await.unwrap(),
        vec![("idp".to_owned(), "Test IdP".to_owned())]
    );
    let login = second.begin_login(&acme(), "idp", None).await.unwrap();
    assert!(login.authorization_url.starts_with(&idp.issuer()));

    // The secret is nowhere in the tenant's schema.
    let dump = second
        .pool()
        .with_tenant(&acme(), async |conn| {
            #[derive(diesel::QueryableByName)]
            struct Row {
                #[diesel(sql_type = diesel::sql_types::Text)]
                row: String,
            }
            // raw SQL: a whole-row text dump of every table of the schema.
            let tables: Vec<Row> = diesel_async::RunQueryDsl::load(
                diesel::sql_query(
                    "SELECT tablename::text AS row FROM pg_tables WHERE schemaname = current_schema()",
                ),
                conn,
            )
            .await
            .map_err(rampart_tenancy::TenancyError::from)?;
            let mut all = String::new();
            for t in tables {
                let rows: Vec<Row> = diesel_async::RunQueryDsl::load(
                    diesel::sql_query(format!("SELECT t::text AS row FROM \"{}\" t", t.row)),
                    conn,
                )
                .await
                .map_err(rampart_tenancy::TenancyError::from)?;
                for r in rows {
                    all.push_str(&r.row);
                }
            }
            Ok::<_, rampart_tenancy::TenancyError>(all)
        })
        .await
        .unwrap();
    assert!(dump.contains("Test IdP"));
    assert!(!dump.contains(SECRET));

    // Removing the secret, then deleting the provider, empties the store.
    let info = second
        .upstream()
        .update_provider(
            &acme(),
            "idp",
            &UpstreamProviderUpdate {
                remove_client_secret: true,
                ..Default::default()
            },
            "test",
        )
        .await
        .unwrap();
    assert!(!info.has_client_secret);
    assert!(secrets.get(&acme(), "idp").await.unwrap().is_none());
    second
        .upstream()
        .delete_provider(&acme(), "idp", "test")
        .await
        .unwrap();
    assert!(matches!(
        second.upstream().provider_info(&acme(), "idp").await,
        Err(AuthError::NotFound(_))
    ));
    // Every change is in the audit log, never the secret.
    let log = second.audit_log(&acme(), 50).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|r| r.action.as_str()).collect();
    for action in ["idp_create", "idp_update", "idp_delete"] {
        assert!(actions.contains(&action), "{actions:?}");
    }
    assert!(!format!("{log:?}").contains(SECRET));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_without_a_store_is_refused() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let t = server().await;
    let r = t
        .auth
        .upstream()
        .put_provider(&acme(), provider_with_secret(idp), false, "test")
        .await;
    assert!(matches!(r, Err(AuthError::NoSecretStore)), "{r:?}");
    assert!(
        t.auth
            .upstream()
            .list_providers(&acme())
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_endpoints_skip_discovery_and_bad_issuers_are_typed_errors() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let t = server().await;
    let up = t.auth.upstream();
    let iss = idp.issuer();
    // An issuer whose discovery document is missing; nothing listens there;
    // not https and not loopback (refused before any request).
    for (issuer, discovery_failed) in [
        (format!("{iss}/nowhere"), true),
        ("http://127.0.0.1:9".into(), true),
        ("http://idp.example".into(), false),
    ] {
        let bad = UpstreamProvider {
            issuer,
            ..provider(idp, "bad")
        };
        let r = up.put_provider(&acme(), bad, false, "test").await;
        if discovery_failed {
            assert!(matches!(r, Err(AuthError::UpstreamDiscovery(_))), "{r:?}");
        } else {
            assert!(matches!(r, Err(AuthError::InvalidRequest(_))), "{r:?}");
        }
    }
    // Explicit endpoints: the issuer's discovery document is not read (a
    // path that has none), only the JWKS; a JWKS URL that is no JWKS fails.
    let explicit = UpstreamProvider {
        issuer: format!("{iss}/no-discovery-here"),
        authorization_endpoint: Some(format!("{iss}/auth")),
        token_endpoint: Some(format!("{iss}/token")),
        jwks_uri: Some(format!("{iss}/jwks")),
        ..provider(idp, "explicit")
    };
    let info = up
        .put_provider(&acme(), explicit.clone(), false, "test")
        .await
        .unwrap();
    assert_eq!(
        info.jwks_uri.as_deref(),
        Some(format!("{iss}/jwks").as_str())
    );
    let login = up.begin_login(&acme(), "explicit", None).await.unwrap();
    assert!(login.authorization_url.starts_with(&format!("{iss}/auth?")));
    let r = up
        .put_provider(
            &acme(),
            UpstreamProvider {
                jwks_uri: Some(format!("{iss}/.well-known/openid-configuration")),
                ..explicit
            },
            true,
            "test",
        )
        .await;
    assert!(matches!(r, Err(AuthError::UpstreamDiscovery(_))), "{r:?}");
    // A failed change leaves the provider as it was.
    let still = up.provider_info(&acme(), "explicit").await.unwrap();
    assert_eq!(still, info);
}

#[tokio::test(flavor = "multi_thread")]
async fn tenants_do_not_see_each_others_providers_and_disable_stops_logins() {
    let idp = rampart_testkit::oidc_provider().unwrap();
    let t = server().await;
    let up = t.auth.upstream();
    up.put_provider(&acme(), provider(idp, "idp"), false, "test")
        .await
        .unwrap();
    assert!(up.list_providers(&globex()).await.unwrap().is_empty());
    assert!(
        t.auth
            .upstream_providers(&globex())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        up.provider_info(&globex(), "idp").await,
        Err(AuthError::NotFound(_))
    ));
    assert!(matches!(
        t.auth.begin_login(&globex(), "idp", None).await,
        Err(AuthError::NotFound(_))
    ));
    assert!(matches!(
        up.delete_provider(&globex(), "idp", "test").await,
        Err(AuthError::NotFound(_))
    ));
    // A login started at acme cannot be finished at globex.
    let started = t.auth.begin_login(&acme(), "idp", None).await.unwrap();
    let r = t
        .auth
        .complete_login(
            &globex(),
            "idp",
            "code",
            "state",
            None,
            &started.pending,
            &crate::common::ctx("127.0.0.1"),
        )
        .await;
    assert!(matches!(r, Err(AuthError::AccessDenied(_))), "{r:?}");

    // Disabled: not offered, not startable, and re-enabled it works again.
    let off = up
        .set_provider_enabled(&acme(), "idp", false, "test")
        .await
        .unwrap();
    assert!(!off.enabled);
    assert!(t.auth.upstream_providers(&acme()).await.unwrap().is_empty());
    assert!(matches!(
        t.auth.begin_login(&acme(), "idp", None).await,
        Err(AuthError::NotFound(_))
    ));
    up.set_provider_enabled(&acme(), "idp", true, "test")
        .await
        .unwrap();
    t.auth.begin_login(&acme(), "idp", None).await.unwrap();
}
