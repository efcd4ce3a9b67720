//! A circuit breaker with the semantics of Resilience4j's `CircuitBreaker`.
//! Our own, because no maintained crate has those semantics (sliding
//! windows with slow-call rates, expiring half-open permits, forced states).
//!
//! * **States**: `Closed` (calls flow, outcomes recorded in a sliding window),
//!   `Open` (calls rejected without being made), `HalfOpen` (a limited number of
//!   trial calls), plus the manual `ForcedOpen` and `Disabled`.
//! * **Sliding window**: count-based (last *n* calls, a ring buffer) or
//!   time-based (last *n* seconds, one bucket per second). Both keep running
//!   totals, so a snapshot is O(1).
//! * **Thresholds**: the breaker opens when, with at least `minimum_calls`
//!   recorded, the failure rate or the slow-call rate reaches its threshold.
//! * **Open → half-open** after `wait_in_open` (fixed, or exponential backoff
//!   over consecutive openings), checked on the next call.
//! * **Half-open**: `permitted_calls_in_half_open` trial permits. When all have
//!   reported, the rates decide: open again, or closed with a fresh window.
//!
//! Lessons from Resilience4j's bug reports, built in:
//! * a half-open permit is a guard that **expires** after `permit_ttl`: a trial
//!   call that hangs (or a permit that is dropped unrecorded) can never wedge
//!   the breaker in half-open; its late outcome is ignored;
//! * permits are counted under one lock, so `permitted_calls_in_half_open` holds
//!   however many tasks race for them;
//! * outcomes are classified: success, failure, ignored (an unknown symbol or a
//!   cache miss says nothing about health), and rate-limited, which does not
//!   count as a failure but holds calls back until the vendor's `Retry-After`;
//! * an outcome from a permit issued in an earlier state is ignored.
//!
//! State changes are published to listeners and to a broadcast channel.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;

use crate::duration_ms;
use crate::error::MarketError;

/// Which calls the sliding window covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "size")]
pub enum SlidingWindow {
    /// The last `n` calls.
    Count(u32),
    /// The calls of the last `n` seconds.
    Time(u32),
}

/// How long the breaker stays open before allowing trial calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum WaitInOpen {
    /// Always the same wait.
    Fixed {
        /// The wait.
        #[serde(with = "duration_ms", rename = "wait_ms")]
        wait: Duration,
    },
    /// `initial × multiplier^(n-1)` for the n-th consecutive opening, capped.
    Backoff {
        /// First wait.
        #[serde(with = "duration_ms", rename = "initial_ms")]
        initial: Duration,
        /// Growth per consecutive opening.
        multiplier: f64,
        /// Cap.
        #[serde(with = "duration_ms", rename = "max_ms")]
        max: Duration,
    },
}

impl WaitInOpen {
    fn wait(&self, consecutive_openings: u32) -> Duration {
        match *self {
            WaitInOpen::Fixed { wait } => wait,
            WaitInOpen::Backoff {
                initial,
                multiplier,
                max,
            } => {
                let exp = consecutive_openings.saturating_sub(1).min(64) as i32;
                let secs = initial.as_secs_f64() * multiplier.max(1.0).powi(exp);
                if secs.is_finite() {
                    Duration::from_secs_f64(secs).min(max)
                } else {
                    max
                }
            }
        }
    }
}

