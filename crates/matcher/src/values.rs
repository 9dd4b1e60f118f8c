//! Compile-time value transformations: windash, UTF-16 and base64 encodings, and the small
//! parsers (CIDR, numbers, timestamps) the matchers need. All of this runs at load, except the
//! parsers, which run on record values and never allocate.

use std::cmp::Ordering;
use std::net::IpAddr;

const DASHES: [char; 5] = ['-', '/', '–', '—', '―'];
/// Most flag positions `windash` may expand (5 variants each).
pub const MAX_WINDASH_POSITIONS: usize = 5;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// pySigma's `windash`: every `-` or `/` not preceded by a word character and followed by
/// one is replaced by each dash variant.
pub fn windash(value: &str) -> Result<Vec<String>, String> {
    let chars: Vec<char> = value.chars().collect();
    let positions: Vec<usize> = (0..chars.len())
        .filter(|&i| {
            (chars[i] == '-' || chars[i] == '/')
                && !(i > 0 && is_word(chars[i - 1]))
                && chars.get(i + 1).is_some_and(|c| is_word(*c))
        })
        .collect();
    if positions.len() > MAX_WINDASH_POSITIONS {
        return Err(format!(
            "windash: {} flag positions would give {} variants (at most {MAX_WINDASH_POSITIONS} positions)",
            positions.len(),
            5usize.saturating_pow(positions.len() as u32)
        ));
    }
    let mut out = vec![chars.clone()];
    for &p in &positions {
        let mut next = Vec::with_capacity(out.len() * 5);
        for v in &out {
            for d in DASHES {
                let mut w = v.clone();
                w[p] = d;
                next.push(w);
            }
        }
        out = next;
    }
    Ok(out.into_iter().map(|v| v.into_iter().collect()).collect())
}

/// UTF-16 little endian bytes.
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// UTF-16 big endian bytes.
pub fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// UTF-16 with a byte order mark (little endian, as pySigma).
pub fn utf16bom(s: &str) -> Vec<u8> {
    let mut v = vec![0xFF, 0xFE];
    v.extend(utf16le(s));
    v
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
pub fn base64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32;
        out.push(B64[(n >> 18) as usize & 63] as char);
        out.push(B64[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            B64[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            B64[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// pySigma's `base64offset`: the value's encodings at byte offsets 0, 1 and 2, cut to the
/// characters that do not depend on neighbouring bytes.
pub fn base64offset(data: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(data);
            let enc = base64(&shifted);
            let cut = END[(data.len() + i) % 3];
            let end = enc.len().saturating_sub(cut);
            enc.get(START[i]..end.max(START[i]))
                .unwrap_or("")
                .to_string()
        })
        .collect()
}

/// An IP network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Parses `10.0.0.0/8`, `fe80::/10` or a single address.
    pub fn parse(s: &str) -> Result<Cidr, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        // Taken as written: no trimming, and the prefix is 1-3 ASCII digits (no sign).
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("'{s}' is not an IP network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) if (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| format!("'{s}': bad prefix length"))?,
            Some(_) => return Err(format!("'{s}': bad prefix length")),
            None => max,
        };
        if prefix > max {
            return Err(format!("'{s}': prefix longer than {max}"));
        }
        Ok(Cidr { addr, prefix })
    }

    /// Is `ip` inside the network?
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                (u32::from(n) & mask) == (u32::from(a) & mask)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                (u128::from(n) & mask) == (u128::from(a) & mask)
            }
            _ => false,
        }
    }
}

/// A number from a rule or a record: integers stay exact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Num {
    /// An integer.
    Int(i128),
    /// Anything with a fraction or exponent.
    Float(f64),
}

/// Parses exactly `[+-]?digits(.digits)?([eE][+-]?digits)?`; nothing else is a number.
pub fn parse_num(s: &str) -> Option<Num> {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i > st
    };
    if matches!(b.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    if !digits(&mut i) {
        return None;
    }
    let mut int = true;
    if b.get(i) == Some(&b'.') {
        i += 1;
        int = false;
        if !digits(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        int = false;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    if int {
        if let Ok(n) = s.parse::<i128>() {
            return Some(Num::Int(n));
        }
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| !f.is_nan())
        .map(Num::Float)
}

fn cmp_int_float(n: i128, f: f64) -> Option<Ordering> {
    if f.is_nan() {
        return None;
    }
    if f >= 1.0e38 {
        return Some(Ordering::Less);
    }
    if f <= -1.0e38 {
        return Some(Ordering::Greater);
    }
    let t = f.trunc();
    match n.cmp(&(t as i128)) {
        Ordering::Equal => {
            let fr = f - t;
            Some(if fr > 0.0 {
                Ordering::Less
            } else if fr < 0.0 {
                Ordering::Greater
            } else {
                Ordering::Equal
            })
        }
        o => Some(o),
    }
}

/// Exact comparison of two numbers.
pub fn cmp_num(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Int(x), Num::Int(y)) => Some(x.cmp(&y)),
        (Num::Float(x), Num::Float(y)) => x.partial_cmp(&y),
        (Num::Int(x), Num::Float(y)) => cmp_int_float(x, y),
        (Num::Float(x), Num::Int(y)) => cmp_int_float(y, x).map(Ordering::reverse),
    }
}

/// A part of a timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimePart {
    /// 0-59.
    Minute,
    /// 0-23.
    Hour,
    /// 1-31.
    Day,
    /// ISO week, 1-53.
    Week,
    /// 1-12.
    Month,
    /// The year.
    Year,
}

fn num2(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at + n)?;
    let mut v = 0i64;
    for c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

