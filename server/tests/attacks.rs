//! Attacks over real HTTP against a real server (TLS, PostgreSQL, the real
//! code flow), two tenants: `acme` (A, the attacker) and `globex` (B, the
//! victim, with real portfolios, positions, versions, shares, comments,
//! members, an import preview, price alerts, sessions, an API key, users,
//! and mail links delivered by the kit's SMTP server).
//!
//! - `every_route_refuses_cross_tenant_access_without_revealing_existence`
//!   enumerates the OpenAPI document served by the server and fails when a
//!   route has no case in [`routes`], so a route added later must be added
//!   here. For each route: no token, A's token on B's path, A's token on A's
//!   path carrying B's ids (and, for sub-resources, A's own parent with B's
//!   child ids). Every answer is a refusal, identical (status, code, body
//!   apart from request id and timestamp) for B's real ids and random ones.
//! - `forged_and_foreign_tokens_are_refused_over_http`: `alg: none`, HS256
//!   keyed with the JWKS public key, `kid` injection, expired, wrong
//!   audience, wrong issuer, foreign and tampered encrypted tenant claims.
//! - `replayed_authorization_code_is_refused_and_revokes_its_tokens`.
use rampart_testkit::valid_slug;
use std::collections::BTreeSet;
use std::time::Duration;

use crate::common::{
    CLIENT_SCOPES, Env, PASSWORD, REDIRECT, authorization_code, env_with, epv_case, kit_smtp,
    login, machine_client, roomy_limits, scoped_token,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{AccessTokenRequest, Role, SigningAlg, TokenService};
use rampart_server::config::ServerConfig;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The attacker's tenant.
const A: &str = "acme";
/// The victim's tenant.
const B: &str = "globex";
/// A tenant that does not exist.
const NOWHERE: &str = "nowhere-tenant";

/// Rate limits stay on, with quotas this suite cannot reach (a 429 in the
/// middle would make two otherwise identical answers differ).
fn roomy(c: &mut ServerConfig) {
    c.notify = kit_smtp();
    roomy_limits(c);
}

// ------------------------------------------------------------ identifiers

/// One value for every kind of identifier a route can carry: B's real ones,
/// A's real ones, or random ones of the same shape.
#[derive(Debug, Clone)]
struct Ids {
    portfolio: String,
    /// A valuation case.
    case: String,
    position: String,
    user: String,
    email: String,
    comment: String,
    session: String,
    alert: String,
    member: String,
    preview: String,
    digest: String,
    api_key: String,
    /// A password-reset link token (B's is real, mailed to B's user).
    link_token: String,
    /// An e-mail verification link token (B's is real).
    verify_token: String,
    /// An invitation id.
    invitation: String,
    /// An OAuth client id.
    client: String,
    /// An upstream identity provider's name.
    idp: String,
}

/// The same shape with other characters: digits stay digits, hex letters
/// stay hex letters, so a parser treats both alike.
fn like(s: &str) -> String {
    // Both classes are always in the pool, so the loop below ends.
    let fresh = format!("{}a1b2c3d4e5f6", Uuid::new_v4().simple());
    let mut pool = fresh.chars().cycle();
    s.chars()
        .map(|c| {
            if c.is_ascii_hexdigit() {
                loop {
                    let r = pool.next().unwrap_or('0');
                    if c.is_ascii_digit() == r.is_ascii_digit() && r != c {
                        break r;
                    }
                }
            } else {
                c
            }
        })
        .collect()
}

impl Ids {
    fn random_like(real: &Ids) -> Ids {
        let u = || Uuid::new_v4().to_string();
        Ids {
            portfolio: u(),
            case: u(),
            position: u(),
            user: u(),
            email: format!("nobody-{}@globex.test", Uuid::new_v4().simple()),
            comment: u(),
            session: u(),
            alert: u(),
            member: u(),
            preview: u(),
            digest: like(&real.digest),
            api_key: like(&real.api_key),
            link_token: like(&real.link_token),
            verify_token: like(&real.verify_token),
            invitation: u(),
            client: like(&real.client),
            idp: like(&real.idp),
        }
    }

    /// Every (value, placeholder) pair, to blank identifiers out of bodies.
    fn substitutions(&self) -> Vec<(String, &'static str)> {
        vec![
            (self.portfolio.clone(), "<portfolio>"),
            (self.case.clone(), "<case>"),
            (self.position.clone(), "<position>"),
            (self.user.clone(), "<user>"),
            (self.email.clone(), "<email>"),
            (self.comment.clone(), "<comment>"),
            (self.session.clone(), "<session>"),
            (self.alert.clone(), "<alert>"),
            (self.member.clone(), "<member>"),
            (self.preview.clone(), "<preview>"),
            (self.digest.clone(), "<digest>"),
            (self.api_key.clone(), "<api_key>"),
            (self.link_token.clone(), "<link_token>"),
            (self.verify_token.clone(), "<verify_token>"),
            (self.invitation.clone(), "<invitation>"),
            (self.client.clone(), "<client>"),
            (self.idp.clone(), "<idp>"),
        ]
    }
}

/// What a path parameter is filled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// A top-level resource (portfolio): the parent in nested attacks.
    Portfolio,
    /// A top-level resource (member): the parent in nested attacks.
    Member,
    /// A top-level resource (valuation case): the parent in nested attacks.
    Case,
    Position,
    User,
    Session,
    Alert,
    Preview,
    ApiKey,
    Invitation,
    Client,
    Idp,
    /// Not secret: a version number.
    Version,
    /// Not secret: a ticker.
    Symbol,
}

impl Slot {
    fn is_parent(self) -> bool {
        matches!(self, Slot::Portfolio | Slot::Member | Slot::Case)
    }
    fn is_identifier(self) -> bool {
        !matches!(self, Slot::Version | Slot::Symbol)
    }
    fn value(self, parent: &Ids, child: &Ids) -> String {
        match self {
            Slot::Portfolio => parent.portfolio.clone(),
            Slot::Member => parent.member.clone(),
            Slot::Case => parent.case.clone(),
            Slot::Position => child.position.clone(),
            Slot::User => child.user.clone(),
            Slot::Session => child.session.clone(),
            Slot::Alert => child.alert.clone(),
            Slot::Preview => child.preview.clone(),
            Slot::ApiKey => child.api_key.clone(),
            Slot::Invitation => child.invitation.clone(),
            Slot::Client => child.client.clone(),
            Slot::Idp => child.idp.clone(),
            Slot::Version => "1".into(),
            Slot::Symbol => "AAPL".into(),
        }
    }
}

/// A request body, built from the child identifiers.
enum Body {
    None,
    Json(Value),
    Csv(String),
}

/// Which of A's tokens attacks the route (API keys are for `api_user`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Admin,
    ApiUser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `/api/v1/t/{tenant}/…` behind a bearer token of that tenant.
    Tenant,
    /// `/api/v1/t/{tenant}/…` without a token (registration, mail links):
    /// B's identifiers on A's path must look like random ones.
    Public,
    /// Served only by the mTLS admin listener: the public one must not
    /// route it at all.
    AdminListener,
    /// Liveness/readiness: no tenant, no identifiers.
    Probe,
}

struct Route {
    method: &'static str,
    path: &'static str,
    kind: Kind,
    who: Who,
    query: &'static str,
    /// Path parameters other than `tenant`, in any order.
    params: &'static [(&'static str, Slot)],
    body: fn(&Ids) -> Body,
    /// The body carries child identifiers (so the nested attack applies even
    /// without a child path parameter).
    body_refs: bool,
}

fn no_body(_: &Ids) -> Body {
    Body::None
}

const fn r(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        kind: Kind::Tenant,
        who: Who::Admin,
        query: "",
        params: &[],
        body: no_body,
        body_refs: false,
    }
}

