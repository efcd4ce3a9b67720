//! What the page tests (`admin_page`, `member_page`) share: the browser
//! tooling (Chromium, node, playwright-core), the server started for a
//! page with its tenant, the page's checks over plain HTTPS, and the run of
//! a browser script (`*.e2e.mjs`, with `page_e2e.mjs` beside them).
use rampart_testkit::valid_slug;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use rampart_auth::accounts::User;
use rampart_auth::{AuthServer, Role};
use rampart_server::app::{AppState, RunningServer};

use crate::common::{PASSWORD, Pki, client_builder, config, get_status, start, start_with_transit};

fn workspace_root() -> PathBuf {
    rampart_testkit::repo_root()
}

/// Chromium, node and playwright-core must be installed: a missing one is a
/// failure with the command that installs it, never a skip.
fn browser_tooling() -> PathBuf {
    assert!(
        Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: install it with `apt-get install -y chromium` (./scripts/test does)"
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "node is missing: install it with `apt-get install -y nodejs npm` (./scripts/test does)"
    );
    let modules = workspace_root().join(".cache/node/node_modules");
    assert!(
        modules.join("playwright-core/package.json").exists(),
        "playwright-core is missing: `npm install --prefix .cache/node playwright-core@1.65.1` (./scripts/test does)"
    );
    modules
}

/// A free port for the public listener: the OAuth redirect URI of a page
/// is `{public_base_url}/t/{tenant}/{page}/callback`, so the base URL must
/// name the port the browser will use.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// How a page test's server seals broker keys.
pub(crate) enum Transit {
    /// Vault transit (the kit's OpenBao).
    Vault,
    /// The development transit key (no Vault).
    Dev,
}

/// The server of a page test (after the browser tooling is checked): the
/// public listener on a port chosen first, its base URL naming it, the
/// tenant provisioned with the admin console's OAuth client.
pub(crate) struct PageServer {
    /// The PKI whose files the server's TLS is read from: kept with it.
    _pki: Pki,
    pub server: RunningServer,
    pub state: AppState,
    pub auth: Arc<AuthServer>,
    pub tenant: &'static str,
    /// `https://localhost:{port}` of the public listener.
    pub base: String,
    /// An HTTPS client trusting the test CA that follows no redirect.
    pub http: reqwest::Client,
    modules: PathBuf,
}

impl PageServer {
    pub async fn start(tenant: &'static str, tenant_name: &str, transit: Transit) -> Self {
        let modules = browser_tooling();
        let pki = Pki::new();
        let mut config = config(&pki).await;
        let port = free_port();
        config.public_addr = format!("127.0.0.1:{port}").parse().unwrap();
        config.public_base_url = format!("https://localhost:{port}");
        let (server, state) = match transit {
            Transit::Vault => start_with_transit(config).await,
            Transit::Dev => {
                config.dev_transit = true;
                start(config).await
            }
        };
        let auth = crate::common::auth(&state);
        state
            .tenants
            .provision(&valid_slug(tenant), tenant_name)
            .await
            .unwrap();
        rampart_server::admin_console::ensure_client(&auth, &valid_slug(tenant))
            .await
            .unwrap();
        let base = format!("https://localhost:{}", server.public_addr.port());
        let http = client_builder(&pki.ca.cert_pem())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        PageServer {
            _pki: pki,
            server,
            state,
            auth,
            tenant,
            base,
            http,
            modules,
        }
    }

    /// Registers `{local}@{tenant}.example` (password [`PASSWORD`]): its
    /// e-mail and the user.
    pub async fn register(&self, local: &str, name: &str, role: Role) -> (String, User) {
        let email = format!("{local}@{}.example", self.tenant);
        let user = self
            .auth
            .register(&valid_slug(self.tenant), &email, name, PASSWORD, role)
            .await
            .unwrap();
        (email, user)
    }

    /// The page `/t/{tenant}/{page}/` over plain HTTPS, before the browser:
    /// 200, a CSP with scripts from the page's own origin only (none
    /// inline), the page's own callback as its redirect URI and no inline
    /// script; without the slash a redirect (301), for an unknown tenant
    /// 404. Its CSP and HTML.
    pub async fn check_page(&self, page: &str) -> (String, String) {
        let (base, tenant) = (&self.base, self.tenant);
        let fetch = async |tenant: &str| {
            let url = format!("{base}/t/{tenant}/{page}/");
            self.http.get(url).send().await.unwrap()
        };
        let r = fetch(tenant).await;
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        let html = r.text().await.unwrap();
        assert!(html.contains(&format!(
            "data-redirect-uri=\"{base}/t/{tenant}/{page}/callback\""
        )));
        assert!(!html.contains("<script>"), "no inline script");
        let status = async |path: String| get_status(&self.http, &format!("{base}{path}")).await;
        assert_eq!(status(format!("/t/{tenant}/{page}")).await, 301);
        assert_eq!(status(format!("/t/nosuchtenant/{page}/")).await, 404);
        // A tenant whose page client was never registered: the page says
        // sign-in is unavailable (and never registers it itself).
        let bare = valid_slug(&format!("{tenant}_bare_{page}"));
        self.state.tenants.provision(&bare, "Bare").await.unwrap();
        let r = fetch(bare.as_str()).await;
        assert_eq!(r.status(), 503);
        let refusal = r.text().await.unwrap();
        assert!(
            refusal.contains("Sign-in unavailable")
                && refusal.contains(&format!("The {page} page"))
                && refusal.contains("OAuth client is not set up for this tenant"),
            "{refusal}"
        );
        (csp, html)
    }

    /// Runs `tests/{script}` in node (Playwright driving headless Chromium)
    /// with the base URL, the tenant and [`PASSWORD`], `env`, the node
    /// modules and an artifacts folder (kept on failure, for its
    /// screenshot); fails unless it exits 0 having passed every step.
    pub async fn run_browser_script(&self, script: &str, env: &[(&str, String)]) {
        let artifacts = tempfile::tempdir().unwrap();
        let script = rampart_testkit::package_dir().join("tests").join(script);
        let mut cmd = Command::new("node");
        cmd.arg(&script)
            .env("RAMPART_BASE_URL", &self.base)
            .env("RAMPART_TENANT", self.tenant)
            .env("RAMPART_PASSWORD", PASSWORD)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("RAMPART_NODE_MODULES", &self.modules)
            .env("RAMPART_ARTIFACTS", artifacts.path());
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stdout}");
        eprintln!("{stderr}");
        if !out.status.success() {
            // Keep the failure screenshot.
            let _ = artifacts.keep();
        }
        assert_eq!(
            out.status.code(),
            Some(0),
            "the browser script failed:\n{stdout}\n{stderr}"
        );
        assert!(stdout.contains("all steps passed"));
    }
}
