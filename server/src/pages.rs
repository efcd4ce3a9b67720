//! Every server-rendered HTML page, as maud templates: values are escaped
//! by the template engine, never by hand. The OAuth sign-in and MFA pages,
//! the password-reset form, and the frame of the tenant admin page.
use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};
use maud::{DOCTYPE, Markup, PreEscaped, html};

/// The sign-in pages' CSP: inline style only, forms to this origin.
const SIGN_IN_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'";

/// A small self-contained page (sign-in, MFA, messages), never cached.
pub fn sign_in_page(title: &str, body: Markup) -> HttpResponse {
    let doc = html! {
        (DOCTYPE)
        html {
            head { meta charset="utf-8"; title { (title) } }
            body style="font-family:sans-serif;max-width:24rem;margin:4rem auto" {
                h1 { (title) }
                (body)
            }
        }
    };
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CONTENT_SECURITY_POLICY, SIGN_IN_CSP))
        .content_type("text/html; charset=utf-8")
        .body(doc.into_string())
}

/// A paragraph of text.
pub fn message(text: &str) -> Markup {
    html! { p { (text) } }
}

fn alert(error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error {
            p role="alert" style="color:#b00" { (e) }
        }
    }
}

/// An upstream identity provider offered on the sign-in page.
pub struct UpstreamLink<'a> {
    /// Where the link goes (already a path with its query).
    pub href: &'a str,
    /// What the provider is called.
    pub display: &'a str,
}

/// The body of the sign-in page of `tenant` for `client_name`.
pub fn login_form(
    tenant: &str,
    return_to: &str,
    client_name: &str,
    error: Option<&str>,
    upstreams: &[UpstreamLink<'_>],
    csrf: &str,
) -> Markup {
    html! {
        p { "to continue to " b { (client_name) } }
        (alert(error))
        form method="post" action=(format!("/t/{tenant}/oauth/login")) {
            input type="hidden" name="return_to" value=(return_to);
            input type="hidden" name="csrf" value=(csrf);
            p { label { "E-mail " input name="email" type="email" autocomplete="username" required; } }
            p { label { "Password " input name="password" type="password" autocomplete="current-password" required; } }
            p { button type="submit" { "Sign in" } }
        }
        @for link in upstreams {
            p { a href=(link.href) { "Sign in with " (link.display) } }
        }
    }
}

/// The body of the second-factor page.
pub fn mfa_form(
    tenant: &str,
    return_to: &str,
    challenge: &str,
    error: Option<&str>,
    csrf: &str,
) -> Markup {
    html! {
        (alert(error))
        form method="post" action=(format!("/t/{tenant}/oauth/mfa")) {
            input type="hidden" name="return_to" value=(return_to);
            input type="hidden" name="challenge" value=(challenge);
            input type="hidden" name="csrf" value=(csrf);
            p { label { "Authenticator code or backup code " input name="code" autocomplete="one-time-code" required; } }
            p { button type="submit" { "Verify" } }
        }
    }
}

/// The page a password-reset link opens: a form that posts the token and
/// the new password back to the same path.
pub fn reset_form(tenant: &str, token: &str) -> HttpResponse {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head { meta charset="utf-8"; title { "Choose a new password" } }
            body {
                h1 { "Choose a new password" }
                form method="post" action=(format!("/api/v1/t/{tenant}/password/reset")) {
                    input type="hidden" name="token" value=(token);
                    label { "New password " input type="password" name="password" autocomplete="new-password" minlength="12" required; }
                    button type="submit" { "Set password" }
                }
            }
        }
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(doc.into_string())
}

/// The admin page's CSP: only its own same-origin files, charts as `blob:`.
pub const ADMIN_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the admin page's script needs to sign in (as `data-` attributes).
pub struct AdminLogin<'a> {
    /// The OAuth client id.
    pub client_id: &'a str,
    /// Its redirect URI.
    pub redirect_uri: &'a str,
    /// The tenant's issuer.
    pub issuer: &'a str,
    /// The scopes asked for.
    pub scope: &'a str,
}