impl Route {
    const fn params(mut self, p: &'static [(&'static str, Slot)]) -> Self {
        self.params = p;
        self
    }
    const fn body(mut self, b: fn(&Ids) -> Body) -> Self {
        self.body = b;
        self
    }
    const fn body_refs(mut self, b: fn(&Ids) -> Body) -> Self {
        self.body = b;
        self.body_refs = true;
        self
    }
    const fn query(mut self, q: &'static str) -> Self {
        self.query = q;
        self
    }
    const fn kind(mut self, k: Kind) -> Self {
        self.kind = k;
        self
    }
    const fn api_user(mut self) -> Self {
        self.who = Who::ApiUser;
        self
    }
    fn key(&self) -> (String, String) {
        (self.method.to_ascii_uppercase(), self.path.to_owned())
    }
    fn has_identifier(&self) -> bool {
        self.body_refs || self.params.iter().any(|(_, s)| s.is_identifier())
    }
    fn is_nested(&self) -> bool {
        self.params.iter().any(|(_, s)| s.is_parent())
            && (self.body_refs
                || self
                    .params
                    .iter()
                    .any(|(_, s)| s.is_identifier() && !s.is_parent()))
    }
    /// The concrete path for `tenant`, parents from `parent`, children from
    /// `child`.
    fn url(&self, tenant: &str, parent: &Ids, child: &Ids) -> String {
        let mut p = self.path.replace("{tenant}", tenant);
        for (name, slot) in self.params {
            p = p.replace(&format!("{{{name}}}"), &slot.value(parent, child));
        }
        assert!(!p.contains('{'), "unfilled parameter in {p}");
        if self.query.is_empty() {
            p
        } else {
            format!("{p}?{}", self.query)
        }
    }
}

const ID: Slot = Slot::Portfolio;
const PF: &[(&str, Slot)] = &[("id", ID)];
const CASE: &[(&str, Slot)] = &[("id", Slot::Case)];