/// Breaker settings (Resilience4j names, milliseconds for durations).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BreakerConfig {
    /// The sliding window.
    pub sliding_window: SlidingWindow,
    /// Failure rate (percent) at which the breaker opens.
    pub failure_rate_threshold: f64,
    /// Slow-call rate (percent) at which the breaker opens.
    pub slow_call_rate_threshold: f64,
    /// A call taking at least this long is slow.
    #[serde(with = "duration_ms", rename = "slow_call_duration_ms")]
    pub slow_call_duration: Duration,
    /// Calls needed in the window before rates are evaluated.
    pub minimum_calls: u32,
    /// Wait in the open state.
    pub wait_in_open: WaitInOpen,
    /// Trial calls allowed in half-open.
    pub permitted_calls_in_half_open: u32,
    /// Give up on half-open (back to open) if the trials have not all
    /// reported within this time; `None` waits for them (bounded by `permit_ttl`).
    #[serde(with = "duration_ms::option", rename = "max_wait_in_half_open_ms")]
    pub max_wait_in_half_open: Option<Duration>,
    /// A half-open permit not reported within this time expires and its slot
    /// is given to a new trial.
    #[serde(with = "duration_ms", rename = "permit_ttl_ms")]
    pub permit_ttl: Duration,
    /// How long to hold calls after a rate-limit answer without `Retry-After`.
    #[serde(with = "duration_ms", rename = "default_retry_after_ms")]
    pub default_retry_after: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            sliding_window: SlidingWindow::Count(20),
            failure_rate_threshold: 50.0,
            slow_call_rate_threshold: 100.0,
            slow_call_duration: Duration::from_secs(3),
            minimum_calls: 10,
            wait_in_open: WaitInOpen::Backoff {
                initial: Duration::from_secs(5),
                multiplier: 2.0,
                max: Duration::from_secs(300),
            },
            permitted_calls_in_half_open: 3,
            max_wait_in_half_open: None,
            permit_ttl: Duration::from_secs(30),
            default_retry_after: Duration::from_secs(1),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are rejected until the wait is over.
    Open,
    /// A few trial calls decide.
    HalfOpen,
    /// Rejecting everything until reset by hand.
    ForcedOpen,
    /// Allowing everything, recording nothing.
    Disabled,
}

impl BreakerState {
    /// A number for gauges: 0 closed, 1 open, 2 half-open, 3 forced open, 4 disabled.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }
}

/// A state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateTransition {
    /// From.
    pub from: BreakerState,
    /// To.
    pub to: BreakerState,
}

/// How a call went, as far as the breaker cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    /// The provider answered (an unknown symbol is an answer).
    Success,
    /// The provider failed (timeout, 5xx, transport, malformed body, bad key).
    Failure,
    /// Says nothing about the provider's health; not recorded.
    Ignored,
    /// The vendor asked us to back off; not a failure, but calls are held
    /// until `Retry-After` (or the configured default) has passed.
    RateLimited(Option<Duration>),
}

impl CallOutcome {
    /// Classifies a provider result.
    pub fn classify<T>(result: &Result<T, MarketError>) -> Self {
        match result {
            Ok(_) | Err(MarketError::UnknownSymbol { .. }) => CallOutcome::Success,
            Err(MarketError::RateLimited { retry_after, .. }) => {
                CallOutcome::RateLimited(*retry_after)
            }
            Err(e) if e.is_provider_fault() => CallOutcome::Failure,
            Err(_) => CallOutcome::Ignored,
        }
    }
}

/// The call was not made: the breaker is open (or holding for a rate limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallNotPermitted {
    /// The state that refused.
    pub state: BreakerState,
    /// Time until a call may be permitted (zero when unknown, e.g. forced open).
    pub retry_in: Duration,
}

/// Counters of the current window.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct BreakerSnapshot {
    /// State.
    pub state: Option<BreakerState>,
    /// Calls recorded in the window (or in the half-open trial).
    pub calls: u32,
    /// Failed calls among them.
    pub failures: u32,
    /// Slow calls among them.
    pub slow: u32,
    /// Calls rejected since creation.
    pub not_permitted: u64,
}

impl BreakerSnapshot {
    /// Failure rate in percent (0 with no calls).
    pub fn failure_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            f64::from(self.failures) * 100.0 / f64::from(self.calls)
        }
    }

    /// Slow-call rate in percent (0 with no calls).
    pub fn slow_rate(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            f64::from(self.slow) * 100.0 / f64::from(self.calls)
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    calls: u32,
    failures: u32,
    slow: u32,
}

