//! The library against a real PostgreSQL: a commit applies a preview once
//! even when raced, a stale preview applies nothing, and the leaderboard of
//! a tenant without snapshots is empty.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_members::{LeaderboardSort, MemberInput, Members, MembersError, Period};
use rampart_tenancy::{TenancyConfig, TenantPool};

async fn members() -> Members {
    let db = rampart_testkit::postgres()
        .unwrap()
        .fresh_database()
        .await
        .unwrap();
    let pool = TenantPool::connect(TenancyConfig {
        database_url: db.url,
        max_connections: 6,
        ..Default::default()
    })
    .await
    .unwrap();
    pool.provision("acme", "Acme").await.unwrap();
    Members::new(pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raced_commit_applies_once_and_a_stale_one_not_at_all() {
    let m = members().await;
    let csv = "name,email,role\nAda,ada@acme.test,trader\nGrace,grace@acme.test,viewer\n";
    let pv = m.preview_import("acme", csv, "test").await.unwrap();
    assert_eq!((pv.created, pv.refused), (2, 0));
    let (a, b) = tokio::join!(
        m.commit_import("acme", pv.id, &pv.digest),
        m.commit_import("acme", pv.id, &pv.digest)
    );
    let results = [a, b];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(MembersError::AlreadyCommitted)))
    );
    let (list, more) = m.list_members("acme", None, 10).await.unwrap();
    assert_eq!((list.len(), more), (2, false));

    // Someone changes Grace between preview and commit: nothing applies.
    let pv = m
        .preview_import(
            "acme",
            "name,email,role\nLin,lin@acme.test,viewer\nGrace H,grace@acme.test,viewer\n",
            "test",
        )
        .await
        .unwrap();
    m.upsert_member(
        "acme",
        &MemberInput {
            name: "Grace Hopper".into(),
            email: "grace@acme.test".into(),
            role: "admin".into(),
        },
    )
    .await
    .unwrap();
    let err = m
        .commit_import("acme", pv.id, &pv.digest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MembersError::Stale(ref who) if who == "grace@acme.test"),
        "{err}"
    );
    let (list, _) = m.list_members("acme", None, 10).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|x| x.email != "lin@acme.test"));

    // Unknown tenant and no snapshots yet.
    assert!(matches!(
        m.preview_import("nosuch", csv, "test").await,
        Err(MembersError::Tenancy(_))
    ));
    let lb = m
        .leaderboard("acme", Period::Month, LeaderboardSort::Pnl, None, 0, 10)
        .await
        .unwrap();
    assert!(lb.as_of.is_none() && lb.entries.is_empty());
}
