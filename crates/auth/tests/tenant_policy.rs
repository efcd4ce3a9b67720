//! The tenant's settings as the accounts apply them (registration policy,
//! verified e-mail and MFA for admins at login, session lifetime), API keys
//! bounded by their owner's current role, and the audit export's range
//! verification.
use diesel_async::{AsyncConnection, AsyncPgConnection};
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::accounts::SelfRegistration;
use rampart_auth::audit::AuditEvent;
use rampart_auth::audit_query::AuditFilter;
use rampart_auth::{AuthError, Permission, Role, authorize};
use rampart_testkit::{acme, globex, valid_slug};
use serde_json::json;

use crate::accounts::tamper;
use crate::common::{PASSWORD, ctx, server};

#[tokio::test(flavor = "multi_thread")]
async fn registration_policy_and_login_policy() {
    let s = server().await;
    let a = &s.auth;
    let accounts = a.accounts();
    let pool = a.pool();
    // Default: invitation only; closed; open to one domain.
    let acme = acme();
    let sign_up = |email: &'static str| accounts.self_register(&acme, email, "New", PASSWORD);
    let r = sign_up("new@acme.test").await;
    assert!(matches!(r, Err(AuthError::InvitationRequired)), "{r:?}");
    pool.update_tenant_settings(
        &valid_slug("acme"),
        &json!({"registration": {"mode": "closed"}}),
    )
    .await
    .unwrap();
    let r = sign_up("new@acme.test").await;
    assert!(matches!(r, Err(AuthError::RegistrationClosed)), "{r:?}");
    pool.update_tenant_settings(
        &valid_slug("acme"),
        &json!({"registration": {"mode": "open", "allowedDomains": ["acme.test"]}}),
    )
    .await
    .unwrap();
    let r = sign_up("new@elsewhere.test").await;
    assert!(matches!(r, Err(AuthError::EmailDomainNotAllowed)), "{r:?}");
    let Ok(SelfRegistration::Created(user)) = sign_up("New@Acme.test").await else {
        panic!("registered")
    };
    let Ok(SelfRegistration::Existing(id)) = accounts
        .self_register(
            &valid_slug("acme"),
            "new@acme.test",
            "Other",
            "another-long-passphrase",
        )
        .await
    else {
        panic!("the existing account")
    };
    assert_eq!(id, user.id);
    assert!(
        !accounts
            .profile(&valid_slug("acme"), user.id)
            .await
            .unwrap()
            .email_verified
    );

    // Unverified: refused after the right password only.
    let r = a
        .login(
            &valid_slug("acme"),
            "new@acme.test",
            "wrong-password-xx",
            &ctx("10.9.0.1"),
        )
        .await;
    assert!(matches!(r, Err(AuthError::InvalidCredentials)), "{r:?}");
    let r = a
        .login(
            &valid_slug("acme"),
            "new@acme.test",
            PASSWORD,
            &ctx("10.9.0.1"),
        )
        .await;
    assert!(matches!(r, Err(AuthError::EmailNotVerified)), "{r:?}");
    // Accounts made by `register` (administrators, demo) are verified.
    let admin = a
        .register(
            &valid_slug("acme"),
            "root@acme.test",
            "Root",
            PASSWORD,
            Role::Admin,
        )
        .await
        .unwrap();
    assert!(
        accounts
            .profile(&valid_slug("acme"), admin.id)
            .await
            .unwrap()
            .email_verified
    );

    // MFA for admins; the session lifetime of the tenant.
    pool.update_tenant_settings(
        &valid_slug("acme"),
        &json!({"mfaRequiredForAdmins": true, "sessionLifetimeSecs": 900}),
    )
    .await
    .unwrap();
    let r = a
        .login(
            &valid_slug("acme"),
            "root@acme.test",
            PASSWORD,
            &ctx("10.9.0.2"),
        )
        .await;
    assert!(matches!(r, Err(AuthError::MfaEnrollmentRequired)), "{r:?}");
    let log = a.audit_log(&valid_slug("acme"), 1).await.unwrap();
    assert_eq!(
        (log[0].action.as_str(), log[0].result.as_str()),
        ("login", "refused")
    );
    pool.update_tenant_settings(&valid_slug("acme"), &json!({"mfaRequiredForAdmins": false}))
        .await
        .unwrap();
    let Ok(LoginOutcome::LoggedIn(session)) = a
        .login(
            &valid_slug("acme"),
            "root@acme.test",
            PASSWORD,
            &ctx("10.9.0.2"),
        )
        .await
    else {
        panic!("logged in")
    };
    let left = (session.expires_at - chrono::Utc::now()).num_seconds();
    assert!((800..=900).contains(&left), "{left}");

    // The tenant's password length.
    pool.update_tenant_settings(
        &valid_slug("acme"),
        &json!({"passwordPolicy": {"minLength": 30}}),
    )
    .await
    .unwrap();
    let r = a
        .register(
            &valid_slug("acme"),
            "short@acme.test",
            "S",
            PASSWORD,
            Role::Viewer,
        )
        .await;
    assert!(matches!(r, Err(AuthError::WeakPassword(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_follow_their_owners_current_role() {
    let s = server().await;
    let a = &s.auth;
    let bot = a
        .register(&acme(), "bot@acme.test", "Bot", PASSWORD, Role::ApiUser)
        .await
        .unwrap();
    let key = a
        .create_api_key(
            &acme(),
            bot.id,
            "k",
            &["portfolio:read".into(), "trade".into()],
            None,
            &ctx("10.9.1.1"),
        )
        .await
        .unwrap();
    let p = a.authenticate_api_key(&acme(), &key.key).await.unwrap();
    assert!(authorize(&p, Permission::TradeExecute).is_ok());
    // Never beyond its scopes.
    assert!(authorize(&p, Permission::MarketRead).is_err());
    a.set_role(&acme(), bot.id, Role::Viewer).await.unwrap();
    let p = a.authenticate_api_key(&acme(), &key.key).await.unwrap();
    assert!(authorize(&p, Permission::TradeExecute).is_err());
    assert!(authorize(&p, Permission::PortfolioRead).is_ok());
    // Another tenant does not know the key.
    assert!(a.authenticate_api_key(&globex(), &key.key).await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_export_verifies_exactly_its_range() {
    let s = server().await;
    let a = &s.auth;
    // One `register` row, then four recorded login failures.
    a.register(&acme(), "aud@acme.test", "Aud", PASSWORD, Role::Viewer)
        .await
        .unwrap();
    for ip in ["10.9.2.1", "10.9.2.2", "10.9.2.3", "10.9.2.4"] {
        a.audit(
            &acme(),
            AuditEvent::new("login", "failure").client(&ctx(ip)),
        )
        .await
        .unwrap();
    }
    let trail = a.audit_trail();
    let all = AuditFilter::default();
    let (rows, truncated, v) = trail.audit_export(&acme(), &all, 1000).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert!(!truncated && v.ok());
    assert_eq!((v.rows, v.unsealed), (5, 5));
    // Sealed, the rows are checked against the tree.
    trail.seal(&acme()).await.unwrap();
    let (_, _, v) = trail.audit_export(&acme(), &all, 1000).await.unwrap();
    assert_eq!((v.rows, v.unsealed), (5, 0));
    // Bounded: the first rows, and it says there are more.
    let (rows, truncated, v) = trail.audit_export(&acme(), &all, 2).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(truncated);
    assert_eq!((v.from_id, v.to_id), (Some(rows[0].id), Some(rows[1].id)));
    // Filtered: the logins only; the verification spans their ids.
    let logins = AuditFilter {
        action: Some("login".into()),
        ..AuditFilter::default()
    };
    let (rows, _, v) = trail.audit_export(&acme(), &logins, 1000).await.unwrap();
    assert_eq!(rows.len(), 4);
    assert_eq!(v.rows, 4);
    // A row changed past the trigger is reported in a range that holds it,
    // not in one before it.
    let target = rows[2].id;
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    tamper(
        &mut conn,
        format!("UPDATE tenant_acme.audit_log SET result = 'success' WHERE id = {target}"),
    )
    .await;
    let (_, _, v) = trail.audit_export(&acme(), &all, 1000).await.unwrap();
    assert_eq!(v.first_broken, Some(target));
    let (_, _, v) = trail.audit_export(&acme(), &all, 2).await.unwrap();
    assert!(v.ok(), "{v:?}");
    // Paging, newest first.
    let page = trail.audit_page(&acme(), &all, None, 2).await.unwrap();
    let next = trail
        .audit_page(&acme(), &all, Some(page[1].id), 10)
        .await
        .unwrap();
    assert_eq!(page.len() + next.len(), 5);
    assert!(next[0].id < page[1].id);
}
