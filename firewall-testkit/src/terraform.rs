//! Terraform (the machine image's, with HashiCorp's AWS provider from its local mirror through
//! the CLI configuration `cargo xtask setup` writes) run inside a test's namespace against an
//! agent's EC2 endpoint, as a user runs it: `init`, `apply`, `plan -detailed-exitcode`,
//! `destroy`.
//!
//! Each [`Terraform`] works in a temporary directory of its own (removed on drop, kept with its
//! logs when the test panics) holding `provider.tf` (the endpoint and the key pair, nothing
//! else but the metadata check skipped) and the configuration under test. Terraform runs with a
//! cleared environment, its upgrade check off, inside the namespace: nothing leaves it.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    aws::{ACCESS_KEY_ID, SECRET_ACCESS_KEY},
    netns::Netns,
    shell::unique,
};

/// How long one Terraform command may take before it is killed (`timeout`, exit status 124).
const TIMEOUT_SECS: &str = "600";

/// The CLI configuration (`FIREWALL_TERRAFORM_CONFIG`, set by `cargo xtask test`).
pub fn cli_config() -> PathBuf {
    std::env::var_os("FIREWALL_TERRAFORM_CONFIG")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/terraform/cli.tfrc")
        })
}

/// The configurations the tests apply (`tests/terraform/`).
pub fn configurations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/terraform")
}

/// One Terraform command's exit status and output.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A working directory with a provider block for one endpoint and region.
pub struct Terraform {
    dir: PathBuf,
    ns: String,
}

impl Terraform {
    /// A directory whose `provider.tf` points at `http://127.0.0.1:<port>` in `region`.
    pub fn new(ns: &Netns, port: u16, region: &str) -> Terraform {
        let dir = std::env::temp_dir().join(unique("fw-tf-"));
        std::fs::create_dir_all(&dir).expect("terraform dir");
        let endpoint = format!("http://127.0.0.1:{port}");
        let provider = format!(
            r#"terraform {{
  required_providers {{
    aws = {{ source = "hashicorp/aws", version = "5.100.0" }}
  }}
}}

provider "aws" {{
  region                  = "{region}"
  access_key              = "{ACCESS_KEY_ID}"
  secret_key              = "{SECRET_ACCESS_KEY}"
  skip_metadata_api_check = true
  endpoints {{
    ec2 = "{endpoint}"
    sts = "{endpoint}"
  }}
}}
"#
        );
        std::fs::write(dir.join("provider.tf"), provider).expect("provider.tf");
        Terraform {
            dir,
            ns: ns.name.clone(),
        }
    }

    /// Copies the configuration `name` of `tests/terraform/` in as `main.tf`.
    pub fn configuration(&self, name: &str) {
        let from = configurations().join(name);
        std::fs::copy(&from, self.dir.join("main.tf"))
            .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }

    /// `terraform ARGS…` inside the namespace.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.ns,
                "timeout",
                TIMEOUT_SECS,
                "terraform",
            ])
            .args(args)
            .current_dir(&self.dir)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.dir)
            .env("TF_CLI_CONFIG_FILE", cli_config())
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("running terraform");
        Run {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `terraform ARGS… -var NAME=VALUE…`, which must succeed.
    pub fn must(&self, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all: Vec<&str> = args.to_vec();
        for var in &vars {
            all.extend(["-var", var.as_str()]);
        }
        let run = self.run(&all);
        assert_eq!(run.status, 0, "terraform {all:?}: {run}");
        run
    }

    pub fn init(&self) {
        self.must(&["init", "-no-color"], &[]);
    }

    pub fn apply(&self, vars: &[(&str, &str)]) -> Run {
        self.must(&["apply", "-auto-approve", "-no-color"], vars)
    }

    /// `plan -detailed-exitcode`: 0 when there is nothing to change, 2 when there is.
    pub fn plan(&self, vars: &[(&str, &str)]) -> Run {
        let vars: Vec<String> = vars.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut all = vec!["plan", "-detailed-exitcode", "-no-color"];
        for var in &vars {
            all.extend(["-var", var.as_str()]);
        }
        self.run(&all)
    }

    pub fn destroy(&self, vars: &[(&str, &str)]) -> Run {
        self.must(&["destroy", "-auto-approve", "-no-color"], vars)
    }

    /// `terraform output -json`.
    pub fn outputs(&self) -> serde_json::Value {
        let run = self.must(&["output", "-json"], &[]);
        serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {run}"))
    }
}

impl Drop for Terraform {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("terraform files kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