/// Every route of the OpenAPI document and how to attack it. The test
/// fails when this table and the served document differ.
fn routes() -> Vec<Route> {
    use Kind::{AdminListener, Probe, Public};
    let portfolio_body = |_: &Ids| {
        Body::Json(json!({"name": "Stolen", "base_currency": "USD",
            "positions": [{"symbol": "MSFT", "quantity": 1, "purchase_price": 1.0,
                           "purchase_date": "2020-01-02"}]}))
    };
    let position_body = |_: &Ids| Body::Json(json!({"symbol": "IBM", "quantity": 3}));
    let csv = |_: &Ids| Body::Csv("symbol,quantity\nIBM,1\n".into());
    let members_csv =
        |_: &Ids| Body::Csv("name,email,role\nEve,eve-import@acme.test,trader\n".into());
    let code = |_: &Ids| Body::Json(json!({"code": "123456"}));
    vec![
        // probes and the admin listener
        r("get", "/health").kind(Probe),
        r("get", "/ready").kind(Probe),
        r("get", "/metrics").kind(AdminListener),
        r("get", "/admin/whoami").kind(AdminListener),
        r("get", "/admin/tenants").kind(AdminListener),
        r("post", "/admin/tenants").kind(AdminListener),
        r("get", "/admin/tenants/{slug}").kind(AdminListener),
        r("post", "/admin/tenants/{slug}/{action}").kind(AdminListener),
        r("post", "/admin/tenants/migrate").kind(AdminListener),
        r("get", "/admin/audit").kind(AdminListener),
        r("get", "/admin/keys").kind(AdminListener),
        r("post", "/admin/keys/rotate").kind(AdminListener),
        r("post", "/admin/keys/{kid}/revoke").kind(AdminListener),
        r("post", "/admin/jobs/snapshot").kind(AdminListener),
        r("post", "/admin/jobs/metrics").kind(AdminListener),
        r("post", "/admin/jobs/ingest").kind(AdminListener),
        r("post", "/admin/jobs/weekly-report").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/settings").kind(AdminListener),
        r("patch", "/admin/tenants/{slug}/settings").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/features").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/features/{flag}").kind(AdminListener),
        r("put", "/admin/tenants/{slug}/features/{flag}").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit/export").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit/tree-head").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit/proofs/inclusion").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit/proofs/consistency").kind(AdminListener),
        r("get", "/admin/tenants/{slug}/audit/verify").kind(AdminListener),
        // tenant settings, feature flags and the audit log
        r("get", "/api/v1/t/{tenant}/settings"),
        r("patch", "/api/v1/t/{tenant}/settings")
            .body(|_| Body::Json(json!({"publicLeaderboard": false}))),
        r("get", "/api/v1/t/{tenant}/features"),
        r("get", "/api/v1/t/{tenant}/features/{flag}").params(&[("flag", Slot::Symbol)]),
        r("put", "/api/v1/t/{tenant}/features/{flag}")
            .params(&[("flag", Slot::Symbol)])
            .body(|_| Body::Json(json!({"enabled": false}))),
        r("get", "/api/v1/t/{tenant}/audit"),
        r("get", "/api/v1/t/{tenant}/audit/export"),
        r("get", "/api/v1/t/{tenant}/audit/tree-head"),
        r("get", "/api/v1/t/{tenant}/audit/proofs/inclusion"),
        r("get", "/api/v1/t/{tenant}/audit/proofs/consistency"),
        r("get", "/admin/t/{tenant}/clients").kind(AdminListener),
        r("post", "/admin/t/{tenant}/clients").kind(AdminListener),
        r("get", "/admin/t/{tenant}/clients/{client_id}").kind(AdminListener),
        r("patch", "/admin/t/{tenant}/clients/{client_id}").kind(AdminListener),
        r("delete", "/admin/t/{tenant}/clients/{client_id}").kind(AdminListener),
        r("post", "/admin/t/{tenant}/clients/{client_id}/secret").kind(AdminListener),
        r("post", "/admin/t/{tenant}/clients/{client_id}/disable").kind(AdminListener),
        r("get", "/admin/t/{tenant}/idps").kind(AdminListener),
        r("post", "/admin/t/{tenant}/idps").kind(AdminListener),
        r("get", "/admin/t/{tenant}/idps/{name}").kind(AdminListener),
        r("patch", "/admin/t/{tenant}/idps/{name}").kind(AdminListener),
        r("delete", "/admin/t/{tenant}/idps/{name}").kind(AdminListener),
        // api_v1
        r("get", "/api/v1/t/{tenant}/me"),
        r("get", "/api/v1/t/{tenant}/sessions"),
        r("delete", "/api/v1/t/{tenant}/sessions/{id}").params(&[("id", Slot::Session)]),
        r("get", "/api/v1/t/{tenant}/quotes/{symbol}").params(&[("symbol", Slot::Symbol)]),
        // notify
        r("post", "/api/v1/t/{tenant}/register")
            .kind(Public)
            .body_refs(|i| {
                Body::Json(json!({"email": i.email, "displayName": "Eve", "password": PASSWORD}))
            }),
        r("post", "/api/v1/t/{tenant}/email/verification"),
        r("get", "/api/v1/t/{tenant}/email/verify")
            .kind(Public)
            .query("token=LINK"),
        r("post", "/api/v1/t/{tenant}/password/forgot")
            .kind(Public)
            .body_refs(|i| Body::Json(json!({"email": i.email}))),
        r("post", "/api/v1/t/{tenant}/password/reset")
            .kind(Public)
            .body_refs(|i| {
                Body::Json(json!({"token": i.link_token, "password": "a-brand-new-passphrase"}))
            }),
        r("get", "/api/v1/t/{tenant}/price-alerts"),
        r("post", "/api/v1/t/{tenant}/price-alerts").body(|_| {
            Body::Json(json!({"symbol": "AAPL", "direction": "above", "threshold": 1.0}))
        }),
        r("get", "/api/v1/t/{tenant}/price-alerts/{id}").params(&[("id", Slot::Alert)]),
        r("delete", "/api/v1/t/{tenant}/price-alerts/{id}").params(&[("id", Slot::Alert)]),
        // admin page API
        r("get", "/api/v1/t/{tenant}/admin/health"),
        // account
        r("post", "/api/v1/t/{tenant}/account/password").body(|_| {
            Body::Json(
                json!({"current_password": PASSWORD, "new_password": "another-long-passphrase"}),
            )
        }),
        r("post", "/api/v1/t/{tenant}/account/mfa/totp"),
        r("post", "/api/v1/t/{tenant}/account/mfa/totp/confirm").body(code),
        r("post", "/api/v1/t/{tenant}/account/mfa/totp/disable").body(code),
        r("post", "/api/v1/t/{tenant}/account/sessions/revoke-others"),
        r("post", "/api/v1/t/{tenant}/account/logout"),
        r("post", "/api/v1/t/{tenant}/account/api-keys")
            .api_user()
            .body(|_| Body::Json(json!({"name": "stolen", "scopes": ["portfolio:read"]}))),
        r("get", "/api/v1/t/{tenant}/account/api-keys").api_user(),
        r("delete", "/api/v1/t/{tenant}/account/api-keys/{prefix}")
            .api_user()
            .params(&[("prefix", Slot::ApiKey)]),
        r("get", "/api/v1/t/{tenant}/api-keys"),
        r("delete", "/api/v1/t/{tenant}/api-keys/{prefix}").params(&[("prefix", Slot::ApiKey)]),
        // invitations
        r("get", "/api/v1/t/{tenant}/invitations"),
        r("post", "/api/v1/t/{tenant}/invitations")
            .body(|_| Body::Json(json!({"email": "eve-invited@acme.test", "role": "admin"}))),
        r("post", "/api/v1/t/{tenant}/invitations/{id}/resend").params(&[("id", Slot::Invitation)]),
        r("delete", "/api/v1/t/{tenant}/invitations/{id}").params(&[("id", Slot::Invitation)]),
        r("post", "/api/v1/t/{tenant}/invitations/accept")
            .kind(Public)
            .body_refs(|i| {
                Body::Json(json!({"token": i.link_token, "password": "a-brand-new-passphrase"}))
            }),
        // roles (names are not secret: the same in every tenant)
        r("get", "/api/v1/t/{tenant}/roles"),
        r("post", "/api/v1/t/{tenant}/roles")
            .body(|_| Body::Json(json!({"name": "stolen", "permissions": ["tenant:admin"]}))),
        r("put", "/api/v1/t/{tenant}/roles/{name}")
            .params(&[("name", Slot::Symbol)])
            .body(|_| Body::Json(json!({"permissions": ["tenant:admin"]}))),
        r("delete", "/api/v1/t/{tenant}/roles/{name}").params(&[("name", Slot::Symbol)]),
        // clients
        r("get", "/api/v1/t/{tenant}/clients"),
        r("post", "/api/v1/t/{tenant}/clients").body(|_| {
            Body::Json(
                json!({"clientId": "stolen", "name": "Stolen", "allowedScopes": ["openid"],
                              "redirectUris": ["https://evil.example.com/cb"]}),
            )
        }),
        r("get", "/api/v1/t/{tenant}/clients/{client_id}").params(&[("client_id", Slot::Client)]),
        r("patch", "/api/v1/t/{tenant}/clients/{client_id}")
            .params(&[("client_id", Slot::Client)])
            .body(|_| Body::Json(json!({"redirectUris": ["https://evil.example.com/cb"]}))),
        r("delete", "/api/v1/t/{tenant}/clients/{client_id}")
            .params(&[("client_id", Slot::Client)]),
        r("post", "/api/v1/t/{tenant}/clients/{client_id}/secret")
            .params(&[("client_id", Slot::Client)]),
        r("post", "/api/v1/t/{tenant}/clients/{client_id}/disable")
            .params(&[("client_id", Slot::Client)]),
        // upstream identity providers
        r("get", "/api/v1/t/{tenant}/idps"),
        r("post", "/api/v1/t/{tenant}/idps").body(|_| {
            Body::Json(json!({"name": "stolen", "displayName": "Stolen",
                              "issuer": "http://127.0.0.1:9", "clientId": "x",
                              "redirectUri": "https://evil.example.com/cb"}))
        }),
        r("get", "/api/v1/t/{tenant}/idps/{name}").params(&[("name", Slot::Idp)]),
        r("patch", "/api/v1/t/{tenant}/idps/{name}")
            .params(&[("name", Slot::Idp)])
            .body(|_| Body::Json(json!({"redirectUri": "https://evil.example.com/cb"}))),
        r("delete", "/api/v1/t/{tenant}/idps/{name}").params(&[("name", Slot::Idp)]),
        // members
        r("get", "/api/v1/t/{tenant}/admin/members"),
        r("post", "/api/v1/t/{tenant}/admin/members").body(|_| {
            Body::Json(json!({"name": "Eve", "email": "eve@acme.test", "role": "trader"}))
        }),
        r("post", "/api/v1/t/{tenant}/admin/members/import/preview").body(members_csv),
        r(
            "post",
            "/api/v1/t/{tenant}/admin/members/import/{preview}/commit",
        )
        .params(&[("preview", Slot::Preview)])
        .body_refs(|i| Body::Json(json!({"digest": i.digest}))),
        r("put", "/api/v1/t/{tenant}/admin/members/{member}/broker")
            .params(&[("member", Slot::Member)])
            .body(|_| {
                Body::Json(json!({"keyId": "PKATTACKAAAAAAAAAAAA",
                                  "secretKey": "abcdefghijklmnopqrstuvwxyz0123456789ABCD"}))
            }),
        r("delete", "/api/v1/t/{tenant}/admin/members/{member}/broker")
            .params(&[("member", Slot::Member)]),
        r("get", "/api/v1/t/{tenant}/leaderboard"),
        r("get", "/api/v1/t/{tenant}/me/portfolio"),
        r("get", "/api/v1/t/{tenant}/me/portfolio.csv"),
        r("get", "/api/v1/t/{tenant}/me/portfolio.svg"),
        r("put", "/api/v1/t/{tenant}/leaderboard/opt-out")
            .body(|_| Body::Json(json!({"optOut": true}))),
        // valuation cases
        r("get", "/api/v1/t/{tenant}/cases"),
        r("post", "/api/v1/t/{tenant}/cases").body(|_| Body::Json(epv_case("STLN"))),
        r("post", "/api/v1/t/{tenant}/cases/import").body(|_| {
            Body::Json(json!({"cases": [{"id": "stolen-1", "ticker": "STLN",
                "inputs": epv_case("STLN")["inputs"]}]}))
        }),
        r("get", "/api/v1/t/{tenant}/cases/{id}").params(CASE),
        r("patch", "/api/v1/t/{tenant}/cases/{id}")
            .params(CASE)
            .body(|_| Body::Json(json!({"name": "Stolen"}))),
        r("delete", "/api/v1/t/{tenant}/cases/{id}").params(CASE),
        r("get", "/api/v1/t/{tenant}/cases/{id}/versions").params(CASE),
        r("get", "/api/v1/t/{tenant}/cases/{id}/versions/{version}")
            .params(&[("id", Slot::Case), ("version", Slot::Version)]),
        r("get", "/api/v1/t/{tenant}/cases/{id}/diff")
            .params(CASE)
            .query("from=1&to=1"),
        r("get", "/api/v1/t/{tenant}/cases/{id}/shares").params(CASE),
        r("post", "/api/v1/t/{tenant}/cases/{id}/shares")
            .params(CASE)
            .body_refs(|i| Body::Json(json!({"user_id": i.user, "access": "admin"}))),
        r("delete", "/api/v1/t/{tenant}/cases/{id}/shares/{user}")
            .params(&[("id", Slot::Case), ("user", Slot::User)]),
        r("get", "/api/v1/t/{tenant}/cases/{id}/comments").params(CASE),
        r("post", "/api/v1/t/{tenant}/cases/{id}/comments")
            .params(CASE)
            .body(|_| Body::Json(json!({"body": "pwned"}))),
        r("get", "/api/v1/t/{tenant}/cases/{id}/analyses").params(CASE),
        r("post", "/api/v1/t/{tenant}/cases/{id}/analyses")
            .params(CASE)
            .body(|_| Body::Json(json!({"source": "evil", "document": {"x": 1}}))),
        r("get", "/api/v1/t/{tenant}/cases/{id}/activity").params(CASE),
        r("get", "/api/v1/t/{tenant}/cases/{id}/export").params(CASE),
        r("get", "/api/v1/t/{tenant}/cases/{id}/export.csv").params(CASE),
        // portfolios
        r("get", "/api/v1/t/{tenant}/portfolios"),
        // GraphQL: refused before any operation runs (no token, another
        // tenant's); B's ids on A's path are `graphql::refusals_are_those_of_rest`'s
        // (a refusal inside an operation is an HTTP 200 with errors).
        r("post", "/api/graphql/t/{tenant}").body(|_| {
            Body::Json(
                json!({"query": "{ portfolios { edges { node { id name positions { id } } } } }"}),
            )
        }),
        // GraphQL subscriptions: the handshake's token is refused before
        // the upgrade (the `connection_init` refusals: `graphql::subscription_*`).
        r("get", "/api/graphql/t/{tenant}/ws"),
        r("post", "/api/v1/t/{tenant}/portfolios").body(portfolio_body),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}").params(PF),
        r("patch", "/api/v1/t/{tenant}/portfolios/{id}")
            .params(PF)
            .body(|_| Body::Json(json!({"name": "Defaced"}))),
        r("delete", "/api/v1/t/{tenant}/portfolios/{id}").params(PF),
        r("post", "/api/v1/t/{tenant}/portfolios/{id}/positions")
            .params(PF)
            .body(position_body),
        r(
            "put",
            "/api/v1/t/{tenant}/portfolios/{id}/positions/{position}",
        )
        .params(&[("id", ID), ("position", Slot::Position)])
        .body(position_body),
        r(
            "delete",
            "/api/v1/t/{tenant}/portfolios/{id}/positions/{position}",
        )
        .params(&[("id", ID), ("position", Slot::Position)]),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/versions").params(PF),
        r(
            "get",
            "/api/v1/t/{tenant}/portfolios/{id}/versions/{version}",
        )
        .params(&[("id", ID), ("version", Slot::Version)]),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/shares").params(PF),
        r("post", "/api/v1/t/{tenant}/portfolios/{id}/shares")
            .params(PF)
            .body_refs(|i| Body::Json(json!({"user_id": i.user, "access": "edit"}))),
        r("delete", "/api/v1/t/{tenant}/portfolios/{id}/shares/{user}")
            .params(&[("id", ID), ("user", Slot::User)]),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/comments").params(PF),
        r("post", "/api/v1/t/{tenant}/portfolios/{id}/comments")
            .params(PF)
            .body_refs(|i| Body::Json(json!({"body": "pwned", "parent_id": i.comment}))),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/activity").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/positions.csv").params(PF),
        r("put", "/api/v1/t/{tenant}/portfolios/{id}/positions.csv")
            .params(PF)
            .body(csv),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/analytics").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/performance.csv").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/metrics").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/metrics.csv").params(PF),
        r(
            "get",
            "/api/v1/t/{tenant}/portfolios/{id}/charts/equity.svg",
        )
        .params(PF),
        r(
            "get",
            "/api/v1/t/{tenant}/portfolios/{id}/charts/returns.svg",
        )
        .params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/correlation").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/monte-carlo").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/charts/fan.svg").params(PF),
        r("get", "/api/v1/t/{tenant}/portfolios/{id}/stream").params(PF),
        r("get", "/api/v1/t/{tenant}/market/stream"),
        // users
        r("get", "/api/v1/t/{tenant}/me/profile"),
        r("patch", "/api/v1/t/{tenant}/me/profile")
            .body(|_| Body::Json(json!({"display_name": "Eve"}))),
        r("get", "/api/v1/t/{tenant}/me/preferences"),
        r("patch", "/api/v1/t/{tenant}/me/preferences")
            .body(|_| Body::Json(json!({"theme": "dark"}))),
        r("get", "/api/v1/t/{tenant}/me/activity"),
        r("post", "/api/v1/t/{tenant}/me/import")
            .body(|_| Body::Json(json!({"portfolios": [{"id": "p-1", "name": "Imported"}]}))),
        r("get", "/api/v1/t/{tenant}/users"),
        r("put", "/api/v1/t/{tenant}/users/{id}/role")
            .params(&[("id", Slot::User)])
            .body(|_| Body::Json(json!({"role": "viewer"}))),
        r("put", "/api/v1/t/{tenant}/users/{id}/status")
            .params(&[("id", Slot::User)])
            .body(|_| Body::Json(json!({"status": "disabled"}))),
        // market
        r("get", "/api/v1/t/{tenant}/quotes").query("symbols=AAPL"),
        r("get", "/api/v1/t/{tenant}/bars/{symbol}").params(&[("symbol", Slot::Symbol)]),
        r("get", "/api/v1/t/{tenant}/symbols").query("q=AAPL"),
        r("get", "/api/v1/t/{tenant}/fundamentals/{symbol}").params(&[("symbol", Slot::Symbol)]),
        r("get", "/api/v1/t/{tenant}/news/{symbol}").params(&[("symbol", Slot::Symbol)]),
        // TradeStation with the caller's own connection
        r(
            "get",
            "/api/v1/t/{tenant}/market/tradestation/bars/{symbol}",
        )
        .params(&[("symbol", Slot::Symbol)]),
        r(
            "get",
            "/api/v1/t/{tenant}/market/tradestation/symbols/{symbols}",
        )
        .params(&[("symbols", Slot::Symbol)]),
        r("get", "/api/v1/t/{tenant}/me/connections"),
        r("delete", "/api/v1/t/{tenant}/me/connections/{provider}")
            .params(&[("provider", Slot::Idp)]),
    ]
}