/// The frame of the tenant admin page around `main`.
pub fn admin_page(
    status: StatusCode,
    tenant: &str,
    login: Option<&AdminLogin<'_>>,
    main: Markup,
) -> HttpResponse {
    frame(status, tenant, ("admin", "Admin"), login, main)
}

/// The frame of the member page around `main`: the admin page's script,
/// styles and CSP, `data-page="member"`.
pub fn member_page(
    status: StatusCode,
    tenant: &str,
    login: Option<&AdminLogin<'_>>,
    main: Markup,
) -> HttpResponse {
    frame(status, tenant, ("member", "Member"), login, main)
}

/// A page of the admin page's stack: `(page, label)` names it.
fn frame(
    status: StatusCode,
    tenant: &str,
    (page, label): (&str, &str),
    login: Option<&AdminLogin<'_>>,
    main: Markup,
) -> HttpResponse {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Rampart " (label.to_lowercase()) " · " (tenant) }
                link rel="icon" type="image/svg+xml" href=(format!("/t/{tenant}/admin/favicon.svg"));
                link rel="stylesheet" href=(format!("/t/{tenant}/admin/admin.css"));
                script src=(format!("/t/{tenant}/admin/admin.js")) defer {}
            }
            @if let Some(l) = login {
                body data-tenant=(tenant) data-page=(page) data-client-id=(l.client_id)
                    data-redirect-uri=(l.redirect_uri) data-issuer=(l.issuer) data-scope=(l.scope) {
                    (admin_body(tenant, label, main))
                }
            } @else {
                body { (admin_body(tenant, label, main)) }
            }
        }
    };
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, ADMIN_CSP))
        .content_type("text/html; charset=utf-8")
        .body(doc.into_string())
}

fn admin_body(tenant: &str, label: &str, main: Markup) -> Markup {
    html! {
        header class="bar" {
            span class="brand" { "Rampart" }
            span class="tenant" { (label) " · " (tenant) }
            span class="spacer" {}
            span id="who" {}
            button id="signout" type="button" class="ghost" hidden { "Sign out" }
        }
        main { (main) }
    }
}

/// A problem shown in the admin page's frame.
pub fn admin_problem(tenant: &str, status: StatusCode, title: &str, text: &str) -> HttpResponse {
    admin_page(
        status,
        tenant,
        None,
        html! {
            section class="card" role="alert" { h1 { (title) } p { (text) } }
        },
    )
}

/// The admin console's static markup (`server/assets/admin/console.html`,
/// compiled in) with the tenant's name filled in, escaped.
pub fn admin_console(tenant: &str) -> Markup {
    const CONSOLE: &str = include_str!("../assets/admin/console.html");
    let name = html! { (tenant) }.into_string();
    PreEscaped(CONSOLE.replace("{tenant}", &name))
}

/// The member page's static markup (`server/assets/member/member.html`,
/// compiled in) with the tenant's name filled in, escaped.
pub fn member_view(tenant: &str) -> Markup {
    const VIEW: &str = include_str!("../assets/member/member.html");
    let name = html! { (tenant) }.into_string();
    PreEscaped(VIEW.replace("{tenant}", &name))
}

/// The body of an invitation's page: the invited address and a form that
/// sets the password (posted back to the link's own path).
pub fn invite_form(tenant: &str, token: &str, email: &str, error: Option<&str>) -> Markup {
    html! {
        p { "You are invited as " b { (email) } ". Choose your password (at least 12 characters)." }
        (alert(error))
        form method="post" action=(format!("/t/{tenant}/invite/{token}")) {
            input type="hidden" name="email" value=(email) autocomplete="username";
            p { label { "Password " input name="password" type="password" autocomplete="new-password" minlength="12" required; } }
            p { label { "Password again " input name="password_again" type="password" autocomplete="new-password" minlength="12" required; } }
            p { button type="submit" { "Accept the invitation" } }
        }
    }
}

/// The body of the page after an invitation was accepted.
pub fn invite_accepted(email: &str, mfa_enrolment: &str) -> Markup {
    html! {
        p { "Your account " b { (email) } " is ready: sign in from your application with this address and your new password." }
        p { "Recommended next: protect it with an authenticator app (TOTP) once signed in, at " code { (mfa_enrolment) } "." }
    }
}
