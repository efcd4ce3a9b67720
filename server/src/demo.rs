//! `rampart demo`: the whole platform with embedded defaults — a PostgreSQL
//! of its own under `.rampart/`, in-memory cache and rate limiter, dev
//! secrets, a generated development CA with server and client certificates,
//! demo tenants, users and OAuth clients.
use rampart_tenancy::TenantSlug;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use rampart_auth::oauth::{ClientAuthMethod, ClientRegistration};
use rampart_auth::{AuthError, Role, SigningAlg};
use rampart_pgembed::{PgOptions, PgServer};

use crate::config::{Mode, ServerConfig};
use crate::serve;
use crate::state::AppState;
use crate::tls::write_dev_pki;

/// Options of the embedded mode.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where the demo keeps its data (PostgreSQL cluster, certificates, dev
    /// secrets); created on first run.
    #[arg(long, default_value = ".rampart", env = "RAMPART_DEMO_DIR")]
    pub dir: PathBuf,
    /// Public listener.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub public_addr: SocketAddr,
    /// Admin listener (mutual TLS).
    #[arg(long, default_value = "127.0.0.1:9443")]
    pub admin_addr: SocketAddr,
    /// Exit after starting and printing (for smoke tests).
    #[arg(long)]
    pub once: bool,
}

/// Demo tenants: slug and display name.
const DEMO_TENANTS: &[(&str, &str)] = &[("acme", "Acme Capital"), ("globex", "Globex Investments")];
/// Demo users of every tenant: email local part, name, role.
const DEMO_USERS: &[(&str, &str, Role)] = &[
    ("admin", "Ada Admin", Role::Admin),
    ("trader", "Tom Trader", Role::Trader),
    ("viewer", "Vera Viewer", Role::Viewer),
];
/// The demo password (dev mode only).
pub const DEMO_PASSWORD: &str = "rampart-demo-password";
/// The public OAuth client every demo tenant has.
pub const DEMO_CLIENT: &str = "demo-web";
/// Its redirect URI (any loopback port is accepted).
pub const DEMO_REDIRECT: &str = "http://127.0.0.1/callback";

/// Runs the demo until Ctrl-C.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let pg_dir = args.dir.join("pg");
    let pg = tokio::task::spawn_blocking(move || {
        PgServer::start_with(PgOptions {
            data_dir: Some(pg_dir),
            fsync: true,
            ..PgOptions::default()
        })
    })
    .await??;
    let result = serve_demo(&pg, &args).await;
    let stopped = tokio::task::spawn_blocking(move || pg.shutdown()).await?;
    result?;
    stopped?;
    println!("stopped cleanly.");
    Ok(())
}

