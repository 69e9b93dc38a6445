//! The key store: the access keys the EC2 front end accepts, read from a file in the AWS
//! shared-credentials format (`~/.aws/credentials`), so the same file can serve the agent and,
//! copied, the AWS CLI or boto3.
//!
//! Each section (profile) holds `aws_access_key_id`, `aws_secret_access_key` and, our
//! addition, `aws_account_id` (12 digits, default [`DEFAULT_ACCOUNT_ID`]): the account the
//! key's caller acts as. Other keys (`aws_session_token`, `region`, …) are ignored. Values are
//! taken literally: no quotes, no backslash escapes, as botocore reads them.
//!
//! A secret never appears in `Debug` output or in an error message.

use std::collections::HashMap;
use std::fmt;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use ini::{Ini, ParseOption};
use rand::Rng;

/// The account of a key whose profile names none.
pub const DEFAULT_ACCOUNT_ID: &str = crate::api::Scope::DEFAULT_ACCOUNT;

const ACCESS_KEY_ID: &str = "aws_access_key_id";
const SECRET_ACCESS_KEY: &str = "aws_secret_access_key";
const ACCOUNT_ID: &str = "aws_account_id";

/// AWS long-term access key IDs: `AKIA` and 16 upper-case letters and digits.
const ACCESS_KEY_PREFIX: &str = "AKIA";
const ACCESS_KEY_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ACCESS_KEY_RANDOM_LEN: usize = 16;
/// AWS secret access keys: 40 characters of the base64 alphabet.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const SECRET_LEN: usize = 40;

/// What went wrong reading or creating a credentials file. Each names the file, and the
/// profile where there is one; none carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("credentials file {}: line {}, column {}: {}", path.display(), source.line, source.col, source.msg)]
    Syntax {
        path: PathBuf,
        source: ini::ParseError,
    },
    #[error("credentials file {}: holds no profile", path.display())]
    Empty { path: PathBuf },
    #[error("credentials file {}: keys outside any [profile] section", path.display())]
    OutsideProfile { path: PathBuf },
    #[error("credentials file {}: profile [{profile}] has no {key}", path.display())]
    MissingKey {
        path: PathBuf,
        profile: String,
        key: &'static str,
    },
    #[error("credentials file {}: profile [{profile}]: {ACCOUNT_ID} {value:?} is not 12 digits", path.display())]
    InvalidAccountId {
        path: PathBuf,
        profile: String,
        value: String,
    },
    #[error("credentials file {}: profile [{profile}] repeats access key {access_key}", path.display())]
    DuplicateAccessKey {
        path: PathBuf,
        profile: String,
        access_key: String,
    },
}

/// One access key's secret and the account its caller acts as.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    secret: String,
    account_id: String,
}

impl Key {
    /// The secret access key: only for computing signatures, never for printing.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The 12-digit account ID the key's caller acts as.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// A digest of the secret and the account, which tells this version of the key from a
    /// rotated one without keeping the secret (a console session remembers it).
    pub fn fingerprint(&self) -> [u8; 32] {
        use sha2::{Digest as _, Sha256};
        let mut hash = Sha256::new();
        hash.update(self.secret.as_bytes());
        hash.update([0]);
        hash.update(self.account_id.as_bytes());
        hash.finalize().into()
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("secret", &"<redacted>")
            .field("account_id", &self.account_id)
            .finish()
    }
}

/// The keys the front end accepts, by access key ID.
#[derive(Clone)]
pub struct Credentials {
    keys: HashMap<String, Key>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Key`'s own `Debug` redacts the secret.
        f.debug_map().entries(self.keys.iter()).finish()
    }
}

impl Credentials {
    /// Reads a shared-credentials file. Every profile must hold both an access key ID and a
    /// secret, an access key ID may appear only once, and the file must hold a profile.
    pub fn load(path: &Path) -> Result<Credentials, CredentialsError> {
        let text = std::fs::read_to_string(path).map_err(|source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        })?;
        Credentials::parse(&text, path)
    }

    /// Writes a new credentials file holding one `[default]` profile with a random key pair
    /// in AWS's formats and the account [`DEFAULT_ACCOUNT_ID`], and returns its keys. The
    /// file is created with mode 0600; an existing file is an error, never overwritten.
    pub fn create(path: &Path) -> Result<Credentials, CredentialsError> {
        let mut rng = rand::rng();
        let access_key = format!(
            "{ACCESS_KEY_PREFIX}{}",
            random_string(&mut rng, ACCESS_KEY_ALPHABET, ACCESS_KEY_RANDOM_LEN)
        );
        let secret = random_string(&mut rng, SECRET_ALPHABET, SECRET_LEN);
        let text = format!(
            "[default]\n{ACCESS_KEY_ID} = {access_key}\n{SECRET_ACCESS_KEY} = {secret}\n\
             {ACCOUNT_ID} = {DEFAULT_ACCOUNT_ID}\n"
        );
        let io = |source| CredentialsError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        let key = Key {
            secret,
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
        };
        Ok(Credentials {
            keys: HashMap::from([(access_key, key)]),
        })
    }

    /// The key of an access key ID, if the store holds it.
    pub fn key(&self, access_key: &str) -> Option<&Key> {
        self.keys.get(access_key)
    }

    /// The access key IDs the store holds, in no particular order (they are not secret).
    pub fn access_keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Parses the text of a credentials file; `path` only names it in errors.
    pub(crate) fn parse(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
        let literal = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            ..ParseOption::default()
        };
        let ini =
            Ini::load_from_str_opt(text, literal).map_err(|source| CredentialsError::Syntax {
                path: path.to_owned(),
                source,
            })?;
        let mut keys = HashMap::new();
        for (section, properties) in ini.iter() {
            let Some(profile) = section else {
                if properties.is_empty() {
                    continue;
                }
                return Err(CredentialsError::OutsideProfile {
                    path: path.to_owned(),
                });
            };
            let value = |key: &'static str| match properties.get(key).map(str::trim) {
                Some(value) if !value.is_empty() => Ok(value),
                _ => Err(CredentialsError::MissingKey {
                    path: path.to_owned(),
                    profile: profile.to_owned(),
                    key,
                }),
            };
            let access_key = value(ACCESS_KEY_ID)?;
            let secret = value(SECRET_ACCESS_KEY)?;
            let account_id = match properties.get(ACCOUNT_ID).map(str::trim) {
                None => DEFAULT_ACCOUNT_ID,
                Some(id) if id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()) => id,
                Some(id) => {
                    return Err(CredentialsError::InvalidAccountId {
                        path: path.to_owned(),
                        profile: profile.to_owned(),
                        value: id.to_owned(),
                    });
                }
            };
            let key = Key {
                secret: secret.to_owned(),
                account_id: account_id.to_owned(),
            };
            if keys.insert(access_key.to_owned(), key).is_some() {
                return Err(CredentialsError::DuplicateAccessKey {
                    path: path.to_owned(),
                    profile: profile.to_owned(),
                    access_key: access_key.to_owned(),
                });
            }
        }
        if keys.is_empty() {
            return Err(CredentialsError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Credentials { keys })
    }
}

fn random_string(rng: &mut impl Rng, alphabet: &[u8], len: usize) -> String {
    (0..len)
        .map(|_| char::from(alphabet[rng.random_range(0..alphabet.len())]))
        .collect()
}

#[cfg(test)]
#[path = "credentials_tests.rs"]
mod tests;
