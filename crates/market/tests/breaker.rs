//! Circuit breaker state machine, exactly (paused tokio clock).

use std::sync::Arc;
use std::time::Duration;

use rampart_market::MarketError;
use rampart_market::breaker::{
    BreakerConfig, BreakerState, CallOutcome, CircuitBreaker, SlidingWindow, StateTransition,
    WaitInOpen,
};

fn config() -> BreakerConfig {
    BreakerConfig {
        sliding_window: SlidingWindow::Count(4),
        failure_rate_threshold: 50.0,
        slow_call_rate_threshold: 100.0,
        slow_call_duration: Duration::from_secs(1),
        minimum_calls: 4,
        wait_in_open: WaitInOpen::Fixed {
            wait: Duration::from_secs(10),
        },
        permitted_calls_in_half_open: 2,
        max_wait_in_half_open: None,
        permit_ttl: Duration::from_secs(30),
        default_retry_after: Duration::from_secs(1),
    }
}

fn call(b: &CircuitBreaker, outcome: CallOutcome) {
    b.try_acquire()
        .expect("permitted")
        .record_with_duration(outcome, Duration::from_millis(10));
}

fn drain(
    rx: &mut tokio::sync::broadcast::Receiver<StateTransition>,
) -> Vec<(BreakerState, BreakerState)> {
    let mut out = Vec::new();
    while let Ok(t) = rx.try_recv() {
        out.push((t.from, t.to));
    }
    out
}

#[tokio::test(start_paused = true)]
async fn closed_open_half_open_closed_exactly() {
    use BreakerState::*;
    let b = CircuitBreaker::new("p", config());
    let mut events = b.subscribe();
    call(&b, CallOutcome::Success);
    call(&b, CallOutcome::Failure);
    call(&b, CallOutcome::Success);
    // 3 calls < minimum 4: no verdict yet, even at 33 %.
    assert_eq!(b.state(), Closed);
    call(&b, CallOutcome::Failure);
    // 2 of 4 = 50 % ≥ threshold.
    assert_eq!(b.state(), Open);
    let refused = b.try_acquire().unwrap_err();
    assert_eq!(refused.state, Open);
    assert_eq!(refused.retry_in, Duration::from_secs(10));
    tokio::time::advance(Duration::from_millis(9_999)).await;
    assert!(
        b.try_acquire().is_err(),
        "still open 1 ms before the wait ends"
    );
    tokio::time::advance(Duration::from_millis(1)).await;
    let t1 = b.try_acquire().expect("first trial");
    assert_eq!(b.state(), HalfOpen);
    let t2 = b.try_acquire().expect("second trial");
    assert_eq!(
        b.try_acquire().unwrap_err().state,
        HalfOpen,
        "only 2 trials"
    );
    t1.record(CallOutcome::Success);
    assert_eq!(b.state(), HalfOpen, "verdict waits for every trial");
    t2.record(CallOutcome::Success);
    assert_eq!(b.state(), Closed);
    assert_eq!(b.snapshot().calls, 0, "closing starts a fresh window");
    assert_eq!(
        drain(&mut events),
        vec![(Closed, Open), (Open, HalfOpen), (HalfOpen, Closed)]
    );
    assert!(b.snapshot().not_permitted >= 2);
}

#[tokio::test(start_paused = true)]
async fn failed_trials_reopen_with_backoff() {
    use BreakerState::*;
    let mut cfg = config();
    cfg.wait_in_open = WaitInOpen::Backoff {
        initial: Duration::from_secs(1),
        multiplier: 2.0,
        max: Duration::from_secs(3),
    };
    let b = CircuitBreaker::new("p", cfg);
    let mut events = b.subscribe();
    for _ in 0..4 {
        call(&b, CallOutcome::Failure);
    }
    assert_eq!(
        b.try_acquire().unwrap_err().retry_in,
        Duration::from_secs(1)
    );
    for (n, expected_wait) in [(2, 2), (3, 3), (4, 3)] {
        tokio::time::advance(Duration::from_secs(3)).await;
        let t1 = b.try_acquire().unwrap();
        let t2 = b.try_acquire().unwrap();
        t1.record(CallOutcome::Success);
        t2.record(CallOutcome::Failure); // 50 % of the trials: open again
        assert_eq!(b.state(), Open, "opening #{n}");
        assert_eq!(
            b.try_acquire().unwrap_err().retry_in,
            Duration::from_secs(expected_wait),
            "opening #{n}"
        );
    }
    let seen = drain(&mut events);
    assert_eq!(seen.first(), Some(&(Closed, Open)));
    assert_eq!(seen.iter().filter(|t| **t == (HalfOpen, Open)).count(), 3);
    // A success closes and resets the backoff.
    tokio::time::advance(Duration::from_secs(3)).await;
    call(&b, CallOutcome::Success);
    call(&b, CallOutcome::Success);
    assert_eq!(b.state(), Closed);
    for _ in 0..4 {
        call(&b, CallOutcome::Failure);
    }
    assert_eq!(
        b.try_acquire().unwrap_err().retry_in,
        Duration::from_secs(1)
    );
}

