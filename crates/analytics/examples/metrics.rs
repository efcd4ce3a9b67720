//! The full metric set of a price series against a benchmark.
//!
//! `cargo run -p rampart-analytics --example metrics` (no service needed).

use rampart_analytics::metrics::{MetricOptions, compute_metrics};
use rampart_analytics::{AnalyticsError, Period, max_drawdown_details, simple_returns};

fn main() -> Result<(), AnalyticsError> {
    // Twelve month-end closes of a fund and of its benchmark index.
    let fund = [
        100.0, 103.2, 101.5, 106.8, 104.1, 109.9, 112.4, 108.0, 111.7, 115.3, 113.9, 118.6,
    ];
    let index = [
        100.0, 101.8, 100.9, 103.5, 102.2, 105.0, 106.3, 104.1, 105.8, 107.9, 107.2, 109.4,
    ];
    let returns = simple_returns(&fund);
    let benchmark = simple_returns(&index);

    let options = MetricOptions {
        period: Period::Monthly,
        ..MetricOptions::default()
    };
    let metrics = compute_metrics(&returns, Some(&benchmark), &options)?;
    for (name, value) in metrics.entries() {
        println!("{name:>40}  {value:>10.4}");
    }

    // Indices are into `returns`: return i is month i + 1's change.
    let drawdown = max_drawdown_details(&returns)?;
    if let (Some(peak), Some(trough)) = (drawdown.peak, drawdown.trough) {
        let recovery = drawdown
            .recovery
            .map_or("not yet".to_owned(), |i| format!("after return {i}"));
        println!(
            "worst drawdown {:.2}%: peak after return {peak}, trough after return {trough}, recovered {recovery}",
            drawdown.max_drawdown * 100.0
        );
    }
    Ok(())
}
