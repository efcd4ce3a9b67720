//! A five-field cron expression (`minute hour day-of-month month
//! day-of-week`, UTC) — just enough for job schedules: `*`, numbers, ranges
//! `a-b`, steps `*/n` and `a-b/n`, and lists.
use chrono::{DateTime, Datelike, Duration, Timelike, Utc};

use crate::MembersError;

/// A parsed schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: Vec<bool>,
    hours: Vec<bool>,
    days: Vec<bool>,
    months: Vec<bool>,
    weekdays: Vec<bool>,
    any_day: bool,
    any_weekday: bool,
    text: String,
}

fn field(text: &str, min: u32, max: u32, name: &str) -> Result<(Vec<bool>, bool), MembersError> {
    let bad = || MembersError::invalid("cron", format!("bad {name} field `{text}`"));
    let mut set = vec![false; max as usize + 1];
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (r, s.parse::<u32>().map_err(|_| bad())?),
            None => (part, 1),
        };
        if step == 0 {
            return Err(bad());
        }
        let (lo, hi) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (
                a.parse::<u32>().map_err(|_| bad())?,
                b.parse::<u32>().map_err(|_| bad())?,
            )
        } else {
            let v = range.parse::<u32>().map_err(|_| bad())?;
            (v, if part.contains('/') { max } else { v })
        };
        if lo < min || hi > max || lo > hi {
            return Err(bad());
        }
        let mut v = lo;
        while v <= hi {
            if let Some(slot) = set.get_mut(v as usize) {
                *slot = true;
            }
            v += step;
        }
    }
    Ok((set, text == "*"))
}

impl CronSchedule {
    /// Parses `0 9 * * *` and the like. Day-of-week 0 and 7 are Sunday.
    pub fn parse(text: &str) -> Result<Self, MembersError> {
        let parts: Vec<&str> = text.split_whitespace().collect();
        let [m, h, dom, mon, dow] = parts.as_slice() else {
            return Err(MembersError::invalid(
                "cron",
                "expected five fields: minute hour day-of-month month day-of-week",
            ));
        };
        let (minutes, _) = field(m, 0, 59, "minute")?;
        let (hours, _) = field(h, 0, 23, "hour")?;
        let (days, any_day) = field(dom, 1, 31, "day-of-month")?;
        let (months, _) = field(mon, 1, 12, "month")?;
        let (mut weekdays, any_weekday) = field(dow, 0, 7, "day-of-week")?;
        if weekdays.get(7).copied().unwrap_or(false) {
            weekdays[0] = true;
        }
        Ok(Self {
            minutes,
            hours,
            days,
            months,
            weekdays,
            any_day,
            any_weekday,
            text: text.to_owned(),
        })
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn matches(&self, t: DateTime<Utc>) -> bool {
        let day = self.days[t.day() as usize];
        let weekday = self.weekdays[t.weekday().num_days_from_sunday() as usize];
        // Classic cron: when both day fields are restricted, either matches.
        let day_ok = match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => day,
            (true, false) => weekday,
            (false, false) => day || weekday,
        };
        self.minutes[t.minute() as usize]
            && self.hours[t.hour() as usize]
            && self.months[t.month() as usize]
            && day_ok
    }

    /// The first matching minute strictly after `after` (within ~4 years).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut t = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let limit = after + Duration::days(366 * 4);
        while t <= limit {
            if !self.months[t.month() as usize] {
                t = (t + Duration::days(1)).with_hour(0)?.with_minute(0)?;
                continue;
            }
            if self.matches(t) {
                return Some(t);
            }
            if !self.hours[t.hour() as usize] {
                t = (t + Duration::hours(1)).with_minute(0)?;
            } else {
                t += Duration::minutes(1);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn daily_at_nine_utc() {
        let s = CronSchedule::parse("0 9 * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 24, 9, 0, 0).unwrap())
        );
        let t = Utc.with_ymd_and_hms(2026, 11, 23, 8, 59, 30).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 9, 0, 0).unwrap())
        );
        let s = CronSchedule::parse("*/15 8-9 * * 1-5").unwrap();
        // 2026-11-28 is a Saturday.
        let t = Utc.with_ymd_and_hms(2026, 11, 27, 9, 50, 0).unwrap();
        assert_eq!(
            s.next_after(t),
            Some(Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).unwrap())
        );
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
}
