//! The business day: which stretch of time "today's" numbers, the history, the day summary and
//! `history --date` cover.
//!
//! A business day D covers `[D at day_start, D+1 at day_start)` in the shop's local time, as
//! Unix ms. With `day_start = "04:00"` a sale at 01:30 on the 22nd still belongs to the 21st,
//! so a shop open past midnight sees one day per working night; with the default `"00:00"` it
//! is the calendar day.
//!
//! Invariant: [`business_date`] is defined through [`window`], so every instant belongs to
//! exactly one business day and the windows of consecutive days touch without a gap or an
//! overlap, also on daylight-saving days (a day is then 23 or 25 hours long).
//!
//! Every function takes the time zone as an argument (`chrono::Local` in the till, a
//! `FixedOffset` or another zone in tests), so the arithmetic is pure and testable anywhere.
//! Local times that do not exist (a spring-forward gap) resolve to the first minute after the
//! gap; ambiguous ones (the repeated hour in autumn) to the earlier instant. Nothing here
//! panics.

use chrono::{DateTime, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike as _};

/// One hour in ms.
pub const HOUR_MS: i64 = 3_600_000;

/// The default start of the business day: midnight.
pub const MIDNIGHT: NaiveTime = NaiveTime::MIN;

/// Parses a `day_start` value: `HH:MM`, 24-hour clock, e.g. `"04:00"`.
///
/// # Errors
/// A message saying what is allowed (the caller adds the key and the file).
pub fn parse_day_start(text: &str) -> Result<NaiveTime, String> {
    let refused = || format!("must be a time of day as HH:MM from 00:00 to 23:59, found `{text}`");
    let (hours, minutes) = text.split_once(':').ok_or_else(refused)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(refused());
    }
    let hours: u32 = hours.parse().map_err(|_| refused())?;
    let minutes: u32 = minutes.parse().map_err(|_| refused())?;
    NaiveTime::from_hms_opt(hours, minutes, 0).ok_or_else(refused)
}

/// `HH:MM` of a day start (the inverse of [`parse_day_start`]).
pub fn format_day_start(day_start: NaiveTime) -> String {
    format!("{:02}:{:02}", day_start.hour(), day_start.minute())
}

/// The instant (Unix ms) at which the local wall-clock time `local` happens in `tz`.
///
/// An ambiguous time (clocks go back) is its earlier instant; a time inside a gap (clocks go
/// forward) is the first whole minute after the gap, which is when a shop's day that "starts
/// at 02:30" starts on such a day. Should a zone have no valid minute within a day (none
/// does), the time is read as UTC rather than panicking.
pub fn instant<Tz: TimeZone>(tz: &Tz, local: NaiveDateTime) -> i64 {
    let mut probe = local;
    // Real gaps are one hour, rarely two; a day of minutes is a generous bound.
    for _ in 0..=24 * 60 {
        if let Some(at) = tz.from_local_datetime(&probe).earliest() {
            return at.timestamp_millis();
        }
        probe = match probe.checked_add_signed(chrono::TimeDelta::minutes(1)) {
            Some(next) => next
                .with_second(0)
                .and_then(|t| t.with_nanosecond(0))
                .unwrap_or(next),
            None => break,
        };
    }
    local.and_utc().timestamp_millis()
}

/// `[from_ms, to_ms)` of business day `date` in `tz`.
pub fn window<Tz: TimeZone>(tz: &Tz, date: NaiveDate, day_start: NaiveTime) -> (i64, i64) {
    let from = instant(tz, date.and_time(day_start));
    let to = match date.checked_add_days(Days::new(1)) {
        Some(next) => instant(tz, next.and_time(day_start)),
        None => from.saturating_add(24 * HOUR_MS),
    };
    (from, to.max(from))
}

/// `[from_ms, to_ms)` covering business days `first` to `last`, both included.
pub fn range_window<Tz: TimeZone>(
    tz: &Tz,
    first: NaiveDate,
    last: NaiveDate,
    day_start: NaiveTime,
) -> (i64, i64) {
    let (from, _) = window(tz, first, day_start);
    let (_, to) = window(tz, last, day_start);
    (from, to.max(from))
}

