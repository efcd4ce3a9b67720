//! `ChangeFeed`: changes announced in tenant transactions, read by every
//! replica with one query for all tenants.
use rampart_testkit::valid_slug;
use std::time::Duration;

use rampart_tenancy::{ChangeFeed, TenancyError};

use super::pool;

#[tokio::test(flavor = "multi_thread")]
async fn a_change_moves_its_tenants_generation_only_and_a_late_commit_is_not_missed() {
    let pool = pool().await;
    for slug in ["aaa", "bbb"] {
        pool.provision(&valid_slug(slug), slug).await.unwrap();
    }
    let a = pool.tenant(&valid_slug("aaa")).await.unwrap().id;
    let b = pool.tenant(&valid_slug("bbb")).await.unwrap().id;
    let feed = ChangeFeed::new(pool.clone(), Duration::ZERO);
    // A replica whose view may be an hour old.
    let lazy = ChangeFeed::new(pool.clone(), Duration::from_secs(3600));
    let generation = async |feed: &ChangeFeed, tenant, topic: &str| {
        feed.generation(tenant, topic).await.unwrap()
    };
    let (a0, b0, flags0) = (
        generation(&feed, a, "roles").await,
        generation(&feed, b, "roles").await,
        generation(&feed, a, "flags").await,
    );
    let lazy0 = generation(&lazy, a, "roles").await;

    let announced = pool
        .with_tenant(&valid_slug("aaa"), async |conn| {
            ChangeFeed::announce(conn, "roles").await
        })
        .await
        .unwrap();
    assert_eq!(announced, a, "the tenant comes from the role in effect");
    let a1 = generation(&feed, a, "roles").await;
    assert_ne!(a1, a0);
    assert_eq!(generation(&feed, b, "roles").await, b0, "another tenant");
    assert_eq!(generation(&feed, a, "flags").await, flags0, "another topic");
    assert_eq!(
        generation(&feed, a, "roles").await,
        a1,
        "read twice, counted once"
    );
    // Within its bound the lazy replica has not looked; told to, it sees it.
    assert_eq!(generation(&lazy, a, "roles").await, lazy0);
    lazy.stale();
    assert_ne!(generation(&lazy, a, "roles").await, lazy0);

    // A transaction that announced before a read but commits after it: the
    // read's horizon stays below it, so the next read finds it.
    let (announced_tx, announced_rx) = tokio::sync::oneshot::channel();
    let (commit_tx, commit_rx) = tokio::sync::oneshot::channel::<()>();
    let late = tokio::spawn({
        let pool = pool.clone();
        async move {
            pool.with_tenant(&valid_slug("bbb"), async |conn| {
                ChangeFeed::announce(conn, "roles").await?;
                let _ = announced_tx.send(());
                let _ = commit_rx.await;
                Ok::<_, TenancyError>(())
            })
            .await
        }
    });
    announced_rx.await.unwrap();
    assert_eq!(generation(&feed, b, "roles").await, b0, "not committed yet");
    commit_tx.send(()).unwrap();
    late.await.unwrap().unwrap();
    assert_ne!(
        generation(&feed, b, "roles").await,
        b0,
        "seen once committed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn only_a_tenant_role_can_announce() {
    let pool = pool().await;
    let mut conn = pool.raw_pool().get().await.unwrap();
    let outside = ChangeFeed::announce(&mut conn, "roles").await;
    assert!(outside.is_err(), "{outside:?}");
}
