//! SigV4 verification: the AWS test-suite vectors, requests botocore signed, and the AWS code of
//! each way a signature fails.

use std::path::Path;
use std::time::Duration;

use super::*;

/// The AWS SigV4 test suite's key, date and scope.
const SUITE_KEY: &str = "AKIDEXAMPLE";
const SUITE_SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const SUITE_DATE: &str = "20150830T123600Z";
/// 2015-08-30T12:36:00Z.
const SUITE_UNIX: u64 = 1_440_938_160;

fn at(offset_secs: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(SUITE_UNIX.checked_add_signed(offset_secs).unwrap())
}

fn store(access_key: &str, secret: &str) -> Credentials {
    Credentials::parse(
        &format!(
            "[suite]\naws_access_key_id={access_key}\naws_secret_access_key={secret}\n\
             aws_account_id=123456789012\n"
        ),
        Path::new("test"),
    )
    .unwrap()
}

fn suite_store() -> Credentials {
    store(SUITE_KEY, SUITE_SECRET)
}

const GET_VANILLA_AUTHORIZATION: &str = "AWS4-HMAC-SHA256 \
    Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
    SignedHeaders=host;x-amz-date, \
    Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31";

/// The test suite's `get-vanilla`, with its `Authorization` replaced.
fn get_vanilla(authorization: &str, now: SystemTime) -> Result<Caller, AuthError> {
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
        ("Authorization", authorization),
    ];
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    verify(&request, &suite_store(), now)
}

fn ec2_reply(result: Result<Caller, AuthError>) -> (&'static str, u16) {
    let reply = result.unwrap_err().reply(Service::Ec2);
    (reply.code, reply.status)
}

#[test]
fn suite_get_vanilla_verifies() {
    let caller = get_vanilla(GET_VANILLA_AUTHORIZATION, at(0)).unwrap();
    assert_eq!(
        caller,
        Caller {
            access_key: SUITE_KEY.to_owned(),
            account_id: "123456789012".to_owned(),
            region: "us-east-1".to_owned(),
            service: "service".to_owned(),
        }
    );
}

#[test]
fn suite_post_x_www_form_urlencoded_verifies_the_body() {
    let authorization = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date, \
        Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a";
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
        ("Content-Length", "13"),
        ("Authorization", authorization),
    ];
    let mut request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"Param1=value1",
    };
    assert!(verify(&request, &suite_store(), at(0)).is_ok());

    request.body = b"Param1=value2";
    let err = verify(&request, &suite_store(), at(0)).unwrap_err();
    assert!(matches!(err, AuthError::SignatureMismatch { .. }));
}

/// Signed by botocore 1.43's `SigV4Auth` (the AWS CLI's signer) for `ec2` in `eu-west-1`
/// at the suite's date, as the CLI sends it to `--endpoint-url http://127.0.0.1:8787`.
#[test]
fn botocore_ec2_post_verifies_with_the_port_in_host() {
    let authorization = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/eu-west-1/ec2/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date, \
        Signature=856024ebc1f1f6f105deb00f846bb4d4834fc8c6f92019044178a56f06cf4a8a";
    let headers = [
        ("host", "127.0.0.1:8787"),
        (
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("x-amz-date", SUITE_DATE),
        ("user-agent", "aws-cli/1.43 (unsigned, may change)"),
        ("authorization", authorization),
    ];
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"Action=DescribeSecurityGroups&Version=2016-11-15&GroupId.1=sg-0123456789abcdef0",
    };
    let caller = verify(&request, &suite_store(), at(0)).unwrap();
    assert_eq!(
        (caller.region.as_str(), caller.service.as_str()),
        ("eu-west-1", "ec2")
    );
    assert_eq!(caller.account_id, "123456789012");
}

/// Signed by botocore 1.43 for `sts` with a session token, which it adds and signs.
#[test]
fn botocore_sts_post_verifies_with_a_signed_security_token() {
    let authorization = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/eu-west-1/sts/aws4_request, \
        SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, \
        Signature=2749a360282dedfac26d05a62684a7e97374bac478b232444a1187d350f5b716";
    let headers = [
        ("Host", "127.0.0.1:8787"),
        (
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("X-Amz-Date", SUITE_DATE),
        ("X-Amz-Security-Token", "FQoGZXIvYXdzEXAMPLETOKEN"),
        ("Authorization", authorization),
    ];
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"Action=GetCallerIdentity&Version=2011-06-15",
    };
    let caller = verify(&request, &suite_store(), at(0)).unwrap();
    assert_eq!(caller.service, "sts");
}

