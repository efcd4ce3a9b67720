//! The snapshot job's retries and budget against a local broker, and the
//! scheduler loop on a clock the test drives, two replicas on one database.
use rampart_testkit::acme;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use rampart_members::{
    BrokerKeys, Clock, CronSchedule, MemberInput, Members, Scheduler, SnapshotConfig, SnapshotJob,
};
use rampart_tenancy::{TenancyConfig, TenantPool};
use tokio::sync::watch;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::PlainText;

/// A clock the test sets. `auto`: a sleep returns at once, moving the clock
/// on by its length; otherwise it waits until the test moves the clock.
/// Every sleep's length is recorded, and the deadline a sleeper waits for
/// is published.
struct TestClock {
    time: watch::Sender<DateTime<Utc>>,
    asleep: watch::Sender<Option<DateTime<Utc>>>,
    slept: Mutex<Vec<Duration>>,
    auto: bool,
}

impl TestClock {
    fn new(at: DateTime<Utc>, auto: bool) -> Arc<Self> {
        Arc::new(Self {
            time: watch::Sender::new(at),
            asleep: watch::Sender::new(None),
            slept: Mutex::new(Vec::new()),
            auto,
        })
    }

    fn set(&self, at: DateTime<Utc>) {
        self.time.send_replace(at);
    }

    /// Waits until a sleeper waits for `deadline` (the loop is idle).
    async fn asleep_until(&self, deadline: DateTime<Utc>) {
        let mut rx = self.asleep.subscribe();
        let woke = tokio::time::timeout(
            Duration::from_secs(60),
            rx.wait_for(|d| *d == Some(deadline)),
        )
        .await
        .map(|r| r.is_ok());
        assert!(
            matches!(woke, Ok(true)),
            "never asleep until {deadline}: {:?}",
            *self.asleep.borrow()
        );
    }

    fn slept(&self) -> Vec<Duration> {
        let mut v = self.slept.lock().unwrap().clone();
        v.sort();
        v
    }
}

#[async_trait::async_trait]
impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.time.borrow()
    }

    async fn sleep(&self, duration: Duration) {
        self.slept.lock().unwrap().push(duration);
        let target = self.now() + chrono::Duration::from_std(duration).unwrap();
        if self.auto {
            self.time.send_modify(|t| *t = (*t).max(target));
            return;
        }
        self.asleep.send_replace(Some(target));
        let mut rx = self.time.subscribe();
        let _ = rx.wait_for(|t| *t >= target).await;
    }
}

fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap()
}

/// The secret key of every test member.
pub(crate) const SECRET: &str = "s3cretAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// A member of acme with a key pair attached.
pub(crate) async fn member_with_keys(m: &Members, name: &str, key_id: &str) -> uuid::Uuid {
    let id = m
        .upsert_member(
            &acme(),
            &MemberInput {
                name: name.into(),
                email: format!("{}@acme.test", name.to_lowercase()),
                role: "trader".into(),
            },
        )
        .await
        .unwrap()
        .member
        .id;
    let keys = BrokerKeys {
        key_id: key_id.into(),
        secret_key: SECRET.into(),
    };
    m.attach_broker(&acme(), id, &keys, &PlainText, "test")
        .await
        .unwrap();
    id.into()
}

const PATIENT: &str = "PKPATIENTAAAAAAAAAAA";
const DOWN: &str = "PKDOWNAAAAAAAAAAAAAA";
const FINE: &str = "PKFINEAAAAAAAAAAAAAA";

/// PATIENT's account answers 429 (`Retry-After: 1`) once, then 200; DOWN's
/// always 503; FINE's 200.
async fn mount_broker(broker: &MockServer) {
    broker.reset().await;
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .and(header("APCA-API-KEY-ID", PATIENT))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(broker)
        .await;
    Mock::given(method("GET"))
        .and(header("APCA-API-KEY-ID", DOWN))
        .respond_with(ResponseTemplate::new(503))
        .with_priority(1)
        .mount(broker)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "equity": "1010", "cash": "10", "last_equity": "1000",
        })))
        .mount(broker)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/positions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!([])))
        .mount(broker)
        .await;
}

