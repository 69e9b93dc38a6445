//! Verification of AWS Signature Version 4 as the EC2 and STS clients sign a request: in the
//! `Authorization` header,
//!
//! ```text
//! Authorization: AWS4-HMAC-SHA256 Credential=AKID/YYYYMMDD/REGION/SERVICE/aws4_request,
//!     SignedHeaders=content-type;host;x-amz-date, Signature=<64 hex digits>
//! ```
//!
//! with the time in `X-Amz-Date: YYYYMMDDTHHMMSSZ`. Verifying is re-signing: rebuild the
//! canonical request from exactly the headers named in `SignedHeaders`, derive the signing key
//! from the secret, and compare the signatures in constant time.
//!
//! - Canonical request: the method, the canonical path, the canonical query string, one
//!   `name:value` line per signed header (name lower-cased, value trimmed with inner runs of
//!   white space collapsed to one space, repeated headers joined with `,`), a blank line, the
//!   `SignedHeaders` list, and the hex SHA-256 of the raw body bytes (hash before form-decoding).
//! - String to sign: `AWS4-HMAC-SHA256`, the `X-Amz-Date`, the credential scope
//!   `date/region/service/aws4_request` and the hex SHA-256 of the canonical request, one a line.
//! - Signing key: HMAC-SHA256 chained from `"AWS4" + secret` over the date, the region, the
//!   service and `aws4_request`.
//!
//! `host` must be signed (it carries the port: `127.0.0.1:8787`), the scope's date must be the
//! `X-Amz-Date`'s date, and the `X-Amz-Date` must lie within 15 minutes of now either way. A
//! signed `X-Amz-Security-Token` is just another signed header. This module knows no HTTP
//! library: the handler hands it a [`SignedRequest`] of plain strings.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
use crate::{api::Service, model::ids::civil_from_days};

type HmacSha256 = Hmac<Sha256>;

/// The only algorithm SigV4 header signing uses.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The last element of every SigV4 credential scope.
const TERMINATOR: &str = "aws4_request";
/// How far the `X-Amz-Date` may lie from now, either way, in seconds.
const MAX_SKEW_SECS: i64 = 15 * 60;

/// An HTTP request as received, with only what SigV4 signs.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The method, e.g. `POST`.
    pub method: &'a str,
    /// The path as received, still percent-encoded; EC2 and STS clients send `/`.
    pub path: &'a str,
    /// The query string as received without the `?`; empty for EC2 and STS clients.
    pub query: &'a str,
    /// Every header as received, names in any case, repeated names repeated.
    pub headers: &'a [(&'a str, &'a str)],
    /// The raw body bytes, before any decoding.
    pub body: &'a [u8],
}

/// Who signed a verified request, from its credential scope and the key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub access_key: String,
    /// The account the key acts as, from the key store.
    pub account_id: String,
    /// The region the request was signed for, e.g. `us-east-1`.
    pub region: String,
    /// The service the request was signed for: `ec2`, or `sts` for `GetCallerIdentity`.
    pub service: String,
}

/// An authentication failure as AWS answers it: the error code, the HTTP status, the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: &'static str,
    pub status: u16,
    pub message: String,
}

/// Why a request's signature was not accepted. `Display` is for our logs; [`AuthError::reply`]
/// gives what AWS would answer. Neither ever holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the request has no Authorization header")]
    MissingAuthorization,
    #[error("the Authorization header's algorithm is {algorithm:?}, not {ALGORITHM}")]
    UnsupportedAlgorithm { algorithm: String },
    #[error("the Authorization header lacks {}", missing.join(", "))]
    MissingParameters { missing: Vec<&'static str> },
    #[error("the Authorization header's {parameter:?} is not a key=value pair")]
    MalformedParameter { parameter: String },
    #[error("the credential {credential:?} is not AKID/YYYYMMDD/region/service/aws4_request")]
    MalformedCredential { credential: String },
    #[error("host is not among the signed headers")]
    HostNotSigned,
    #[error("the signed header {name:?} is not in the request")]
    SignedHeaderAbsent { name: String },
    #[error("the request has no X-Amz-Date header")]
    MissingDate,
    #[error("the X-Amz-Date {value:?} is not YYYYMMDDTHHMMSSZ")]
    MalformedDate { value: String },
    #[error("the credential scope's date {scope_date} is not the X-Amz-Date's {amz_date}")]
    ScopeDateMismatch {
        scope_date: String,
        amz_date: String,
    },
    #[error("unknown access key {access_key}")]
    UnknownAccessKey { access_key: String },
    #[error("the X-Amz-Date {amz_date} is more than 15 minutes before now ({})", format_amz_date(*now))]
    Expired { amz_date: String, now: i64 },
    #[error("the X-Amz-Date {amz_date} is more than 15 minutes after now ({})", format_amz_date(*now))]
    NotYetCurrent { amz_date: String, now: i64 },
    #[error("the signature does not match for access key {access_key}")]
    SignatureMismatch { access_key: String },
}