// ------------------------------------------------------------ HTTP

/// An answer reduced to what a caller can compare: status and JSON body
/// without the request id and timestamp, identifiers blanked out.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    status: u16,
    body: Value,
}

async fn send(
    env: &Env,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Body,
    blank: &Ids,
) -> Answer {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    let mut req = env.http.request(method, env.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req = match body {
        Body::None => req,
        Body::Json(v) => req.json(&v),
        Body::Csv(text) => req.header("content-type", "text/csv").body(text),
    };
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let mut text = res.text().await.unwrap();
    for (value, placeholder) in blank.substitutions() {
        if !value.is_empty() {
            text = text.replace(&value, placeholder);
        }
    }
    let mut body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if let Some(meta) = body.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("requestId");
        meta.remove("timestamp");
    }
    Answer { status, body }
}

/// `route` at `tenant` with the child identifiers (and body) of `child`, the
/// parents of `parent`; a mail link in the query is `child`'s.
async fn attempt(
    env: &Env,
    route: &Route,
    tenant: &str,
    parent: &Ids,
    child: &Ids,
    token: Option<&str>,
) -> Answer {
    let path = route
        .url(tenant, parent, child)
        .replace("LINK", &child.verify_token);
    send(env, route.method, &path, token, (route.body)(child), child).await
}

/// `route` with B's real identifiers, then with random ones of the same
/// shape; the parents are `parent`'s, or the child identifiers' own.
async fn real_and_random(
    env: &Env,
    route: &Route,
    tenant: &str,
    parent: Option<&Ids>,
    token: Option<&str>,
    real: &Ids,
    random: &Ids,
) -> (Answer, Answer) {
    (
        attempt(env, route, tenant, parent.unwrap_or(real), real, token).await,
        attempt(env, route, tenant, parent.unwrap_or(random), random, token).await,
    )
}

/// The structure of a JSON value (keys and types, not values), to compare
/// successful answers that necessarily carry fresh ids.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => Value::Null,
    }
}

