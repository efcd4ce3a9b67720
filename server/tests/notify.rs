//! E-mail notifications over real HTTPS against real PostgreSQL and a real
//! SMTP server (aiosmtpd from the test kit): registration with a
//! verification link, account recovery, new-device login alerts and price
//! alerts, reading the delivered messages and following their links.
use rampart_testkit::{acme, globex};
use std::time::Duration;

use diesel::sql_types::{Bool, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use mail_parser::MimeHeaders;
use rampart_auth::accounts::LoginOutcome;
use rampart_auth::{ClientContext, Role};
use rampart_server::app::AppState;
use rampart_server::jobs;
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::common::{Env, PASSWORD, Pki, config, get_status, kit_smtp, mint_token};

// ------------------------------------------------------------ notify helpers

/// The server with notifications on, and one tenant, `acme`.
pub(crate) async fn notify_env() -> Env {
    let pki = Pki::new();
    let mut config = config(&pki).await;
    config.notify = kit_smtp();
    let env = Env::start(pki, config).await;
    env.state.tenants.provision(&acme(), "Acme").await.unwrap();
    env
}

pub(crate) fn unique_email(name: &str) -> String {
    format!("{name}-{}@acme.test", Uuid::new_v4().simple())
}

/// (subject, text body) of every message delivered to `to`.
pub(crate) fn mail_to(to: &str) -> Vec<(String, String)> {
    rampart_testkit::smtp_server().unwrap().mail_to(to).unwrap()
}

/// Waits until `to` has `n` messages; returns them.
pub(crate) async fn wait_for_mail(to: &str, n: usize) -> Vec<(String, String)> {
    let smtp = rampart_testkit::smtp_server().unwrap();
    smtp.wait_for_mail(to, n, Duration::from_secs(10))
        .await
        .unwrap()
}

/// The path and query of the link in a message (the host is the configured
/// public base URL; the test server listens elsewhere).
pub(crate) fn link_path(body: &str) -> String {
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("https://rampart.test/"))
        .expect("a link");
    link.trim_start_matches("https://rampart.test").to_owned()
}

async fn email_verified(state: &AppState, user: Uuid) -> bool {
    #[derive(diesel::QueryableByName)]
    struct V {
        #[diesel(sql_type = Bool)]
        email_verified: bool,
    }
    state
        .tenants
        .with_tenant(&acme(), async |conn| {
            let v: V = diesel::sql_query("SELECT email_verified FROM users WHERE id = $1")
                .bind::<SqlUuid, _>(user)
                .get_result(conn)
                .await
                .unwrap();
            Ok::<_, rampart_tenancy::TenancyError>(v.email_verified)
        })
        .await
        .unwrap()
}

/// An access token for `user`, minted by the server's own token service as
/// the token endpoint would.
async fn token(state: &AppState, user: Uuid, role: Role) -> String {
    mint_token(state, "acme", user, role, "web").await
}

fn ctx(ip: &str, ua: &str) -> ClientContext {
    ClientContext::ip(ip).with_user_agent(ua)
}

// ------------------------------------------------------------ tests

