//! Resource IDs (where new ones come from, and the formats AWS checks) and timestamps.

use crate::api::{ApiError, ApiResult};

/// Where new resource IDs come from (random in the agent, deterministic in tests).
pub trait IdSource {
    /// A new ID such as `sg-0123456789abcdef0` for the prefix `sg`.
    fn next_id(&mut self, prefix: &str) -> String;
    /// The current time in RFC 3339, for launch times.
    fn now(&mut self) -> String;
}

/// IDs as AWS makes them: the prefix and 17 random lowercase hex digits.
pub struct RandomIds;

impl IdSource for RandomIds {
    fn next_id(&mut self, prefix: &str) -> String {
        let n: u128 = rand::random();
        format!("{prefix}-{:017x}", n & ((1u128 << 68) - 1))
    }
    fn now(&mut self) -> String {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        rfc3339(secs)
    }
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS+00:00` (what the AWS CLI prints).
pub fn rfc3339(secs: u64) -> String {
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Seconds since the epoch of a time [`rfc3339`] wrote (`Z` is taken for `+00:00`); `None`
/// for any other shape.
pub fn parse_rfc3339(time: &str) -> Option<u64> {
    let time = time
        .strip_suffix("+00:00")
        .or_else(|| time.strip_suffix('Z'))?;
    let (date, clock) = time.split_once('T')?;
    let number = |s: &str| s.parse::<i64>().ok();
    let mut date = date.splitn(3, '-').map(number);
    let (year, month, day) = (date.next()??, date.next()??, date.next()??);
    let mut clock = clock.splitn(3, ':').map(number);
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    let valid = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..61).contains(&second);
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    valid.then(|| u64::try_from(secs).ok()).flatten()
}

/// The day since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// days-from-civil, the inverse of [`civil_from_days`]).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian `(year, month, day)` of a day since 1970-01-01 (Howard Hinnant's
/// civil-from-days).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
pub mod testing {
    //! Deterministic IDs for tests.
    use super::IdSource;

    /// Sequential IDs, and a clock that stands still at 2026-01-01T00:00:00Z until a test
    /// moves it ([`SeqIds::advance`]).
    #[derive(Default)]
    pub struct SeqIds {
        issued: u64,
        elapsed_secs: u64,
    }

    /// 2026-01-01T00:00:00Z.
    const START: u64 = 1_767_225_600;

    impl SeqIds {
        /// Continues after `n` IDs.
        pub fn at(n: u64) -> SeqIds {
            SeqIds {
                issued: n,
                elapsed_secs: 0,
            }
        }
        /// Moves the clock `secs` on.
        pub fn advance(&mut self, secs: u64) {
            self.elapsed_secs += secs;
        }
    }

    impl IdSource for SeqIds {
        fn next_id(&mut self, prefix: &str) -> String {
            self.issued += 1;
            format!("{prefix}-{:017x}", self.issued)
        }
        fn now(&mut self) -> String {
            super::rfc3339(START + self.elapsed_secs)
        }
    }

    /// A tiny deterministic generator (xorshift) for seeded random sequences, so a failing
    /// sequence can be replayed from its seed.
    pub struct Seeded(u64);

    impl Seeded {
        pub fn new(seed: u64) -> Seeded {
            Seeded(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }

        /// A number in `0..n` (0 when `n` is 0).
        pub fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n.max(1) as u64) as usize
        }

        pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
            (!items.is_empty()).then(|| &items[self.below(items.len())])
        }
    }
}

/// `sg-` and 8 or 17 lowercase hex digits.
pub fn check_group_id_format(id: &str) -> ApiResult<()> {
    check_id_format(id, "sg", "InvalidGroupId.Malformed", "security group ID")
}

pub fn check_id_format(id: &str, prefix: &str, code: &str, what: &str) -> ApiResult<()> {
    let ok = id
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('-'))
        .is_some_and(|hex| {
            (hex.len() == 8 || hex.len() == 17)
                && hex
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            code,
            format!("The {what} '{id}' is malformed"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(rfc3339(1_795_000_000), "2026-11-18T11:06:40+00:00");
    }

    #[test]
    fn a_time_written_reads_back_to_the_same_second() {
        for secs in [0, 951_782_400, 1_767_225_600, 1_796_460_523, 4_102_444_799] {
            assert_eq!(
                parse_rfc3339(&rfc3339(secs)),
                Some(secs),
                "{}",
                rfc3339(secs)
            );
        }
        assert_eq!(parse_rfc3339("2026-01-01T00:00:00Z"), Some(1_767_225_600));
        for bad in [
            "",
            "2026-01-01",
            "2026-13-01T00:00:00Z",
            "2026-01-01T24:00:00Z",
            "x-y-zTa:b:cZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }
}