fn same(real: &Answer, random: &Answer) -> bool {
    if (200..300).contains(&real.status) {
        real.status == random.status && shape(&real.body) == shape(&random.body)
    } else {
        real == random
    }
}

fn data_str(body: &Value, pointer: &str) -> String {
    body.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no {pointer} in {body}"))
        .to_owned()
}

// ------------------------------------------------------------ the victim

/// The `token` of the first `{path}` link mailed to `to` (the kit's SMTP
/// server delivers asynchronously: poll for up to ten seconds).
async fn mailed_token(to: &str, path: &str) -> String {
    let smtp = rampart_testkit::smtp_server().unwrap();
    for _ in 0..200 {
        for raw in smtp.messages().unwrap() {
            let Some(m) = mail_parser::MessageParser::default().parse(raw.as_slice()) else {
                continue;
            };
            let to_us = m
                .to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .is_some_and(|a| a.eq_ignore_ascii_case(to));
            let text = m.body_text(0).unwrap_or_default().into_owned();
            if let Some(link) = text
                .split_whitespace()
                .find(|w| w.starts_with("https://rampart.test/") && w.contains(path))
                .filter(|_| to_us)
            {
                let url = url::Url::parse(link).unwrap();
                return url
                    .query_pairs()
                    .find(|(k, _)| k == "token")
                    .unwrap()
                    .1
                    .into_owned();
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {path} link mailed to {to}");
}

struct World {
    /// B's real identifiers.
    b: Ids,
    /// A's own identifiers (its portfolio; the rest random).
    a: Ids,
    a_admin: String,
    a_api_user: String,
    b_admin: String,
    b_version_count: usize,
}

async fn json_ok(env: &Env, method: Method, path: &str, token: &str, body: Option<Value>) -> Value {
    let (s, v) = env.call(method, path, Some(token), body).await;
    assert!((200..300).contains(&s), "{path}: {s} {v}");
    v
}

async fn world(env: &Env) -> World {
    let auth = env.auth();
    let (_, a_admin) = scoped_token(&auth, A, "root@acme.test", Role::Admin, CLIENT_SCOPES).await;
    let (_, a_api_user) =
        scoped_token(&auth, A, "bot@acme.test", Role::ApiUser, CLIENT_SCOPES).await;
    let (_, b_admin) = scoped_token(&auth, B, "root@globex.test", Role::Admin, CLIENT_SCOPES).await;
    let bob_email = format!("bob-{}@globex.test", Uuid::new_v4().simple());
    let (bob, _) = scoped_token(&auth, B, &bob_email, Role::Trader, CLIENT_SCOPES).await;
    let (_, b_api_user) =
        scoped_token(&auth, B, "bot@globex.test", Role::ApiUser, CLIENT_SCOPES).await;

    let bp = format!("/api/v1/t/{B}/portfolios");
    let created = json_ok(
        env,
        Method::POST,
        &bp,
        &b_admin,
        Some(json!({"name": "Secret book", "base_currency": "USD",
            "positions": [{"symbol": "MSFT", "quantity": 10, "purchase_price": 25.5,
                           "purchase_date": "2020-01-03"}]})),
    )
    .await;
    let portfolio = data_str(&created, "/data/id");
    let position = data_str(&created, "/data/positions/0/id");
    // A second version.
    json_ok(
        env,
        Method::PATCH,
        &format!("{bp}/{portfolio}"),
        &b_admin,
        Some(json!({"name": "Secret book 2"})),
    )
    .await;
    json_ok(
        env,
        Method::POST,
        &format!("{bp}/{portfolio}/shares"),
        &b_admin,
        Some(json!({"user_id": bob, "access": "view"})),
    )
    .await;
    let comment = json_ok(
        env,
        Method::POST,
        &format!("{bp}/{portfolio}/comments"),
        &b_admin,
        Some(json!({"body": "confidential"})),
    )
    .await;
    let comment = data_str(&comment, "/data/id");
    let member = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/admin/members"),
        &b_admin,
        Some(json!({"name": "Grace", "email": "grace@globex.test", "role": "trader"})),
    )
    .await;
    let member = data_str(&member, "/data/member/id");
    let (s, preview) = env
        .raw(
            Method::POST,
            &format!("/api/v1/t/{B}/admin/members/import/preview"),
            Some(&b_admin),
            "text/csv",
            b"name,email,role\nLin,lin@globex.test,viewer\n".to_vec(),
        )
        .await;
    assert_eq!(s, 200, "{preview}");
    let preview: Value = serde_json::from_str(&preview).unwrap();
    let alert = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/price-alerts"),
        &b_admin,
        Some(json!({"symbol": "AAPL", "direction": "above", "threshold": 1000.0})),
    )
    .await;
    let sessions = json_ok(
        env,
        Method::GET,
        &format!("/api/v1/t/{B}/sessions"),
        &b_admin,
        None,
    )
    .await;
    let key = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/account/api-keys"),
        &b_api_user,
        Some(json!({"name": "b-key", "scopes": ["portfolio:read"]})),
    )
    .await;
    let versions = json_ok(
        env,
        Method::GET,
        &format!("{bp}/{portfolio}/versions"),
        &b_admin,
        None,
    )
    .await;
    // Real mail links of B: a password reset for bob, a verification for a
    // newly registered user.
    env.expect(
        202,
        Method::POST,
        &format!("/api/v1/t/{B}/password/forgot"),
        None,
        Some(json!({"email": bob_email})),
    )
    .await;
    let reset_token = mailed_token(&bob_email, "password/reset").await;
    let vera = format!("vera-{}@globex.test", Uuid::new_v4().simple());
    // B is open to self-service registration (the default is invitation only).
    json_ok(
        env,
        Method::PATCH,
        &format!("/api/v1/t/{B}/settings"),
        &b_admin,
        Some(json!({"registration": {"mode": "open"}})),
    )
    .await;
    let (s, body) = env
        .call(
            Method::POST,
            &format!("/api/v1/t/{B}/register"),
            None,
            Some(json!({"email": vera, "displayName": "Vera", "password": PASSWORD})),
        )
        .await;
    assert_eq!(s, 202, "{body}");
    let verify_token = mailed_token(&vera, "email/verify").await;
    let invitation = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/invitations"),
        &b_admin,
        Some(json!({"email": "ivy@globex.test", "role": "trader"})),
    )
    .await;
    let client = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/clients"),
        &b_admin,
        Some(
            json!({"clientId": "globex-books-7c3d", "name": "Books", "confidential": true,
                    "grantTypes": ["client_credentials"], "allowedScopes": ["market:read"]}),
        ),
    )
    .await;
    let idp = rampart_testkit::oidc_provider().unwrap();
    let b_idp = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/idps"),
        &b_admin,
        Some(
            json!({"name": "globex-idp-7c3d", "displayName": "Globex SSO",
                    "issuer": idp.issuer(), "clientId": "rampart",
                    "redirectUri": "http://127.0.0.1:9/callback"}),
        ),
    )
    .await;
    let b_case = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{B}/cases"),
        &b_admin,
        Some(epv_case("GLBX")),
    )
    .await;
    let b = Ids {
        portfolio,
        case: data_str(&b_case, "/data/id"),
        position,
        user: bob.to_string(),
        email: bob_email.clone(),
        comment,
        session: data_str(&sessions, "/data/0/id"),
        alert: data_str(&alert, "/data/id"),
        member,
        preview: data_str(&preview, "/data/id"),
        digest: data_str(&preview, "/data/digest"),
        api_key: data_str(&key, "/data/prefix"),
        link_token: reset_token,
        verify_token,
        invitation: data_str(&invitation, "/data/invitation/id"),
        client: data_str(&client, "/data/client/clientId"),
        idp: data_str(&b_idp, "/data/name"),
    };

    let a_created = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{A}/portfolios"),
        &a_admin,
        Some(json!({"name": "Own book", "base_currency": "USD",
            "positions": [{"symbol": "IBM", "quantity": 1}]})),
    )
    .await;
    let mut a = Ids::random_like(&b);
    a.portfolio = data_str(&a_created, "/data/id");
    let a_case = json_ok(
        env,
        Method::POST,
        &format!("/api/v1/t/{A}/cases"),
        &a_admin,
        Some(epv_case("ACME")),
    )
    .await;
    a.case = data_str(&a_case, "/data/id");
    World {
        b_version_count: versions["data"].as_array().unwrap().len(),
        b,
        a,
        a_admin,
        a_api_user,
        b_admin,
    }
}

