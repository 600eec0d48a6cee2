//! RFC 3339 timestamps on the hot path: every parsed event reads one, and every event without
//! an id hashes one. The common shapes are read and written here without allocating; anything
//! else goes to chrono, so results (and error messages) are exactly chrono's.

use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, Timelike, Utc};

use super::digits;

/// Parses an RFC 3339 timestamp exactly as `s.parse::<DateTime<Utc>>()` does. The shape
/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, which nearly every tool sends, is read by a fast
/// path; every other input (and every input the fast path doubts) is handed to chrono.
pub fn parse_rfc3339(s: &str) -> Result<DateTime<Utc>, chrono::ParseError> {
    match fast_parse(s.as_bytes()) {
        Some(t) => Ok(t),
        None => s.parse(),
    }
}

fn fast_parse(b: &[u8]) -> Option<DateTime<Utc>> {
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let year = digits(&b[0..4])?;
    let (month, day) = (digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if second > 59 {
        return None; // leap seconds: chrono's rules
    }
    let mut rest = &b[19..];
    let mut nanos = 0;
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = digits(&fraction[..n])? * 10u32.pow(9 - n as u32);
        rest = &fraction[n..];
    }
    let offset_secs = match rest {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };
    let local = NaiveDate::from_ymd_opt(year as i32, month, day)?
        .and_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = local.checked_sub_signed(chrono::Duration::seconds(offset_secs))?;
    Some(utc.and_utc())
}

/// `#[serde(deserialize_with)]` for a `DateTime<Utc>` field: the same values and errors as
/// chrono's own `Deserialize`, through [`parse_rfc3339`]'s fast path and without copying the
/// text when the input lets it be borrowed.
pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
    struct Rfc3339;
    impl serde::de::Visitor<'_> for Rfc3339 {
        type Value = DateTime<Utc>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 formatted date and time string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
            parse_rfc3339(s).map_err(E::custom)
        }
    }
    d.deserialize_str(Rfc3339)
}

/// The first year of an event time d2c accepts (1970, the Unix epoch: no tool reports earlier).
pub const FIRST_YEAR: i32 = 1970;

/// The last year of an event time d2c accepts (9999, the last with four digits in RFC 3339).
/// Far below chrono's own limit (year 262,143), so adding any window or hold to an accepted
/// time cannot overflow.
pub const LAST_YEAR: i32 = 9999;

/// Whether `t` is in the years d2c accepts as an event time ([`FIRST_YEAR`] to [`LAST_YEAR`]).
pub fn in_range(t: DateTime<Utc>) -> bool {
    (FIRST_YEAR..=LAST_YEAR).contains(&t.year())
}

