//! Correlation matrix of several return series.

use crate::AnalyticsError;

/// Pearson correlation matrix, row-major `k × k`, with pairwise-complete
/// observations (rows where both series are non-NaN), as pandas
/// `DataFrame.corr()` computes it (Welford updates in the same order).
/// A pair with no common observations or zero variance gives NaN.
///
/// ```
/// let a = [0.01, -0.02, 0.03, 0.0];
/// let b = [0.02, -0.04, 0.06, 0.0];
/// let m = rampart_analytics::correlation_matrix(&[&a, &b]).unwrap();
/// assert!((m[1] - 1.0).abs() < 1e-12);
/// ```
pub fn correlation_matrix(series: &[&[f64]]) -> Result<Vec<f64>, AnalyticsError> {
    let k = series.len();
    let Some(first) = series.first() else {
        return Ok(Vec::new());
    };
    if let Some(bad) = series.iter().find(|s| s.len() != first.len()) {
        return Err(AnalyticsError::LengthMismatch {
            left: first.len(),
            right: bad.len(),
        });
    }
    let mut out = vec![f64::NAN; k * k];
    for i in 0..k {
        for j in 0..=i {
            let c = pairwise_correlation(series[i], series[j]);
            out[i * k + j] = c;
            out[j * k + i] = c;
        }
    }
    Ok(out)
}

fn pairwise_correlation(x: &[f64], y: &[f64]) -> f64 {
    let (mut n, mut mean_x, mut mean_y) = (0usize, 0.0, 0.0);
    let (mut ssx, mut ssy, mut cov) = (0.0, 0.0, 0.0);
    for (&vx, &vy) in x.iter().zip(y) {
        if vx.is_nan() || vy.is_nan() {
            continue;
        }
        n += 1;
        let dx = vx - mean_x;
        let dy = vy - mean_y;
        mean_x += 1.0 / n as f64 * dx;
        mean_y += 1.0 / n as f64 * dy;
        ssx += (vx - mean_x) * dx;
        ssy += (vy - mean_y) * dy;
        cov += (vx - mean_x) * dy;
    }
    if n == 0 {
        return f64::NAN;
    }
    let divisor = (ssx * ssy).sqrt();
    if divisor != 0.0 {
        cov / divisor
    } else {
        f64::NAN
    }
}