impl Counts {
    fn add(&mut self, failed: bool, slow: bool) {
        self.calls += 1;
        self.failures += u32::from(failed);
        self.slow += u32::from(slow);
    }

    fn sub(&mut self, other: Counts) {
        self.calls = self.calls.saturating_sub(other.calls);
        self.failures = self.failures.saturating_sub(other.failures);
        self.slow = self.slow.saturating_sub(other.slow);
    }
}

/// The closed-state window with running totals.
#[derive(Debug)]
enum Window {
    Count {
        ring: Vec<(bool, bool)>,
        head: usize,
        filled: usize,
        total: Counts,
    },
    Time {
        buckets: Vec<(u64, Counts)>,
        last_second: u64,
        total: Counts,
    },
}

impl Window {
    fn new(kind: SlidingWindow) -> Self {
        match kind {
            SlidingWindow::Count(n) => Window::Count {
                ring: vec![(false, false); n.max(1) as usize],
                head: 0,
                filled: 0,
                total: Counts::default(),
            },
            SlidingWindow::Time(n) => Window::Time {
                buckets: vec![(0, Counts::default()); n.max(1) as usize],
                last_second: 0,
                total: Counts::default(),
            },
        }
    }

    /// Drops time buckets that left the window. Each bucket is reset at most
    /// once per second, so this is amortized O(1).
    fn advance(&mut self, second: u64) {
        if let Window::Time {
            buckets,
            last_second,
            total,
        } = self
        {
            let len = buckets.len() as u64;
            if second > *last_second {
                let steps = (second - *last_second).min(len);
                for s in (second + 1 - steps)..=second {
                    let idx = (s % len) as usize;
                    if let Some(bucket) = buckets.get_mut(idx) {
                        total.sub(bucket.1);
                        *bucket = (s, Counts::default());
                    }
                }
                *last_second = second;
            }
        }
    }

    fn record(&mut self, second: u64, failed: bool, slow: bool) {
        self.advance(second);
        match self {
            Window::Count {
                ring,
                head,
                filled,
                total,
            } => {
                let len = ring.len();
                if *filled == len {
                    if let Some(&(f, s)) = ring.get(*head) {
                        total.sub(Counts {
                            calls: 1,
                            failures: u32::from(f),
                            slow: u32::from(s),
                        });
                    }
                } else {
                    *filled += 1;
                }
                if let Some(slot) = ring.get_mut(*head) {
                    *slot = (failed, slow);
                }
                *head = (*head + 1) % len;
                total.add(failed, slow);
            }
            Window::Time { buckets, total, .. } => {
                let idx = (second % buckets.len() as u64) as usize;
                if let Some(bucket) = buckets.get_mut(idx) {
                    bucket.1.add(failed, slow);
                }
                total.add(failed, slow);
            }
        }
    }

    fn totals(&mut self, second: u64) -> Counts {
        self.advance(second);
        match self {
            Window::Count { total, .. } | Window::Time { total, .. } => *total,
        }
    }

    fn size_limit(&self) -> u32 {
        match self {
            Window::Count { ring, .. } => ring.len() as u32,
            Window::Time { .. } => u32::MAX,
        }
    }
}

#[derive(Debug)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        since: Instant,
        outstanding: Vec<(u64, Instant)>,
        trial: Counts,
    },
    ForcedOpen,
    Disabled,
}

impl Phase {
    fn state(&self) -> BreakerState {
        match self {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
            Phase::ForcedOpen => BreakerState::ForcedOpen,
            Phase::Disabled => BreakerState::Disabled,
        }
    }
}

#[derive(Debug)]
struct Core {
    phase: Phase,
    epoch: u64,
    window: Window,
    consecutive_openings: u32,
    blocked_until: Option<Instant>,
    next_permit: u64,
    not_permitted: u64,
}

