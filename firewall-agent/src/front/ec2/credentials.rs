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
#[derive(Clone)]
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
    pub(super) fn parse(text: &str, path: &Path) -> Result<Credentials, CredentialsError> {
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
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn parse(text: &str) -> Result<Credentials, CredentialsError> {
        Credentials::parse(text, Path::new("credentials"))
    }

    /// A path in a fresh directory, removed with it when the guard drops.
    struct TempPath(PathBuf);

    impl TempPath {
        fn new(name: &str) -> TempPath {
            let dir =
                std::env::temp_dir().join(format!("fw-credentials-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempPath(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("credentials")
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn every_profile_is_a_key_and_the_account_defaults_to_zeros() {
        let credentials = parse(&format!(
            "[default]\naws_access_key_id = AKIDEXAMPLE\naws_secret_access_key = {SECRET}\n\
             region = us-east-1\n\n\
             [ops]\naws_access_key_id=AKIAOPS\naws_secret_access_key=other\n\
             aws_account_id=123456789012\n"
        ))
        .unwrap();
        let default = credentials.key("AKIDEXAMPLE").unwrap();
        assert_eq!(default.secret(), SECRET);
        assert_eq!(default.account_id(), DEFAULT_ACCOUNT_ID);
        assert_eq!(
            credentials.key("AKIAOPS").unwrap().account_id(),
            "123456789012"
        );
        assert!(credentials.key("AKIAUNKNOWN").is_none());
        let mut ids: Vec<_> = credentials.access_keys().collect();
        ids.sort();
        assert_eq!(ids, ["AKIAOPS", "AKIDEXAMPLE"]);
    }

    #[test]
    fn values_are_literal_like_botocore_reads_them() {
        let credentials =
            parse("[p]\naws_access_key_id = AK\naws_secret_access_key = \"a\\b\"\n").unwrap();
        assert_eq!(credentials.key("AK").unwrap().secret(), "\"a\\b\"");
    }

    #[test]
    fn a_profile_without_both_keys_is_an_error_naming_it() {
        let err = parse(&format!("[ci]\naws_secret_access_key = {SECRET}\n")).unwrap_err();
        assert!(matches!(
            &err,
            CredentialsError::MissingKey { profile, key: ACCESS_KEY_ID, .. } if profile == "ci"
        ));
        let message = err.to_string();
        assert!(message.contains("[ci]") && message.contains("aws_access_key_id"));
        assert!(!message.contains(SECRET), "{message}");

        let err = parse("[ci]\naws_access_key_id = AK\naws_secret_access_key =\n").unwrap_err();
        assert!(matches!(
            err,
            CredentialsError::MissingKey {
                key: SECRET_ACCESS_KEY,
                ..
            }
        ));
    }

    #[test]
    fn an_account_id_must_be_twelve_digits() {
        for bad in ["12345678901", "1234567890123", "12345678901a"] {
            let err = parse(&format!(
                "[p]\naws_access_key_id=AK\naws_secret_access_key={SECRET}\naws_account_id={bad}\n"
            ))
            .unwrap_err();
            assert!(
                matches!(&err, CredentialsError::InvalidAccountId { value, .. } if value == bad)
            );
            assert!(!err.to_string().contains(SECRET));
        }
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert!(matches!(parse(""), Err(CredentialsError::Empty { .. })));
        assert!(matches!(
            parse("# nothing\n[empty]\n"),
            Err(CredentialsError::MissingKey { .. })
        ));
    }

    #[test]
    fn keys_outside_a_profile_and_repeated_access_keys_are_errors() {
        assert!(matches!(
            parse("aws_access_key_id=AK\n"),
            Err(CredentialsError::OutsideProfile { .. })
        ));
        let twice = "[a]\naws_access_key_id=AK\naws_secret_access_key=s1\n\
                     [b]\naws_access_key_id=AK\naws_secret_access_key=s2\n";
        assert!(matches!(
            parse(twice),
            Err(CredentialsError::DuplicateAccessKey { profile, .. }) if profile == "b"
        ));
    }

    #[test]
    fn debug_output_redacts_the_secret() {
        let credentials = parse(&format!(
            "[p]\naws_access_key_id=AK\naws_secret_access_key={SECRET}\n"
        ))
        .unwrap();
        let debug = format!("{credentials:?}");
        assert!(
            debug.contains("AK") && debug.contains("<redacted>"),
            "{debug}"
        );
        assert!(!debug.contains(SECRET), "{debug}");
    }

    #[test]
    fn load_names_a_missing_file() {
        let dir = TempPath::new("missing");
        let err = Credentials::load(&dir.file()).unwrap_err();
        assert!(matches!(err, CredentialsError::Io { ref path, .. } if *path == dir.file()));
    }

    #[test]
    fn create_writes_an_aws_shaped_key_pair_readable_only_by_its_owner() {
        let dir = TempPath::new("create");
        let created = Credentials::create(&dir.file()).unwrap();
        let mode = std::fs::metadata(dir.file()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let ids: Vec<_> = created.access_keys().collect();
        let [access_key] = ids[..] else {
            panic!("one key expected: {ids:?}")
        };
        assert_eq!(access_key.len(), 20);
        assert!(access_key.starts_with("AKIA"));
        assert!(access_key.bytes().all(|b| ACCESS_KEY_ALPHABET.contains(&b)));
        let key = created.key(access_key).unwrap();
        assert_eq!(key.secret().len(), 40);
        assert!(key.secret().bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        assert_eq!(key.account_id(), DEFAULT_ACCOUNT_ID);

        let loaded = Credentials::load(&dir.file()).unwrap();
        let reloaded = loaded.key(access_key).unwrap();
        assert_eq!(reloaded.secret(), key.secret());
        assert_eq!(reloaded.account_id(), DEFAULT_ACCOUNT_ID);
    }

    #[test]
    fn create_never_overwrites_a_file() {
        let dir = TempPath::new("exists");
        std::fs::write(dir.file(), "keep me").unwrap();
        let err = Credentials::create(&dir.file()).unwrap_err();
        assert!(matches!(
            err,
            CredentialsError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists
        ));
        assert_eq!(std::fs::read_to_string(dir.file()).unwrap(), "keep me");
    }
}
