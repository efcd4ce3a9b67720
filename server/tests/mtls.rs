use rampart_server::tls::DevCa;

use crate::common::{Pki, client, config, start, url};

#[tokio::test(flavor = "multi_thread")]
async fn admin_listener_requires_a_valid_client_certificate() {
    let pki = Pki::new();
    let (server, _state) = start(config(&pki).await).await;
    let ca = pki.ca.cert_pem();
    let admin = |path: &str| url(server.admin_addr, path);

    // A valid operator certificate: accepted, and its identity reaches the handler.
    let operator = pki
        .ca
        .issue_client("alice", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let res = client(&ca, Some(&operator))
        .get(admin("/admin/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert!(
        body["data"]["subject"]
            .as_str()
            .unwrap()
            .contains("CN=alice")
    );
    assert_eq!(body["data"]["sans"][0], "email:alice@rampart.local");

    // No certificate: the handshake (or, under TLS 1.3, the first request) fails.
    let err = client(&ca, None).get(admin("/admin/tenants")).send().await;
    assert!(
        err.is_err(),
        "no certificate was accepted: {:?}",
        err.map(|r| r.status())
    );

    // A certificate from another CA; an expired certificate from the right CA.
    let rogue = DevCa::new("Rogue CA")
        .unwrap()
        .issue_client("mallory", (2025, 1, 1), (2035, 1, 1))
        .unwrap();
    let expired = pki
        .ca
        .issue_client("old", (2020, 1, 1), (2021, 1, 1))
        .unwrap();
    for (who, cert) in [("rogue", &rogue), ("expired", &expired)] {
        let r = client(&ca, Some(cert)).get(admin("/admin/tenants")).send();
        assert!(r.await.is_err(), "{who}");
    }

    // The public listener serves without a client certificate.
    let res = client(&ca, None)
        .get(url(server.public_addr, "/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_and_client_ca_reload_without_restart() {
    let pki = Pki::new();
    let (server, _state) = start(config(&pki).await).await;
    let old_ca = pki.ca.cert_pem();
    let operator = pki.operator();
    let ok = client(&old_ca, Some(&operator))
        .get(url(server.admin_addr, "/admin/whoami"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    // Rotate everything to a new CA on disk.
    let new_ca = DevCa::new("Rotated CA").unwrap();
    let cert = new_ca.issue_server(&["localhost"]).unwrap();
    std::fs::write(&pki.files.cert_file, &cert.cert_pem).unwrap();
    std::fs::write(&pki.files.key_file, &cert.key_pem).unwrap();
    std::fs::write(&pki.files.client_ca_file, new_ca.cert_pem()).unwrap();
    let new_operator = new_ca
        .issue_client("ops2", (2025, 1, 1), (2035, 1, 1))
        .unwrap();

    let mut reloaded = false;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let res = client(&new_ca.cert_pem(), Some(&new_operator))
            .get(url(server.admin_addr, "/admin/whoami"))
            .send()
            .await;
        if let Ok(res) = res
            && res.status() == 200
        {
            reloaded = true;
            break;
        }
    }
    assert!(reloaded, "new certificates were not picked up");
    // The old client CA no longer admits its operators.
    assert!(
        client(&new_ca.cert_pem(), Some(&operator))
            .get(url(server.admin_addr, "/admin/whoami"))
            .send()
            .await
            .is_err()
    );
    server.stop().await;
}
