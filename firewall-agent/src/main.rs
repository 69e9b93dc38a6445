//! `firewall-agent`: the daemon (`serve`) and, in the same binary, an `aws ec2`-shaped CLI that
//! talks to it over its Unix socket.

use std::path::PathBuf;

use clap::{CommandFactory as _, Parser, Subcommand};
use firewall_agent::{agent, cli, server};

#[derive(Parser)]
#[command(
    version,
    about = "AWS-style security groups enforced by eBPF on local workloads"
)]
struct Cli {
    /// The agent's control socket.
    #[arg(
        long,
        global = true,
        env = "FIREWALL_AGENT_SOCKET",
        default_value = "/run/firewall-agent.sock"
    )]
    socket: PathBuf,
    /// The region a verb acts in (each region has its own resources); our `local` when absent.
    #[arg(long, global = true, env = "FIREWALL_AGENT_REGION")]
    region: Option<String>,
    /// The account a verb acts in (the EC2 API's keys name theirs); 000000000000 when absent.
    #[arg(long, global = true, env = "FIREWALL_AGENT_ACCOUNT")]
    account_id: Option<String>,
    /// Checks the call would succeed and changes nothing (`DryRunOperation`, exit status 254);
    /// for a change, our preview of what it would do prints on stdout.
    #[arg(long, global = true)]
    dry_run: bool,
    /// As the AWS CLI's: the seconds a verb waits for the agent's answer, 0 for ever; past it
    /// the verb fails (exit status 255) and the change may or may not have been made.
    #[arg(long, global = true, default_value_t = 60)]
    cli_read_timeout: u64,
    /// Output format; like the AWS CLI's default, only `json`.
    #[arg(long, global = true, default_value = "json", value_parser = ["json"])]
    output: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the agent in the foreground.
    Serve(agent::ServeArgs),
    /// Prints a one-time link that signs a browser in to the web console (valid 5 minutes),
    /// minted by the running agent (or, with no agent on the socket, from its credentials file).
    ConsoleUrl(cli::ConsoleUrl),
    #[command(flatten)]
    Generate(cli::Generate),
    #[command(flatten)]
    Verb(cli::Verb),
}

fn main() {
    let mut args = Cli::parse();
    if let Command::Serve(serve) = &mut args.command {
        // Before any thread exists: under `ip netns exec`, back to the host's mount namespace so
        // the bpffs and the pins outlive the agent.
        match firewall_agent::dataplane::leave_private_mount_namespace(&serve.bpffs) {
            Ok(joined) => serve.netns_pins = joined,
            Err(e) => {
                eprintln!("firewall-agent: leaving the private mount namespace: {e}");
                std::process::exit(1);
            }
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let code = match args.command {
        Command::Serve(mut serve) => {
            tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_default_env()
                        .unwrap_or_else(|_| "info".into()),
                )
                .with_writer(std::io::stderr)
                .init();
            serve.socket = args.socket;
            match runtime.block_on(server::serve(serve)) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("firewall-agent: {e:#}");
                    1
                }
            }
        }
        Command::ConsoleUrl(console_url) => runtime.block_on(console_url.run(&args.socket)),
        Command::Generate(generate) => generate.print(Cli::command()),
        Command::Verb(verb) => {
            let scope = cli::CallScope {
                account_id: args.account_id,
                region: args.region,
                dry_run: args.dry_run,
            };
            let timeout = (args.cli_read_timeout > 0)
                .then(|| std::time::Duration::from_secs(args.cli_read_timeout));
            runtime.block_on(cli::run(args.socket, scope, verb, timeout))
        }
    };
    std::process::exit(code);
}