#[tokio::test(start_paused = true)]
async fn hung_trial_permit_expires() {
    let mut cfg = config();
    cfg.permit_ttl = Duration::from_secs(5);
    let b = CircuitBreaker::new("p", cfg);
    b.trip();
    tokio::time::advance(Duration::from_secs(10)).await;
    let hung1 = b.try_acquire().unwrap();
    let hung2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    // The trials hang past their TTL: their slots come back.
    tokio::time::advance(Duration::from_secs(6)).await;
    let fresh1 = b
        .try_acquire()
        .expect("slot of an expired permit is reused");
    let fresh2 = b.try_acquire().unwrap();
    // Late outcomes of the expired permits are ignored.
    hung1.record(CallOutcome::Failure);
    hung2.record(CallOutcome::Failure);
    assert_eq!(b.state(), BreakerState::HalfOpen);
    fresh1.record(CallOutcome::Success);
    fresh2.record(CallOutcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropped_permit_frees_its_slot() {
    let b = CircuitBreaker::new("p", config());
    b.trip();
    tokio::time::advance(Duration::from_secs(10)).await;
    let a = b.try_acquire().unwrap();
    let c = b.try_acquire().unwrap();
    drop(c); // e.g. the caller's future was cancelled
    let d = b.try_acquire().expect("slot freed by drop");
    a.record(CallOutcome::Success);
    d.record(CallOutcome::Success);
    assert_eq!(b.state(), BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn max_wait_in_half_open_reopens() {
    let mut cfg = config();
    cfg.max_wait_in_half_open = Some(Duration::from_secs(2));
    let b = CircuitBreaker::new("p", cfg);
    b.trip();
    tokio::time::advance(Duration::from_secs(10)).await;
    let t = b.try_acquire().unwrap();
    t.record(CallOutcome::Success);
    tokio::time::advance(Duration::from_secs(3)).await;
    let refused = b.try_acquire().unwrap_err();
    assert_eq!(refused.state, BreakerState::Open);
    assert_eq!(b.state(), BreakerState::Open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn half_open_permits_hold_under_concurrency() {
    let mut cfg = config();
    cfg.permitted_calls_in_half_open = 5;
    cfg.wait_in_open = WaitInOpen::Fixed {
        wait: Duration::from_millis(20),
    };
    let b = CircuitBreaker::new("p", cfg);
    for round in 0..20 {
        b.trip();
        tokio::time::sleep(Duration::from_millis(25)).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(1000));
        let mut tasks = Vec::new();
        for _ in 0..1000 {
            let b = b.clone();
            let barrier = Arc::clone(&barrier);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                b.try_acquire().ok()
            }));
        }
        let mut permits = Vec::new();
        for t in tasks {
            if let Some(p) = t.await.unwrap() {
                permits.push(p);
            }
        }
        assert_eq!(
            permits.len(),
            5,
            "round {round}: exactly the permitted trials"
        );
        assert_eq!(b.state(), BreakerState::HalfOpen);
        for p in permits {
            p.record(CallOutcome::Success);
        }
        assert_eq!(b.state(), BreakerState::Closed);
    }
}

#[tokio::test(start_paused = true)]
async fn slow_calls_open_the_breaker() {
    let mut cfg = config();
    cfg.slow_call_rate_threshold = 50.0;
    cfg.slow_call_duration = Duration::from_millis(100);
    let b = CircuitBreaker::new("p", cfg);
    for d in [10, 150, 10] {
        b.try_acquire()
            .unwrap()
            .record_with_duration(CallOutcome::Success, Duration::from_millis(d));
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // Timed by the permit itself: 200 ms on the paused clock.
    let p = b.try_acquire().unwrap();
    tokio::time::advance(Duration::from_millis(200)).await;
    p.record(CallOutcome::Success);
    assert_eq!(b.state(), BreakerState::Open, "2 of 4 calls slow");
    assert_eq!(b.snapshot().failures, 0);
}

#[tokio::test(start_paused = true)]
async fn time_window_forgets_old_calls() {
    let mut cfg = config();
    cfg.sliding_window = SlidingWindow::Time(2);
    cfg.minimum_calls = 3;
    let b = CircuitBreaker::new("p", cfg);
    call(&b, CallOutcome::Failure);
    call(&b, CallOutcome::Failure);
    assert_eq!(b.snapshot().calls, 2);
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(
        b.snapshot().calls,
        0,
        "buckets older than the window are dropped"
    );
    call(&b, CallOutcome::Failure);
    assert_eq!(b.state(), BreakerState::Closed, "one call in the window");
    tokio::time::advance(Duration::from_millis(1_000)).await;
    call(&b, CallOutcome::Success);
    call(&b, CallOutcome::Failure);
    let s = b.snapshot();
    assert_eq!(b.state(), BreakerState::Open, "{s:?}");
}

#[tokio::test(start_paused = true)]
async fn count_window_slides() {
    let b = CircuitBreaker::new("p", config());
    call(&b, CallOutcome::Failure);
    for _ in 0..3 {
        call(&b, CallOutcome::Success);
    }
    assert_eq!(b.snapshot().failures, 1);
    call(&b, CallOutcome::Success); // pushes the failure out
    let s = b.snapshot();
    assert_eq!((s.calls, s.failures), (4, 0));
}

#[tokio::test(start_paused = true)]
async fn outcomes_are_classified() {
    let unknown: Result<(), _> = Err(MarketError::UnknownSymbol {
        provider: "p".into(),
        symbol: "X".into(),
    });
    assert_eq!(CallOutcome::classify(&unknown), CallOutcome::Success);
    let unsupported: Result<(), _> = Err(MarketError::Unsupported {
        provider: "p".into(),
        operation: "news",
    });
    assert_eq!(CallOutcome::classify(&unsupported), CallOutcome::Ignored);
    let limited: Result<(), _> = Err(MarketError::RateLimited {
        provider: "p".into(),
        retry_after: Some(Duration::from_secs(7)),
    });
    assert_eq!(
        CallOutcome::classify(&limited),
        CallOutcome::RateLimited(Some(Duration::from_secs(7)))
    );
    for e in [
        MarketError::Timeout {
            provider: "p".into(),
            after: Duration::from_secs(1),
        },
        MarketError::Upstream {
            provider: "p".into(),
            status: 503,
            detail: String::new(),
        },
        MarketError::Malformed {
            provider: "p".into(),
            detail: String::new(),
        },
        MarketError::Transport {
            provider: "p".into(),
            detail: String::new(),
        },
    ] {
        assert_eq!(CallOutcome::classify::<()>(&Err(e)), CallOutcome::Failure);
    }
    let b = CircuitBreaker::new("p", config());
    for _ in 0..10 {
        call(&b, CallOutcome::Ignored);
    }
    assert_eq!(b.snapshot().calls, 0, "ignored outcomes are not recorded");
}

#[tokio::test(start_paused = true)]
async fn rate_limited_holds_calls_without_failing() {
    let b = CircuitBreaker::new("p", config());
    call(&b, CallOutcome::RateLimited(Some(Duration::from_secs(30))));
    let refused = b.try_acquire().unwrap_err();
    assert_eq!(refused.retry_in, Duration::from_secs(30));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.snapshot().failures, 0);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert!(b.try_acquire().is_ok());
    // Without Retry-After, the configured default (1 s).
    call(&b, CallOutcome::RateLimited(None));
    assert_eq!(
        b.try_acquire().unwrap_err().retry_in,
        Duration::from_secs(1)
    );
}

#[tokio::test(start_paused = true)]
async fn forced_open_disabled_and_reset() {
    let b = CircuitBreaker::new("p", config());
    let mut events = b.subscribe();
    b.force_open();
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(
        b.try_acquire().unwrap_err().state,
        BreakerState::ForcedOpen,
        "forced open never times out"
    );
    b.disable();
    for _ in 0..100 {
        call(&b, CallOutcome::Failure);
    }
    assert_eq!(b.state(), BreakerState::Disabled);
    assert_eq!(b.snapshot().calls, 0);
    b.reset();
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(
        drain(&mut events),
        vec![
            (BreakerState::Closed, BreakerState::ForcedOpen),
            (BreakerState::ForcedOpen, BreakerState::Disabled),
            (BreakerState::Disabled, BreakerState::Closed)
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn stale_epoch_outcomes_are_ignored() {
    let b = CircuitBreaker::new("p", config());
    let old = b.try_acquire().unwrap();
    b.trip();
    tokio::time::advance(Duration::from_secs(10)).await;
    let t1 = b.try_acquire().unwrap();
    old.record(CallOutcome::Failure); // issued while closed: says nothing about the trial
    assert_eq!(b.snapshot().calls, 0);
    t1.record(CallOutcome::Success);
    assert_eq!(b.state(), BreakerState::HalfOpen);
}

#[tokio::test(start_paused = true)]
async fn listeners_see_transitions() {
    let b = CircuitBreaker::new("p", config());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    b.on_transition(move |name, t| sink.lock().unwrap().push((name.to_owned(), t.to)));
    b.trip();
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        &[("p".to_owned(), BreakerState::Open)]
    );
}