const SIGNATURE_DOES_NOT_MATCH: &str = "The request signature we calculated does not match the \
     signature you provided. Check your AWS Secret Access Key and signing method.";

impl AuthError {
    /// What AWS answers, in the vocabulary of `service` (the handler knows it from the action:
    /// `GetCallerIdentity` is STS, everything else EC2).
    pub fn reply(&self, service: Service) -> Reply {
        let (code, status, message) = match (self, service) {
            (AuthError::MissingAuthorization, Service::Ec2) => (
                "AuthFailure",
                401,
                "AWS was not able to validate the provided access credentials".to_owned(),
            ),
            (AuthError::MissingAuthorization, Service::Sts) => (
                "MissingAuthenticationToken",
                403,
                "Request is missing Authentication Token".to_owned(),
            ),
            (AuthError::UnsupportedAlgorithm { algorithm }, _) => (
                "IncompleteSignature",
                400,
                format!("Unsupported AWS 'algorithm': '{algorithm}'."),
            ),
            (AuthError::MissingParameters { missing }, _) => (
                "IncompleteSignature",
                400,
                missing
                    .iter()
                    .map(|p| format!("Authorization header requires '{p}' parameter."))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            (AuthError::MalformedParameter { parameter }, _) => (
                "IncompleteSignature",
                400,
                format!(
                    "'{parameter}' not a valid key=value pair (missing equal-sign) in \
                     Authorization header."
                ),
            ),
            (AuthError::MalformedCredential { credential }, _) => (
                "IncompleteSignature",
                400,
                format!(
                    "Credential '{credential}' should be of the form \
                     'AKID/YYYYMMDD/region/service/{TERMINATOR}'."
                ),
            ),
            (AuthError::HostNotSigned, _) => (
                "IncompleteSignature",
                400,
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".to_owned(),
            ),
            (AuthError::SignedHeaderAbsent { name }, _) => (
                "IncompleteSignature",
                400,
                format!("The signed header '{name}' is not in the request."),
            ),
            (AuthError::MissingDate, _) => (
                "IncompleteSignature",
                400,
                "Authorization header requires existence of a 'X-Amz-Date' header.".to_owned(),
            ),
            (AuthError::MalformedDate { value }, _) => (
                "IncompleteSignature",
                400,
                format!("X-Amz-Date '{value}' is not of the form YYYYMMDD'T'HHMMSS'Z'."),
            ),
            (
                AuthError::ScopeDateMismatch {
                    scope_date,
                    amz_date,
                },
                _,
            ) => (
                "SignatureDoesNotMatch",
                403,
                format!(
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of \
                     date from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                    &amz_date[..8]
                ),
            ),
            (AuthError::UnknownAccessKey { .. }, Service::Ec2) => (
                "AuthFailure",
                401,
                "AWS was not able to validate the provided access credentials".to_owned(),
            ),
            (AuthError::UnknownAccessKey { .. }, Service::Sts) => (
                "InvalidClientTokenId",
                403,
                "The security token included in the request is invalid.".to_owned(),
            ),
            (AuthError::Expired { .. } | AuthError::NotYetCurrent { .. }, Service::Ec2) => {
                ("RequestExpired", 400, "Request has expired.".to_owned())
            }
            (AuthError::Expired { amz_date, now }, Service::Sts) => (
                "SignatureDoesNotMatch",
                403,
                format!(
                    "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
                    format_amz_date(now - MAX_SKEW_SECS),
                    format_amz_date(*now)
                ),
            ),
            (AuthError::NotYetCurrent { amz_date, now }, Service::Sts) => (
                "SignatureDoesNotMatch",
                403,
                format!(
                    "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
                    format_amz_date(now + MAX_SKEW_SECS),
                    format_amz_date(*now)
                ),
            ),
            (AuthError::SignatureMismatch { .. }, _) => (
                "SignatureDoesNotMatch",
                403,
                SIGNATURE_DOES_NOT_MATCH.to_owned(),
            ),
        };
        Reply {
            code,
            status,
            message,
        }
    }
}

/// Verifies the request's SigV4 signature against the key store at time `now`, and says who
/// signed it.
pub fn verify(
    request: &SignedRequest<'_>,
    credentials: &Credentials,
    now: SystemTime,
) -> Result<Caller, AuthError> {
    let authorization = header(request, "authorization").ok_or(AuthError::MissingAuthorization)?;
    let authorization = Authorization::parse(&authorization)?;
    let signed: Vec<&str> = authorization.signed_headers.split(';').collect();
    if !signed.iter().any(|name| name.eq_ignore_ascii_case("host")) {
        return Err(AuthError::HostNotSigned);
    }
    let amz_date = header(request, "x-amz-date").ok_or(AuthError::MissingDate)?;
    let signed_at = parse_amz_date(&amz_date).ok_or_else(|| AuthError::MalformedDate {
        value: amz_date.clone(),
    })?;
    let scope = &authorization.scope;
    if scope.date != &amz_date[..8] {
        return Err(AuthError::ScopeDateMismatch {
            scope_date: scope.date.to_owned(),
            amz_date,
        });
    }
    let canonical = canonical_request(request, &signed, authorization.signed_headers)?;

    let key = credentials
        .key(scope.access_key)
        .ok_or_else(|| AuthError::UnknownAccessKey {
            access_key: scope.access_key.to_owned(),
        })?;
    let now = unix_seconds(now);
    if signed_at < now - MAX_SKEW_SECS {
        return Err(AuthError::Expired { amz_date, now });
    }
    if signed_at > now + MAX_SKEW_SECS {
        return Err(AuthError::NotYetCurrent { amz_date, now });
    }

    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/{TERMINATOR}\n{}",
        scope.date,
        scope.region,
        scope.service,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mismatch = || AuthError::SignatureMismatch {
        access_key: scope.access_key.to_owned(),
    };
    let provided = hex::decode(authorization.signature).map_err(|_| mismatch())?;
    let mut mac = hmac(&signing_key(key.secret(), scope), &[]);
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&provided).map_err(|_| mismatch())?;

