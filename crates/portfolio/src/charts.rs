//! Charts as SVG (plotters' SVG backend, no bitmaps, no font files): the
//! equity curve with its drawdown underneath, and the histogram of returns
//! with VaR and CVaR marked.
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::PortfolioError;
use crate::analysis::{NavPoint, VAR_CUTOFF};

fn chart_error(e: impl std::fmt::Display) -> PortfolioError {
    PortfolioError::Chart(e.to_string())
}

/// One chart of `title` over `x` × `y` on a 900×500 SVG: `draw` puts the
/// mesh and series on it, then the legend of its labelled series is added.
fn legended_svg(
    title: &str,
    y_label_area: u32,
    (x, y): (std::ops::Range<f64>, std::ops::Range<f64>),
    draw: impl FnOnce(&mut Chart2d<'_, '_>) -> Result<(), PortfolioError>,
) -> Result<String, PortfolioError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(y_label_area)
            .build_cartesian_2d(x, y)
            .map_err(chart_error)?;
        draw(&mut chart)?;
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

type Chart2d<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(hi.abs() * 1e-3).max(1e-9);
    (lo - span * 0.05, hi + span * 0.05)
}

/// The NAV over time (top) and the drawdown from the running peak (bottom).
pub fn equity_svg(points: &[NavPoint], title: &str) -> Result<String, PortfolioError> {
    if points.len() < 2 {
        return Err(PortfolioError::Invalid("need at least two points".into()));
    }
    let n = points.len();
    let x_max = (n - 1) as f64;
    let (lo, hi) = points
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.nav), hi.max(p.nav))
        });
    let (lo, hi) = padded(lo, hi);
    // Drawdown of the wealth index (flows excluded), from the running peak.
    let mut peak = f64::NEG_INFINITY;
    let drawdown: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let w = 1.0 + p.cumulative_return;
            peak = peak.max(w);
            (i as f64, w / peak - 1.0)
        })
        .collect();
    let dd_min = drawdown
        .iter()
        .map(|(_, d)| *d)
        .fold(0.0_f64, f64::min)
        .min(-0.01)
        * 1.05;
    let label = |x: &f64| {
        let i = x.round().clamp(0.0, x_max) as usize;
        points
            .get(i)
            .map(|p| p.date.format("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let (top, bottom) = root.split_vertically(400);
        let mut nav = ChartBuilder::on(&top)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..x_max, lo..hi)
            .map_err(chart_error)?;
        nav.configure_mesh()
            .x_labels(6)
            .x_label_formatter(&label)
            .y_desc("NAV")
            .draw()
            .map_err(chart_error)?;
        nav.draw_series(LineSeries::new(
            points.iter().enumerate().map(|(i, p)| (i as f64, p.nav)),
            BLUE.stroke_width(2),
        ))
        .map_err(chart_error)?;
        let mut dd = ChartBuilder::on(&bottom)
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..x_max, dd_min..0f64)
            .map_err(chart_error)?;
        dd.configure_mesh()
            .x_labels(6)
            .x_label_formatter(&label)
            .y_label_formatter(&|y| format!("{:.0}%", y * 100.0))
            .y_desc("Drawdown")
            .draw()
            .map_err(chart_error)?;
        let mut area = Vec::with_capacity(drawdown.len() + 2);
        area.push((0.0, 0.0));
        area.extend(drawdown.iter().copied());
        area.push((x_max, 0.0));
        dd.draw_series(std::iter::once(Polygon::new(area, RED.mix(0.25))))
            .map_err(chart_error)?;
        dd.draw_series(LineSeries::new(drawdown.iter().copied(), &RED))
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

/// A histogram of `returns` with the historical VaR and CVaR (at
/// [`VAR_CUTOFF`]) drawn as vertical lines.
pub fn returns_histogram_svg(
    returns: &[f64],
    var: f64,
    cvar: f64,
    title: &str,
) -> Result<String, PortfolioError> {
    let r: Vec<f64> = returns.iter().copied().filter(|x| x.is_finite()).collect();
    if r.len() < 2 {
        return Err(PortfolioError::Invalid("need at least two returns".into()));
    }
    let (lo, hi) = r
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
            (lo.min(*x), hi.max(*x))
        });
    let lo = lo.min(var).min(cvar);
    let (lo, hi) = padded(lo, hi);
    let bins = ((r.len() as f64).sqrt().round() as usize).clamp(10, 60);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0u32; bins];
    for x in &r {
        let i = (((x - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let top = f64::from(counts.iter().copied().max().unwrap_or(1)) * 1.15;
    legended_svg(title, 60, (lo..hi, 0f64..top), |chart| {
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{:.1}%", x * 100.0))
            .x_desc("Return")
            .y_desc("Count")
            .draw()
            .map_err(chart_error)?;
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = lo + width * i as f64;
                Rectangle::new(
                    [(x0, 0.0), (x0 + width, f64::from(*c))],
                    BLUE.mix(0.45).filled(),
                )
            }))
            .map_err(chart_error)?;
        let confidence = (1.0 - VAR_CUTOFF) * 100.0;
        for (value, name, color) in [(var, "VaR", RED), (cvar, "CVaR", MAGENTA)] {
            if !value.is_finite() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(
                    [(value, 0.0), (value, top)],
                    color.stroke_width(2),
                ))
                .map_err(chart_error)?
                .label(format!("{name} {confidence:.0}%: {:.2}%", value * 100.0))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        Ok(())
    })
}

/// A fan chart of simulated outcomes: the 5–95 % and 25–75 % bands of the
/// cumulative return by step, and the median.
pub fn fan_svg(
    bands: &[rampart_analytics::risk::OutcomeBand],
    title: &str,
) -> Result<String, PortfolioError> {
    if bands.is_empty() {
        return Err(PortfolioError::Invalid("need at least one step".into()));
    }
    let x_max = bands.len() as f64;
    let (lo, hi) = bands.iter().fold((0.0_f64, 0.0_f64), |(lo, hi), b| {
        (lo.min(b.p5), hi.max(b.p95))
    });
    let (lo, hi) = padded(lo, hi);
    // Each band starts at 0 % today (step 0).
    let edge = |f: fn(&rampart_analytics::risk::OutcomeBand) -> f64| {
        std::iter::once((0.0, 0.0))
            .chain(bands.iter().map(move |b| (b.step as f64, f(b))))
            .collect::<Vec<_>>()
    };
    let area = |upper: Vec<(f64, f64)>, lower: Vec<(f64, f64)>| {
        upper
            .into_iter()
            .chain(lower.into_iter().rev())
            .collect::<Vec<_>>()
    };
    legended_svg(title, 70, (0f64..x_max, lo..hi), |chart| {
        chart
            .configure_mesh()
            .y_label_formatter(&|y| format!("{:.1}%", y * 100.0))
            .x_desc("Periods ahead")
            .y_desc("Cumulative return")
            .draw()
            .map_err(chart_error)?;
        for ((upper, lower), alpha, name) in [
            ((edge(|b| b.p95), edge(|b| b.p5)), 0.18, "5–95 %"),
            ((edge(|b| b.p75), edge(|b| b.p25)), 0.35, "25–75 %"),
        ] {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    area(upper, lower),
                    BLUE.mix(alpha).filled(),
                )))
                .map_err(chart_error)?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 20, y + 5)], BLUE.mix(alpha).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(edge(|b| b.p50), BLUE.stroke_width(2)))
            .map_err(chart_error)?
            .label("median")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
        Ok(())
    })
}
