//! The weekly portfolio report: every user who opted in
//! (`preferences.weekly_report`) gets one e-mail a week with, for each
//! portfolio they own, the week's change, the window's performance and risk
//! figures, and the equity chart inline (SVG, `cid:`). The analysis is the
//! one the analytics routes run ([`crate::portfolio_analysis`]), as the user
//! (so only what they may see), and the mail goes through the notify
//! crate's SMTP path, at most once per user and week.
use chrono::{DateTime, Duration, Utc};
use maud::{DOCTYPE, Markup, html};
use rampart_notify::{InlineImage, Notifier, ReportMail};
use rampart_portfolio::{Actor, AnalyticsReport, NavPoint, PortfolioService, UserService};
use rampart_tenancy::TenantSlug;
use serde::Serialize;

use crate::error::ApiError;
use crate::portfolio_analysis::{AnalyticsQuery, run_analysis};
use crate::state::AppState;

/// Portfolios one report covers at most.
const MAX_PORTFOLIOS: usize = 20;

/// What one pass did.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WeeklyReportRun {
    /// Active tenants gone through.
    pub tenants: usize,
    /// Reports mailed.
    pub sent: usize,
    /// Users already mailed this week (a rerun sends nothing twice).
    pub already_sent: usize,
    /// Users who opted in and own no portfolio.
    pub nothing_to_report: usize,
    /// Users (or tenants, `user` none) whose report failed, with the error
    /// code.
    pub failed: Vec<ReportFailure>,
}

/// A report that could not be made or mailed.
#[derive(Debug, Serialize)]
pub struct ReportFailure {
    /// Tenant slug.
    pub tenant: TenantSlug,
    /// The user; none when the tenant's recipients could not be listed.
    pub user: Option<rampart_auth::UserId>,
    /// The stable error code.
    pub code: &'static str,
}

/// One portfolio's part of a report.
struct Section {
    name: String,
    /// The analysis, or the code of why there is none (e.g. `no_prices`).
    analysis: Result<(Vec<NavPoint>, AnalyticsReport), &'static str>,
}

/// The week's change: the last NAV against the last one at least seven
/// days earlier (flows excluded, as the daily returns are).
fn week_change(series: &[NavPoint]) -> Option<(chrono::NaiveDate, f64)> {
    let last = series.last()?;
    let start = series
        .iter()
        .rposition(|p| p.date <= last.date - Duration::days(7))?;
    let growth: f64 = series[start + 1..]
        .iter()
        .filter_map(|p| p.daily_return)
        .map(|r| 1.0 + r)
        .product();
    Some((series[start].date, growth - 1.0))
}

fn percent(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "n/a".to_owned(), |v| format!("{:+.2} %", v * 100.0))
}

fn ratio(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite())
        .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

/// The figures of a section as (label, value) rows.
fn figures(series: &[NavPoint], report: &AnalyticsReport) -> Vec<(String, String)> {
    let week = week_change(series);
    vec![
        (
            match week {
                Some((since, _)) => format!("Change since {since}"),
                None => "Change over the week".to_owned(),
            },
            percent(week.map(|w| w.1)),
        ),
        (
            format!("NAV on {}", report.to),
            format!("{:.2}", report.nav),
        ),
        (
            format!("TWR {} – {}", report.from, report.to),
            percent(report.performance.twr),
        ),
        (
            "Volatility (annualized)".into(),
            percent(report.risk.volatility),
        ),
        ("Sharpe".into(), ratio(report.risk.sharpe)),
        ("Max drawdown".into(), percent(report.risk.max_drawdown)),
        (
            "VaR 95 % (historical)".into(),
            percent(report.risk.var_historical),
        ),
    ]
}