/// The business day the instant `ms` belongs to in `tz`.
pub fn business_date<Tz: TimeZone>(tz: &Tz, ms: i64, day_start: NaiveTime) -> NaiveDate {
    let local = match tz.timestamp_millis_opt(ms).earliest() {
        Some(at) => at.naive_local(),
        None => DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .naive_utc(),
    };
    let since_start = local.time().signed_duration_since(day_start);
    let guess = if since_start < chrono::TimeDelta::zero() {
        local.date().pred_opt().unwrap_or(local.date())
    } else {
        local.date()
    };
    // The wall clock can disagree with the windows around a DST change (the repeated hour);
    // the windows are the definition, so settle by them.
    let (from, to) = window(tz, guess, day_start);
    if ms < from {
        guess.pred_opt().unwrap_or(guess)
    } else if ms >= to {
        guess.succ_opt().unwrap_or(guess)
    } else {
        guess
    }
}

/// How many hourly buckets a window has: 24 on most days, 23 or 25 on DST days; an hour
/// begun counts.
pub fn hours_in(from_ms: i64, to_ms: i64) -> usize {
    let span = to_ms.saturating_sub(from_ms).max(0);
    let hours = span / HOUR_MS + i64::from(span % HOUR_MS != 0);
    usize::try_from(hours).unwrap_or(0)
}

