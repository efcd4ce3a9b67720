//! The audit log as a verifiable log: sealing, signed tree heads, proofs,
//! and every kind of tampering reported at the first position that differs.
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use josekit::jwk::Jwk;
use josekit::jws;
use rampart_auth::AuthServer;
use rampart_auth::audit::AuditEvent;
use rampart_auth::audit_tree::{
    DifferenceKind, HeadProblem, LogDifference, SignedTreeHead, TREE_HEAD_TYP, tree_head_payload,
};
use rampart_auth::merkle::{self, Hash};
use rampart_testkit::{acme, globex, valid_slug};

use crate::accounts::tamper;
use crate::common::{ctx, server};

async fn events(a: &AuthServer, tenant: &str, n: usize, tag: &str) {
    for i in 0..n {
        a.audit(
            &valid_slug(tenant),
            AuditEvent::new("login", "failure")
                .client(&ctx(&format!("10.7.{i}.1")))
                .detail(serde_json::json!({"tag": tag, "i": i})),
        )
        .await
        .unwrap();
    }
}

fn hash(s: &str) -> Hash {
    hex::decode(s).unwrap().try_into().unwrap()
}

/// Checks a tree head's signature with the public JWKS only.
fn verify_with_jwks(a: &AuthServer, tenant_id: uuid::Uuid, head: &SignedTreeHead) {
    let jwks = a.jwks();
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == head.kid.as_str())
        .expect("the signing key is in the JWKS");
    let jwk = Jwk::from_map(key.as_object().unwrap().clone()).unwrap();
    let verifier = jws::ES256.verifier_from_jwk(&jwk).unwrap();
    let (payload, header) = jws::deserialize_compact(&head.signature, &verifier).unwrap();
    assert_eq!(header.token_type(), Some(TREE_HEAD_TYP));
    assert_eq!(
        String::from_utf8(payload).unwrap(),
        tree_head_payload(
            tenant_id,
            head.tree_size,
            head.timestamp,
            &hex::decode(&head.root_hash).unwrap()
        )
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sealed_heads_are_signed_and_prove_inclusion_and_consistency() {
    let s = server().await;
    let a = &s.auth;
    let trail = a.audit_trail();
    let tenant_id = a.pool().tenant(&acme()).await.unwrap().id;
    // Nothing sealed yet: every row is unsealed, and no proof exists.
    events(a, "acme", 3, "first").await;
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok());
    assert_eq!((v.rows, v.tree_size, v.unsealed, v.heads), (3, 0, 3, 0));
    assert!(trail.tree_head(&acme()).await.unwrap().is_none());
    assert!(matches!(
        trail.inclusion_proof(&acme(), 1, None).await,
        Err(rampart_auth::AuthError::NotSealed(_))
    ));

    let first = trail.seal(&acme()).await.unwrap();
    assert_eq!(first.added, 3);
    let h3 = first.head.unwrap();
    assert_eq!(h3.tree_size, 3);
    verify_with_jwks(a, tenant_id, &h3);
    // Nothing new, same key: no new head.
    assert_eq!(trail.seal(&acme()).await.unwrap().head, None);

    events(a, "acme", 5, "second").await;
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.rows, v.tree_size, v.unsealed), (8, 3, 5));
    let h8 = trail.seal(&acme()).await.unwrap().head.unwrap();
    assert_eq!(
        (h8.tree_size, trail.tree_head(&acme()).await.unwrap()),
        (8, Some(h8.clone()))
    );
    verify_with_jwks(a, tenant_id, &h8);
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok());
    assert_eq!((v.rows, v.tree_size, v.unsealed, v.heads), (8, 8, 0, 2));
    // The other tenant's log is its own.
    assert_eq!(trail.verify_log(&globex()).await.unwrap().tree_size, 0);

    // Every row's inclusion proof verifies against the signed root; a
    // changed leaf does not.
    let rows = a.audit_log(&acme(), 100).await.unwrap();
    let root8 = hash(&h8.root_hash);
    for row in &rows {
        let p = trail.inclusion_proof(&acme(), row.id, None).await.unwrap();
        assert_eq!(p.tree_head, h8);
        let leaf = merkle::leaf_hash(p.leaf.as_bytes());
        assert_eq!(hex::encode(leaf), p.leaf_hash);
        let path: Vec<Hash> = p.path.iter().map(|h| hash(h)).collect();
        assert!(merkle::verify_inclusion(
            &leaf,
            p.leaf_index,
            8,
            &path,
            &root8
        ));
        let mut other = leaf;
        other[3] ^= 1;
        assert!(!merkle::verify_inclusion(
            &other,
            p.leaf_index,
            8,
            &path,
            &root8
        ));
    }
    // In the older head too, for a row it holds; not for a newer row.
    let oldest = rows.iter().map(|r| r.id).min().unwrap();
    let newest = rows.iter().map(|r| r.id).max().unwrap();
    let p = trail
        .inclusion_proof(&acme(), oldest, Some(3))
        .await
        .unwrap();
    assert_eq!(p.tree_head, h3);
    assert!(merkle::verify_inclusion(
        &hash(&p.leaf_hash),
        p.leaf_index,
        3,
        &p.path.iter().map(|h| hash(h)).collect::<Vec<_>>(),
        &hash(&h3.root_hash)
    ));
    assert!(matches!(
        trail.inclusion_proof(&acme(), newest, Some(3)).await,
        Err(rampart_auth::AuthError::NotSealed(_))
    ));
    // The newer head extends the older one.
    let c = trail.consistency_proof(&acme(), 3, 8).await.unwrap();
    assert_eq!(
        (c.first.clone(), c.second.clone()),
        (h3.clone(), h8.clone())
    );
    let path: Vec<Hash> = c.path.iter().map(|h| hash(h)).collect();
    assert!(merkle::verify_consistency(
        3,
        8,
        &hash(&h3.root_hash),
        &root8,
        &path
    ));
    assert!(!merkle::verify_consistency(3, 8, &root8, &root8, &path));
    assert!(matches!(
        trail.consistency_proof(&acme(), 8, 3).await,
        Err(rampart_auth::AuthError::InvalidRequest(_))
    ));
    assert!(matches!(
        trail.consistency_proof(&acme(), 4, 8).await,
        Err(rampart_auth::AuthError::NotSealed(_))
    ));

    // The tenant role cannot write the tree.
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    let role = a.pool().tenant(&acme()).await.unwrap().role_name;
    for sql in [
        "DELETE FROM platform.audit_tree_heads",
        "DELETE FROM platform.audit_leaves",
        "UPDATE platform.audit_leaves SET row_id = row_id",
        "INSERT INTO platform.audit_leaves VALUES (gen_random_uuid(), 0, 0, '\\x00')",
    ] {
        let as_tenant = format!("BEGIN; SET LOCAL ROLE \"{role}\"; {sql}; COMMIT;");
        assert!(conn.batch_execute(&as_tenant).await.is_err(), "{sql}");
        conn.batch_execute("ROLLBACK").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rotated_key_re_signs_the_newest_head() {
    let s = server().await;
    let a = &s.auth;
    let trail = a.audit_trail();
    events(a, "acme", 2, "x").await;
    let before = trail.seal(&acme()).await.unwrap().head.unwrap();
    a.tokens()
        .key_ring()
        .rotate_now(rampart_auth::KeyKind::Es256)
        .await
        .unwrap();
    let after = trail.seal(&acme()).await.unwrap();
    assert_eq!(after.added, 0);
    let after = after.head.unwrap();
    assert_eq!(
        (after.tree_size, &after.root_hash),
        (before.tree_size, &before.root_hash)
    );
    assert_ne!(after.kid, before.kid);
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok() && v.heads == 2 && v.unverifiable_heads == 0, "{v:?}");
}