#[test]
fn header_values_are_trimmed_and_inner_white_space_collapsed() {
    // The suite's `get-header-value-trim`.
    let authorization = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
        SignedHeaders=host;my-header1;my-header2;x-amz-date, \
        Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736";
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("My-Header1", " value1"),
        ("My-Header2", " \"a   b   c\""),
        ("X-Amz-Date", SUITE_DATE),
        ("Authorization", authorization),
    ];
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    assert!(verify(&request, &suite_store(), at(0)).is_ok());
}

#[test]
fn the_query_string_is_canonicalised_sorted() {
    assert_eq!(canonical_query(""), "");
    assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
    assert_eq!(canonical_query("p"), "p=");
    assert_eq!(canonical_query("k=a%20b+c&%7E=~"), "k=a%20b%2Bc&~=~");
}

#[test]
fn a_wrong_secret_is_signature_does_not_match() {
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
        ("Authorization", GET_VANILLA_AUTHORIZATION),
    ];
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let err = verify(&request, &store(SUITE_KEY, "not-the-secret"), at(0)).unwrap_err();
    let reply = err.reply(Service::Ec2);
    assert_eq!((reply.code, reply.status), ("SignatureDoesNotMatch", 403));
    assert!(reply.message.starts_with(
        "The request signature we calculated does not match the signature you provided."
    ));
    assert!(!format!("{err} {err:?} {}", reply.message).contains("not-the-secret"));
}

#[test]
fn an_unknown_access_key_is_auth_failure_for_ec2_and_invalid_client_token_id_for_sts() {
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
        ("Authorization", GET_VANILLA_AUTHORIZATION),
    ];
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let err = verify(&request, &store("AKIAOTHER", SUITE_SECRET), at(0)).unwrap_err();
    assert_eq!(
        err,
        AuthError::UnknownAccessKey {
            access_key: SUITE_KEY.to_owned()
        }
    );
    let ec2 = err.reply(Service::Ec2);
    assert_eq!((ec2.code, ec2.status), ("AuthFailure", 401));
    assert_eq!(
        ec2.message,
        "AWS was not able to validate the provided access credentials"
    );
    let sts = err.reply(Service::Sts);
    assert_eq!((sts.code, sts.status), ("InvalidClientTokenId", 403));
}

#[test]
fn no_authorization_header_is_auth_failure() {
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("X-Amz-Date", SUITE_DATE),
    ];
    let request = SignedRequest {
        method: "POST",
        path: "/",
        query: "",
        headers: &headers,
        body: b"Action=DescribeSecurityGroups",
    };
    let err = verify(&request, &suite_store(), at(0)).unwrap_err();
    assert_eq!(err, AuthError::MissingAuthorization);
    assert_eq!(ec2_reply(Err(err.clone())), ("AuthFailure", 401));
    let sts = err.reply(Service::Sts);
    assert_eq!((sts.code, sts.status), ("MissingAuthenticationToken", 403));
}

#[test]
fn the_date_may_be_fifteen_minutes_off_either_way_and_no_more() {
    assert!(get_vanilla(GET_VANILLA_AUTHORIZATION, at(15 * 60)).is_ok());
    assert!(get_vanilla(GET_VANILLA_AUTHORIZATION, at(-15 * 60)).is_ok());

    let late = get_vanilla(GET_VANILLA_AUTHORIZATION, at(15 * 60 + 1));
    assert!(matches!(late, Err(AuthError::Expired { .. })));
    assert_eq!(ec2_reply(late.clone()), ("RequestExpired", 400));
    let sts = late.unwrap_err().reply(Service::Sts);
    assert_eq!((sts.code, sts.status), ("SignatureDoesNotMatch", 403));
    assert_eq!(
        sts.message,
        "Signature expired: 20150830T123600Z is now earlier than 20150830T123601Z \
         (20150830T125101Z - 15 min.)"
    );

    let early = get_vanilla(GET_VANILLA_AUTHORIZATION, at(-15 * 60 - 1));
    assert!(matches!(early, Err(AuthError::NotYetCurrent { .. })));
    assert_eq!(ec2_reply(early), ("RequestExpired", 400));
}

