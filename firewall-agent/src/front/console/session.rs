//! The console's sign-in state: sessions (a random token in an `HttpOnly`, `SameSite=Strict`
//! cookie, with a CSRF token of their own that every API request must echo in a header), and
//! the one-time sign-in links `firewall-agent console-url` prints.
//!
//! A link carries an access key ID, an expiry, a random nonce and an HMAC-SHA256 of the three
//! under the key's secret: whoever can read the credentials file can make one, nobody else can.
//! The agent accepts each nonce once (it remembers used nonces until their link expires).
//! Sessions live in memory: a restart signs everyone out.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::front::ec2::credentials::{Credentials, Key};

/// The cookie holding the session token.
pub const COOKIE: &str = "fw_console";
/// The header every API request carries the session's CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// How long a sign-in link is valid.
pub const LINK_LIFETIME: Duration = Duration::from_secs(300);
/// The most sessions held at once; beyond it the oldest goes.
const MAX_SESSIONS: usize = 1024;
/// What a link's signature covers, before its fields.
const LINK_CONTEXT: &str = "firewall-agent console sign-in";

/// A signed-in browser: the key it signed in with and the account that key acts in.
#[derive(Clone, Debug)]
pub struct Session {
    pub access_key: String,
    pub account_id: String,
    pub csrf: String,
    /// The version of the key it signed in with ([`Key::fingerprint`]): the session ends when
    /// the key is removed or rotated.
    pub key_fingerprint: [u8; 32],
    expires: SystemTime,
}

#[derive(Default)]
struct Inner {
    sessions: HashMap<String, Session>,
    /// Nonces of links already used, with their links' expiry.
    used_nonces: HashMap<String, SystemTime>,
}

/// Why a sign-in was refused (the message is shown; it never names the secret).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

const BAD_KEY: Refused = Refused("The access key ID or the secret access key is not valid.");
const BAD_LINK: Refused = Refused("This sign-in link is not valid.");
const EXPIRED_LINK: Refused =
    Refused("This sign-in link has expired: run `firewall-agent console-url` again.");
const USED_LINK: Refused =
    Refused("This sign-in link was already used: run `firewall-agent console-url` again.");

/// The sessions of one console.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

