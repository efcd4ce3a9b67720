//! `TableActivity`: which tenants a polling job visits.
use rampart_testkit::valid_slug;
use std::collections::HashSet;

use diesel_async::SimpleAsyncConnection;
use rampart_tenancy::{Due, TableActivity, TenancyError, TenantPool};

use super::pool;

/// Inserts one audit row in `slug`, its statistics flushed when the
/// transaction ends (as an idle backend does within seconds anyway).
async fn append(pool: &TenantPool, slug: &str) {
    pool.with_tenant(&valid_slug(slug), async |conn| {
        conn.batch_execute(
            "INSERT INTO audit_log (action, result) VALUES ('login', 'success'); \
             SELECT pg_stat_force_next_flush()",
        )
        .await?;
        Ok::<_, TenancyError>(())
    })
    .await
    .unwrap();
}

fn only(slugs: &[&str]) -> Due {
    Due::Only(
        slugs
            .iter()
            .map(|s| (*s).to_owned())
            .collect::<HashSet<_>>(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pass_visits_the_tenants_whose_table_took_rows() {
    let pool = pool().await;
    for slug in ["aaa", "bbb", "ccc"] {
        pool.provision(&valid_slug(slug), slug).await.unwrap();
    }
    let audit = TableActivity::inserts("audit_log", 3);
    // The first pass visits everyone and learns the counters.
    assert_eq!(audit.due(&pool).await.unwrap(), Due::All);
    assert_eq!(audit.due(&pool).await.unwrap(), only(&[]));
    append(&pool, "bbb").await;
    append(&pool, "bbb").await;
    assert_eq!(audit.due(&pool).await.unwrap(), only(&["bbb"]));
    // Seen: nothing new until the next row; the fourth pass visits everyone.
    assert_eq!(audit.due(&pool).await.unwrap(), Due::All);
    append(&pool, "ccc").await;
    assert_eq!(audit.due(&pool).await.unwrap(), only(&["ccc"]));
    // A tenant provisioned since is new to it: due.
    pool.provision(&valid_slug("ddd"), "ddd").await.unwrap();
    assert_eq!(audit.due(&pool).await.unwrap(), only(&["ddd"]));
    assert!(only(&["ddd"]).includes("ddd") && !only(&["ddd"]).includes("aaa"));
    // A pass that did not run (or failed on some tenants) hands them on.
    let carry = TableActivity::inserts("audit_log", 100);
    assert_eq!(carry.due(&pool).await.unwrap(), Due::All);
    carry.again(only(&["aaa"]));
    append(&pool, "ccc").await;
    assert_eq!(carry.due(&pool).await.unwrap(), only(&["aaa", "ccc"]));
    assert_eq!(carry.due(&pool).await.unwrap(), only(&[]));
    carry.again(Due::All);
    assert_eq!(carry.due(&pool).await.unwrap(), Due::All);

    // `rows`: tenants with live rows stay due while the rows are there.
    let rows = TableActivity::rows("audit_log", 100);
    assert_eq!(rows.due(&pool).await.unwrap(), Due::All);
    assert_eq!(rows.due(&pool).await.unwrap(), only(&["bbb", "ccc"]));
}
