//! A five-field cron expression (`minute hour day-of-month month
//! day-of-week`, UTC) for job schedules, parsed and evaluated by `croner`:
//! `*`, numbers, ranges `a-b`, steps `*/n`, `a-b/n` and `a/n`, lists, and
//! names (`MON`, `JAN`). Day-of-week 0 and 7 are Sunday; when both day
//! fields are restricted, either matches (classic cron).
use chrono::{DateTime, Duration, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::MembersError;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    cron: Cron,
    text: String,
}

impl CronSchedule {
    /// Parses `0 9 * * *` and the like.
    pub fn parse(text: &str) -> Result<Self, MembersError> {
        let parser = CronParser::builder()
            // Exactly five fields: no seconds, no year.
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            // `5/15` (from 5, every 15) as the config has always accepted.
            .sloppy_ranges(true)
            .build();
        let cron = parser
            .parse(text)
            .map_err(|e| MembersError::invalid("cron", e.to_string()))?;
        Ok(Self {
            cron,
            text: text.to_owned(),
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first matching minute strictly after `after` (within ~4 years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let next = self.cron.find_next_occurrence(&after, false).ok()?;
        (next <= after + Duration::days(366 * 4)).then_some(next)
    }

    /// The last matching minute at or before `at` (within ~4 years).
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let prev = self.cron.find_previous_occurrence(&at, true).ok()?;
        (prev >= at - Duration::days(366 * 4)).then_some(prev)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    /// The minute `y-mo-d h:mi` (UTC).
    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    /// Checks that the first minute of `s` after `after` is `expected`.
    #[track_caller]
    fn assert_next(s: &CronSchedule, after: DateTime<Utc>, expected: Option<DateTime<Utc>>) {
        assert_eq!(
            s.next_after(after),
            expected,
            "{} after {after}",
            s.as_str()
        );
    }

    #[test]
    fn daily_at_nine_utc() {
        let s = CronSchedule::parse("0 9 * * *").unwrap();
        assert_next(&s, at(2026, 11, 23, 9, 0), Some(at(2026, 11, 24, 9, 0)));
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 8, 59, 30).unwrap();
        assert_next(&s, t, Some(at(2026, 11, 23, 9, 0)));
        let s = CronSchedule::parse("*/15 8-9 * * 1-5").unwrap();
        // 2026-11-28 is a Saturday.
        assert_next(&s, at(2026, 11, 27, 9, 50), Some(at(2026, 11, 30, 8, 0)));
        for bad in [
            "",
            "0 9 * *",
            "60 * * * *",
            "* * * * 8",
            "*/0 * * * *",
            "a * * * *",
        ] {
            assert!(CronSchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_syntax_the_config_accepts() {
        // A step from a start value runs to the end of the field.
        let s = CronSchedule::parse("5/20 * * * *").unwrap();
        assert_next(&s, at(2026, 11, 23, 9, 6), Some(at(2026, 11, 23, 9, 25)));
        // Sunday is 0 and 7.
        for sunday in ["0 9 * * 0", "0 9 * * 7"] {
            let s = CronSchedule::parse(sunday).unwrap();
            // 2026-11-29 is a Sunday.
            assert_next(&s, at(2026, 11, 27, 0, 0), Some(at(2026, 11, 29, 9, 0)));
        }
        // Both day fields restricted: either matches (the 1st, or a Monday).
        let s = CronSchedule::parse("0 0 1 * 1").unwrap();
        assert_next(&s, at(2026, 11, 27, 0, 0), Some(at(2026, 11, 30, 0, 0)));
        assert_next(&s, at(2026, 11, 30, 0, 0), Some(at(2026, 12, 1, 0, 0)));
        // Lists and ranges with steps.
        let s = CronSchedule::parse("0,30 0-12/6 * * *").unwrap();
        assert_next(&s, at(2026, 11, 23, 6, 0), Some(at(2026, 11, 23, 6, 30)));
        assert_next(&s, at(2026, 11, 23, 12, 30), Some(at(2026, 11, 24, 0, 0)));
        // Six fields (seconds) are not this syntax.
        assert!(CronSchedule::parse("0 0 9 * * *").is_err());
        // February 30th never comes.
        let s = CronSchedule::parse("0 0 30 2 *").unwrap();
        assert_next(&s, at(2026, 1, 1, 0, 0), None);
        assert_eq!(s.as_str(), "0 0 30 2 *");
    }
}
