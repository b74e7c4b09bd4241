//! Timestamps as RFC 3339 UTC, spans as "23h 59m" and now from the one clock, with the
//! civil-date arithmetic done here so the CLI needs no date crate.

use prost_types::Timestamp;
use sessiond::clock::{Clock, SystemClock};

const SECONDS_PER_DAY: i64 = 86_400;

/// Now, in whole seconds since the epoch: what relative times ("in 23h 59m") count from.
pub fn now_seconds() -> i64 {
    i64::try_from(SystemClock.now_ms() / 1000).unwrap_or(i64::MAX)
}

/// `timestamp` in RFC 3339 UTC (`2026-01-01T00:00:00Z`). With `fraction`, sub-second
/// digits follow as protobuf's JSON mapping writes them (none, 3, 6 or 9); without, the
/// time is cut to the second. Outside years 0000..=9999, which RFC 3339 cannot write,
/// it falls back to `@SECONDS` since the epoch.
pub fn rfc3339(timestamp: &Timestamp, fraction: bool) -> String {
    let seconds = timestamp.seconds;
    let (year, month, day) = civil_from_days(seconds.div_euclid(SECONDS_PER_DAY));
    if !(0..=9999).contains(&year) {
        return format!("@{seconds}");
    }
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
    let nanos = if (0..1_000_000_000).contains(&timestamp.nanos) {
        timestamp.nanos
    } else {
        0
    };
    let digits = match nanos {
        _ if !fraction || nanos == 0 => String::new(),
        _ if nanos % 1_000_000 == 0 => format!(".{:03}", nanos / 1_000_000),
        _ if nanos % 1_000 == 0 => format!(".{:06}", nanos / 1_000),
        _ => format!(".{nanos:09}"),
    };
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{digits}Z")
}

/// Days since 1970-01-01 as (year, month 1..=12, day 1..=31) of the proleptic Gregorian
/// calendar: Howard Hinnant's `civil_from_days`. Exact for every `i64` day count that
/// `i64` seconds can produce (no overflow below ±2^62 days).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01, so that leap days end a (400-year) era.
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097); // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
    let month_from_march = (5 * day_of_year + 2) / 153; // 0..=11
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1; // 1..=31
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// How far `seconds` from now lies: "in 23h 59m", "5m 3s ago", or "now".
pub fn relative(seconds: i64) -> String {
    match seconds {
        0 => "now".to_owned(),
        s if s > 0 => format!("in {}", span(s.unsigned_abs())),
        s => format!("{} ago", span(s.unsigned_abs())),
    }
}

/// A length of time in its two largest units: "2d 3h", "23h 59m", "5m 3s", "42s".
pub fn span(seconds: u64) -> String {
    let (days, hours) = (seconds / 86_400, seconds / 3600 % 24);
    let (minutes, secs) = (seconds / 60 % 60, seconds % 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {secs}s")
    } else {
        format!("{secs}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64, nanos: i32) -> Timestamp {
        Timestamp { seconds, nanos }
    }

    #[test]
    fn the_epoch_and_known_dates_format_as_rfc3339() {
        assert_eq!(rfc3339(&at(0, 0), true), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(&at(1_767_225_600, 0), true), "2026-01-01T00:00:00Z");
        assert_eq!(rfc3339(&at(951_782_400, 0), true), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(&at(4_107_542_399, 0), true), "2100-02-28T23:59:59Z");
        assert_eq!(rfc3339(&at(4_107_542_400, 0), true), "2100-03-01T00:00:00Z");
        assert_eq!(rfc3339(&at(-1, 0), true), "1969-12-31T23:59:59Z");
        assert_eq!(
            rfc3339(&at(253_402_300_799, 0), true),
            "9999-12-31T23:59:59Z"
        );
        assert_eq!(
            rfc3339(&at(-62_167_219_200, 0), true),
            "0000-01-01T00:00:00Z"
        );
    }

    #[test]
    fn every_day_of_four_centuries_follows_the_one_before() {
        // 1900..2300 crosses both kinds of century year (2000 leaps, 1900/2100/2200 do not).
        let days_in = |year: i64, month: i64| match month {
            2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let mut expected = (1900, 1, 1);
        for days in -25_567..(-25_567 + 146_097) {
            assert_eq!(civil_from_days(days), expected, "day {days}");
            let (year, month, day) = expected;
            expected = if day < days_in(year, month) {
                (year, month, day + 1)
            } else if month < 12 {
                (year, month + 1, 1)
            } else {
                (year + 1, 1, 1)
            };
        }
    }

    #[test]
    fn fractions_use_the_fewest_digit_groups_and_are_cut_without_fraction() {
        assert_eq!(
            rfc3339(&at(0, 250_000_000), true),
            "1970-01-01T00:00:00.250Z"
        );
        assert_eq!(
            rfc3339(&at(0, 250_000), true),
            "1970-01-01T00:00:00.000250Z"
        );
        assert_eq!(rfc3339(&at(0, 7), true), "1970-01-01T00:00:00.000000007Z");
        assert_eq!(rfc3339(&at(0, 999_000_000), false), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn out_of_range_values_do_not_panic() {
        assert_eq!(rfc3339(&at(i64::MAX, 0), true), format!("@{}", i64::MAX));
        assert_eq!(rfc3339(&at(i64::MIN, 0), true), format!("@{}", i64::MIN));
        assert_eq!(rfc3339(&at(0, -5), true), "1970-01-01T00:00:00Z");
        assert_eq!(
            relative(i64::MIN),
            format!("{} ago", span(i64::MIN.unsigned_abs()))
        );
    }

    #[test]
    fn spans_show_their_two_largest_units() {
        assert_eq!(span(42), "42s");
        assert_eq!(span(5 * 60 + 3), "5m 3s");
        assert_eq!(span(86_399), "23h 59m");
        assert_eq!(span(86_400), "1d 0h");
        assert_eq!(span(30 * 86_400 + 7_200), "30d 2h");
    }

    #[test]
    fn relative_times_say_in_ago_or_now() {
        assert_eq!(relative(86_340), "in 23h 59m");
        assert_eq!(relative(-303), "5m 3s ago");
        assert_eq!(relative(0), "now");
    }
}