    Ok(Caller {
        access_key: scope.access_key.to_owned(),
        account_id: key.account_id().to_owned(),
        region: scope.region.to_owned(),
        service: scope.service.to_owned(),
    })
}

/// The parameters of an `Authorization: AWS4-HMAC-SHA256 …` header.
struct Authorization<'h> {
    scope: Scope<'h>,
    signed_headers: &'h str,
    signature: &'h str,
}

/// `Credential=AKID/YYYYMMDD/region/service/aws4_request`, split.
struct Scope<'h> {
    access_key: &'h str,
    date: &'h str,
    region: &'h str,
    service: &'h str,
}

impl<'h> Authorization<'h> {
    fn parse(header: &'h str) -> Result<Authorization<'h>, AuthError> {
        let header = header.trim();
        let (algorithm, parameters) = header.split_once(' ').unwrap_or((header, ""));
        if algorithm != ALGORITHM {
            return Err(AuthError::UnsupportedAlgorithm {
                algorithm: algorithm.to_owned(),
            });
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for parameter in parameters.split(',').map(str::trim) {
            if parameter.is_empty() {
                continue;
            }
            let (name, value) =
                parameter
                    .split_once('=')
                    .ok_or_else(|| AuthError::MalformedParameter {
                        parameter: parameter.to_owned(),
                    })?;
            match name.trim() {
                "Credential" => credential = Some(value.trim()),
                "SignedHeaders" => signed_headers = Some(value.trim()),
                "Signature" => signature = Some(value.trim()),
                _ => {}
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            let missing = [
                ("Credential", credential),
                ("Signature", signature),
                ("SignedHeaders", signed_headers),
            ]
            .into_iter()
            .filter(|(_, value)| value.is_none())
            .map(|(name, _)| name)
            .collect();
            return Err(AuthError::MissingParameters { missing });
        };
        Ok(Authorization {
            scope: Scope::parse(credential)?,
            signed_headers,
            signature,
        })
    }
}

impl<'h> Scope<'h> {
    fn parse(credential: &'h str) -> Result<Scope<'h>, AuthError> {
        let malformed = || AuthError::MalformedCredential {
            credential: credential.to_owned(),
        };
        let parts: Vec<&str> = credential.split('/').collect();
        let [access_key, date, region, service, terminator] = parts[..] else {
            return Err(malformed());
        };
        let date_ok = date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit());
        let named = [access_key, region, service].iter().all(|s| !s.is_empty());
        if !date_ok || !named || terminator != TERMINATOR {
            return Err(malformed());
        }
        Ok(Scope {
            access_key,
            date,
            region,
            service,
        })
    }
}

/// The values of every header called `name` (any case), joined with `,`, or `None`.
fn header(request: &SignedRequest<'_>, name: &str) -> Option<String> {
    let values: Vec<&str> = request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A header value trimmed, inner runs of white space collapsed to one space.
fn trim_all(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn canonical_request(
    request: &SignedRequest<'_>,
    signed: &[&str],
    signed_headers: &str,
) -> Result<String, AuthError> {
    let mut headers = String::new();
    for name in signed {
        let lower = name.to_ascii_lowercase();
        let values: Vec<String> = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(&lower))
            .map(|(_, v)| trim_all(v))
            .collect();
        if values.is_empty() {
            return Err(AuthError::SignedHeaderAbsent { name: lower });
        }
        headers.push_str(&format!("{lower}:{}\n", values.join(",")));
    }
    Ok(format!(
        "{}\n{}\n{}\n{headers}\n{signed_headers}\n{}",
        request.method,
        canonical_path(request.path),
        canonical_query(request.query),
        hex::encode(Sha256::digest(request.body))
    ))
}

/// The path URI-encoded as received (so `%` becomes `%25`, as botocore does for every service
/// but S3), `/` kept; an empty path is `/`.
fn canonical_path(path: &str) -> String {
    if path.is_empty() {
        return "/".to_owned();
    }
    uri_encode(path.as_bytes(), true)
}

/// The query's `name=value` pairs decoded, re-encoded the SigV4 way, sorted by name then value
/// and joined with `&`; a bare `name` is `name=`.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (
                uri_encode(&percent_decode(name), false),
                uri_encode(&percent_decode(value), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// SigV4's URI encoding: every byte but the unreserved `A-Z a-z 0-9 - _ . ~` (and `/` if
/// `keep_slash`) as `%XX`, upper-case hex.
fn uri_encode(bytes: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept as it is. `+` is not a space.
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| {
            std::str::from_utf8(h)
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        });
        match (bytes[i], hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn hmac(key: &[u8], data: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac
}

/// HMAC("AWS4" + secret, date) → region → service → "aws4_request".
fn signing_key(secret: &str, scope: &Scope<'_>) -> Vec<u8> {
    [scope.date, scope.region, scope.service, TERMINATOR]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac(&key, part.as_bytes()).finalize().into_bytes().to_vec()
        })
}

/// Seconds since the Unix epoch, negative before it.
fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// `YYYYMMDDTHHMMSSZ` as seconds since the Unix epoch, if it is that and a real date.
fn parse_amz_date(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0, |n, digit| n * 10 + i64::from(digit - b'0'))
        })
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(4..6)?, digits(6..8)?);
    let (hour, minute, second) = (digits(9..11)?, digits(11..13)?, digits(13..15)?);
    let days = days_from_civil(year, month, day);
    if civil_from_days(days) != (year, month, day) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    Some(days * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Seconds since the Unix epoch as `YYYYMMDDTHHMMSSZ`.
fn format_amz_date(secs: i64) -> String {
    let (days, secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
#[path = "sigv4_tests.rs"]
mod tests;
