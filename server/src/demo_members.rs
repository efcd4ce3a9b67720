//! `rampart demo`'s TigerQuant members: ten members per demo tenant (the
//! tenant's demo trader first) with a paper key pair attached each, sealed
//! by the server's broker sealer (the development transit key in the
//! demo), and thirty days of snapshots written by the real snapshot job
//! ([`SnapshotJob::run_tenant`], one run per day) against the built-in
//! broker replay ([`AlpacaReplay`]), so the leaderboard and the members'
//! charts have data at once. Everything goes through the services.
//!
//! The accounts are a deterministic random walk per member, so a restart
//! sets the replay to the same last day; the replay stays up while the demo
//! runs and the demo's snapshot job reads it too.
use chrono::NaiveDate;
use rampart_members::replay::{AlpacaReplay, ReplayAccount, ReplayPosition};
use rampart_members::{
    BrokerKeys, Decimal, LeaderboardSort, MemberInput, Members, Period, SnapshotConfig, SnapshotJob,
};
use rampart_tenancy::TenantSlug;

use crate::state::AppState;

/// Members per demo tenant.
pub const DEMO_MEMBERS: usize = 10;
/// Days of snapshots seeded (the last one is `today`).
pub const DEMO_DAYS: u32 = 30;

/// The members after the tenant's demo trader: local part of the e-mail,
/// display name.
const OTHERS: [(&str, &str); DEMO_MEMBERS - 1] = [
    ("ana", "Ana Alvarez"),
    ("ben", "Ben Okafor"),
    ("chloe", "Chloé Martin"),
    ("dev", "Dev Patel"),
    ("emma", "Emma Schulz"),
    ("farid", "Farid Haddad"),
    ("grace", "Grace Kim"),
    ("hugo", "Hugo Lindqvist"),
    ("iris", "Iris Novak"),
];

/// Symbols the replayed accounts hold, with an entry price in cents.
const HOLDINGS: [(&str, i64); 5] = [
    ("AAPL", 18_950),
    ("MSFT", 41_020),
    ("NVDA", 12_480),
    ("AMZN", 18_630),
    ("JPM", 20_110),
];

/// A small deterministic generator (xorshift64*), seeded per member.
struct Walk(u64);

impl Walk {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Cents as an exact decimal amount.
fn cents(value: f64) -> Decimal {
    Decimal::new(value.round() as i64, 2)
}

/// One member's accounts, oldest day first.
fn member_days(seed: u64, days: usize) -> Vec<ReplayAccount> {
    let mut walk = Walk::new(seed);
    let start = 50_000.0 + 100_000.0 * walk.next();
    let drift = (walk.next() - 0.45) * 0.004;
    let held: Vec<(usize, f64)> = (0..2 + (seed as usize % 3))
        .map(|i| {
            (
                (seed as usize + i * 2) % HOLDINGS.len(),
                0.15 + 0.1 * walk.next(),
            )
        })
        .collect();
    let mut equity = start * 100.0;
    let mut out = Vec::with_capacity(days);
    for _ in 0..days {
        let r = drift + (walk.next() - 0.5) * 0.03;
        let last = equity;
        equity *= 1.0 + r;
        let factor = equity / (start * 100.0);
        let positions: Vec<ReplayPosition> = held
            .iter()
            .map(|&(h, share)| {
                let (symbol, entry) = HOLDINGS[h];
                let qty = (start * share / (entry as f64 / 100.0)).floor();
                ReplayPosition {
                    symbol: symbol.into(),
                    qty: Decimal::from(qty as i64),
                    avg_entry_price: Decimal::new(entry, 2),
                    current_price: cents(entry as f64 * factor),
                }
            })
            .collect();
        let invested: Decimal = positions.iter().map(|p| p.qty * p.current_price).sum();
        let equity_d = cents(equity);
        out.push(ReplayAccount {
            secret_key: String::new(),
            equity: equity_d,
            last_equity: cents(last),
            cash: equity_d - invested,
            positions,
        });
    }
    out
}

/// The demo key pair of member `index` of `slug` (a paper key id).
fn demo_keys(slug: &str, index: usize) -> BrokerKeys {
    let tag: String = slug
        .bytes()
        .filter(u8::is_ascii_alphanumeric)
        .map(|b| char::from(b.to_ascii_uppercase()))
        .take(12)
        .collect();
    BrokerKeys {
        key_id: format!("PKDEMO{index:02}{tag:A<8}"),
        secret_key: format!("demoReplaySecret{index:02}{slug:x<24}")
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(60)
            .collect(),
    }
}

fn seed_of(slug: &str, index: usize) -> u64 {
    slug.bytes()
        .fold(1469598103934665603u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(1099511628211)
        })
        .wrapping_add(index as u64)
}

