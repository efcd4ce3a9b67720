//! Serves the example on `BIND` (default `127.0.0.1:3000`) against
//! `DATABASE_URL`, with a `demo` tenant, a demo user registered through
//! `rampart-auth`'s accounts service, and a printed access token to try it.

use rampart_auth::{AuthConfig, Role};
use rampart_example_axum::{AppState, router};
use rampart_tenancy::{TenancyConfig, TenantPool};

const DEMO_EMAIL: &str = "demo@example.test";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let database_url = std::env::var("DATABASE_URL").map_err(
        |_| "set DATABASE_URL (cargo run -p rampart-testkit --example postgres prints one)",
    )?;
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3000".into());

    let pool = TenantPool::connect(TenancyConfig {
        database_url,
        ..TenancyConfig::default()
    })
    .await?;
    let slug = rampart_tenancy::TenantSlug::parse("demo")?;
    let demo = match pool.tenant(&slug).await {
        Ok(tenant) => tenant,
        Err(_) => pool.provision(&slug, "Demo tenant").await?,
    };
    let state = AppState::with_memory_keys(pool, AuthConfig::default()).await?;

    // The users table is rampart-auth's: the demo user is registered through
    // its accounts service. This service has no login, so the password is a
    // random one nobody needs; the token printed below stands in for a login.
    let accounts = state.auth().accounts();
    let user = match accounts.find_by_email(&slug, DEMO_EMAIL).await? {
        Some(user) => user,
        None => {
            let password = uuid::Uuid::new_v4().simple().to_string();
            accounts
                .register(&slug, DEMO_EMAIL, "Demo user", &password, Role::Viewer)
                .await?
        }
    };
    let token = state.issue_token(&demo, &user.id.to_string())?;

    let listener = tokio::net::TcpListener::bind(&bind).await?;
    let addr = listener.local_addr()?;
    println!("try: curl -H 'Authorization: Bearer {token}' 'http://{addr}/t/demo/users?limit=10'");
    axum::serve(listener, router(state)).await?;
    Ok(())
}
