//! The library against real PostgreSQL and a real SMTP server (aiosmtpd from
//! the test kit): messages are read back from its Maildir and their links
//! followed.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_testkit::acme;
use std::sync::Arc;
use std::time::Duration;

use rampart_auth::accounts::{LoginOutcome, SelfRegistration};
use rampart_auth::{AuthConfig, AuthServer, ClientContext, Role};
use rampart_notify::{Direction, NewPriceAlert, Notifier, NotifyConfig, NotifyError, SmtpTls};
use rampart_tenancy::{TenancyConfig, TenantPool};
use rust_decimal::Decimal;

struct Env {
    auth: Arc<AuthServer>,
    notifier: Notifier,
    pool: TenantPool,
}

async fn env() -> Env {
    rampart_testkit::install_crypto_provider();
    let db = rampart_testkit::fresh_database().await.unwrap();
    let pool = TenantPool::connect(TenancyConfig::new(db.url, 6))
        .await
        .unwrap();
    pool.provision(&acme(), "Acme").await.unwrap();
    let config = AuthConfig {
        argon2_m_kib: 1024,
        argon2_t: 1,
        ..AuthConfig::default()
    };
    let auth = Arc::new(
        AuthServer::with_memory_keys(pool.clone(), config)
            .await
            .unwrap(),
    );
    let notifier = Notifier::new(pool.clone(), mail_config()).unwrap();
    Env {
        auth,
        notifier,
        pool,
    }
}

/// The test kit's SMTP server, which every message goes through.
fn smtp() -> &'static rampart_testkit::SmtpServer {
    rampart_testkit::smtp_server().unwrap()
}

/// Mail through the test kit's SMTP server, links to https://rampart.test.
fn mail_config() -> NotifyConfig {
    NotifyConfig {
        smtp_host: smtp().host().into(),
        smtp_port: smtp().port(),
        tls: SmtpTls::None,
        from: "Rampart <no-reply@rampart.test>".into(),
        public_base_url: "https://rampart.test".into(),
        ..NotifyConfig::default()
    }
}

/// The password the reset links are spent on.
const NEW_PASSWORD: &str = "a brand new secret";

/// Spends a reset `token` on [`NEW_PASSWORD`], as the client `c`.
async fn reset_to_new_secret(
    notifier: &Notifier,
    auth: &AuthServer,
    token: &str,
    c: &ClientContext,
) -> Result<rampart_notify::UserId, NotifyError> {
    notifier
        .reset_password(auth, &acme(), token, NEW_PASSWORD, c)
        .await
}

/// Asks `notifier` for a password reset of `email` at `acme`, waits for the
/// one message `email` then has (a reset mail) and returns the token of its
/// link.
async fn requested_reset_token(notifier: &Notifier, email: &str) -> String {
    notifier
        .request_password_reset(&acme(), email)
        .await
        .unwrap();
    let mails = wait_for_mail(email, 1).await;
    assert_eq!(mails[0].0, "Reset your password");
    token_of(&mails[0].1)
}

/// The password of the users the tests register.
const PASSWORD: &str = "correct horse battery";

impl Env {
    /// Registers `name` at `acme` with a [`unique_email`] and [`PASSWORD`]:
    /// the address and the user.
    async fn user(&self, name: &str, role: Role) -> (String, rampart_auth::users::User) {
        let email = unique_email(&name.to_lowercase());
        let acme = acme();
        let user = self.auth.register(&acme, &email, name, PASSWORD, role);
        (email.clone(), user.await.unwrap())
    }
}

fn unique_email(name: &str) -> String {
    format!("{name}-{}@acme.test", uuid::Uuid::new_v4().simple())
}

/// (subject, text body) of every message delivered to `to`.
fn mail_to(to: &str) -> Vec<(String, String)> {
    smtp().mail_to(to).unwrap()
}

/// Waits until `to` has `n` messages; returns them.
async fn wait_for_mail(to: &str, n: usize) -> Vec<(String, String)> {
    smtp()
        .wait_for_mail(to, n, Duration::from_secs(10))
        .await
        .unwrap()
}

fn token_of(body: &str) -> String {
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("https://rampart.test/"))
        .expect("a link");
    link.split_once("?token=").unwrap().1.to_owned()
}

fn ctx(ip: &str, ua: &str) -> ClientContext {
    ClientContext::ip(ip).with_user_agent(ua)
}