#[tokio::test(flavor = "multi_thread")]
async fn registration_verification_and_password_reset_by_mail() {
    let e = notify_env().await;
    let email = unique_email("ada");

    // Registration (the tenant opens it): weak password refused, then
    // registered and mailed.
    e.state
        .tenants
        .update_tenant_settings(&acme(), &json!({"registration": {"mode": "open"}}))
        .await
        .unwrap();
    let r = e
        .http
        .post(e.url("/api/v1/t/acme/register"))
        .json(&json!({"email": email, "displayName": "Ada", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = e
        .http
        .post(e.url("/api/v1/t/acme/register"))
        .json(&json!({"email": email, "displayName": "Ada", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"], json!({"accepted": true}));
    let mails = wait_for_mail(&email, 1).await;
    let user = e
        .auth()
        .accounts()
        .find_by_email(&acme(), &email)
        .await
        .unwrap()
        .expect("registered")
        .id;
    // (A second registration of the address: `settings::registration_*`.)

    // Follow the verification link: verified, and only once.
    assert_eq!(mails[0].0, "Confirm your e-mail address");
    let verify = link_path(&mails[0].1);
    assert!(verify.starts_with("/api/v1/t/acme/email/verify?token="));
    assert!(!email_verified(&e.state, user.into()).await);
    let r = e.http.get(e.url(&verify)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(email_verified(&e.state, user.into()).await);
    let r = e.http.get(e.url(&verify)).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_token");
    // Resending needs a bearer token, and a verified address gets nothing.
    let r = e
        .http
        .post(e.url("/api/v1/t/acme/email/verification"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let bearer = token(&e.state, user.into(), Role::Viewer).await;
    let r = e
        .http
        .post(e.url("/api/v1/t/acme/email/verification"))
        .bearer_auth(&bearer)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["data"]["sent"], false);

    // Account recovery. A live session to be revoked by the reset.
    let auth = e.auth();
    let c = ctx("10.1.2.3", "Firefox/131.0");
    let LoginOutcome::LoggedIn(session) = auth.login(&acme(), &email, PASSWORD, &c).await.unwrap()
    else {
        panic!("no MFA here")
    };
    let stranger = unique_email("nobody");
    for who in [&stranger, &email] {
        let r = e
            .http
            .post(e.url("/api/v1/t/acme/password/forgot"))
            .json(&json!({"email": who}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let mails = wait_for_mail(&email, 2).await;
    assert!(mail_to(&stranger).is_empty());
    assert_eq!(mails[1].0, "Reset your password");
    let reset = link_path(&mails[1].1);
    let token_value = reset.split_once("?token=").unwrap().1.to_owned();

    // The link opens a form that posts the token back.
    let r = e.http.get(e.url(&reset)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains(&format!("name=\"token\" value=\"{token_value}\"")));
    assert!(html.contains("action=\"/api/v1/t/acme/password/reset\""));

    // A weak password is refused without spending the link; then the form.
    let reset_with = |password: &str| {
        let body = json!({"token": token_value, "password": password});
        e.call(
            Method::POST,
            "/api/v1/t/acme/password/reset",
            None,
            Some(body),
        )
    };
    assert_eq!(reset_with("password").await.0, 400);
    let new_password = "a-brand-new-passphrase-7";
    let r = e
        .http
        .post(e.url("/api/v1/t/acme/password/reset"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs([("token", token_value.as_str()), ("password", new_password)])
                .finish(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Spent; old password refused; sessions revoked; new password works.
    assert_eq!(reset_with("yet-another-passphrase").await.0, 400);
    assert!(
        auth.authenticate_session(&acme(), &session.token)
            .await
            .is_err()
    );
    assert!(auth.login(&acme(), &email, PASSWORD, &c).await.is_err());
    assert!(matches!(
        auth.login(&acme(), &email, new_password, &c).await.unwrap(),
        LoginOutcome::LoggedIn(_)
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn new_device_alerts_and_price_alerts_are_mailed_once() {
    let e = notify_env().await;
    let auth = e.auth();
    let email = unique_email("lin");
    let user = auth
        .register(&acme(), &email, "Lin", PASSWORD, Role::Trader)
        .await
        .unwrap();

    // New-device alerts: the first device is learnt, a new one is mailed
    // once, the same one again is not.
    let laptop = ctx("192.0.2.10", "Mozilla/5.0 (X11; Linux) Firefox/131.0");
    let phone = ctx("198.51.100.20", "Mozilla/5.0 (iPhone) Safari/605.1");
    auth.login(&acme(), &email, PASSWORD, &laptop)
        .await
        .unwrap();
    assert_eq!(jobs::run_login_alerts_once(&e.state).await.unwrap(), 0);
    auth.login(&acme(), &email, PASSWORD, &phone).await.unwrap();
    assert_eq!(jobs::run_login_alerts_once(&e.state).await.unwrap(), 1);
    auth.login(&acme(), &email, PASSWORD, &phone).await.unwrap();
    assert_eq!(jobs::run_login_alerts_once(&e.state).await.unwrap(), 0);
    let mails = wait_for_mail(&email, 1).await;
    assert_eq!(mails[0].0, "New sign-in to your account");
    assert!(mails[0].1.contains("198.51.100.20"));

    // Price alerts over HTTP.
    let bearer = token(&e.state, user.id.into(), Role::Trader).await;
    let alerts = "/api/v1/t/acme/price-alerts";
    assert_eq!(get_status(&e.http, &e.url(alerts)).await, 401, "no token");
    // A token of another tenant is refused like none.
    e.state
        .tenants
        .provision(&globex(), "Globex")
        .await
        .unwrap();
    e.expect_get(401, "/api/v1/t/globex/price-alerts", &bearer)
        .await;
    let price = rampart_amount::to_f64(e.state.market.quote("^GSPC").await.unwrap().value.price);
    for refused in [
        json!({"symbol": "no symbol!", "direction": "above", "threshold": 1.0}),
        json!({"symbol": "^GSPC", "direction": "sideways", "threshold": 1.0}),
    ] {
        e.with(&bearer).post(400, alerts, refused).await;
    }
    let mut ids = Vec::new();
    for (direction, threshold) in [("above", price * 0.9), ("below", price * 0.9)] {
        let alert = json!({"symbol": "^gspc", "direction": direction, "threshold": threshold, "note": "trim"});
        let v = e.with(&bearer).post(201, alerts, alert).await;
        assert_eq!(v["data"]["symbol"], "^GSPC");
        ids.push(v["data"]["id"].as_str().unwrap().to_owned());
    }
    let (_, v) = e.get(alerts, &bearer).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 2);

    // Another user sees none of them.
    let other = auth
        .register(&acme(), &unique_email("eve"), "Eve", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let other_bearer = token(&e.state, other.id.into(), Role::Trader).await;
    let one = format!("/api/v1/t/acme/price-alerts/{}", ids[0]);
    for method in [Method::GET, Method::DELETE] {
        e.expect(404, method, &one, Some(&other_bearer), None).await;
    }

    // The job: the crossed alert fires once, the other waits.
    assert_eq!(jobs::run_price_alerts_once(&e.state).await.unwrap(), 1);
    assert_eq!(jobs::run_price_alerts_once(&e.state).await.unwrap(), 0);
    let mails = wait_for_mail(&email, 2).await;
    assert!(mails[1].0.starts_with("^GSPC is above"), "{}", mails[1].0);
    assert!(mails[1].1.contains("trim"));
    let (_, v) = e.get(&one, &bearer).await;
    assert!(v["data"]["triggeredAt"].is_string());
    assert_eq!(v["data"]["triggeredPrice"].as_f64(), Some(price));
    let second = format!("/api/v1/t/acme/price-alerts/{}", ids[1]);
    e.with(&bearer).delete(200, &second).await;
    let (_, v) = e.get(alerts, &bearer).await;
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
}

/// The raw messages delivered to `to`, parsed.
fn raw_mail_to(to: &str) -> Vec<Vec<u8>> {
    let smtp = rampart_testkit::smtp_server().unwrap();
    smtp.messages()
        .unwrap()
        .into_iter()
        .filter(|raw| {
            mail_parser::MessageParser::default()
                .parse(raw.as_slice())
                .and_then(|m| {
                    m.to()
                        .and_then(|a| a.first())
                        .and_then(|a| a.address())
                        .map(str::to_owned)
                })
                .is_some_and(|a| a.eq_ignore_ascii_case(to))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_weekly_report_is_mailed_to_who_opted_in_once_a_week_with_charts_inline() {
    let e = notify_env().await;
    let auth = e.auth();
    let (ada_mail, bob_mail, cy_mail) =
        (unique_email("ada"), unique_email("bob"), unique_email("cy"));
    let ada = auth
        .register(&acme(), &ada_mail, "Ada", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let bob = auth
        .register(&acme(), &bob_mail, "Bob", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let cy = auth
        .register(&acme(), &cy_mail, "Cy", PASSWORD, Role::Trader)
        .await
        .unwrap();
    let (ada_t, bob_t, cy_t) = (
        token(&e.state, ada.id.into(), Role::Trader).await,
        token(&e.state, bob.id.into(), Role::Trader).await,
        token(&e.state, cy.id.into(), Role::Trader).await,
    );
    let prefs = "/api/v1/t/acme/me/preferences";
    // Off by default; Ada opts in, Bob opts in but turns notifications
    // off, Cy opts in and owns nothing.
    let p = e.expect_get(200, prefs, &ada_t).await;
    assert_eq!(p["data"]["weekly_report"], false, "{p}");
    e.expect_patch(prefs, &ada_t, json!({"weekly_report": true}))
        .await;
    e.expect_patch(
        prefs,
        &bob_t,
        json!({"weekly_report": true, "notifications": false}),
    )
    .await;
    e.expect_patch(prefs, &cy_t, json!({"weekly_report": true}))
        .await;
    let portfolios = "/api/v1/t/acme/portfolios";
    e.create(
        portfolios,
        &ada_t,
        json!({"name": "Tech <b>growth</b>", "positions": [
        {"symbol": "AAPL", "quantity": 10}, {"symbol": "MSFT", "quantity": 20}]}),
    )
    .await;
    e.create(
        portfolios,
        &ada_t,
        json!({"name": "Odd", "positions": [{"symbol": "ZZZZ", "quantity": 1}]}),
    )
    .await;
    e.create(
        portfolios,
        &bob_t,
        json!({"name": "Bob's", "positions": [{"symbol": "IBM", "quantity": 1}]}),
    )
    .await;

    // The trigger on the admin listener.
    let run = async || e.run_job("weekly-report").await;
    let first = run().await;
    assert_eq!(first["sent"], 1, "{first}");
    assert_eq!(first["nothingToReport"], 1, "{first}");
    assert_eq!(first["failed"], json!([]), "{first}");

    let mails = wait_for_mail(&ada_mail, 1).await;
    assert_eq!(mails[0].0, "Your weekly portfolio report");
    let text = &mails[0].1;
    assert!(text.contains("Tech <b>growth</b>"), "{text}");
    assert!(text.contains("Sharpe"), "{text}");
    assert!(text.contains("No analysis this week (no_prices)"), "{text}");
    // HTML with the names escaped, and the chart as an inline SVG part.
    let raw = raw_mail_to(&ada_mail);
    let message = mail_parser::MessageParser::default()
        .parse(raw[0].as_slice())
        .unwrap();
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Tech &lt;b&gt;growth&lt;/b&gt;"), "{html}");
    // The part is numbered by the portfolio's place in the report (listed
    // by id, so either of the two).
    let cid = html
        .split("src=\"cid:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("an inline chart");
    assert!(["equity-0", "equity-1"].contains(&cid), "{html}");
    let svg = message
        .attachments()
        .find(|a| a.content_id() == Some(cid))
        .expect("the chart part");
    assert_eq!(
        svg.content_type().map(|c| (c.ctype(), c.subtype())),
        Some(("image", Some("svg+xml")))
    );
    assert!(String::from_utf8_lossy(svg.contents()).contains("<svg"));
    assert!(
        mail_to(&bob_mail).is_empty(),
        "notifications off: no report"
    );
    assert!(mail_to(&cy_mail).is_empty(), "nothing to report: no mail");

    // Once a week: a rerun mails nobody again.
    let again = run().await;
    assert_eq!(
        (again["sent"].clone(), again["alreadySent"].clone()),
        (json!(0), json!(1)),
        "{again}"
    );
    assert_eq!(mail_to(&ada_mail).len(), 1);
    // Opting out stops it.
    e.expect_patch(prefs, &ada_t, json!({"weekly_report": false}))
        .await;
    let off = run().await;
    assert_eq!(off["alreadySent"], 0, "{off}");
    e.server.stop().await;
}
