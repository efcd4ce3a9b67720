//! Rate limits from memory (no Redis): a burst of requests from one client
//! address against a small per-IP quota, and the headers a server sends.
//!
//! `cargo run -p rampart-ratelimit --example burst` (set `REDIS_URL` to share
//! the limit through a Redis server instead).
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use rampart_ratelimit::{Quota, RateLimitConfig, RateLimitError, RateLimiter};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), RateLimitError> {
    let limiter = RateLimiter::new(RateLimitConfig {
        redis_url: std::env::var("REDIS_URL").ok(),
        per_ip: Quota::new(5, Duration::from_secs(10), 3),
        ..RateLimitConfig::default()
    })?;
    println!("backend: {:?}", limiter.backend());
    let client = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
    for n in 1..=5 {
        let decision = limiter.check_ip(client).await;
        let headers: Vec<String> = decision
            .headers()
            .into_iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect();
        println!(
            "request {n}: {} ({})",
            if decision.allowed {
                "allowed"
            } else {
                "refused"
            },
            headers.join(", ")
        );
    }
    Ok(())
}