/// 32 random bytes as hex.
fn token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Equal, in time that depends only on the lengths.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn link_signature(secret: &str, access_key: &str, expires: u64, nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{LINK_CONTEXT}\n{access_key}\n{expires}\n{nonce}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The query string of a sign-in link for `access_key` (whose secret is `secret`), valid for
/// [`LINK_LIFETIME`] from `now`.
pub fn link_query(access_key: &str, secret: &str, now: SystemTime) -> String {
    let expires = (now + LINK_LIFETIME)
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let signature = link_signature(secret, access_key, expires, &nonce);
    format!("key={access_key}&expires={expires}&nonce={nonce}&signature={signature}")
}

impl Sessions {
    /// A new session for `access_key` if `secret` is its secret.
    pub fn sign_in(
        &self,
        credentials: &Credentials,
        access_key: &str,
        secret: &str,
    ) -> Result<(String, Session), Refused> {
        let key = credentials.key(access_key).ok_or(BAD_KEY)?;
        if !same(key.secret().as_bytes(), secret.as_bytes()) {
            return Err(BAD_KEY);
        }
        Ok(self.open(access_key, key))
    }

    /// A new session from a sign-in link's fields, each nonce once.
    pub fn sign_in_with_link(
        &self,
        credentials: &Credentials,
        fields: &HashMap<String, String>,
        now: SystemTime,
    ) -> Result<(String, Session), Refused> {
        let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or("");
        let access_key = field("key");
        let key = credentials.key(access_key).ok_or(BAD_LINK)?;
        let expires: u64 = field("expires").parse().map_err(|_| BAD_LINK)?;
        let expiry = UNIX_EPOCH + Duration::from_secs(expires);
        // A link from later than a fresh one's lifetime (with a minute of clock skew) is forged.
        if expiry <= now || expiry > now + LINK_LIFETIME + Duration::from_secs(60) {
            return Err(EXPIRED_LINK);
        }
        let nonce = field("nonce");
        let expected = link_signature(key.secret(), access_key, expires, nonce);
        if nonce.len() != 32 || !same(expected.as_bytes(), field("signature").as_bytes()) {
            return Err(BAD_LINK);
        }
        {
            let mut inner = self.inner.lock().expect("sessions lock");
            inner.used_nonces.retain(|_, until| *until > now);
            if inner.used_nonces.contains_key(nonce) {
                return Err(USED_LINK);
            }
            inner.used_nonces.insert(nonce.to_string(), expiry);
        }
        Ok(self.open(access_key, key))
    }

    fn open(&self, access_key: &str, key: &Key) -> (String, Session) {
        let now = SystemTime::now();
        let session = Session {
            access_key: access_key.to_string(),
            account_id: key.account_id().to_string(),
            key_fingerprint: key.fingerprint(),
            csrf: token(),
            expires: now + SESSION_LIFETIME,
        };
        let id = token();
        let mut inner = self.inner.lock().expect("sessions lock");
        inner.sessions.retain(|_, s| s.expires > now);
        if inner.sessions.len() >= MAX_SESSIONS {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                inner.sessions.remove(&oldest);
            }
        }
        inner.sessions.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session of a `Cookie` header's value, if any.
    pub fn find(&self, cookie_header: Option<&str>) -> Option<Session> {
        let id = session_cookie(cookie_header?)?;
        let inner = self.inner.lock().expect("sessions lock");
        let session = inner.sessions.get(id)?;
        (session.expires > SystemTime::now()).then(|| session.clone())
    }

    /// Ends the session of a `Cookie` header's value.
    pub fn sign_out(&self, cookie_header: Option<&str>) {
        if let Some(id) = cookie_header.and_then(session_cookie) {
            self.inner
                .lock()
                .expect("sessions lock")
                .sessions
                .remove(id);
        }
    }
}

impl Session {
    /// Whether `header` (the request's [`CSRF_HEADER`]) is this session's CSRF token.
    pub fn csrf_matches(&self, header: Option<&str>) -> bool {
        header.is_some_and(|h| same(h.as_bytes(), self.csrf.as_bytes()))
    }
}

/// The session token in a `Cookie` header.
fn session_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The `Set-Cookie` value of a new session.
pub fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn credentials() -> Credentials {
        Credentials::parse(
            "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = s3cret\naws_account_id = 123456789012\n",
            std::path::Path::new("test"),
        )
        .expect("credentials")
    }

    fn fields(query: &str) -> HashMap<String, String> {
        form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect()
    }

    #[test]
    fn a_key_pair_signs_in_to_its_account_and_a_wrong_secret_does_not() {
        let sessions = Sessions::default();
        let (id, session) = sessions
            .sign_in(&credentials(), "AKIAEXAMPLE", "s3cret")
            .expect("signed in");
        assert_eq!(session.account_id, "123456789012");
        let cookie = format!("other=1; {COOKIE}={id}");
        assert_eq!(
            sessions.find(Some(&cookie)).expect("live").csrf,
            session.csrf
        );
        assert!(
            sessions
                .sign_in(&credentials(), "AKIAEXAMPLE", "s3creT")
                .is_err()
        );
        assert!(
            sessions
                .sign_in(&credentials(), "AKIAOTHER", "s3cret")
                .is_err()
        );
        sessions.sign_out(Some(&cookie));
        assert!(sessions.find(Some(&cookie)).is_none());
    }

    #[test]
    fn a_sign_in_link_works_once_and_not_after_it_expires_or_is_altered() {
        let sessions = Sessions::default();
        let now = SystemTime::now();
        let query = link_query("AKIAEXAMPLE", "s3cret", now);
        assert!(
            sessions
                .sign_in_with_link(&credentials(), &fields(&query), now)
                .is_ok()
        );
        let again = sessions.sign_in_with_link(&credentials(), &fields(&query), now);
        assert!(again.unwrap_err().0.contains("already used"));
        let fresh = link_query("AKIAEXAMPLE", "s3cret", now);
        let later = now + LINK_LIFETIME + Duration::from_secs(1);
        assert!(
            sessions
                .sign_in_with_link(&credentials(), &fields(&fresh), later)
                .unwrap_err()
                .0
                .contains("expired")
        );
        let forged = link_query("AKIAEXAMPLE", "guess", now);
        assert!(
            sessions
                .sign_in_with_link(&credentials(), &fields(&forged), now)
                .is_err()
        );
    }

    #[test]
    fn the_csrf_token_must_match_exactly() {
        let sessions = Sessions::default();
        let (_, session) = sessions
            .sign_in(&credentials(), "AKIAEXAMPLE", "s3cret")
            .expect("signed in");
        assert!(session.csrf_matches(Some(&session.csrf.clone())));
        assert!(!session.csrf_matches(None));
        assert!(!session.csrf_matches(Some(&session.csrf[1..])));
    }
}