fn leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_days(y: i64, m: i64) -> i64 {
    match m {
        2 if leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// ISO 8601 week number of a date.
fn iso_week(y: i64, m: i64, d: i64) -> i64 {
    let days = days_from_civil(y, m, d);
    // 1970-01-01 was a Thursday; ISO weekday 1 = Monday.
    let wd = (days + 3).rem_euclid(7) + 1;
    let thursday = days - wd + 4;
    let mut ty = y;
    if thursday < days_from_civil(y, 1, 1) {
        ty -= 1;
    } else if thursday >= days_from_civil(y + 1, 1, 1) {
        ty += 1;
    }
    (thursday - days_from_civil(ty, 1, 1)) / 7 + 1
}

/// Extracts a part of exactly `YYYY-MM-DD` or
/// `YYYY-MM-DD(T| )HH:MM[:SS[.digits]][Z|(+|-)hh:mm]`, as written (no time-zone conversion).
pub fn time_part(s: &str, part: TimePart) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = num2(b, 0, 4)?;
    let month = num2(b, 5, 2)?;
    let day = num2(b, 8, 2)?;
    if !(1..=12).contains(&month) || day < 1 || day > month_days(year, month) {
        return None;
    }
    let mut time = None;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b' ') || b.get(13) != Some(&b':') {
            return None;
        }
        let h = num2(b, 11, 2)?;
        let mi = num2(b, 14, 2)?;
        if h > 23 || mi > 59 {
            return None;
        }
        let mut i = 16;
        if b.get(i) == Some(&b':') {
            if num2(b, i + 1, 2)? > 60 {
                return None;
            }
            i += 3;
            if b.get(i) == Some(&b'.') {
                let n = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                i += 1 + n;
            }
        }
        let tz_ok = match &b[i..] {
            [] | [b'Z'] => true,
            [b'+' | b'-', _, _, b':', _, _] => {
                matches!((num2(b, i + 1, 2), num2(b, i + 4, 2)), (Some(th), Some(tm)) if th <= 23 && tm <= 59)
            }
            _ => false,
        };
        if !tz_ok {
            return None;
        }
        time = Some((h, mi));
    }
    match part {
        TimePart::Year => Some(year),
        TimePart::Month => Some(month),
        TimePart::Day => Some(day),
        TimePart::Week => Some(iso_week(year, month, day)),
        TimePart::Hour => time.map(|t| t.0),
        TimePart::Minute => time.map(|t| t.1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windash_replaces_flag_dashes_only() {
        let v = windash(" /n ").unwrap();
        assert_eq!(v, vec![" -n ", " /n ", " –n ", " —n ", " ―n "]);
        assert_eq!(windash("a-b").unwrap(), vec!["a-b"]);
        assert_eq!(windash("-a -b").unwrap().len(), 25);
        assert!(windash("-a -b -c -d -e -f").is_err());
    }

    #[test]
    fn base64_known_values() {
        assert_eq!(base64(b"cmd"), "Y21k");
        assert_eq!(base64(b"ab"), "YWI=");
        // pySigma's documented example: base64offset of 'http://'.
        assert_eq!(
            base64offset(b"http://"),
            vec!["aHR0cDovL", "h0dHA6Ly", "odHRwOi8v"]
        );
        assert_eq!(utf16le("cmd"), vec![0x63, 0, 0x6d, 0, 0x64, 0]);
        assert_eq!(utf16be("cmd"), vec![0, 0x63, 0, 0x6d, 0, 0x64]);
        assert_eq!(utf16bom("c"), vec![0xFF, 0xFE, 0x63, 0]);
    }

    #[test]
    fn cidr() {
        let n = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.1.2.3".parse().unwrap()));
        let n6 = Cidr::parse("fe80::/10").unwrap();
        assert!(n6.contains("fe80::1".parse().unwrap()));
        assert!(!n6.contains("10.1.2.3".parse().unwrap()));
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("1.2.3.4".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_err());
    }

    #[test]
    fn time_parts() {
        let t = "2024-02-05T13:45:10.123Z";
        assert_eq!(time_part(t, TimePart::Year), Some(2024));
        assert_eq!(time_part(t, TimePart::Month), Some(2));
        assert_eq!(time_part(t, TimePart::Day), Some(5));
        assert_eq!(time_part(t, TimePart::Hour), Some(13));
        assert_eq!(time_part(t, TimePart::Minute), Some(45));
        assert_eq!(time_part(t, TimePart::Week), Some(6));
        assert_eq!(time_part("2021-01-03", TimePart::Week), Some(53));
        assert_eq!(time_part("2026-12-31 00:00", TimePart::Week), Some(53));
        assert_eq!(time_part("2024-12-30", TimePart::Week), Some(1));
        assert_eq!(time_part("nope", TimePart::Year), None);
        assert_eq!(time_part("2023-02-29", TimePart::Year), None);
        assert_eq!(
            time_part("2024-02-05T13:45:10+01:00", TimePart::Hour),
            Some(13)
        );
        assert_eq!(time_part("2024-02-05t13:45", TimePart::Hour), None);
        assert_eq!(time_part("2024-02-05", TimePart::Hour), None);
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(parse_num("12"), Some(Num::Int(12)));
        assert_eq!(parse_num("-1.5e2"), Some(Num::Float(-150.0)));
        for bad in ["", " 1", "1 ", "inf", "nan", "0x10", ".5", "5.", "+", "1e"] {
            assert_eq!(parse_num(bad), None, "{bad}");
        }
        let big = Num::Int(9007199254740993);
        assert_eq!(
            cmp_num(big, Num::Float(9007199254740992.0)),
            Some(Ordering::Greater)
        );
        assert_eq!(cmp_num(Num::Int(1), Num::Float(1.0)), Some(Ordering::Equal));
        assert_eq!(cmp_num(Num::Float(0.5), Num::Int(1)), Some(Ordering::Less));
    }
}
