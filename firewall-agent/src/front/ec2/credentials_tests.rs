//! The key store: shared-credentials files as botocore reads them, the errors that name the
//! profile, and created key pairs readable only by their owner.

use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::front::ec2::keys::{Keys, Reloaded};

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
        assert!(matches!(&err, CredentialsError::InvalidAccountId { value, .. } if value == bad));
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

// The keys in force under a running agent (`keys.rs`): reloads.

fn write(path: &Path, keys: &[(&str, &str)]) {
    let text: String = keys
        .iter()
        .enumerate()
        .map(|(i, (id, secret))| {
            format!("[p{i}]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n")
        })
        .collect();
    // A new file renamed over the old one, as editors and `install` do.
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

#[test]
fn a_rotated_removed_and_added_key_are_each_reported_and_in_force_after_a_reload() {
    let dir = TempPath::new("rotated");
    let path = dir.file();
    write(&path, &[("AKIAONE", "one"), ("AKIATWO", "two")]);
    let keys = Keys::new(Credentials::load(&path).expect("load"), &path);
    let one = keys.fingerprint("AKIAONE").expect("in force");
    assert!(keys.reload_if_changed().is_none(), "unchanged: no reload");

    write(&path, &[("AKIAONE", "rotated"), ("AKIATHREE", "three")]);
    let reloaded = keys.reload_if_changed().expect("changed").expect("parses");
    assert_eq!(
        reloaded,
        Reloaded {
            added: vec!["AKIATHREE".into()],
            removed: vec!["AKIATWO".into()],
            changed: vec!["AKIAONE".into()],
        }
    );
    assert!(keys.get().key("AKIATWO").is_none());
    assert!(
        !keys.still_valid("AKIAONE", &one),
        "the old secret's sessions end"
    );
    assert!(keys.reload_if_changed().is_none());
}

#[test]
fn a_file_that_no_longer_parses_keeps_the_keys_in_force() {
    let dir = TempPath::new("broken");
    let path = dir.file();
    write(&path, &[("AKIAONE", "one")]);
    let keys = Keys::new(Credentials::load(&path).expect("load"), &path);
    std::fs::write(&path, "[broken]\naws_access_key_id = AKIAONE\n").expect("write");
    assert!(keys.reload().is_err());
    assert!(keys.get().key("AKIAONE").is_some());
}