/// `d` as a chrono duration; one too long for chrono (over about 292 million years, e.g. a
/// mistyped setting) is the longest chrono has.
pub fn span(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// `t + d`, or the latest time chrono holds when that overflows. Every due time of a timer is
/// made with this: `DateTime + Duration` panics on overflow, and a panic on a time taken from
/// an event would stop the stage on every restart. A saturated due time is "never".
pub fn later(t: DateTime<Utc>, d: std::time::Duration) -> DateTime<Utc> {
    t.checked_add_signed(span(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A timestamp as text in a stack buffer: what [`format_rfc3339`] returns.
#[derive(Clone, Copy)]
pub struct TimeText {
    buf: [u8; 40],
    len: usize,
}

impl TimeText {
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever written (digits, `-:.TZ+`), so this cannot fail.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

impl fmt::Debug for TimeText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Write for TimeText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

/// `t` as `t.to_rfc3339_opts(SecondsFormat::AutoSi, true)` writes it (`2026-11-28T10:00:00Z`,
/// `…00.250Z`), without allocating for years 0 to 9999. Digits are written straight into the
/// buffer: every record d2c publishes carries two of these per alert, so this is on the path of
/// every incident version.
pub fn format_rfc3339(t: DateTime<Utc>) -> TimeText {
    let mut out = TimeText {
        buf: [0; 40],
        len: 0,
    };
    // The fields of the naive UTC time: `DateTime`'s own accessors each recompute the local
    // time from the offset.
    let t_utc = t.naive_utc();
    let nanos = t_utc.nanosecond();
    let year = t_utc.year();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        // Years outside 0..=9999 and leap seconds: rare, so chrono's allocating formatter.
        if out
            .write_str(&t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
            .is_err()
        {
            // Longer than the buffer: cannot happen for any `DateTime<Utc>` (at most 33 bytes).
            out.len = 0;
        }
        return out;
    }
    // `year` is in 0..=9999, so the cast is exact.
    let fields = [
        (year as u32, 4, b'-'),
        (t_utc.month(), 2, b'-'),
        (t_utc.day(), 2, b'T'),
        (t_utc.hour(), 2, b':'),
        (t_utc.minute(), 2, b':'),
    ];
    let mut at = 0;
    for (value, width, sep) in fields {
        put_digits(&mut out.buf[at..at + width], value);
        out.buf[at + width] = sep;
        at += width + 1;
    }
    put_digits(&mut out.buf[at..at + 2], t_utc.second());
    at += 2;
    let (fraction, width) = match nanos {
        0 => (0, 0),
        n if n % 1_000_000 == 0 => (n / 1_000_000, 3),
        n if n % 1_000 == 0 => (n / 1_000, 6),
        n => (n, 9),
    };
    if width > 0 {
        out.buf[at] = b'.';
        put_digits(&mut out.buf[at + 1..at + 1 + width], fraction);
        at += 1 + width;
    }
    out.buf[at] = b'Z';
    out.len = at + 1;
    out
}

/// Writes `value` as exactly `dst.len()` decimal digits, zero-padded (higher digits dropped).
fn put_digits(dst: &mut [u8], mut value: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// `#[serde(serialize_with)]` for a `DateTime<Utc>` field: the same text as chrono's own
/// `Serialize` (RFC 3339, `AutoSi` fraction, `Z`), written from a stack buffer in one string
/// instead of chrono's character-by-character `collect_str`, which serde_json escapes one
/// character at a time.
pub fn serialize<S: serde::Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(format_rfc3339(*t).as_str())
}

/// [`serialize`] for an `Option<DateTime<Utc>>` field (`None` as chrono's serde writes it: null).
pub fn serialize_opt<S: serde::Serializer>(
    t: &Option<DateTime<Utc>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => serialize(t, s),
        None => s.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A tuple serialised through [`serialize`] and [`serialize_opt`].
    #[derive(serde::Serialize)]
    struct Wrapped(
        #[serde(serialize_with = "serialize")] DateTime<Utc>,
        #[serde(serialize_with = "serialize_opt")] Option<DateTime<Utc>>,
        #[serde(serialize_with = "serialize_opt")] Option<DateTime<Utc>>,
    );

    fn chrono_text(t: DateTime<Utc>) -> String {
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    #[test]
    fn common_shapes_parse_like_chrono() {
        for s in [
            "2026-11-28T10:00:00Z",
            "2026-11-28T10:00:00.5Z",
            "2026-11-28T10:00:00.123456789Z",
            "2026-11-28T11:00:00+01:00",
            "2026-11-28T01:00:00-09:30",
            "2024-02-29T23:59:59.999+00:00",
            "0001-01-01T00:00:00Z",
        ] {
            assert_eq!(
                parse_rfc3339(s).ok(),
                s.parse::<DateTime<Utc>>().ok(),
                "{s}"
            );
            assert!(fast_parse(s.as_bytes()).is_some(), "fast path for {s}");
        }
    }

    #[test]
    fn other_shapes_get_chrono_answers() {
        for s in [
            "2026-11-28 10:00:00Z",
            "2026-11-28t10:00:00z",
            "2026-02-30T10:00:00Z",
            "2026-11-28T10:00:60Z",
            "2026-11-28T10:00:00",
            "2026-11-28T10:00:00.1234567891Z",
            "2026-11-28T10:00:00+0100",
            "2026-11-28T24:00:00Z",
            "garbage",
            "",
        ] {
            assert_eq!(
                parse_rfc3339(s).map_err(|e| e.to_string()),
                s.parse::<DateTime<Utc>>().map_err(|e| e.to_string()),
                "{s}"
            );
        }
    }

    #[test]
    fn later_saturates_instead_of_panicking() {
        let max = DateTime::<Utc>::MAX_UTC;
        let huge = std::time::Duration::from_secs(u64::MAX);
        assert_eq!(later(max, std::time::Duration::from_secs(60)), max);
        assert_eq!(later(DateTime::UNIX_EPOCH, huge), max);
        assert_eq!(span(huge), chrono::Duration::MAX);
        let t = DateTime::UNIX_EPOCH;
        assert_eq!(
            later(t, std::time::Duration::from_secs(90)),
            t + chrono::Duration::seconds(90)
        );
        assert!(in_range(t) && !in_range(t - chrono::Duration::seconds(1)));
        assert!(!in_range(max));
    }

    #[test]
    fn extreme_times_format_like_chrono() {
        for t in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            DateTime::UNIX_EPOCH,
        ] {
            assert_eq!(format_rfc3339(t).as_str(), chrono_text(t));
        }
    }

    proptest! {
        #[test]
        fn formatting_matches_chrono(secs in -62_000_000_000i64..253_000_000_000, nanos in 0u32..1_000_000_000, pick in 0u8..4) {
            let nanos = match pick { 0 => 0, 1 => nanos / 1_000_000 * 1_000_000, 2 => nanos / 1000 * 1000, _ => nanos };
            let t = DateTime::from_timestamp(secs, nanos).unwrap();
            let text = format_rfc3339(t);
            prop_assert_eq!(text.as_str(), chrono_text(t));
            // The serde helpers write exactly what chrono's own `Serialize` writes.
            let ours = serde_json::to_string(&Wrapped(t, Some(t), None)).unwrap();
            let chrono = serde_json::to_string(&(t, Some(t), None::<DateTime<Utc>>)).unwrap();
            prop_assert_eq!(ours, chrono);
        }

        #[test]
        fn parsing_matches_chrono(
            y in 0u32..10000, mo in 0u32..14, d in 0u32..33, h in 0u32..26, mi in 0u32..61,
            s in 0u32..62, frac in proptest::option::of("[0-9]{1,10}"),
            off in prop_oneof![Just("Z".to_string()), "[+-][0-2][0-9]:[0-6][0-9]"],
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let text = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}{off}");
            prop_assert_eq!(
                parse_rfc3339(&text).map_err(|e| e.to_string()),
                text.parse::<DateTime<Utc>>().map_err(|e| e.to_string())
            );
        }
    }
}