async fn account_calls(broker: &MockServer, key_id: &str) -> usize {
    broker
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.url.path() == "/v2/account"
                && r.headers
                    .get("APCA-API-KEY-ID")
                    .and_then(|v| v.to_str().ok())
                    == Some(key_id)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_retries_honour_retry_after_and_stop_at_the_budget() {
    rampart_testkit::install_crypto_provider();
    let m = crate::members().await;
    let patient = member_with_keys(&m, "Patient", PATIENT).await;
    let down = member_with_keys(&m, "Down", DOWN).await;
    let fine = member_with_keys(&m, "Fine", FINE).await;
    let broker = MockServer::start().await;
    let config = SnapshotConfig {
        broker_base_url: broker.uri(),
        max_attempts: 3,
        retry_base_ms: 100,
        max_retry_wait_ms: 1_500,
        ..SnapshotConfig::default()
    };
    let day = NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();

    // 429 then 200: one wait of the Retry-After; 503 three times: two
    // backoff waits, then the member is reported failed; the others are
    // snapshotted.
    mount_broker(&broker).await;
    let clock = TestClock::new(at(24, 9, 0), true);
    let job = SnapshotJob::new(m.clone(), Arc::new(PlainText), &config)
        .unwrap()
        .with_clock(clock.clone());
    let report = job.run_tenant(&acme(), day).await;
    assert_eq!(report.succeeded, 2, "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].member_id, down);
    assert!(
        report.failed[0].error.contains("503") && report.failed[0].error.contains("3 attempts"),
        "{report:?}"
    );
    let ms = Duration::from_millis;
    assert_eq!(clock.slept(), [ms(100), ms(200), ms(1_000)]);
    assert_eq!(account_calls(&broker, PATIENT).await, 2);
    assert_eq!(account_calls(&broker, DOWN).await, 3);
    assert_eq!(account_calls(&broker, FINE).await, 1);
    let board = m
        .leaderboard(
            &acme(),
            rampart_members::Period::Day,
            rampart_members::LeaderboardSort::Pnl,
            Some(day),
            0,
            10,
        )
        .await
        .unwrap();
    let mut on_board: Vec<_> = board.entries.iter().map(|e| e.member_id).collect();
    on_board.sort();
    let mut expected = vec![patient, fine];
    expected.sort();
    assert_eq!(on_board, expected);

    // No time left in the run's budget: nothing is retried or waited for;
    // the 429 and the 503 fail at once, the healthy member still succeeds.
    mount_broker(&broker).await;
    let clock = TestClock::new(at(25, 9, 0), true);
    let spent = SnapshotConfig {
        run_budget_secs: 0,
        ..config.clone()
    };
    let job = SnapshotJob::new(m.clone(), Arc::new(PlainText), &spent)
        .unwrap()
        .with_clock(clock.clone());
    let report = job.run_tenant(&acme(), day.succ_opt().unwrap()).await;
    assert_eq!(report.succeeded, 1, "{report:?}");
    let mut failed: Vec<_> = report.failed.iter().map(|f| f.member_id).collect();
    failed.sort();
    let mut expected = vec![patient, down];
    expected.sort();
    assert_eq!(failed, expected);
    assert!(
        report
            .failed
            .iter()
            .all(|f| f.error.contains("budget is spent")),
        "{report:?}"
    );
    assert!(clock.slept().is_empty());
    assert_eq!(account_calls(&broker, DOWN).await, 1);

    // A budget of one retry for the whole run: one member gets it.
    mount_broker(&broker).await;
    let one = SnapshotConfig {
        run_max_retries: 1,
        ..config
    };
    let clock = TestClock::new(at(26, 9, 0), true);
    let job = SnapshotJob::new(m.clone(), Arc::new(PlainText), &one)
        .unwrap()
        .with_clock(clock.clone());
    let report = job
        .run_tenant(&acme(), NaiveDate::from_ymd_opt(2026, 11, 26).unwrap())
        .await;
    assert_eq!(clock.slept().len(), 1, "{report:?}");
    assert_eq!(
        account_calls(&broker, PATIENT).await + account_calls(&broker, DOWN).await,
        3
    );
}

async fn both_asleep_until(a: &TestClock, b: &TestClock, deadline: DateTime<Utc>) {
    a.asleep_until(deadline).await;
    b.asleep_until(deadline).await;
}

/// Which replica ran which slot.
type Runs = Arc<Mutex<Vec<(&'static str, DateTime<Utc>)>>>;

#[tokio::test(flavor = "multi_thread")]
async fn the_scheduler_fires_once_per_slot_across_replicas_and_catches_up_once() {
    let db = rampart_testkit::fresh_database().await.unwrap();
    let replica = || async {
        TenantPool::connect(TenancyConfig::new(db.url.clone(), 2))
            .await
            .unwrap()
    };
    let (pool_a, pool_b) = (replica().await, replica().await);
    let runs: Runs = Arc::default();
    let spawn = |name: &'static str, pool: TenantPool, clock: Arc<TestClock>| {
        let runs = runs.clone();
        tokio::spawn(async move {
            let scheduler = Scheduler::new(
                pool,
                "snapshot",
                CronSchedule::parse("0 9 * * *").unwrap(),
                clock,
            );
            scheduler
                .run(|slot| {
                    let runs = runs.clone();
                    async move { runs.lock().unwrap().push((name, slot)) }
                })
                .await;
        })
    };
    let runs_now = || runs.lock().unwrap().clone();

    // Two replicas, started at 08:00 and 08:30: both wait for 09:00.
    let clock_a = TestClock::new(at(23, 8, 0), false);
    let clock_b = TestClock::new(at(23, 8, 30), false);
    let a = spawn("a", pool_a.clone(), clock_a.clone());
    let b = spawn("b", pool_b.clone(), clock_b.clone());
    both_asleep_until(&clock_a, &clock_b, at(23, 9, 0)).await;
    clock_a.set(at(23, 8, 59));
    assert!(runs_now().is_empty());

    // 09:00 on both: one of them runs the slot, then both wait for tomorrow.
    clock_a.set(at(23, 9, 0));
    clock_b.set(at(23, 9, 0));
    both_asleep_until(&clock_a, &clock_b, at(24, 9, 0)).await;
    let first = runs_now();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].1, at(23, 9, 0));

    // The next day too, once.
    clock_b.set(at(24, 9, 1));
    clock_a.set(at(24, 9, 0));
    both_asleep_until(&clock_a, &clock_b, at(25, 9, 0)).await;
    let second = runs_now();
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[1].1, at(24, 9, 0));

    // Both replicas down from the 24th to the 27th at noon: the 25th, 26th
    // and 27th were missed; a replica coming back runs once, for the 27th.
    a.abort();
    b.abort();
    let _ = (a.await, b.await);
    let clock_c = TestClock::new(at(27, 12, 0), false);
    let c = spawn("c", pool_a.clone(), clock_c.clone());
    clock_c.asleep_until(at(28, 9, 0)).await;
    let after = runs_now();
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[2], ("c", at(27, 9, 0)));
    // A slot already claimed is never claimed again.
    let check = Scheduler::new(
        pool_b,
        "snapshot",
        CronSchedule::parse("0 9 * * *").unwrap(),
        clock_c.clone(),
    );
    assert_eq!(check.last_slot().await.unwrap(), Some(at(27, 9, 0)));
    assert!(!check.claim(at(27, 9, 0)).await.unwrap());
    assert!(!check.claim(at(26, 9, 0)).await.unwrap());
    c.abort();
}