/// The local wall-clock label (`HH:MM`) of the instant `ms` in `tz`, for chart axes.
pub fn clock_label<Tz: TimeZone>(tz: &Tz, ms: i64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    tz.timestamp_millis_opt(ms)
        .earliest()
        .map(|at| at.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// `YYYY-MM-DD HH:MM:SS` of the instant `ms` in `tz` (the export's and the CLI's time format).
pub fn local_time<Tz: TimeZone>(tz: &Tz, ms: i64) -> String
where
    Tz::Offset: std::fmt::Display,
{
    tz.timestamp_millis_opt(ms)
        .earliest()
        .map(|at| at.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Parses a `YYYY-MM-DD` date as the CLI takes it.
///
/// # Errors
/// A message saying what is allowed.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` must be a date as YYYY-MM-DD, e.g. 2026-11-21"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use chrono::FixedOffset;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn at<Tz: TimeZone>(tz: &Tz, y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
        tz.with_ymd_and_hms(y, m, d, h, min, 0)
            .earliest()
            .unwrap()
            .timestamp_millis()
    }

    fn four() -> NaiveTime {
        NaiveTime::from_hms_opt(4, 0, 0).unwrap()
    }

    #[test]
    fn day_start_values() {
        assert_eq!(parse_day_start("04:00"), Ok(four()));
        assert_eq!(parse_day_start("00:00"), Ok(MIDNIGHT));
        assert_eq!(
            parse_day_start("23:59"),
            Ok(NaiveTime::from_hms_opt(23, 59, 0).unwrap())
        );
        for bad in [
            "4:00", "24:00", "04:60", "04", "04:00:00", "", " 04:00", "aa:bb",
        ] {
            let err = parse_day_start(bad).unwrap_err();
            assert!(err.contains("HH:MM"), "{bad}: {err}");
        }
        assert_eq!(format_day_start(four()), "04:00");
    }

    #[test]
    fn a_04_00_start_in_china() {
        let tz = FixedOffset::east_opt(8 * 3600).unwrap();
        let (from, to) = window(&tz, date(2026, 11, 21), four());
        assert_eq!(from, at(&tz, 2026, 11, 21, 4, 0));
        assert_eq!(to, at(&tz, 2026, 11, 22, 4, 0));
        // 03:59 is still the day before; 04:00 starts the new day.
        let before = at(&tz, 2026, 11, 21, 3, 59);
        assert_eq!(business_date(&tz, before, four()), date(2026, 11, 20));
        assert_eq!(business_date(&tz, from, four()), date(2026, 11, 21));
        assert_eq!(business_date(&tz, from - 1, four()), date(2026, 11, 20));
        // 23:59 and 00:00 across midnight are the same business day.
        let late = at(&tz, 2026, 11, 21, 23, 59);
        let midnight = at(&tz, 2026, 11, 22, 0, 0);
        assert_eq!(business_date(&tz, late, four()), date(2026, 11, 21));
        assert_eq!(business_date(&tz, midnight, four()), date(2026, 11, 21));
        assert_eq!(business_date(&tz, to - 1, four()), date(2026, 11, 21));
        assert_eq!(business_date(&tz, to, four()), date(2026, 11, 22));
        assert_eq!(hours_in(from, to), 24);
        assert_eq!(clock_label(&tz, from), "04:00");
        assert_eq!(local_time(&tz, midnight), "2026-11-22 00:00:00");
    }

    #[test]
    fn midnight_start_is_the_calendar_day() {
        let tz = FixedOffset::west_opt(5 * 3600).unwrap();
        let (from, to) = window(&tz, date(2026, 1, 1), MIDNIGHT);
        assert_eq!(from, at(&tz, 2026, 1, 1, 0, 0));
        assert_eq!(to - from, 24 * HOUR_MS);
        assert_eq!(business_date(&tz, to - 1, MIDNIGHT), date(2026, 1, 1));
        let (first, last) = range_window(&tz, date(2026, 1, 1), date(2026, 1, 3), MIDNIGHT);
        assert_eq!((first, last), (from, from + 3 * 24 * HOUR_MS));
    }

    /// A zone with DST, built from fixed offsets so the test needs no tz database: UTC+1 in
    /// winter, UTC+2 from 2026-03-29 02:00 local (clocks jump to 03:00) until 2026-10-25
    /// 03:00 local (clocks go back to 02:00), like Central Europe.
    #[derive(Clone, Copy, Debug)]
    struct Cet;

    const SPRING_UTC: i64 = 1_774_746_000; // 2026-03-29 01:00 UTC
    const AUTUMN_UTC: i64 = 1_792_890_000; // 2026-10-25 01:00 UTC

    impl TimeZone for Cet {
        type Offset = FixedOffset;

        fn from_offset(_: &FixedOffset) -> Self {
            Cet
        }

        fn offset_from_local_date(&self, local: &NaiveDate) -> chrono::LocalResult<FixedOffset> {
            self.offset_from_local_datetime(&local.and_time(NaiveTime::MIN))
        }

        fn offset_from_local_datetime(
            &self,
            local: &NaiveDateTime,
        ) -> chrono::LocalResult<FixedOffset> {
            let winter = FixedOffset::east_opt(3600).unwrap();
            let summer = FixedOffset::east_opt(7200).unwrap();
            let as_winter = local.and_utc().timestamp() - 3600;
            let as_summer = local.and_utc().timestamp() - 7200;
            let winter_ok = !(SPRING_UTC..AUTUMN_UTC).contains(&as_winter);
            let summer_ok = (SPRING_UTC..AUTUMN_UTC).contains(&as_summer);
            match (summer_ok, winter_ok) {
                (true, true) => chrono::LocalResult::Ambiguous(summer, winter),
                (true, false) => chrono::LocalResult::Single(summer),
                (false, true) => chrono::LocalResult::Single(winter),
                (false, false) => chrono::LocalResult::None,
            }
        }

        fn offset_from_utc_date(&self, utc: &NaiveDate) -> FixedOffset {
            self.offset_from_utc_datetime(&utc.and_time(NaiveTime::MIN))
        }

        fn offset_from_utc_datetime(&self, utc: &NaiveDateTime) -> FixedOffset {
            let secs = utc.and_utc().timestamp();
            let hours = if (SPRING_UTC..AUTUMN_UTC).contains(&secs) {
                2
            } else {
                1
            };
            FixedOffset::east_opt(hours * 3600).unwrap()
        }
    }

    #[test]
    fn dst_days_have_23_and_25_hours_and_no_gaps() {
        let tz = Cet;
        let (from, to) = window(&tz, date(2026, 3, 29), MIDNIGHT);
        assert_eq!(hours_in(from, to), 23);
        let (from, to) = window(&tz, date(2026, 10, 25), MIDNIGHT);
        assert_eq!(hours_in(from, to), 25);
        // Consecutive windows touch, with any start, across both changes.
        for start in ["00:00", "02:30", "04:00"] {
            let start = parse_day_start(start).unwrap();
            let mut day = date(2026, 3, 27);
            while day < date(2026, 10, 28) {
                let (from, to) = window(&tz, day, start);
                let next = day.succ_opt().unwrap();
                assert_eq!(to, window(&tz, next, start).0, "{day} {start}");
                assert!(to > from);
                assert_eq!(business_date(&tz, from, start), day, "{day} {start}");
                assert_eq!(business_date(&tz, to - 1, start), day, "{day} {start}");
                day = match day {
                    d if d == date(2026, 3, 31) => date(2026, 10, 23),
                    d => d.succ_opt().unwrap(),
                };
            }
        }
    }

    #[test]
    fn a_start_inside_the_spring_gap_is_the_end_of_the_gap() {
        let tz = Cet;
        let start = parse_day_start("02:30").unwrap();
        let (from, _) = window(&tz, date(2026, 3, 29), start);
        // 02:30 does not exist that night: the day starts when the clock shows 03:00.
        assert_eq!(from, SPRING_UTC * 1000);
        // Every instant of the repeated autumn hour belongs to one day only.
        let (from, to) = window(&tz, date(2026, 10, 24), start);
        let (next_from, _) = window(&tz, date(2026, 10, 25), start);
        assert_eq!(to, next_from);
        assert!(to - from == 24 * HOUR_MS);
    }
}
