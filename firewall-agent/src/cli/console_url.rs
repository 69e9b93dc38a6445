//! `firewall-agent console-url`: a one-time link that signs a browser in to the web console.
//! The running agent mints it, over its root-only socket, for a key of the credentials it serves
//! with (whatever `--credentials` it was started with); only when no agent answers on the socket
//! is the credentials file read here (`--credentials`, by default the state directory's).

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::{
    client::{self, ClientError},
    front::{console::sign_in_url, ec2::credentials::Credentials},
    server::CONSOLE_URL_PATH,
};

/// The options of `console-url`.
#[derive(clap::Args, Debug)]
pub struct ConsoleUrl {
    /// Read when no agent answers on the socket: the agent's credentials file (its
    /// `--credentials`, or `credentials` in its state directory).
    #[arg(long, default_value = "/var/lib/firewall-agent/credentials")]
    pub credentials: PathBuf,
    /// The key to sign in with (needed when the credentials hold several).
    #[arg(long)]
    pub access_key_id: Option<String>,
    /// The console's address as the browser reaches it (default: the agent's `--ec2-listen`;
    /// 127.0.0.1:8787 when the file is read).
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl ConsoleUrl {
    /// Prints the link; the exit status.
    pub async fn run(&self, socket: &Path) -> i32 {
        let mut request = json!({});
        if let Some(key) = &self.access_key_id {
            request["AccessKeyId"] = json!(key);
        }
        if let Some(endpoint) = &self.endpoint {
            request["Endpoint"] = json!(endpoint);
        }
        let url = match client::post(socket, CONSOLE_URL_PATH, &request).await {
            Ok(Ok(answer)) => answer["Url"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| format!("the agent answered no Url: {answer}")),
            Ok(Err(error)) => Err(error.message),
            // No agent here: the file, as the agent would read it.
            Err(ClientError::Connect { .. }) => self.minted_from_the_file(),
            Err(e) => Err(e.to_string()),
        };
        match url {
            Ok(url) => {
                println!("{url}");
                0
            }
            Err(e) => {
                eprintln!("firewall-agent console-url: {e}");
                1
            }
        }
    }

    fn minted_from_the_file(&self) -> Result<String, String> {
        let keys = Credentials::load(&self.credentials).map_err(|e| {
            format!("no agent answers on the socket, and its credentials file can't be read: {e}")
        })?;
        let endpoint = self.endpoint.as_deref().unwrap_or("127.0.0.1:8787");
        sign_in_url(&keys, self.access_key_id.as_deref(), endpoint)
    }
}