/// Tampering (as the database superuser: the tenant role cannot) at each
/// place, reported at the first position that differs; undone after each.
#[tokio::test(flavor = "multi_thread")]
async fn every_kind_of_tampering_is_reported_where_it_starts() {
    let s = server().await;
    let a = &s.auth;
    let trail = a.audit_trail();
    events(a, "acme", 6, "t").await;
    trail.seal(&acme()).await.unwrap();
    // One more, not sealed.
    events(a, "acme", 1, "late").await;
    let mut ids: Vec<i64> = a
        .audit_log(&acme(), 100)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect();
    ids.sort_unstable();
    let (sealed, late) = (&ids[..6], ids[6]);
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok());
    assert_eq!((v.tree_size, v.unsealed), (6, 1));

    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    conn.batch_execute("CREATE TABLE public.audit_copy AS SELECT * FROM tenant_acme.audit_log")
        .await
        .unwrap();
    let restore = "DELETE FROM tenant_acme.audit_log; \
         INSERT INTO tenant_acme.audit_log OVERRIDING SYSTEM VALUE SELECT * FROM public.audit_copy"
        .to_owned();
    let diff = |position: u64, kind, row_id, sealed_row_id| LogDifference {
        position,
        kind,
        row_id,
        sealed_row_id,
    };
    async fn first_difference(a: &AuthServer) -> Option<LogDifference> {
        let v = a.audit_trail().verify_log(&acme()).await.unwrap();
        // Rows that differ from the leaves do not give the signed root either.
        assert_eq!(
            v.bad_head.map(|b| b.problem),
            v.first_difference
                .as_ref()
                .map(|_| HeadProblem::RootMismatch)
        );
        v.first_difference
    }

    // A modified row.
    tamper(
        &mut conn,
        format!(
            "UPDATE tenant_acme.audit_log SET result = 'success' WHERE id = {}",
            sealed[3]
        ),
    )
    .await;
    assert_eq!(
        first_difference(a).await,
        Some(diff(
            3,
            DifferenceKind::Changed,
            Some(sealed[3]),
            Some(sealed[3])
        ))
    );
    // The short form names the same row.
    assert_eq!(
        a.verify_audit_chain(&acme()).await.unwrap().first_broken,
        Some(sealed[3])
    );
    tamper(&mut conn, restore.clone()).await;
    assert_eq!(first_difference(a).await, None, "restored");

    // An inserted row (a copy of a sealed row under an unused id before
    // the others).
    tamper(&mut conn, format!(
        "INSERT INTO tenant_acme.audit_log OVERRIDING SYSTEM VALUE \
         SELECT 0, occurred_at, user_id, actor, action, result, ip, user_agent, detail, prev_hash, row_hash, tenant_id \
         FROM tenant_acme.audit_log WHERE id = {}", sealed[2]
    )).await;
    assert_eq!(
        first_difference(a).await,
        Some(diff(0, DifferenceKind::Inserted, Some(0), Some(sealed[0])))
    );
    tamper(&mut conn, restore.clone()).await;

    // Two rows reordered (their contents trade ids).
    tamper(&mut conn, format!(
        "UPDATE tenant_acme.audit_log t SET occurred_at = s.occurred_at, ip = s.ip, detail = s.detail \
         FROM tenant_acme.audit_log s WHERE (t.id = {x} AND s.id = {y}) OR (t.id = {y} AND s.id = {x})",
        x = sealed[1],
        y = sealed[4]
    )).await;
    assert_eq!(
        first_difference(a).await,
        Some(diff(
            1,
            DifferenceKind::Changed,
            Some(sealed[1]),
            Some(sealed[1])
        ))
    );
    tamper(&mut conn, restore.clone()).await;

    // Deleted rows: first, middle, newest sealed.
    for (position, victim) in [(0, 0), (2, 2), (5, 5)] {
        tamper(
            &mut conn,
            format!(
                "DELETE FROM tenant_acme.audit_log WHERE id = {}",
                sealed[victim]
            ),
        )
        .await;
        // The row after it (the unsealed one after the newest) moves up.
        let found = if victim == 5 {
            None
        } else {
            Some(sealed[victim + 1])
        };
        assert_eq!(
            first_difference(a).await,
            Some(diff(
                position,
                DifferenceKind::Missing,
                found,
                Some(sealed[victim])
            )),
            "deleted row {victim}"
        );
        tamper(&mut conn, restore.clone()).await;
    }
    // The newest rows, sealed and unsealed, deleted together: still found.
    tamper(
        &mut conn,
        format!(
            "DELETE FROM tenant_acme.audit_log WHERE id >= {}",
            sealed[4]
        ),
    )
    .await;
    assert_eq!(
        first_difference(a).await,
        Some(diff(4, DifferenceKind::Missing, None, Some(sealed[4])))
    );
    tamper(&mut conn, restore.clone()).await;
    // The unsealed row alone may go unnoticed: it is reported as unsealed,
    // never as verified.
    tamper(
        &mut conn,
        format!("DELETE FROM tenant_acme.audit_log WHERE id = {late}"),
    )
    .await;
    let v = trail.verify_log(&acme()).await.unwrap();
    assert!(v.ok() && v.unsealed == 0 && v.tree_size == 6);
    tamper(&mut conn, restore.clone()).await;

    // A truncated table (TRUNCATE is not a row DELETE: no trigger fires).
    conn.batch_execute("TRUNCATE tenant_acme.audit_log")
        .await
        .unwrap();
    assert_eq!(
        first_difference(a).await,
        Some(diff(0, DifferenceKind::Missing, None, Some(sealed[0])))
    );
    assert_eq!(
        a.verify_audit_chain(&acme()).await.unwrap().first_broken,
        Some(sealed[0])
    );
    tamper(&mut conn, restore.clone()).await;
    assert_eq!(first_difference(a).await, None);

    // A forged tree head: a changed root, then a timestamp its signature
    // does not cover.
    conn.batch_execute(
        "CREATE TABLE public.heads_copy AS SELECT * FROM platform.audit_tree_heads; \
         UPDATE platform.audit_tree_heads SET root_hash = sha256(root_hash)",
    )
    .await
    .unwrap();
    let restore_heads = "UPDATE platform.audit_tree_heads h SET root_hash = c.root_hash, \
         signed_at = c.signed_at FROM public.heads_copy c WHERE c.id = h.id";
    let bad = |v: rampart_auth::audit_tree::LogVerification| {
        v.bad_head.map(|b| (b.tree_size, b.problem, b.last_row_id))
    };
    let v = trail.verify_log(&acme()).await.unwrap();
    assert_eq!(v.first_difference, None);
    assert_eq!(bad(v), Some((6, HeadProblem::RootMismatch, sealed[5])));
    conn.batch_execute(restore_heads).await.unwrap();
    assert!(trail.verify_log(&acme()).await.unwrap().ok());
    conn.batch_execute(
        "UPDATE platform.audit_tree_heads SET signed_at = signed_at + interval '1 second'",
    )
    .await
    .unwrap();
    let v = trail.verify_log(&acme()).await.unwrap();
    assert_eq!(bad(v), Some((6, HeadProblem::BadSignature, sealed[5])));
    assert_eq!(
        a.verify_audit_chain(&acme()).await.unwrap().first_broken,
        Some(sealed[5])
    );
    conn.batch_execute(restore_heads).await.unwrap();
    assert!(trail.verify_log(&acme()).await.unwrap().ok());
}

