//! Timestamps for the time-part modifiers (`minute`, `hour`, `day`, `week`, `month`,
//! `year`): `YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|±hh:mm]` or `YYYY-MM-DD`, parts as written.

use sigmatag_rule::Modifier;

/// The parts of a timestamp as written (no time-zone conversion).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    pub(crate) year: i64,
    pub(crate) month: i64,
    pub(crate) day: i64,
    /// `None` for a date without time.
    pub(crate) hour: Option<i64>,
    /// `None` for a date without time.
    pub(crate) minute: Option<i64>,
}

fn digits(b: &[u8]) -> Option<i64> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Parses the whole text as a timestamp of the accepted shapes (fields range-checked).
pub(crate) fn parse_stamp(s: &str) -> Option<Stamp> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if b.len() == 10 {
        return Some(Stamp {
            year,
            month,
            day,
            hour: None,
            minute: None,
        });
    }
    if b.len() < 16 || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' {
        return None;
    }
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    if hour > 23 || minute > 59 {
        return None;
    }
    let mut rest = &b[16..];
    if rest.first() == Some(&b':') {
        let sec = digits(rest.get(1..3)?)?;
        if sec > 60 {
            return None;
        }
        rest = &rest[3..];
        if rest.first() == Some(&b'.') {
            let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            rest = &rest[1 + n..];
        }
    }
    let tz_ok = match rest {
        [] | [b'Z'] => true,
        [sign, h1, h2, b':', m1, m2] if *sign == b'+' || *sign == b'-' => {
            matches!((digits(&[*h1, *h2]), digits(&[*m1, *m2])), (Some(h), Some(m)) if h <= 23 && m <= 59)
        }
        _ => false,
    };
    tz_ok.then_some(Stamp {
        year,
        month,
        day,
        hour: Some(hour),
        minute: Some(minute),
    })
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// ISO weekday, Monday = 1 ... Sunday = 7.
fn weekday(y: i64, m: i64, d: i64) -> i64 {
    // 1970-01-01 was a Thursday (4).
    (days_from_civil(y, m, d) + 3).rem_euclid(7) + 1
}

/// ISO 8601 weeks in year `y`: 53 when it starts on a Thursday, or is a leap year
/// starting on a Wednesday; otherwise 52.
fn weeks_in_year(y: i64) -> i64 {
    let jan1 = weekday(y, 1, 1);
    if jan1 == 4 || (is_leap(y) && jan1 == 3) {
        53
    } else {
        52
    }
}

/// ISO 8601 week number of a date (1..=53).
pub(crate) fn iso_week(y: i64, m: i64, d: i64) -> i64 {
    let ordinal = days_from_civil(y, m, d) - days_from_civil(y, 1, 1) + 1;
    let week = (ordinal - weekday(y, m, d) + 10) / 7;
    if week < 1 {
        weeks_in_year(y - 1)
    } else if week > weeks_in_year(y) {
        1
    } else {
        week
    }
}

/// The part a time modifier selects, if the stamp has it.
pub(crate) fn part(s: &Stamp, m: Modifier) -> Option<i64> {
    match m {
        Modifier::Year => Some(s.year),
        Modifier::Month => Some(s.month),
        Modifier::Day => Some(s.day),
        Modifier::Week => Some(iso_week(s.year, s.month, s.day)),
        Modifier::Hour => s.hour,
        Modifier::Minute => s.minute,
        _ => None,
    }
}
