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

    #[derive(Default)]
    pub struct SeqIds(u64);

    impl SeqIds {
        /// Continues after `n` IDs.
        pub fn at(n: u64) -> SeqIds {
            SeqIds(n)
        }
    }

    impl IdSource for SeqIds {
        fn next_id(&mut self, prefix: &str) -> String {
            self.0 += 1;
            format!("{prefix}-{:017x}", self.0)
        }
        fn now(&mut self) -> String {
            "2026-01-01T00:00:00+00:00".into()
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
}