type Listener = Arc<dyn Fn(&str, StateTransition) + Send + Sync>;

struct Shared {
    name: String,
    config: BreakerConfig,
    start: Instant,
    core: Mutex<Core>,
    events: broadcast::Sender<StateTransition>,
    listeners: RwLock<Vec<Listener>>,
}

/// A circuit breaker. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CircuitBreaker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.shared.name)
            .field("state", &self.state())
            .finish()
    }
}

/// Permission for one call. Report how it went with [`Permit::record`];
/// dropping it unreported counts as [`CallOutcome::Ignored`] and frees a
/// half-open slot.
#[must_use = "a permit should be recorded with the call's outcome"]
pub struct Permit {
    breaker: Option<CircuitBreaker>,
    epoch: u64,
    id: u64,
    started: Instant,
}

impl std::fmt::Debug for Permit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Permit")
            .field("epoch", &self.epoch)
            .field("id", &self.id)
            .finish()
    }
}

impl Permit {
    /// Records the outcome, timing the call from when the permit was issued.
    pub fn record(mut self, outcome: CallOutcome) {
        let elapsed = self.started.elapsed();
        if let Some(b) = self.breaker.take() {
            b.on_outcome(self.epoch, self.id, outcome, elapsed);
        }
    }

    /// Records the outcome with an explicit duration.
    pub fn record_with_duration(mut self, outcome: CallOutcome, duration: Duration) {
        if let Some(b) = self.breaker.take() {
            b.on_outcome(self.epoch, self.id, outcome, duration);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(b) = self.breaker.take() {
            b.on_outcome(self.epoch, self.id, CallOutcome::Ignored, Duration::ZERO);
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker.
    pub fn new(name: impl Into<String>, config: BreakerConfig) -> Self {
        let (events, _) = broadcast::channel(256);
        let core = Core {
            phase: Phase::Closed,
            epoch: 0,
            window: Window::new(config.sliding_window),
            consecutive_openings: 0,
            blocked_until: None,
            next_permit: 1,
            not_permitted: 0,
        };
        Self {
            shared: Arc::new(Shared {
                name: name.into(),
                config,
                start: Instant::now(),
                core: Mutex::new(core),
                events,
                listeners: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.shared.config
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        self.shared
            .core
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn second(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.shared.start).as_secs()
    }

    /// The current state (an elapsed open wait shows as open until the next call).
    pub fn state(&self) -> BreakerState {
        self.core().phase.state()
    }

    /// Counters of the current window (or half-open trial).
    pub fn snapshot(&self) -> BreakerSnapshot {
        let now = Instant::now();
        let second = self.second(now);
        let mut core = self.core();
        let counts = match &core.phase {
            Phase::HalfOpen { trial, .. } => *trial,
            _ => core.window.totals(second),
        };
        BreakerSnapshot {
            state: Some(core.phase.state()),
            calls: counts.calls,
            failures: counts.failures,
            slow: counts.slow,
            not_permitted: core.not_permitted,
        }
    }

    /// Subscribes to state changes.
    pub fn subscribe(&self) -> broadcast::Receiver<StateTransition> {
        self.shared.events.subscribe()
    }

    /// Calls `listener(name, transition)` on every state change (after the
    /// change, outside the breaker's lock).
    pub fn on_transition(&self, listener: impl Fn(&str, StateTransition) + Send + Sync + 'static) {
        if let Ok(mut listeners) = self.shared.listeners.write() {
            listeners.push(Arc::new(listener));
        }
    }

    fn publish(&self, transition: Option<StateTransition>) {
        let Some(t) = transition else { return };
        tracing::info!(breaker = %self.shared.name, from = ?t.from, to = ?t.to, "circuit breaker state change");
        let _ = self.shared.events.send(t);
        let listeners = self
            .shared
            .listeners
            .read()
            .map(|l| l.clone())
            .unwrap_or_default();
        for listener in listeners {
            listener(&self.shared.name, t);
        }
    }

    fn transition(&self, core: &mut Core, to: Phase, now: Instant) -> Option<StateTransition> {
        let from = core.phase.state();
        let to_state = to.state();
        if let Phase::Open { .. } = to {
            core.consecutive_openings = core.consecutive_openings.saturating_add(1);
        }
        if let Phase::Closed = to {
            core.consecutive_openings = 0;
            core.window = Window::new(self.shared.config.sliding_window);
            if let Window::Time { last_second, .. } = &mut core.window {
                *last_second = self.second(now);
            }
        }
        core.phase = to;
        core.epoch += 1;
        if from == to_state {
            None
        } else {
            Some(StateTransition { from, to: to_state })
        }
    }

    fn open_phase(&self, core: &Core, now: Instant) -> Phase {
        let wait = self
            .shared
            .config
            .wait_in_open
            .wait(core.consecutive_openings.saturating_add(1));
        Phase::Open { until: now + wait }
    }

    /// Asks to make a call.
    pub fn try_acquire(&self) -> Result<Permit, CallNotPermitted> {
        let now = Instant::now();
        let mut fired = None;
        let result = {
            let mut core = self.core();
            self.acquire_locked(&mut core, now, &mut fired)
        };
        self.publish(fired);
        result
    }

    fn acquire_locked(
        &self,
        core: &mut Core,
        now: Instant,
        fired: &mut Option<StateTransition>,
    ) -> Result<Permit, CallNotPermitted> {
        let config = &self.shared.config;
        match core.phase {
            Phase::Disabled => {
                return Ok(Permit {
                    breaker: None,
                    epoch: core.epoch,
                    id: 0,
                    started: now,
                });
            }
            Phase::ForcedOpen => {
                core.not_permitted += 1;
                return Err(CallNotPermitted {
                    state: BreakerState::ForcedOpen,
                    retry_in: Duration::ZERO,
                });
            }
            _ => {}
        }
        if let Some(until) = core.blocked_until {
            if now < until {
                core.not_permitted += 1;
                return Err(CallNotPermitted {
                    state: core.phase.state(),
                    retry_in: until - now,
                });
            }
            core.blocked_until = None;
        }
        if let Phase::Open { until } = core.phase {
            if now < until {
                core.not_permitted += 1;
                return Err(CallNotPermitted {
                    state: BreakerState::Open,
                    retry_in: until - now,
                });
            }
            *fired = self.transition(
                core,
                Phase::HalfOpen {
                    since: now,
                    outstanding: Vec::new(),
                    trial: Counts::default(),
                },
                now,
            );
        }
        let epoch = core.epoch;
        let next_id = core.next_permit;
        let open_after_give_up = self.open_phase(core, now);
        match &mut core.phase {
            Phase::HalfOpen {
                since,
                outstanding,
                trial,
            } => {
                if let Some(max) = config.max_wait_in_half_open
                    && now.saturating_duration_since(*since) >= max
                {
                    *fired = self.transition(core, open_after_give_up, now);
                    core.not_permitted += 1;
                    let retry_in = match core.phase {
                        Phase::Open { until } => until - now,
                        _ => Duration::ZERO,
                    };
                    return Err(CallNotPermitted {
                        state: BreakerState::Open,
                        retry_in,
                    });
                }
                // Expired permits give their slot back.
                outstanding.retain(|(_, deadline)| *deadline > now);
                let permitted = config.permitted_calls_in_half_open.max(1) as usize;
                if outstanding.len() + trial.calls as usize >= permitted {
                    let retry_in = outstanding
                        .iter()
                        .map(|(_, d)| d.saturating_duration_since(now))
                        .min()
                        .unwrap_or(Duration::ZERO);
                    core.not_permitted += 1;
                    return Err(CallNotPermitted {
                        state: BreakerState::HalfOpen,
                        retry_in,
                    });
                }
                outstanding.push((next_id, now + config.permit_ttl));
                core.next_permit += 1;
                Ok(Permit {
                    breaker: Some(self.clone()),
                    epoch,
                    id: next_id,
                    started: now,
                })
            }
            _ => Ok(Permit {
                breaker: Some(self.clone()),
                epoch,
                id: 0,
                started: now,
            }),
        }
    }

    fn on_outcome(&self, epoch: u64, id: u64, outcome: CallOutcome, duration: Duration) {
        let now = Instant::now();
        let second = self.second(now);
        let config = &self.shared.config;
        let mut fired = None;
        {
            let mut core = self.core();
            if let CallOutcome::RateLimited(retry_after) = outcome {
                let until = now + retry_after.unwrap_or(config.default_retry_after);
                core.blocked_until = Some(core.blocked_until.map_or(until, |b| b.max(until)));
            }
            if epoch != core.epoch {
                return;
            }
            let (record, failed) = match outcome {
                CallOutcome::Success => (true, false),
                CallOutcome::Failure => (true, true),
                CallOutcome::Ignored | CallOutcome::RateLimited(_) => (false, false),
            };
            let slow = duration >= config.slow_call_duration;
            let open = self.open_phase(&core, now);
            match &mut core.phase {
                Phase::Closed => {
                    if record {
                        core.window.record(second, failed, slow);
                        let totals = core.window.totals(second);
                        let minimum = config.minimum_calls.max(1).min(core.window.size_limit());
                        if totals.calls >= minimum && exceeds(config, totals) {
                            fired = self.transition(&mut core, open, now);
                        }
                    }
                }
                Phase::HalfOpen {
                    outstanding, trial, ..
                } => {
                    let Some(pos) = outstanding.iter().position(|(pid, _)| *pid == id) else {
                        // Expired permit: its slot went to another trial.
                        return;
                    };
                    outstanding.swap_remove(pos);
                    if record {
                        trial.add(failed, slow);
                        if trial.calls >= config.permitted_calls_in_half_open.max(1) {
                            let verdict = exceeds(config, *trial);
                            let next = if verdict { open } else { Phase::Closed };
                            fired = self.transition(&mut core, next, now);
                        }
                    }
                }
                Phase::Open { .. } | Phase::ForcedOpen | Phase::Disabled => {}
            }
        }
        self.publish(fired);
    }

    /// Forces the open state until [`CircuitBreaker::reset`].
    pub fn force_open(&self) {
        let now = Instant::now();
        let fired = self.transition(&mut self.core(), Phase::ForcedOpen, now);
        self.publish(fired);
    }

    /// Disables the breaker (every call permitted, nothing recorded) until reset.
    pub fn disable(&self) {
        let now = Instant::now();
        let fired = self.transition(&mut self.core(), Phase::Disabled, now);
        self.publish(fired);
    }

    /// Back to closed with an empty window.
    pub fn reset(&self) {
        let now = Instant::now();
        let fired = {
            let mut core = self.core();
            core.blocked_until = None;
            self.transition(&mut core, Phase::Closed, now)
        };
        self.publish(fired);
    }

    /// Opens the breaker now (as if the threshold had been reached).
    pub fn trip(&self) {
        let now = Instant::now();
        let fired = {
            let mut core = self.core();
            let open = self.open_phase(&core, now);
            self.transition(&mut core, open, now)
        };
        self.publish(fired);
    }
}

fn exceeds(config: &BreakerConfig, counts: Counts) -> bool {
    if counts.calls == 0 {
        return false;
    }
    let calls = f64::from(counts.calls);
    let failure_rate = f64::from(counts.failures) * 100.0 / calls;
    let slow_rate = f64::from(counts.slow) * 100.0 / calls;
    failure_rate >= config.failure_rate_threshold || slow_rate >= config.slow_call_rate_threshold
}
