//! The library against a real PostgreSQL: a commit applies a preview once
//! even when raced, a stale preview applies nothing, the leaderboard of a
//! tenant without snapshots is empty, and snapshot amounts are exact.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use rampart_testkit::{acme, valid_slug};
use std::sync::Arc;

use chrono::NaiveDate;
use diesel::sql_types::Numeric;
use diesel_async::RunQueryDsl;
use rampart_members::replay::{AlpacaReplay, ReplayAccount};
use rampart_members::{
    BrokerCrypto, Decimal, LeaderboardSort, MemberInput, Members, MembersError, Period,
    SnapshotConfig, SnapshotJob,
};
use rampart_tenancy::{TenancyConfig, TenantPool};
use zeroize::Zeroizing;

#[path = "members/jobs.rs"]
mod jobs;

pub(crate) async fn members() -> Members {
    let db = rampart_testkit::fresh_database().await.unwrap();
    let pool = TenantPool::connect(TenancyConfig::new(db.url, 6))
        .await
        .unwrap();
    pool.provision(&acme(), "Acme").await.unwrap();
    Members::new(pool)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raced_commit_applies_once_and_a_stale_one_not_at_all() {
    let m = members().await;
    let csv = "name,email,role\nAda,ada@acme.test,trader\nGrace,grace@acme.test,viewer\n";
    let pv = m.preview_import(&acme(), csv, "test").await.unwrap();
    assert_eq!((pv.created, pv.refused), (2, 0));
    let acme = acme();
    let (a, b) = tokio::join!(
        m.commit_import(&acme, pv.id, &pv.digest),
        m.commit_import(&acme, pv.id, &pv.digest)
    );
    let results = [a, b];
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(MembersError::AlreadyCommitted)))
    );
    let (list, more) = m.list_members(&valid_slug("acme"), None, 10).await.unwrap();
    assert_eq!((list.len(), more), (2, false));

    // Someone changes Grace between preview and commit: nothing applies.
    let pv = m
        .preview_import(
            &valid_slug("acme"),
            "name,email,role\nLin,lin@acme.test,viewer\nGrace H,grace@acme.test,viewer\n",
            "test",
        )
        .await
        .unwrap();
    m.upsert_member(
        &valid_slug("acme"),
        &MemberInput {
            name: "Grace Hopper".into(),
            email: "grace@acme.test".into(),
            role: "admin".into(),
        },
    )
    .await
    .unwrap();
    let err = m
        .commit_import(&valid_slug("acme"), pv.id, &pv.digest)
        .await
        .unwrap_err();
    assert!(
        matches!(err, MembersError::Stale(ref who) if who == "grace@acme.test"),
        "{err}"
    );
    let (list, _) = m.list_members(&valid_slug("acme"), None, 10).await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|x| x.email != "lin@acme.test"));

    // Unknown tenant and no snapshots yet.
    assert!(matches!(
        m.preview_import(&valid_slug("nosuch"), csv, "test").await,
        Err(MembersError::Tenancy(_))
    ));
    let lb = m
        .leaderboard(
            &valid_slug("acme"),
            Period::Month,
            LeaderboardSort::Pnl,
            None,
            0,
            10,
        )
        .await
        .unwrap();
    assert!(lb.as_of.is_none() && lb.entries.is_empty());
}

/// Seals nothing: the test's key pair is not secret.
pub(crate) struct PlainText;

#[async_trait::async_trait]
impl BrokerCrypto for PlainText {
    async fn seal(&self, plaintext: &[u8], _: &[u8]) -> Result<String, MembersError> {
        String::from_utf8(plaintext.to_vec()).map_err(|e| MembersError::Crypto(e.to_string()))
    }
    async fn open(&self, sealed: &str, _: &[u8]) -> Result<Zeroizing<Vec<u8>>, MembersError> {
        Ok(Zeroizing::new(sealed.as_bytes().to_vec()))
    }
}

fn dec(text: &str) -> Decimal {
    text.parse().unwrap()
}

/// Equity, cash and P&L are stored and summed as the exact decimals the
/// broker reported: as floats, 100000.3 - 100000.1 was 0.20000000000436557.
#[tokio::test(flavor = "multi_thread")]
async fn snapshot_pnl_is_exact_and_sums_exactly() {
    rampart_testkit::install_crypto_provider();
    let m = members().await;
    let _ada = jobs::member_with_keys(&m, "Ada", "PKEXACTAAAAAAAAAAAAA").await;
    let broker = AlpacaReplay::start().await.unwrap();
    let job = SnapshotJob::new(
        m.clone(),
        Arc::new(PlainText),
        &SnapshotConfig {
            broker_base_url: broker.base_url(),
            ..SnapshotConfig::default()
        },
    )
    .unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2026, 11, d).unwrap();
    // (day, last equity, equity): daily P&L 0.2, 0.3 and 0.1.
    let days = [
        (day(24), "100000.1", "100000.3"),
        (day(25), "100000.3", "100000.6"),
        (day(26), "100000.6", "100000.7"),
    ];
    for (date, last_equity, equity) in days {
        broker.set(
            "PKEXACTAAAAAAAAAAAAA",
            ReplayAccount {
                secret_key: jobs::SECRET.into(),
                equity: dec(equity),
                last_equity: dec(last_equity),
                cash: dec("0.1"),
                positions: Vec::new(),
            },
        );
        let report = job.run_tenant(&acme(), date).await;
        assert_eq!(
            (report.succeeded, report.failed.len()),
            (1, 0),
            "{report:?}"
        );
    }

    // Each day's P&L as stored, and their sum, to the last digit.
    #[derive(diesel::QueryableByName)]
    struct Amounts {
        #[diesel(sql_type = Numeric)]
        daily_pnl: Decimal,
        #[diesel(sql_type = Numeric)]
        cash: Decimal,
    }
    let stored: Vec<Amounts> = m
        .pool()
        .with_tenant(&acme(), async |conn| {
            diesel::sql_query(
                "SELECT daily_pnl, cash FROM portfolio_snapshots ORDER BY snapshot_date",
            )
            .load(conn)
            .await
            .map_err(rampart_tenancy::TenancyError::from)
        })
        .await
        .unwrap();
    let pnl: Vec<Decimal> = stored.iter().map(|a| a.daily_pnl).collect();
    assert_eq!(pnl, [dec("0.2"), dec("0.3"), dec("0.1")]);
    assert!(stored.iter().all(|a| a.cash == dec("0.1")));
    let total: Decimal = pnl.iter().sum();
    assert_eq!(total, dec("0.6"));

    // The week's leaderboard P&L is that sum, and its JSON has those digits.
    let lb = m
        .leaderboard(&acme(), Period::Week, LeaderboardSort::Pnl, None, 0, 10)
        .await
        .unwrap();
    assert_eq!(lb.as_of, Some(day(26)));
    let entry = &lb.entries[0];
    assert_eq!((entry.equity, entry.pnl), (dec("100000.7"), total));
    let json = serde_json::to_string(entry).unwrap();
    assert!(json.contains(r#""equity":100000.7,"pnl":0.6,"#), "{json}");
    let day_board = m
        .leaderboard(&acme(), Period::Day, LeaderboardSort::Pnl, None, 0, 10)
        .await
        .unwrap();
    assert_eq!(day_board.entries[0].pnl, dec("0.1"));
}