/// Appends never wait on each other or on the sealer, and a seal running
/// among them never skips a row committed late: after the last seal, every
/// row is a leaf in id order.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_appends_and_seals_lose_nothing() {
    let s = server().await;
    let a = s.auth.clone();
    let mut writers = Vec::new();
    for w in 0..6 {
        let a = a.clone();
        writers.push(tokio::spawn(async move {
            for i in 0..15 {
                a.audit(
                    &acme(),
                    AuditEvent::new("token_refresh", "success")
                        .detail(serde_json::json!({"w": w, "i": i})),
                )
                .await
                .unwrap();
            }
        }));
    }
    let sealer = {
        let a = a.clone();
        tokio::spawn(async move {
            for _ in 0..10 {
                a.audit_trail().seal_all().await.unwrap();
            }
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    sealer.await.unwrap();
    let report = a.audit_trail().seal_all().await.unwrap();
    assert!(report.ran && report.failed.is_empty(), "{report:?}");
    let v = a.audit_trail().verify_log(&acme()).await.unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!((v.rows, v.tree_size, v.unsealed), (90, 90, 0));
}

/// Rows written before the tree (hash-chained, `prev_hash`/`row_hash`
/// set) become its first leaves at the first seal, and are checked as
/// every other row from then on.
#[tokio::test(flavor = "multi_thread")]
async fn chained_rows_from_before_become_the_first_leaves() {
    let s = server().await;
    let a = &s.auth;
    let mut conn = AsyncPgConnection::establish(&s.db_url).await.unwrap();
    conn.batch_execute(
        "INSERT INTO tenant_acme.audit_log (action, result, detail, prev_hash, row_hash, occurred_at) VALUES \
         ('login', 'success', '{\"old\": 1}', '\\x', '\\x01', now() - interval '2 days'), \
         ('logout', 'success', '{\"old\": 2}', '\\x01', '\\x02', now() - interval '1 day')",
    )
    .await
    .unwrap();
    events(a, "acme", 2, "new").await;
    let sealed = a.audit_trail().seal(&acme()).await.unwrap();
    assert_eq!(sealed.added, 4);
    let v = a.audit_trail().verify_log(&acme()).await.unwrap();
    assert!(v.ok() && v.tree_size == 4 && v.unsealed == 0, "{v:?}");
    let oldest = a
        .audit_log(&acme(), 10)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .min()
        .unwrap();
    tamper(
        &mut conn,
        format!("UPDATE tenant_acme.audit_log SET result = 'failure' WHERE id = {oldest}"),
    )
    .await;
    let v = a.audit_trail().verify_log(&acme()).await.unwrap();
    assert_eq!(
        v.first_difference.map(|d| (d.position, d.kind)),
        Some((0, DifferenceKind::Changed))
    );
}

/// A purged tenant's log is gone with its schema: every log call answers
/// `Purged` (404 `tenant_purged` over HTTP), never a database error.
#[tokio::test]
async fn a_purged_tenants_log_is_refused_as_purged() {
    let s = server().await;
    let a = &s.auth;
    let trail = a.audit_trail();
    events(a, "globex", 2, "before").await;
    trail.seal(&globex()).await.unwrap();
    let pool = a.pool();
    pool.deactivate(&globex(), Some(chrono::Duration::zero()), None)
        .await
        .unwrap();
    pool.purge(&globex(), true, None).await.unwrap();
    let purged = |r: Result<(), rampart_auth::AuthError>| {
        assert!(
            matches!(
                r,
                Err(rampart_auth::AuthError::Tenancy(
                    rampart_tenancy::TenancyError::Purged(_)
                ))
            ),
            "{r:?}"
        )
    };
    purged(trail.verify_log(&globex()).await.map(|_| ()));
    purged(trail.seal(&globex()).await.map(|_| ()));
    purged(trail.tree_head(&globex()).await.map(|_| ()));
    purged(trail.inclusion_proof(&globex(), 1, None).await.map(|_| ()));
    purged(trail.consistency_proof(&globex(), 1, 2).await.map(|_| ()));
    // The other tenant is unaffected.
    events(a, "acme", 1, "after").await;
    assert!(trail.verify_log(&acme()).await.unwrap().ok());
}
