use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_mode_command_starts_serves_and_stops_cleanly() {
    rampart_testkit::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let public = rampart_testkit::free_port().unwrap();
    let admin = rampart_testkit::free_port().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rampart"))
        .args(["demo", "--dir"])
        .arg(dir.path())
        .args([
            "--public-addr",
            &format!("127.0.0.1:{public}"),
            "--admin-addr",
            &format!("127.0.0.1:{admin}"),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut printed = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(180))
            .expect("demo did not become ready");
        let done = line.contains("Press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(text.contains("admin@acme.example"), "{text}");
    assert!(
        text.contains("--cert"),
        "curl commands with the client certificate: {text}"
    );
    for next in [
        "rampart tenants provision",
        "--admin-email",
        "rampart invitations create",
        "rampart clients create",
    ] {
        assert!(text.contains(next), "the operator's next commands: {text}");
    }

    let pki = dir.path().join("pki");
    let ca = std::fs::read_to_string(pki.join("ca.pem")).unwrap();
    let identity = rampart_server::tls::IssuedCert {
        cert_pem: std::fs::read_to_string(pki.join("operator.pem")).unwrap(),
        key_pem: std::fs::read_to_string(pki.join("operator-key.pem")).unwrap(),
    };
    let http = crate::common::client(&ca, None);
    // The login page, over TLS.
    let authorize = format!(
        "https://localhost:{public}/t/acme/oauth/authorize?response_type=code&client_id=demo-web\
         &redirect_uri=http%3A%2F%2F127.0.0.1%2Fcallback&scope=openid&state=s1\
         &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256"
    );
    let page = http.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("password"));
    // What discovery advertises, the demo client grants: a generic OAuth
    // library asking for `openid offline_access` gets a refresh token.
    let discovery_url =
        format!("https://localhost:{public}/t/acme/.well-known/openid-configuration");
    let discovery = crate::common::get_json(&http, &discovery_url).await;
    assert!(
        discovery["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == "offline_access")
    );
    let tokens = crate::common::browser_code_flow(
        &ca,
        &format!("https://localhost:{public}"),
        &crate::common::BrowserLogin {
            tenant: "acme",
            client_id: rampart_server::demo::DEMO_CLIENT,
            redirect_uri: rampart_server::demo::DEMO_REDIRECT,
            scope: "openid offline_access",
            email: "admin@acme.example",
            password: rampart_server::demo::DEMO_PASSWORD,
        },
    )
    .await;
    assert!(tokens["refresh_token"].is_string(), "{tokens}");
    // An API call on the admin listener with the printed client certificate.
    let operator = crate::common::client(&ca, Some(&identity));
    let tenants_url = format!("https://localhost:{admin}/admin/tenants");
    let tenants = crate::common::get_json(&operator, &tenants_url).await;
    let slugs = crate::common::strs(&tenants["data"], "slug");
    assert_eq!(slugs, ["acme", "globex"]);
    // The demo portfolios were seeded in each tenant's own schema.
    let pg_port: u16 = text
        .split("embedded PostgreSQL on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .parse()
        .unwrap();
    {
        use diesel_async::{AsyncConnection, RunQueryDsl};
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = diesel_async::AsyncPgConnection::establish(&format!(
            "postgres://postgres@127.0.0.1:{pg_port}/postgres"
        ))
        .await
        .unwrap();
        for schema in ["tenant_acme", "tenant_globex"] {
            let n: N = diesel::sql_query(format!("SELECT count(*) AS n FROM {schema}.positions"))
                .get_result(&mut conn)
                .await
                .unwrap();
            assert_eq!(n.n, 4, "{schema}");
            // And a valued EPV case with an agent's analysis.
            let n: N = diesel::sql_query(format!(
                "SELECT count(*) AS n FROM {schema}.valuation_cases c \
                 JOIN {schema}.valuation_case_analyses a ON a.case_id = c.id \
                 WHERE c.valuation ? 'value_per_share'"
            ))
            .get_result(&mut conn)
            .await
            .unwrap();
            assert_eq!(n.n, 1, "{schema}");
        }
    }

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("stopped cleanly")),
        "{rest:?}"
    );
}