// ------------------------------------------------------------ the suite

#[derive(Default)]
struct Report {
    failures: Vec<String>,
    checked: usize,
}

impl Report {
    /// B's real identifiers must answer exactly like random ones, never
    /// with a server error, and (when `refused`) never with success.
    fn check(&mut self, label: &str, what: &str, real: &Answer, random: &Answer, refused: bool) {
        self.checked += 1;
        if real.status >= 500 || random.status >= 500 {
            self.failures.push(format!(
                "{label} [{what}]: server error {real:?} / {random:?}"
            ));
        }
        if !same(real, random) {
            self.failures.push(format!(
                "{label} [{what}]: B's real ids answer differently from random ones:\n  real   {real:?}\n  random {random:?}"
            ));
        }
        if refused && (200..300).contains(&real.status) {
            self.failures
                .push(format!("{label} [{what}]: not refused: {real:?}"));
        }
    }
}

fn openapi_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_refuses_cross_tenant_access_without_revealing_existence() {
    let env = env_with(roomy).await;

    // The table covers exactly the routes the server documents.
    let (s, doc) = env.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let documented = openapi_routes(&doc);
    let table = routes();
    let covered: BTreeSet<_> = table.iter().map(Route::key).collect();
    assert_eq!(covered.len(), table.len(), "a route appears twice");
    let missing: Vec<_> = documented.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "attack table out of date: routes without a case {missing:?}, cases without a route {stale:?}"
    );

    let w = world(&env).await;
    let mut report = Report::default();
    for route in &table {
        let rnd = Ids::random_like(&w.b);
        let a_token = match route.who {
            Who::Admin => w.a_admin.as_str(),
            Who::ApiUser => w.a_api_user.as_str(),
        };
        let label = format!("{} {}", route.method.to_ascii_uppercase(), route.path);
        match route.kind {
            Kind::Probe => {
                let a = send(&env, route.method, route.path, None, Body::None, &w.b).await;
                assert!(a.status < 500 || route.path == "/ready", "{label}: {a:?}");
            }
            Kind::AdminListener => {
                // The public listener does not serve it, whoever asks, and
                // B's slug answers like a random one.
                let fill = |slug: &str| {
                    route
                        .path
                        .replace("{slug}", slug)
                        .replace("{action}", "suspend")
                        .replace("{kid}", "es256-1")
                };
                let real = send(
                    &env,
                    route.method,
                    &fill(B),
                    Some(a_token),
                    Body::None,
                    &w.b,
                )
                .await;
                let random = send(
                    &env,
                    route.method,
                    &fill(NOWHERE),
                    Some(a_token),
                    Body::None,
                    &w.b,
                )
                .await;
                report.check(&label, "public listener", &real, &random, true);
                if real.status != 404 {
                    report
                        .failures
                        .push(format!("{label}: served on the public listener: {real:?}"));
                }
            }
            Kind::Public => {
                // A's path with B's identifiers (an e-mail, a link token)
                // answers like a random one.
                let (real, random) = real_and_random(&env, route, A, None, None, &w.b, &rnd).await;
                report.check(&label, "public, A's path, B's ids", &real, &random, false);
            }
            Kind::Tenant => {
                // 1. No token, B's path: real ids like random ones.
                let (real, random) = real_and_random(&env, route, B, None, None, &w.b, &rnd).await;
                report.check(&label, "no token, B's path", &real, &random, true);
                // 2. A's token, B's path: refused as unauthenticated, like
                // random ids, and like a tenant that does not exist.
                let (real, random) =
                    real_and_random(&env, route, B, None, Some(a_token), &w.b, &rnd).await;
                let nowhere = attempt(&env, route, NOWHERE, &rnd, &rnd, Some(a_token)).await;
                report.check(&label, "A's token, B's path", &real, &random, true);
                report.check(
                    &label,
                    "A's token, B's path vs no tenant",
                    &real,
                    &nowhere,
                    true,
                );
                if real.status != 401 || real.body["error"]["code"] != "unauthorized" {
                    report
                        .failures
                        .push(format!("{label} [A's token, B's path]: {real:?}"));
                }
                // 3. A's token, A's path, B's leaked ids.
                if route.has_identifier() {
                    // The control: the ids are real, B's own admin reads
                    // them (read-only routes; the stream needs an upgrade).
                    if route.method == "get" && !route.path.ends_with("/stream") {
                        let own = send(
                            &env,
                            route.method,
                            &route.url(B, &w.b, &w.b),
                            Some(&w.b_admin),
                            Body::None,
                            &w.b,
                        )
                        .await;
                        if own.status == 404 || own.status >= 500 {
                            report
                                .failures
                                .push(format!("{label} [control, B's own token]: {own:?}"));
                        }
                    }
                    let (real, random) =
                        real_and_random(&env, route, A, None, Some(a_token), &w.b, &rnd).await;
                    report.check(&label, "A's token, A's path, B's ids", &real, &random, true);
                }
                // 4. A's own parent resource, B's child ids.
                if route.is_nested() {
                    let (real, random) =
                        real_and_random(&env, route, A, Some(&w.a), Some(a_token), &w.b, &rnd)
                            .await;
                    report.check(&label, "A's parent, B's child ids", &real, &random, true);
                }
            }
        }
    }
    eprintln!(
        "attack suite: {} documented routes, {} comparisons",
        table.len(),
        report.checked
    );
    assert!(
        report.failures.is_empty(),
        "{} of {} comparisons failed:\n{}",
        report.failures.len(),
        report.checked,
        report.failures.join("\n")
    );

    // B's data came through untouched.
    let b_get = async |path: String| json_ok(&env, Method::GET, &path, &w.b_admin, None).await;
    let bp = format!("/api/v1/t/{B}/portfolios/{}", w.b.portfolio);
    let got = b_get(bp.clone()).await;
    assert_eq!(got["data"]["name"], "Secret book 2");
    assert_eq!(got["data"]["positions"].as_array().unwrap().len(), 1);
    let versions = b_get(format!("{bp}/versions")).await;
    assert_eq!(
        versions["data"].as_array().unwrap().len(),
        w.b_version_count
    );
    let shares = b_get(format!("{bp}/shares")).await;
    assert_eq!(shares["data"][0]["access"], "view", "{shares}");
    let comments = b_get(format!("{bp}/comments")).await;
    assert_eq!(comments["data"].as_array().unwrap().len(), 1);
    let alert = b_get(format!("/api/v1/t/{B}/price-alerts/{}", w.b.alert)).await;
    assert_eq!(alert["data"]["id"], w.b.alert.as_str());
    let users = b_get(format!("/api/v1/t/{B}/users")).await;
    let bob = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["id"] == w.b.user.as_str())
        .unwrap();
    assert_eq!(bob["role"], "trader", "{bob}");
    assert_ne!(bob["status"], "disabled", "{bob}");
    // B's mail links, tried on A, were not consumed: they still work on B.
    env.expect(
        200,
        Method::GET,
        &format!("/api/v1/t/{B}/email/verify?token={}", w.b.verify_token),
        None,
        None,
    )
    .await;
    let (s, body) = env
        .call(
            Method::POST,
            &format!("/api/v1/t/{B}/password/reset"),
            None,
            Some(json!({"token": w.b.link_token, "password": "a-brand-new-passphrase"})),
        )
        .await;
    assert_eq!(s, 200, "{body}");
    let a_list = json_ok(
        &env,
        Method::GET,
        &format!("/api/v1/t/{A}/portfolios"),
        &w.a_admin,
        None,
    )
    .await;
    assert!(
        !a_list.to_string().contains(&w.b.portfolio),
        "B's portfolio listed in A"
    );
}