fn html_report(tenant: &str, sections: &[Section]) -> Markup {
    html! {
        (DOCTYPE)
        html {
            head { meta charset="utf-8"; title { "Your weekly portfolio report" } }
            body style="font-family: sans-serif" {
                h1 { "Your weekly portfolio report" }
                p { "Tenant " (tenant) ", as of " (Utc::now().date_naive()) "." }
                @for (i, s) in sections.iter().enumerate() {
                    h2 { (s.name) }
                    @match &s.analysis {
                        Ok((series, report)) => {
                            table {
                                @for (label, value) in figures(series, report) {
                                    tr { td { (label) } td style="text-align: right" { (value) } }
                                }
                            }
                            img src=(format!("cid:equity-{i}")) alt=(format!("Equity of {}", s.name)) width="640";
                        }
                        Err(code) => p { "No analysis this week (" (code) ")." }
                    }
                }
            }
        }
    }
}

fn text_report(sections: &[Section]) -> String {
    let mut out = String::from("Your weekly portfolio report\n");
    for s in sections {
        out.push_str(&format!("\n{}\n", s.name));
        match &s.analysis {
            Ok((series, report)) => {
                for (label, value) in figures(series, report) {
                    out.push_str(&format!("  {label}: {value}\n"));
                }
            }
            Err(code) => out.push_str(&format!("  No analysis this week ({code}).\n")),
        }
    }
    out
}

/// The report of one user: `None` when they own no portfolio.
async fn report_for(
    state: &AppState,
    tenant: &TenantSlug,
    user: rampart_auth::UserId,
) -> Result<Option<ReportMail>, ApiError> {
    let actor = Actor::user(user);
    let page = PortfolioService::new(state.tenants.clone())
        .list(tenant, &actor, None, 100)
        .await?;
    let query = AnalyticsQuery::default();
    let mut sections = Vec::new();
    let mut images = Vec::new();
    for p in page
        .items
        .into_iter()
        .filter(|p| p.owner_id == user)
        .take(MAX_PORTFOLIOS)
    {
        let analysis = match run_analysis(state, tenant, &actor, p.id.into(), &query).await {
            Ok((series, report, _)) => {
                let title = format!("{}: equity and drawdown", p.name);
                let svg = rampart_portfolio::charts::equity_svg(&series, &title)?;
                images.push(InlineImage {
                    cid: format!("equity-{}", sections.len()),
                    content_type: "image/svg+xml".into(),
                    bytes: svg.into_bytes(),
                });
                Ok((series, report))
            }
            Err(e) => Err(e.code.as_str()),
        };
        sections.push(Section {
            name: p.name,
            analysis,
        });
    }
    if sections.is_empty() {
        return Ok(None);
    }
    Ok(Some(ReportMail {
        subject: "Your weekly portfolio report".into(),
        text: text_report(&sections),
        html: html_report(tenant, &sections).into_string(),
        images,
    }))
}

/// One pass over every active tenant's opted-in users at `now`; a user
/// mailed since `now` minus six days is not mailed again.
pub async fn run(state: &AppState, now: DateTime<Utc>) -> Result<WeeklyReportRun, ApiError> {
    let notifier = Notifier::new(state.tenants.clone(), state.config.notify.clone())?;
    let users = UserService::new(state.tenants.clone(), &state.auth);
    let since = now - Duration::days(6);
    let mut run = WeeklyReportRun::default();
    for tenant in state.tenants.active_slugs().await? {
        run.tenants += 1;
        let recipients = match users.weekly_report_recipients(&tenant).await {
            Ok(r) => r,
            Err(e) => {
                let code = ApiError::from(e).code.as_str();
                run.failed.push(ReportFailure {
                    tenant,
                    user: None,
                    code,
                });
                continue;
            }
        };
        for (user, email) in recipients {
            let sent = match report_for(state, &tenant, user).await {
                Ok(None) => {
                    run.nothing_to_report += 1;
                    continue;
                }
                Ok(Some(mail)) => notifier
                    .send_weekly_report(&tenant, user, &email, since, mail)
                    .await
                    .map_err(ApiError::from),
                Err(e) => Err(e),
            };
            match sent {
                Ok(true) => run.sent += 1,
                Ok(false) => run.already_sent += 1,
                Err(e) => run.failed.push(ReportFailure {
                    tenant: tenant.clone(),
                    user: Some(user),
                    code: e.code.as_str(),
                }),
            }
        }
    }
    Ok(run)
}