async fn serve_demo(pg: &PgServer, args: &DemoArgs) -> anyhow::Result<()> {
    let pki = write_dev_pki(&args.dir.join("pki"))?;
    // The members' broker: a built-in replay of Alpaca's paper API, up
    // while the demo runs (its seeding and its daily snapshot job read it).
    let broker = rampart_members::replay::AlpacaReplay::start().await?;
    let mut config = ServerConfig {
        mode: Mode::Dev,
        public_addr: args.public_addr,
        admin_addr: args.admin_addr,
        public_base_url: format!("https://localhost:{}", args.public_addr.port()),
        tls: Some(pki.files.clone()),
        dev_secrets_dir: args.dir.join("dev-secrets"),
        // Broker keys sealed without Vault (refused in production mode).
        dev_transit: true,
        http: crate::config::HttpConfig {
            shutdown_timeout_secs: 3,
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    config.database.database_url = pg.url("postgres");
    config.snapshot.broker_base_url = broker.base_url();
    config.validate()?;
    let state = serve::build_state(config).await?;
    let auth = state.auth.clone();
    let mut logins = Vec::new();
    for (slug, name) in DEMO_TENANTS {
        let slug = &TenantSlug::parse(slug)?;
        let t = state.tenants.ensure_tenant(slug, name).await?;
        for (local, display, role) in DEMO_USERS {
            let email = format!("{local}@{slug}.example");
            match auth
                .register(slug, &email, display, DEMO_PASSWORD, *role)
                .await
            {
                Ok(_) | Err(AuthError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            logins.push(format!("{:<8} {email:<24} {role}", t.slug));
        }
        let client = ClientRegistration {
            client_id: DEMO_CLIENT.into(),
            name: "Demo web app".into(),
            redirect_uris: vec![DEMO_REDIRECT.into()],
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            allowed_scopes: vec![
                "openid".into(),
                "email".into(),
                "profile".into(),
                // Discovery advertises it: generic OAuth libraries ask for it
                // to get a refresh token.
                "offline_access".into(),
                "portfolio:read".into(),
                // The user's own account (password, TOTP, API keys).
                "account:manage".into(),
            ],
            auth_method: ClientAuthMethod::None,
            signing_alg: SigningAlg::ES256,
        };
        match auth.register_client(slug, &client).await {
            Ok(_) => {}
            // Kept from an earlier run: bring its scopes up to date.
            Err(AuthError::Conflict(_)) => {
                let update = rampart_auth::clients::ClientUpdate {
                    allowed_scopes: Some(client.allowed_scopes.clone()),
                    ..Default::default()
                };
                auth.oauth()
                    .update_client(slug, DEMO_CLIENT, &update, "demo")
                    .await?;
            }
            Err(e) => return Err(e.into()),
        }
        crate::admin_console::ensure_client(&auth, slug)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    let today = chrono::Utc::now().date_naive();
    for (slug, _) in DEMO_TENANTS {
        let slug = &TenantSlug::parse(slug)?;
        seed_portfolio(&state, slug).await?;
        seed_case(&state, slug).await?;
        crate::demo_members::seed(&state, &broker, slug, today).await?;
    }
    let report = state.tenants.migrate_all().await?;
    let server = serve::start(state).await?;
    let (p, a) = (server.public_addr, server.admin_addr);
    let ca = pki.ca_file.display();
    let db = pg.url("postgres");
    let (cert, key) = (
        pki.client_cert_file.display(),
        pki.client_key_file.display(),
    );
    let public = p.port();
    println!(
        "\nThe seed systems, with data:\
         \n  TigerQuant    https://localhost:{public}/t/acme/member/ (member page: 10 members, 30 days of snapshots; the trader signs in)\
         \n  EPV cases     GET /api/v1/t/acme/cases (a valued AAPL case with an agent's analysis)\
         \n  Portfolios    GET /api/v1/t/acme/portfolios/{{id}}/analytics, …/charts/equity.svg, POST /api/graphql/t/acme"
    );
    println!(
        "\nRampart demo is running (template {}, embedded PostgreSQL on 127.0.0.1:{}).\n\
         \n  public  https://localhost:{}   (OAuth, login page, API; client certificates optional)\
         \n  admin   https://localhost:{}   (mutual TLS: client certificate required)\
         \n\nDemo logins (password `{DEMO_PASSWORD}`; each trader has a demo portfolio):\n  {}\
         \n\nTry:\
         \n  curl --cacert {ca} https://localhost:{}/ready\
         \n  curl --cacert {ca} https://localhost:{}/t/acme/.well-known/openid-configuration\
         \n  open https://localhost:{}/t/acme/oauth/authorize?response_type=code&client_id={DEMO_CLIENT}&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid%20email&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256\
         \n  curl --cacert {ca} --cert {cert} --key {key} https://localhost:{}/admin/tenants\
         \n  curl --cacert {ca} --cert {cert} --key {key} https://localhost:{}/metrics\
         \n  curl --cacert {ca} https://localhost:{}/admin/tenants      # refused: no client certificate\
         \n\nNext, as an operator (the demo's database is {db}):\
         \n  rampart tenants provision initech --name Initech --admin-email boss@initech.example --database-url '{db}' --public-url https://localhost:{}\
         \n  rampart invitations create --tenant acme newcomer@acme.example --role trader --database-url '{db}' --public-url https://localhost:{}\
         \n  rampart invitations list --tenant acme --database-url '{db}'\
         \n  rampart clients create --tenant acme my-app --redirect-uri http://127.0.0.1/callback --scopes 'openid email offline_access portfolio:read' --database-url '{db}'\
         \n  rampart clients list --tenant acme --database-url '{db}'\
         \n  curl --cacert {ca} --cert {cert} --key {key} https://localhost:{}/admin/t/acme/clients\
         \n\nPress Ctrl-C to stop (or send SIGTERM).",
        report.target_version,
        pg.port(),
        p.port(),
        a.port(),
        logins.join("\n  "),
        p.port(),
        p.port(),
        p.port(),
        a.port(),
        a.port(),
        a.port(),
        p.port(),
        p.port(),
        a.port(),
    );
    if !args.once {
        let signal = crate::app::shutdown_signal().await?;
        println!("{signal}: stopping…");
    }
    crate::app::stop_on_request(server).await;
    Ok(())
}

/// The demo trader of `slug` (`trader@{slug}.example`) as an actor.
async fn demo_trader(
    state: &AppState,
    slug: &TenantSlug,
) -> anyhow::Result<rampart_portfolio::Actor> {
    let trader = state
        .auth
        .accounts()
        .find_by_email(slug, &format!("trader@{slug}.example"))
        .await?
        .ok_or_else(|| anyhow::anyhow!("the demo trader of {slug} is missing"))?;
    Ok(rampart_portfolio::Actor::user(trader.id))
}

/// A demo portfolio for each tenant's trader, on symbols the embedded market
/// data has (idempotent: skipped when the trader owns one). Through the
/// services, as a user would create it: auth finds the trader, the
/// portfolio crate writes the portfolio, its positions and version 1.
async fn seed_portfolio(state: &AppState, slug: &TenantSlug) -> anyhow::Result<()> {
    use rampart_portfolio::{Decimal, NewPortfolio, PortfolioService, PositionInput};
    let actor = demo_trader(state, slug).await?;
    let portfolios = PortfolioService::new(state.tenants.clone());
    let visible = portfolios.list(slug, &actor, None, 100).await?;
    if visible.items.iter().any(|p| p.owner_id == actor.user_id) {
        return Ok(());
    }
    let bought = chrono::NaiveDate::from_ymd_opt(2005, 1, 3);
    let positions = [
        ("AAPL", 120, 320, "Technology"),
        ("MSFT", 300, 267, "Technology"),
        ("IBM", 80, 985, "Technology"),
        ("AMZN", 60, 443, "Consumer"),
    ]
    .into_iter()
    .map(|(symbol, quantity, tenths, sector)| PositionInput {
        symbol: symbol.into(),
        quantity: Some(Decimal::from(quantity)),
        purchase_price: Some(Decimal::new(tenths, 1)),
        purchase_date: bought,
        sector: Some(sector.into()),
        ..PositionInput::default()
    })
    .collect();
    portfolios
        .create(
            slug,
            &actor,
            NewPortfolio {
                name: "Demo growth".into(),
                description: Some("Seeded by rampart demo".into()),
                positions,
                ..NewPortfolio::default()
            },
        )
        .await?;
    Ok(())
}

/// A demo EPV valuation case for each tenant's trader (idempotent: skipped
/// when the trader has one), with an agent's analysis attached, so the
/// `cases` routes show a valued case at once. The figures are illustrative
/// (an Apple-sized business in USD millions, not its filings); the price is
/// the embedded market's last close of AAPL.
async fn seed_case(state: &AppState, slug: &TenantSlug) -> anyhow::Result<()> {
    use rampart_portfolio::{CaseService, NewAnalysis, NewCase};
    let actor = demo_trader(state, slug).await?;
    let cases = CaseService::new(state.tenants.clone());
    if !cases.list(slug, &actor, None, 1).await?.items.is_empty() {
        return Ok(());
    }
    let price = match state.market.quote("AAPL").await {
        Ok(q) => Some(q.value.price),
        Err(_) => None,
    };
    let inputs = serde_json::from_value(serde_json::json!({
        "currency": "USD",
        "fiscal_years": [
            {"year": 2006, "revenue": "19315", "operating_income": "2453",
             "depreciation_amortization": "225", "maintenance_capex": "200",
             "sga": "2433", "research_development": "712"},
            {"year": 2007, "revenue": "24006", "operating_income": "4409",
             "depreciation_amortization": "317", "maintenance_capex": "280",
             "sga": "2963", "research_development": "782"},
            {"year": 2008, "revenue": "32479", "operating_income": "6275",
             "depreciation_amortization": "473", "maintenance_capex": "400",
             "sga": "3761", "research_development": "1109"}
        ],
        "adjustments": {"tax_rate": "0.30", "growth_share_of_sga": "0.1",
                        "growth_share_of_rnd": "0.25"},
        "cost_of_capital": {"risk_free_rate": "0.035", "beta": "1.2",
            "equity_risk_premium": "0.055", "pre_tax_cost_of_debt": "0.05",
            "debt_weight": "0"},
        "claims": {"excess_cash": "24490", "debt": "0", "diluted_shares": "902"},
        "reproduction": [
            {"name": "receivables", "book_value": "2422", "reproduction_value": "2422"},
            {"name": "inventory", "book_value": "509", "reproduction_value": "509"},
            {"name": "property and equipment", "book_value": "2455",
             "reproduction_value": "2700"}
        ]
    }))?;
    let inputs = rampart_valuation::ValuationInputs {
        current_price: price,
        ..inputs
    };
    let case = cases
        .create(
            slug,
            &actor,
            NewCase {
                ticker: "AAPL".into(),
                name: Some("Demo EPV: AAPL".into()),
                inputs,
            },
        )
        .await?;
    cases
        .attach_analysis(
            slug,
            &actor,
            case.id,
            NewAnalysis {
                source: "demo:moat-agent".into(),
                document: serde_json::json!({"moat": "wide", "drivers": ["ecosystem", "brand"],
                    "note": "seeded by rampart demo"}),
                version: None,
            },
        )
        .await?;
    Ok(())
}