// ------------------------------------------------------------ tokens

fn segment(token: &str, i: usize) -> Value {
    serde_json::from_slice(&B64.decode(token.split('.').nth(i).unwrap()).unwrap()).unwrap()
}

fn compact(header: &Value, payload: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        B64.encode(serde_json::to_vec(header).unwrap()),
        B64.encode(serde_json::to_vec(payload).unwrap())
    )
}

/// HMAC-SHA256 (RFC 2104), so the test forges HS256 without a JOSE library.
fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new()
        .chain_update(&ipad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(&opad)
        .chain_update(inner)
        .finalize()
        .to_vec()
}

async fn me(env: &Env, tenant: &str, token: &str) -> (u16, Value) {
    env.get(&format!("/api/v1/t/{tenant}/me"), token).await
}

async fn assert_refused(env: &Env, tenant: &str, token: &str, what: &str) {
    let (s, body) = me(env, tenant, token).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (401, Some("unauthorized")),
        "{what}: {body}"
    );
    // The refusal says nothing about why.
    assert_eq!(body["error"]["message"], "a valid access token is required");
    assert!(body["error"].get("details").is_none(), "{what}: {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_and_foreign_tokens_are_refused_over_http() {
    // No clock skew, so a token issued with a one-second lifetime is
    // expired two seconds later.
    let env = env_with(|c| {
        roomy(c);
        c.auth.clock_skew_secs = 0;
    })
    .await;
    let auth = env.auth();
    let (user, token) = scoped_token(&auth, A, "ada@acme.test", Role::Trader, CLIENT_SCOPES).await;
    let (_, b_token) = scoped_token(&auth, B, "bea@globex.test", Role::Trader, CLIENT_SCOPES).await;
    let (s, body) = me(&env, A, &token).await;
    assert_eq!(s, 200, "{body}");

    let header = segment(&token, 0);
    let payload = segment(&token, 1);
    let sig = token.split('.').nth(2).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();

    // alg none, with and without the signature.
    let mut none = header.clone();
    none["alg"] = "none".into();
    assert_refused(&env, A, &compact(&none, &payload, ""), "alg none").await;
    assert_refused(&env, A, &compact(&none, &payload, sig), "alg none + sig").await;
    let mut none_caps = header.clone();
    none_caps["alg"] = "NONE".into();
    assert_refused(&env, A, &compact(&none_caps, &payload, ""), "alg NONE").await;

    // HS256 keyed with the public key from the served JWKS.
    let (s, jwks) = env
        .call(Method::GET, &format!("/t/{A}/jwks.json"), None, None)
        .await;
    assert_eq!(s, 200);
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("signing key in JWKS")
        .clone();
    assert!(jwk.get("d").is_none(), "private key material in the JWKS");
    let mut hs = header.clone();
    hs["alg"] = "HS256".into();
    let mut secrets: Vec<Vec<u8>> = vec![jwk.to_string().into_bytes()];
    for field in ["x", "n"] {
        if let Some(v) = jwk[field].as_str() {
            secrets.push(v.as_bytes().to_vec());
            secrets.push(B64.decode(v).unwrap());
        }
    }
    for secret in &secrets {
        let input = format!(
            "{}.{}",
            B64.encode(serde_json::to_vec(&hs).unwrap()),
            B64.encode(serde_json::to_vec(&payload).unwrap())
        );
        let forged = format!(
            "{input}.{}",
            B64.encode(hmac_sha256(secret, input.as_bytes()))
        );
        assert_refused(&env, A, &forged, "HS256 with the public key").await;
    }

    // kid injection: traversal, SQL, empty, unknown, huge, and key URLs.
    for evil in [
        "../../../../etc/passwd",
        "' OR '1'='1' --",
        "es256'; DROP TABLE signing_keys; --",
        "",
        "\u{0000}",
        &"k".repeat(4096),
    ] {
        let mut h = header.clone();
        h["kid"] = evil.into();
        assert_refused(&env, A, &compact(&h, &payload, sig), "kid injection").await;
    }
    for (name, value) in [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("jwk", jwk.clone()),
    ] {
        let mut h = header.clone();
        h[name] = value;
        assert_refused(&env, A, &compact(&h, &payload, sig), name).await;
    }
    // Elevated claims with the original signature.
    let mut elevated = payload.clone();
    elevated["roles"] = json!(["admin"]);
    assert_refused(&env, A, &compact(&header, &elevated, sig), "tampered roles").await;

    // Validly signed tokens with the wrong audience, issuer or tenant.
    let tokens = auth.tokens();
    let tenant_a = tokens
        .decrypt_tenant(payload["tid"].as_str().unwrap())
        .unwrap();
    let request = |issuer: String, audience: String, tenant_id: Uuid| AccessTokenRequest {
        tenant_id,
        issuer,
        audience,
        subject: user.to_string(),
        client_id: "web".into(),
        scope: CLIENT_SCOPES.into(),
        roles: vec!["trader".into()],
        session_id: None,
        family_id: None,
        auth_time: None,
        alg: SigningAlg::ES256,
    };
    let issue = |issuer: String, audience: String, tenant_id: Uuid| {
        tokens
            .issue_access_token(&request(issuer, audience, tenant_id))
            .unwrap()
            .0
    };
    let aud = auth.config().access_token_audience.clone();
    // The control: the same recipe with the right values is accepted.
    let control = issue(auth.issuer(&valid_slug(A)), aud.clone(), tenant_a);
    assert_eq!(me(&env, A, &control).await.0, 200);
    assert_refused(
        &env,
        A,
        &issue(auth.issuer(&valid_slug(A)), "another-api".into(), tenant_a),
        "wrong audience",
    )
    .await;
    assert_refused(
        &env,
        A,
        &issue(auth.issuer(&valid_slug(B)), aud.clone(), tenant_a),
        "B's issuer on A",
    )
    .await;
    // B's issuer with A's encrypted tenant, sent to B: the issuer matches
    // but the tenant inside the JWE does not.
    assert_refused(
        &env,
        B,
        &issue(auth.issuer(&valid_slug(B)), aud.clone(), tenant_a),
        "A's tenant under B's issuer",
    )
    .await;
    // A's real token on B (wrong issuer), B's real token on A.
    assert_refused(&env, B, &token, "A's token on B").await;
    assert_refused(&env, A, &b_token, "B's token on A").await;
    // Unknown tenant id inside a valid signature.
    assert_refused(
        &env,
        A,
        &issue(auth.issuer(&valid_slug(A)), aud.clone(), Uuid::new_v4()),
        "unknown tenant id",
    )
    .await;

    // The encrypted tenant claim: B's swapped in, or a byte changed.
    let mut swapped = payload.clone();
    swapped["tid"] = segment(&b_token, 1)["tid"].clone();
    assert_refused(&env, A, &compact(&header, &swapped, sig), "tid of B").await;
    let tid = payload["tid"].as_str().unwrap().to_owned();
    let mut parts: Vec<String> = tid.split('.').map(str::to_owned).collect();
    let mut ct = B64.decode(&parts[3]).unwrap();
    ct[0] ^= 1;
    parts[3] = B64.encode(ct);
    let mut tampered = payload.clone();
    tampered["tid"] = parts.join(".").into();
    assert_refused(&env, A, &compact(&header, &tampered, sig), "tampered tid").await;
    // The tid's own header switched to another algorithm.
    let mut tid_parts: Vec<String> = tid.split('.').map(str::to_owned).collect();
    let mut tid_header: Value =
        serde_json::from_slice(&B64.decode(&tid_parts[0]).unwrap()).unwrap();
    tid_header["alg"] = "none".into();
    tid_parts[0] = B64.encode(serde_json::to_vec(&tid_header).unwrap());
    let mut tid_none = payload.clone();
    tid_none["tid"] = tid_parts.join(".").into();
    assert_refused(&env, A, &compact(&header, &tid_none, sig), "tid alg none").await;

    // Expired: a token with a one-second lifetime from the same keys.
    let mut short = auth.config().clone();
    short.access_token_ttl_secs = 1;
    let short_lived = TokenService::new(tokens.key_ring().clone(), &short);
    let (expiring, claims) = short_lived
        .issue_access_token(&request(auth.issuer(&valid_slug(A)), aud.clone(), tenant_a))
        .unwrap();
    while rampart_auth::token::peek_claims(&expiring).unwrap()["exp"]
        .as_i64()
        .unwrap()
        >= chrono::Utc::now().timestamp()
    {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(claims.exp <= chrono::Utc::now().timestamp());
    assert_refused(&env, A, &expiring, "expired").await;
    // The OAuth endpoints of B know nothing of A's token either.
    let userinfo = |tenant: &str, token: &str| {
        let req = env
            .http
            .get(env.url(&format!("/t/{tenant}/oauth/userinfo")))
            .bearer_auth(token);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // At home the token is authentic (403: it lacks the `openid` scope).
    assert_eq!(userinfo(A, &token).await, 403);
    assert_eq!(userinfo(B, &token).await, 401);
    assert_eq!(userinfo(B, &compact(&none, &payload, "")).await, 401);
    // Introspection is for confidential clients only: a public client
    // (client_id alone) is refused before any token is looked at.
    for candidate in [token.as_str(), "not-a-token"] {
        let (s, body) = env
            .api()
            .form(
                &format!("/t/{B}/oauth/introspect"),
                &[("token", candidate), ("client_id", "web")],
            )
            .await;
        assert_eq!(
            (s, &body["error"]),
            (401, &json!("invalid_client")),
            "{body}"
        );
    }
    // Garbage of every shape.
    for junk in ["", "a.b.c", "....", "Bearer x", &"A".repeat(20_000)] {
        assert_refused(&env, A, junk, "junk").await;
    }
    // The genuine token still works after all this.
    assert_eq!(me(&env, A, &token).await.0, 200);
}

// ------------------------------------------------------------ code replay

#[tokio::test(flavor = "multi_thread")]
async fn replayed_authorization_code_is_refused_and_revokes_its_tokens() {
    replayed_code(false).await;
}

/// An access token revoked by a code replay is refused by `/api/v1` at once
/// (`AuthServer::authenticate_bearer` checks `access_tokens`, with a verdict
/// cache that every revocation clears).
#[tokio::test(flavor = "multi_thread")]
async fn api_refuses_the_access_token_of_a_replayed_code() {
    replayed_code(true).await;
}

/// The code-replay scenario; `api_must_refuse` also demands that `/api/v1`
/// refuses the revoked access token.
async fn replayed_code(api_must_refuse: bool) {
    let env = env_with(roomy).await;
    let auth = env.auth();
    auth.register(
        &valid_slug(A),
        "cody@acme.test",
        "Cody",
        PASSWORD,
        Role::Trader,
    )
    .await
    .unwrap();
    // A client allowed to refresh (the shared `web` client is not).
    auth.register_client(
        &valid_slug(A),
        &ClientRegistration {
            client_id: "web-rt".into(),
            name: "Web with refresh".into(),
            redirect_uris: vec![REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec!["portfolio:read".into()],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        },
    )
    .await
    .unwrap();
    // Introspection needs a confidential client (a resource server).
    let rs_secret = auth
        .register_client(
            &valid_slug(A),
            &machine_client(
                "rs",
                "Resource server",
                &["portfolio:read"],
                ClientAuthMethod::ClientSecretPost,
            ),
        )
        .await
        .unwrap()
        .unwrap();
    let session = login(&auth, A, "cody@acme.test", PASSWORD).await;
    let (session, _) = auth
        .authenticate_session(&valid_slug(A), &session.token)
        .await
        .unwrap();
    let verifier = format!("verifier-{}-{}", Uuid::new_v4(), Uuid::new_v4());
    let next_code = async || {
        authorization_code(&auth, A, &session, "web-rt", "portfolio:read", &verifier).await
    };
    let code = next_code().await;
    let grant = |code: &str| {
        vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", REDIRECT.to_owned()),
            ("code_verifier", verifier.clone()),
            ("client_id", "web-rt".to_owned()),
        ]
    };
    let send_grant = async |path: String, pairs: Vec<(&'static str, String)>| {
        let refs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.api().form(&path, &refs).await
    };

    // A code of A redeemed at B's token endpoint is refused (and does not
    // consume it).
    let (s, body) = send_grant(format!("/t/{B}/oauth/token"), grant(&code)).await;
    assert!(
        matches!(
            (s, body["error"].as_str()),
            (400, Some("invalid_grant")) | (401, Some("invalid_client"))
        ),
        "{s} {body}"
    );
    assert!(body.get("access_token").is_none(), "{body}");

    let (s, tokens) = send_grant(format!("/t/{A}/oauth/token"), grant(&code)).await;
    assert_eq!(s, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let intro = |token: String| {
        let env = &env;
        let rs_secret = &rs_secret;
        async move {
            env.api()
                .form(
                    &format!("/t/{A}/oauth/introspect"),
                    &[
                        ("token", token.as_str()),
                        ("client_id", "rs"),
                        ("client_secret", rs_secret.as_str()),
                    ],
                )
                .await
        }
    };
    let (s, before) = intro(access.clone()).await;
    assert_eq!((s, &before["active"]), (200, &json!(true)), "{before}");
    assert_eq!(me(&env, A, &access).await.0, 200);

    // B's revocation endpoint cannot revoke A's tokens (RFC 7009 answers
    // 200 for unknown tokens; what matters is that they stay live).
    for token in [&access, &refresh] {
        let (s, body) = env
            .api()
            .form(
                &format!("/t/{B}/oauth/revoke"),
                &[("token", token.as_str()), ("client_id", "web")],
            )
            .await;
        assert!(s == 200 || s == 400, "{s} {body}");
    }
    let (s, still) = intro(access.clone()).await;
    assert_eq!((s, &still["active"]), (200, &json!(true)), "{still}");
    let (s, still) = intro(refresh.clone()).await;
    assert_eq!((s, &still["active"]), (200, &json!(true)), "{still}");

    // The replay is refused...
    let (s, body) = send_grant(format!("/t/{A}/oauth/token"), grant(&code)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert!(body.get("access_token").is_none());
    // ...and what the code issued is revoked: the refresh token no longer
    // works, introspection calls the access token inactive.
    let (s, body) = send_grant(
        format!("/t/{A}/oauth/token"),
        vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh.clone()),
            ("client_id", "web-rt".to_owned()),
        ],
    )
    .await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let (s, after) = intro(access.clone()).await;
    assert_eq!((s, &after["active"]), (200, &json!(false)), "{after}");
    let (s, after) = intro(refresh.clone()).await;
    assert_eq!((s, &after["active"]), (200, &json!(false)), "{after}");
    if api_must_refuse {
        assert_refused(&env, A, &access, "access token of a replayed code").await;
    }
    // The audit log records the replay.
    let log = auth.audit_log(&valid_slug(A), 100).await.unwrap();
    assert!(log.iter().any(|r| r.action == "code_replay"), "{log:?}");

    // A wrong PKCE verifier burns nothing but is refused; a code is bound
    // to its client and redirect URI.
    let code = next_code().await;
    let mut wrong = grant(&code);
    wrong[3].1 = format!("{verifier}x");
    let (s, body) = send_grant(format!("/t/{A}/oauth/token"), wrong).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    let mut other_uri = grant(&code);
    other_uri[2].1 = "https://evil.example/cb".into();
    let (s, body) = send_grant(format!("/t/{A}/oauth/token"), other_uri).await;
    assert_eq!(s, 400, "{body}");
}