#[test]
fn the_scope_date_must_be_the_x_amz_date_date() {
    let authorization = GET_VANILLA_AUTHORIZATION.replace("/20150830/", "/20150831/");
    let result = get_vanilla(&authorization, at(0));
    assert!(matches!(result, Err(AuthError::ScopeDateMismatch { .. })));
    assert_eq!(ec2_reply(result), ("SignatureDoesNotMatch", 403));
}

#[test]
fn host_must_be_signed() {
    let authorization = GET_VANILLA_AUTHORIZATION
        .replace("SignedHeaders=host;x-amz-date", "SignedHeaders=x-amz-date");
    let result = get_vanilla(&authorization, at(0));
    assert_eq!(result, Err(AuthError::HostNotSigned));
    assert_eq!(ec2_reply(result), ("IncompleteSignature", 400));
}

#[test]
fn a_signed_header_missing_from_the_request_is_incomplete_signature() {
    let authorization = GET_VANILLA_AUTHORIZATION.replace(
        "SignedHeaders=host;x-amz-date",
        "SignedHeaders=host;x-amz-date;x-amz-security-token",
    );
    let result = get_vanilla(&authorization, at(0));
    assert_eq!(
        result,
        Err(AuthError::SignedHeaderAbsent {
            name: "x-amz-security-token".to_owned()
        })
    );
    assert_eq!(ec2_reply(result), ("IncompleteSignature", 400));
}

#[test]
fn a_malformed_authorization_header_is_incomplete_signature_naming_what_is_missing() {
    let without_signature = "AWS4-HMAC-SHA256 \
        Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
        SignedHeaders=host;x-amz-date";
    let err = get_vanilla(without_signature, at(0)).unwrap_err();
    assert_eq!(
        err,
        AuthError::MissingParameters {
            missing: vec!["Signature"]
        }
    );
    let reply = err.reply(Service::Ec2);
    assert_eq!((reply.code, reply.status), ("IncompleteSignature", 400));
    assert_eq!(
        reply.message,
        "Authorization header requires 'Signature' parameter."
    );

    let cases = [
        ("AWS4-HMAC-SHA256", "MissingParameters"),
        ("AWS AKIDEXAMPLE:c2lnbmF0dXJl", "UnsupportedAlgorithm"),
        ("AWS4-HMAC-SHA256 Credential", "MalformedParameter"),
        (
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service, \
             SignedHeaders=host;x-amz-date, Signature=00",
            "MalformedCredential",
        ),
    ];
    for (authorization, expected) in cases {
        let err = get_vanilla(authorization, at(0)).unwrap_err();
        assert!(
            format!("{err:?}").starts_with(expected),
            "{authorization}: {err:?}"
        );
        assert_eq!(err.reply(Service::Ec2).code, "IncompleteSignature");
    }
}

#[test]
fn a_signature_that_is_not_hex_is_signature_does_not_match() {
    let authorization = GET_VANILLA_AUTHORIZATION.replace("Signature=5fa0", "Signature=zz");
    let result = get_vanilla(&authorization, at(0));
    assert_eq!(ec2_reply(result), ("SignatureDoesNotMatch", 403));
}

#[test]
fn x_amz_date_is_required_and_must_be_a_real_time() {
    let headers = [
        ("Host", "example.amazonaws.com"),
        ("Authorization", GET_VANILLA_AUTHORIZATION),
    ];
    let request = SignedRequest {
        method: "GET",
        path: "/",
        query: "",
        headers: &headers,
        body: b"",
    };
    let result = verify(&request, &suite_store(), at(0));
    assert_eq!(result, Err(AuthError::MissingDate));
    assert_eq!(ec2_reply(result), ("IncompleteSignature", 400));

    for bad in [
        "2015-08-30T12:36:00Z",
        "20150230T123600Z",
        "20150830T243600Z",
    ] {
        assert_eq!(parse_amz_date(bad), None, "{bad}");
    }
}

#[test]
fn amz_dates_convert_both_ways() {
    assert_eq!(parse_amz_date(SUITE_DATE), Some(SUITE_UNIX as i64));
    assert_eq!(format_amz_date(SUITE_UNIX as i64), SUITE_DATE);
    assert_eq!(parse_amz_date("19700101T000000Z"), Some(0));
    assert_eq!(parse_amz_date("20240229T235959Z"), Some(1_709_251_199));
}
