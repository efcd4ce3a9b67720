//! The audit log as a verifiable log over HTTPS: the sealing job, the signed
//! tree head, inclusion and consistency proofs for tenant admins and
//! operators, `audit_not_sealed`, and tampering found by the operator's
//! verification and by `rampart audit verify`.
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use rampart_auth::Role;
use rampart_auth::merkle::{self, Hash};
use rampart_testkit::{acme, globex};
use reqwest::Method;
use serde_json::Value;

use crate::common::{env_with, login};
use crate::settings::{code, operator, user_token};

fn hash(v: &Value) -> Hash {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(hash).collect()
}

/// `GET path` on the admin listener answered 200: its `data`.
async fn operator_get(ops: &crate::common::Api, path: &str) -> Value {
    ops.expect(200, Method::GET, path, None, None).await["data"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn tree_heads_and_proofs_over_https_and_tampering_reported() {
    // The scheduled job is off: the test runs its passes itself.
    let env = env_with(|c| c.auth.audit_seal_secs = 0).await;
    let auth = env.auth();
    let ops = operator(&env);
    let (_, admin) = user_token(&env, "acme", "root@acme.test", Role::Admin).await;
    let (_, trader) = user_token(&env, "acme", "tom@acme.test", Role::Trader).await;
    let (_, g_admin) = user_token(&env, "globex", "root@globex.test", Role::Admin).await;

    // Nothing sealed yet.
    let (s, v) = env.get("/api/v1/t/acme/audit/tree-head", &admin).await;
    assert_eq!((s, code(&v)), (404, "audit_not_sealed"), "{v}");
    // Tenant admins only, of their own tenant.
    for path in [
        "/api/v1/t/acme/audit/tree-head",
        "/api/v1/t/acme/audit/proofs/inclusion?id=1",
        "/api/v1/t/acme/audit/proofs/consistency?first=1&second=2",
    ] {
        assert_eq!(env.get(path, &trader).await.0, 403, "{path}");
        assert_eq!(env.get(path, &g_admin).await.0, 401, "{path}");
    }

    // The job's pass seals every tenant.
    let report = rampart_server::jobs::run_audit_seal_once(&env.state)
        .await
        .unwrap();
    assert!(
        report.ran && report.failed.is_empty() && report.tenants >= 2,
        "{report:?}"
    );
    let head = env
        .expect_get(200, "/api/v1/t/acme/audit/tree-head", &admin)
        .await["data"]
        .clone();
    let size = head["treeSize"].as_u64().unwrap();
    assert_eq!(
        size as usize,
        auth.audit_log(&acme(), 100).await.unwrap().len()
    );
    assert_eq!(head["signature"].as_str().unwrap().split('.').count(), 3);

    // Every sealed row's inclusion proof verifies against the signed root.
    for row in auth.audit_log(&acme(), 100).await.unwrap() {
        let p = env
            .expect_get(
                200,
                &format!("/api/v1/t/acme/audit/proofs/inclusion?id={}", row.id),
                &admin,
            )
            .await["data"]
            .clone();
        let leaf = merkle::leaf_hash(p["leaf"].as_str().unwrap().as_bytes());
        assert_eq!(leaf, hash(&p["leafHash"]));
        assert!(merkle::verify_inclusion(
            &leaf,
            p["leafIndex"].as_u64().unwrap(),
            size,
            &hashes(&p["path"]),
            &hash(&head["rootHash"])
        ));
    }

    // New events (a login), sealed by the next pass; the newer head is
    // consistent with the older one (the operator asks).
    login(&auth, "acme", "tom@acme.test", crate::common::PASSWORD).await;
    let (s, v) = env
        .get("/api/v1/t/acme/audit/proofs/inclusion?id=999999", &admin)
        .await;
    assert_eq!((s, code(&v)), (404, "audit_not_sealed"), "{v}");
    rampart_server::jobs::run_audit_seal_once(&env.state)
        .await
        .unwrap();
    let newer = operator_get(&ops, "/admin/tenants/acme/audit/tree-head").await;
    let size2 = newer["treeSize"].as_u64().unwrap();
    assert!(size2 > size);
    let c = operator_get(
        &ops,
        &format!("/admin/tenants/acme/audit/proofs/consistency?first={size}&second={size2}"),
    )
    .await;
    assert!(merkle::verify_consistency(
        size,
        size2,
        &hash(&head["rootHash"]),
        &hash(&newer["rootHash"]),
        &hashes(&c["path"])
    ));
    let (s, v) = env
        .get(
            &format!("/api/v1/t/acme/audit/proofs/consistency?first={size2}&second={size}"),
            &admin,
        )
        .await;
    assert_eq!((s, code(&v)), (400, "invalid_request"), "{v}");
    let (s, v) = env
        .get(
            &format!(
                "/api/v1/t/acme/audit/proofs/consistency?first={size}&second={}",
                size2 + 50
            ),
            &admin,
        )
        .await;
    assert_eq!((s, code(&v)), (404, "audit_not_sealed"), "{v}");

    // The export checks its range against the tree: its own event is not
    // sealed yet.
    let r = env
        .expect_response(200, "/api/v1/t/acme/audit/export?format=jsonl", &admin)
        .await;
    let chain = r.headers()["x-audit-chain"].to_str().unwrap().to_owned();
    assert_eq!(chain, format!("verified rows={} unsealed=1", size2 + 1));

    // Verified whole by the operator, and by `rampart audit verify`.
    let v = operator_get(&ops, "/admin/tenants/acme/audit/verify").await;
    assert_eq!(v["firstDifference"], Value::Null, "{v}");
    assert_eq!(v["badHead"], Value::Null, "{v}");
    assert_eq!(v["treeSize"], size2);
    let cli = rampart_server::audit_cmd::verify(&env.state.config, &acme())
        .await
        .unwrap();
    assert!(cli.ok(), "{cli:?}");

    // The table truncated past every grant (as the database owner): found
    // at position 0, over HTTP and by the command, which fails.
    let mut conn = AsyncPgConnection::establish(&env.state.config.database.database_url)
        .await
        .unwrap();
    conn.batch_execute("TRUNCATE tenant_acme.audit_log")
        .await
        .unwrap();
    let v = operator_get(&ops, "/admin/tenants/acme/audit/verify").await;
    assert_eq!(v["firstDifference"]["position"], 0, "{v}");
    assert_eq!(v["firstDifference"]["kind"], "missing", "{v}");
    assert_eq!(v["badHead"]["problem"], "root_mismatch", "{v}");
    let cli = rampart_server::audit_cmd::verify(&env.state.config, &acme())
        .await
        .unwrap();
    assert!(!cli.ok());
    let text = rampart_server::audit_cmd::describe("acme", &cli).join("\n");
    assert!(
        text.contains("TAMPERED at position 0: sealed row"),
        "{text}"
    );
    // globex is untouched.
    let g = rampart_server::audit_cmd::verify(&env.state.config, &globex())
        .await
        .unwrap();
    assert!(g.ok() && g.tree_size > 0, "{g:?}");
}
