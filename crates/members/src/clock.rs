//! Time as the jobs see it: the wall clock in production, a clock a test
//! drives in tests (the scheduler's firing and the broker retries' waits
//! are then asserted without waiting).
use std::time::Duration;

use chrono::{DateTime, Utc};

/// The current time and a way to wait.
#[async_trait::async_trait]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
    /// Returns once `duration` has passed on this clock.
    async fn sleep(&self, duration: Duration);
}

/// The system clock and tokio's timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

#[async_trait::async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