/// Seeds `slug`'s members (idempotent: members and keys are upserted;
/// snapshots are generated only while the tenant has none) and sets the
/// replay to each member's account on `today`. Returns the snapshots
/// written.
pub async fn seed(
    state: &AppState,
    replay: &AlpacaReplay,
    slug: &TenantSlug,
    today: NaiveDate,
) -> anyhow::Result<usize> {
    let members = Members::new(state.tenants.clone());
    let days = DEMO_DAYS as usize;
    let mut accounts = Vec::with_capacity(DEMO_MEMBERS);
    let people = std::iter::once(("trader", "Tom Trader")).chain(OTHERS);
    for (index, (local, name)) in people.enumerate() {
        let member = members
            .upsert_member(
                slug,
                &MemberInput {
                    name: name.into(),
                    email: format!("{local}@{slug}.example"),
                    role: "trader".into(),
                },
            )
            .await?
            .member;
        let keys = demo_keys(slug, index);
        if members.broker_account(slug, member.id).await?.is_none() {
            members
                .attach_broker(slug, member.id, &keys, &*state.broker_crypto, "demo")
                .await?;
        }
        let mut walk = member_days(seed_of(slug, index), days);
        for day in &mut walk {
            day.secret_key.clone_from(&keys.secret_key);
        }
        accounts.push((keys, walk));
    }
    let seeded = members
        .leaderboard(slug, Period::Month, LeaderboardSort::Pnl, None, 0, 1)
        .await?
        .as_of
        .is_some();
    let mut written = 0;
    if !seeded {
        let config = SnapshotConfig {
            broker_base_url: replay.base_url(),
            ..state.config.snapshot.clone()
        };
        let job = SnapshotJob::new(members.clone(), state.broker_crypto.clone(), &config)?;
        for d in 0..days {
            let date = today - chrono::Days::new((days - 1 - d) as u64);
            for (keys, walk) in &accounts {
                replay.set(&keys.key_id, walk[d].clone());
            }
            let report = job.run_tenant(slug, date).await;
            if let Some(e) = &report.error {
                anyhow::bail!("demo snapshots of {slug} on {date}: {e}");
            }
            for f in &report.failed {
                tracing::warn!(tenant = %slug, member = %f.member_id, error = %f.error, "demo snapshot failed");
            }
            written += report.succeeded;
        }
    }
    for (keys, walk) in &accounts {
        if let Some(last) = walk.last() {
            replay.set(&keys.key_id, last.clone());
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn demo_keys_are_paper_keys_and_walks_are_consistent() {
        for slug in ["acme", "globex", "a-b"] {
            for i in 0..DEMO_MEMBERS {
                rampart_members::validate_paper_keys(&demo_keys(slug, i)).unwrap();
            }
        }
        let days = member_days(seed_of("acme", 3), 30);
        assert_eq!(days.len(), 30);
        for pair in days.windows(2) {
            assert_eq!(pair[1].last_equity, pair[0].equity);
        }
        for d in &days {
            let invested: Decimal = d.positions.iter().map(|p| p.qty * p.current_price).sum();
            assert_eq!(d.cash + invested, d.equity);
            assert!(!d.positions.is_empty());
        }
        assert_eq!(days, member_days(seed_of("acme", 3), 30));
    }
}
