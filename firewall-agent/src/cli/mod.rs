//! The `aws ec2`-shaped command line: each verb's options become its typed request
//! (`requests`, `params`), the call goes to the agent over its socket, and the answer prints as
//! the AWS CLI prints it (4-space indented JSON; errors as `An error occurred (Code) when calling
//! the X operation: …` on stderr with exit status 254).

mod args;
mod args_instances;
mod args_network;
mod console_url;
mod generate;
#[cfg(test)]
mod golden_tests;
mod params;
mod requests;
mod requests_instances;
mod requests_network;
mod shorthand;
#[cfg(test)]
mod tests;

use std::path::PathBuf;

use serde_json::{Value, json};

pub use self::args::Verb;
pub use self::console_url::ConsoleUrl;
pub use self::generate::Generate;
use self::params::ParamError;
pub use self::requests::{Failure, request};
use crate::{
    api::{ApiError, Call},
    client,
};

/// Exit status of the AWS CLI when the service returns an error.
pub const EXIT_SERVICE_ERROR: i32 = 254;
/// Exit status of the AWS CLI for bad command-line parameters.
pub const EXIT_PARAMETER_ERROR: i32 = 252;

/// JSON as the AWS CLI prints it (4-space indentation).
pub fn to_aws_json(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    serde::Serialize::serialize(value, &mut serializer).expect("serialising a Value cannot fail");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Runs a verb against the agent; returns the process exit status.
pub async fn run(
    socket: PathBuf,
    scope: CallScope,
    verb: Verb,
    read_timeout: Option<std::time::Duration>,
) -> i32 {
    let call = match requests::request(&verb).and_then(|call| scope.apply(call)) {
        Ok(call) => call,
        Err(Failure {
            error: ParamError::Options(e),
            ..
        }) => {
            eprintln!("\n{e:#}\n");
            return EXIT_PARAMETER_ERROR;
        }
        Err(Failure {
            action,
            error: ParamError::Api(error),
        }) => return service_error(action, &error),
    };
    match client::call_within(&socket, &call, read_timeout).await {
        Ok(Ok(answer)) => {
            // Like the AWS CLI, an empty response prints nothing.
            if let Some(ruleset) = answer.get("Ruleset").and_then(Value::as_str) {
                print!("{ruleset}");
            } else if answer != json!({}) {
                println!("{}", to_aws_json(&answer));
            }
            0
        }
        Ok(Err(error)) => service_error(call.action.name, &error),
        Err(e) => {
            eprintln!("\n{e}\n");
            255
        }
    }
}

/// The account and region of `--account-id` and `--region`; absent, the default account and
/// our `local` region. With `--dry-run`, the call only checks (and previews) the change.
#[derive(Debug, Default)]
pub struct CallScope {
    pub account_id: Option<String>,
    pub region: Option<String>,
    pub dry_run: bool,
}

impl CallScope {
    fn apply(&self, mut call: Call) -> Result<Call, Failure> {
        let action = call.action.name;
        call.dry_run |= self.dry_run;
        call.in_scope(self.account_id.as_deref(), self.region.as_deref())
            .map_err(|error| Failure {
                action,
                error: ParamError::Api(error),
            })
    }
}

/// Prints an error as the AWS CLI prints the service's errors; a dry run's preview (ours)
/// first, on stdout, as `{"Preview": …}`.
fn service_error(action: &str, error: &ApiError) -> i32 {
    if let Some(preview) = &error.preview {
        let preview = serde_json::to_value(preview).unwrap_or_default();
        println!("{}", to_aws_json(&json!({ "Preview": preview })));
    }
    eprintln!(
        "\nAn error occurred ({}) when calling the {action} operation: {}",
        error.code, error.message
    );
    EXIT_SERVICE_ERROR
}
