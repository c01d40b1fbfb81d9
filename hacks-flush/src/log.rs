//! One line per event on stderr, prefixed with a UTC timestamp. Write errors are ignored (a
//! closed stderr must not stop the worker).

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

macro_rules! log {
    ($($t:tt)*) => { $crate::log::line(format_args!($($t)*)) };
}

pub fn line(msg: std::fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{} hacks-flush: {msg}", timestamp(SystemTime::now()));
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn timestamp(t: SystemTime) -> String {
    let ms = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()) as i64;
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day), counting in 400-year
/// eras that start on March 1st so the leap day is the last day of a year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A member as printable text for log lines: UTF-8 with escapes, at most 80 characters.
pub fn show(member: &[u8]) -> String {
    let text = String::from_utf8_lossy(member);
    let mut s: String = text.escape_debug().take(80).collect();
    if text.escape_debug().nth(80).is_some() {
        s.push('…');
    }
    format!("\"{s}\"")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789); // leap day 2000
        assert_eq!(timestamp(t), "2000-02-29T12:34:56.789Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_735_689_599); // last second of 2024
        assert_eq!(timestamp(t), "2024-12-31T23:59:59.000Z");
    }

    #[test]
    fn members_for_logs() {
        assert_eq!(show(b"abc"), "\"abc\"");
        assert_eq!(show(b"a\n\xff"), "\"a\\n\u{fffd}\"");
        assert_eq!(show(&[b'x'; 100]).chars().count(), 83);
    }
}