#[tokio::test(flavor = "multi_thread")]
async fn verification_link_sets_email_verified_once() {
    let e = env().await;
    let email = unique_email("ada");
    // Self-service sign-up makes an unverified account (register() is the
    // operator's path and counts as verified).
    e.pool
        .update_tenant_settings(
            &acme(),
            &serde_json::json!({"registration": {"mode": "open"}}),
        )
        .await
        .unwrap();
    let user = match e
        .auth
        .accounts()
        .self_register(&acme(), &email, "Ada", "correct horse battery")
        .await
        .unwrap()
    {
        SelfRegistration::Created(user) => user,
        other => panic!("{other:?}"),
    };
    assert!(
        e.notifier
            .send_verification(&acme(), user.id)
            .await
            .unwrap()
    );
    let mails = wait_for_mail(&email, 1).await;
    assert_eq!(mails[0].0, "Confirm your e-mail address");
    assert!(mails[0].1.contains("/api/v1/t/acme/email/verify?token="));
    let token = token_of(&mails[0].1);

    // A tampered secret and a reset-purpose use are refused and spend nothing.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert!(matches!(
        e.notifier.confirm_email(&acme(), &tampered).await,
        Err(NotifyError::InvalidToken)
    ));
    assert!(matches!(
        reset_to_new_secret(&e.notifier, &e.auth, &token, &ctx("10.0.0.1", "t")).await,
        Err(NotifyError::InvalidToken)
    ));
    assert_eq!(
        e.notifier.confirm_email(&acme(), &token).await.unwrap(),
        user.id
    );
    // Single use.
    assert!(matches!(
        e.notifier.confirm_email(&acme(), &token).await,
        Err(NotifyError::InvalidToken)
    ));
    // Verified users are not mailed again.
    assert!(
        !e.notifier
            .send_verification(&acme(), user.id)
            .await
            .unwrap()
    );
    wait_for_mail(&email, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn password_reset_sets_a_new_password_and_revokes_sessions() {
    let e = env().await;
    let (email, _) = e.user("Grace", Role::Trader).await;
    let old = PASSWORD;
    let c = ctx("10.0.0.1", "Firefox/131.0");
    let LoginOutcome::LoggedIn(session) = e.auth.login(&acme(), &email, old, &c).await.unwrap()
    else {
        panic!("no MFA here")
    };

    // Unknown addresses get the same answer and no mail.
    let stranger = unique_email("nobody");
    e.notifier
        .request_password_reset(&acme(), &stranger)
        .await
        .unwrap();
    e.notifier
        .request_password_reset(&acme(), &email.to_uppercase())
        .await
        .unwrap();
    // A second request within a minute sends nothing more.
    let token = requested_reset_token(&e.notifier, &email).await;
    assert!(mail_to(&stranger).is_empty());

    // The policy runs first and does not spend the link.
    let weak = e
        .notifier
        .reset_password(&e.auth, &acme(), &token, "short", &c)
        .await;
    assert!(matches!(weak, Err(NotifyError::Auth(_))), "{weak:?}");
    reset_to_new_secret(&e.notifier, &e.auth, &token, &c)
        .await
        .unwrap();
    assert!(matches!(
        e.notifier
            .reset_password(&e.auth, &acme(), &token, "another new secret", &c)
            .await,
        Err(NotifyError::InvalidToken)
    ));
    assert!(
        e.auth
            .authenticate_session(&acme(), &session.token)
            .await
            .is_err()
    );
    assert!(e.auth.login(&acme(), &email, old, &c).await.is_err());
    assert!(matches!(
        e.auth
            .login(&acme(), &email, NEW_PASSWORD, &c)
            .await
            .unwrap(),
        LoginOutcome::LoggedIn(_)
    ));
    // The owner is told.
    let mails = wait_for_mail(&email, 2).await;
    assert_eq!(mails[1].0, "Your password was changed");
    assert!(mails[1].1.contains("10.0.0.1"), "{}", mails[1].1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_reset_leaves_the_second_factor_on() {
    let e = env().await;
    let (email, user) = e.user("Mia", Role::Trader).await;
    let c = ctx("10.0.0.2", "Firefox/131.0");
    let setup = e.auth.begin_totp_setup(&acme(), user.id).await.unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = rampart_auth::mfa::current_totp_code(&setup.secret_base32, now).unwrap();
    e.auth
        .confirm_totp(&acme(), user.id, &code, &c)
        .await
        .unwrap();
    let token = requested_reset_token(&e.notifier, &email).await;
    reset_to_new_secret(&e.notifier, &e.auth, &token, &c)
        .await
        .unwrap();
    // The reset link alone does not get past the second factor.
    assert!(matches!(
        e.auth
            .login(&acme(), &email, NEW_PASSWORD, &c)
            .await
            .unwrap(),
        LoginOutcome::MfaRequired { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_login_from_a_new_device_is_mailed_once() {
    let e = env().await;
    let (email, _) = e.user("Lin", Role::Viewer).await;
    let pw = PASSWORD;
    let laptop = ctx("192.0.2.10", "Mozilla/5.0 Firefox/131.0");
    let phone = ctx("198.51.100.20", "Mozilla/5.0 (iPhone) Safari/605.1");
    // The first device is learnt silently.
    e.auth.login(&acme(), &email, pw, &laptop).await.unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    // Same browser after an update, same network: the same device.
    let updated = ctx("192.0.2.77", "Mozilla/5.0 Firefox/132.0");
    e.auth.login(&acme(), &email, pw, &updated).await.unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    // A new device: one alert, even when checked twice.
    e.auth.login(&acme(), &email, pw, &phone).await.unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 1);
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    let mails = wait_for_mail(&email, 1).await;
    assert_eq!(mails[0].0, "New sign-in to your account");
    assert!(mails[0].1.contains("198.51.100.20"), "{}", mails[0].1);
    assert!(mails[0].1.contains("iPhone"));
    // That device again: nothing.
    e.auth.login(&acme(), &email, pw, &phone).await.unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    wait_for_mail(&email, 1).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn price_alerts_fire_once_when_the_quote_crosses() {
    let e = env().await;
    let (email, user) = e.user("Max", Role::Trader).await;
    let market = rampart_market::ProviderChain::from_config(
        &rampart_market::MarketConfig::default(),
        None,
        None,
    )
    .await
    .unwrap();
    let quoted = market.quote("^GSPC").await.unwrap().value.price;
    let price = quoted.round_dp(10);
    let below_price = (price * Decimal::new(9, 1)).round_dp(2);
    let new = |direction, threshold| NewPriceAlert {
        symbol: "^gspc".into(),
        direction,
        threshold,
        note: "rebalance".into(),
    };
    let fires = e
        .notifier
        .create_price_alert(&acme(), user.id, &new(Direction::Above, below_price))
        .await
        .unwrap();
    assert_eq!(fires.symbol, "^GSPC");
    let waits = e
        .notifier
        .create_price_alert(&acme(), user.id, &new(Direction::Below, below_price))
        .await
        .unwrap();
    assert!(matches!(
        e.notifier
            .create_price_alert(
                &acme(),
                user.id,
                &new(Direction::Above, Decimal::NEGATIVE_ONE)
            )
            .await,
        Err(NotifyError::InvalidRequest(_))
    ));
    // Thresholds are exact decimals: ten places kept to the digit, more
    // rounded away; non-positive (also after rounding) or more than the
    // column holds, refused.
    let exact: Decimal = "1234.5678901234".parse().unwrap();
    let kept = e
        .notifier
        .create_price_alert(&acme(), user.id, &new(Direction::Above, exact))
        .await
        .unwrap();
    assert_eq!(kept.threshold.normalize().to_string(), "1234.5678901234");
    let json = serde_json::to_string(&kept).unwrap();
    assert!(json.contains("\"threshold\":1234.5678901234,"), "{json}");
    let rounded = e
        .notifier
        .create_price_alert(
            &acme(),
            user.id,
            &new(Direction::Above, "2.00000000005".parse().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(rounded.threshold.normalize().to_string(), "2");
    e.notifier
        .delete_price_alert(&acme(), user.id, rounded.id)
        .await
        .unwrap();
    for refused in ["0.00000000004", "100000000000000000", "0"] {
        assert!(
            matches!(
                e.notifier
                    .create_price_alert(
                        &acme(),
                        user.id,
                        &new(Direction::Above, refused.parse().unwrap())
                    )
                    .await,
                Err(NotifyError::InvalidRequest(_))
            ),
            "{refused}"
        );
    }
    e.notifier
        .delete_price_alert(&acme(), user.id, kept.id)
        .await
        .unwrap();
    assert_eq!(
        e.notifier
            .check_price_alerts(&acme(), &market)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        e.notifier
            .check_price_alerts(&acme(), &market)
            .await
            .unwrap(),
        0
    );
    let mails = wait_for_mail(&email, 1).await;
    assert!(mails[0].0.starts_with("^GSPC is above"), "{}", mails[0].0);
    assert!(mails[0].1.contains("rebalance"));
    let fired = e
        .notifier
        .price_alert(&acme(), user.id, fires.id)
        .await
        .unwrap();
    assert_eq!(fired.triggered_price, Some(price));
    let pending = e
        .notifier
        .price_alert(&acme(), user.id, waits.id)
        .await
        .unwrap();
    assert!(pending.triggered_at.is_none());
    e.notifier
        .delete_price_alert(&acme(), user.id, waits.id)
        .await
        .unwrap();
    assert_eq!(
        e.notifier
            .list_price_alerts(&acme(), user.id)
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_reset_link_is_refused() {
    let e = env().await;
    let instant = Notifier::new(
        e.pool.clone(),
        NotifyConfig {
            reset_ttl_secs: 0,
            ..mail_config()
        },
    )
    .unwrap();
    let (email, _) = e.user("Kim", Role::Viewer).await;
    let token = requested_reset_token(&instant, &email).await;
    assert!(matches!(
        reset_to_new_secret(&instant, &e.auth, &token, &ctx("10.0.0.1", "t")).await,
        Err(NotifyError::InvalidToken)
    ));
}

/// Runs `sql` in `acme`'s schema (a test ageing its rows).
async fn in_acme(pool: &TenantPool, sql: &str) -> usize {
    use diesel_async::RunQueryDsl;
    pool.with_tenant(&acme(), async |conn| {
        Ok::<_, rampart_tenancy::TenancyError>(diesel::sql_query(sql).execute(conn).await?)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn cleanup_deletes_spent_links_and_old_device_marks_only() {
    let e = env().await;
    let (old_email, old_user) = e.user("Olga", Role::Viewer).await;
    let (new_email, _) = e.user("Nina", Role::Viewer).await;
    let old_token = requested_reset_token(&e.notifier, &old_email).await;
    let new_token = requested_reset_token(&e.notifier, &new_email).await;
    // Olga's link expired two days ago.
    let aged = format!(
        "UPDATE email_tokens SET created_at = now() - interval '3 days', \
         expires_at = now() - interval '2 days' WHERE user_id = '{}'",
        old_user.id
    );
    assert_eq!(in_acme(&e.pool, &aged).await, 1);
    // Two logins checked by the new-device job; Olga's three hours ago.
    let laptop = ctx("192.0.2.10", "Mozilla/5.0 Firefox/131.0");
    e.auth
        .login(&acme(), &old_email, PASSWORD, &laptop)
        .await
        .unwrap();
    e.auth
        .login(&acme(), &new_email, PASSWORD, &laptop)
        .await
        .unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    let aged = format!(
        "WITH s AS (UPDATE sessions SET created_at = now() - interval '3 hours' \
           WHERE user_id = '{}' RETURNING id) \
         UPDATE login_device_checks SET checked_at = now() - interval '3 hours' \
           WHERE session_id IN (SELECT id FROM s)",
        old_user.id
    );
    assert_eq!(in_acme(&e.pool, &aged).await, 1);

    let report = e.notifier.cleanup(&acme()).await.unwrap();
    assert_eq!(
        report,
        rampart_notify::NotifyCleanup {
            email_tokens: 1,
            login_device_checks: 1
        }
    );
    assert_eq!(
        e.notifier.cleanup(&acme()).await.unwrap(),
        Default::default()
    );
    // Olga's link answers as before (invalid), Nina's still works, and the
    // login whose mark went is not checked (nor alerted) again.
    assert!(matches!(
        reset_to_new_secret(&e.notifier, &e.auth, &old_token, &laptop).await,
        Err(NotifyError::InvalidToken)
    ));
    reset_to_new_secret(&e.notifier, &e.auth, &new_token, &laptop)
        .await
        .unwrap();
    assert_eq!(e.notifier.check_new_logins(&acme()).await.unwrap(), 0);
    assert_eq!(
        in_acme(&e.pool, "SELECT 1 FROM login_device_checks").await,
        1
    );
    assert_eq!(e.notifier.cleanup_all().await.unwrap(), 0);
}
