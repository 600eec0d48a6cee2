//! Recurring maintenance windows, compiled from [`MaintenanceWindowConfig`]: weekdays, times of
//! day and date bounds read in an IANA time zone, at the event's time.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Tz;

use super::config::MaintenanceWindowConfig;
use super::matcher::{EventLabels, LabelSet, Matcher, all_match};

const MINUTES_PER_DAY: u32 = 24 * 60;

/// A maintenance window, checked.
#[derive(Debug, Clone)]
pub(super) struct Window {
    pub name: String,
    targets: BTreeSet<String>,
    matchers: Vec<Matcher>,
    /// Bit `n` set: the window opens on the weekday `n` days after Monday.
    weekdays: u8,
    /// `(start, end)` in minutes after midnight; `start > end` crosses midnight.
    times: Vec<(u32, u32)>,
    tz: Tz,
    start_date: Option<NaiveDate>,
    end_date: Option<NaiveDate>,
}

impl Window {
    /// `matchers` are parsed by the caller, which names the rule in its errors; the error
    /// messages here say which field is wrong.
    pub fn new(cfg: &MaintenanceWindowConfig, matchers: Vec<Matcher>) -> Result<Window, String> {
        if cfg.name.trim().is_empty() {
            return Err("has no `name`".into());
        }
        if cfg.targets.is_empty() && matchers.is_empty() {
            return Err(
                "targets nothing: set `targets` (CI or service names) or `matchers`".into(),
            );
        }
        if let Some(t) = cfg.targets.iter().find(|t| t.trim().is_empty()) {
            return Err(format!("`targets` holds an empty name ({t:?})"));
        }
        let mut weekdays = 0u8;
        for w in &cfg.weekdays {
            weekdays |= parse_weekdays(w).map_err(|e| format!("`weekdays`: {e}"))?;
        }
        if cfg.weekdays.is_empty() {
            weekdays = 0x7f;
        }
        let times = if cfg.times.is_empty() {
            vec![(0, MINUTES_PER_DAY)]
        } else {
            cfg.times
                .iter()
                .map(|t| parse_range(t).map_err(|e| format!("`times`: {e}")))
                .collect::<Result<_, _>>()?
        };
        let tz = Tz::from_str(cfg.time_zone.trim()).map_err(|_| {
            format!(
                "`time_zone` {:?} is not an IANA time zone name such as \"Europe/Berlin\" or \"UTC\"",
                cfg.time_zone
            )
        })?;
        let date = |field: &str, v: &Option<String>| -> Result<Option<NaiveDate>, String> {
            v.as_deref()
                .map(|s| {
                    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                        .map_err(|e| format!("`{field}` {s:?} is not a date YYYY-MM-DD ({e})"))
                })
                .transpose()
        };
        let start_date = date("start_date", &cfg.start_date)?;
        let end_date = date("end_date", &cfg.end_date)?;
        if let (Some(s), Some(e)) = (start_date, end_date)
            && e < s
        {
            return Err(format!("`end_date` {e} is before `start_date` {s}"));
        }
        Ok(Window {
            name: cfg.name.clone(),
            targets: cfg.targets.iter().map(|t| t.trim().to_string()).collect(),
            matchers,
            weekdays,
            times,
            tz,
            start_date,
            end_date,
        })
    }

    /// Whether the event is one of the window's targets.
    pub fn targets(&self, labels: &EventLabels<'_>) -> bool {
        let named = |key: &str| labels.label(key).is_some_and(|v| self.targets.contains(v));
        named("ci")
            || named("service")
            || (!self.matchers.is_empty() && all_match(&self.matchers, labels))
    }

    /// Whether the window is open at `at`.
    pub fn is_open(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        let day = local.date_naive();
        let minute = local.hour() * 60 + local.minute();
        let opens_on = |d: NaiveDate| {
            self.weekdays & (1 << d.weekday().num_days_from_monday()) != 0
                && self.start_date.is_none_or(|s| d >= s)
                && self.end_date.is_none_or(|e| d <= e)
        };
        self.times.iter().any(|&(start, end)| {
            if start < end {
                opens_on(day) && start <= minute && minute < end
            } else {
                // Crosses midnight: the evening part belongs to today, the morning part to the
                // range that started yesterday.
                (minute >= start && opens_on(day))
                    || (minute < end && day.pred_opt().is_some_and(opens_on))
            }
        })
    }
}

/// One weekday (`mon`, `Monday`) or an inclusive range (`mon-fri`, `monday:friday`, `sat-mon`
/// wraps) as a bit set.
fn parse_weekdays(s: &str) -> Result<u8, String> {
    let day = |w: &str| -> Result<u32, String> {
        Weekday::from_str(w.trim())
            .map(|d| d.num_days_from_monday())
            .map_err(|_| format!("{w:?} is not a weekday (mon, tue, wed, thu, fri, sat, sun)"))
    };
    let (from, to) = match s.split_once(['-', ':']) {
        Some((a, b)) => (day(a)?, day(b)?),
        None => {
            let d = day(s)?;
            (d, d)
        }
    };
    let mut bits = 0u8;
    let mut d = from;
    loop {
        bits |= 1 << d;
        if d == to {
            return Ok(bits);
        }
        d = (d + 1) % 7;
    }
}

/// `HH:MM-HH:MM` as minutes after midnight.
fn parse_range(s: &str) -> Result<(u32, u32), String> {
    let bad = |why: &str| format!("{s:?} is not a time range HH:MM-HH:MM: {why}");
    let (a, b) = s.split_once('-').ok_or_else(|| bad("no `-`"))?;
    let start = parse_time(a).map_err(|e| bad(&e))?;
    let end = parse_time(b).map_err(|e| bad(&e))?;
    if start == MINUTES_PER_DAY {
        return Err(bad("a range cannot start at 24:00"));
    }
    if start == end {
        return Err(bad("start equals end; use 00:00-24:00 for a whole day"));
    }
    Ok((start, end))
}

fn parse_time(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?} is not HH:MM"))?;
    let num = |v: &str| -> Option<u32> {
        (!v.is_empty() && v.len() <= 2 && v.bytes().all(|b| b.is_ascii_digit()))
            .then(|| v.parse().ok())
            .flatten()
    };
    let (Some(h), Some(m)) = (num(h), num(m)) else {
        return Err(format!("{s:?} is not HH:MM"));
    };
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(format!("{s:?} is not a time of day (00:00 to 24:00)"));
    }
    Ok(h * 60 + m)
}
