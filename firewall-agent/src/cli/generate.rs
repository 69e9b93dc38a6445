//! `firewall-agent completions SHELL` and `firewall-agent man`: the shell completion scripts and
//! the man page, generated from the command line itself (clap_complete, clap_mangen), so they
//! always name the verbs and options of the binary that prints them. The Debian package installs
//! what they print (`cargo xtask package`).

use std::io::Write as _;

use clap::Subcommand;
use clap_complete::Shell;
use roff::{Roff, bold, roman};

/// The man page's section: 8, system administration commands and daemons.
pub const MAN_SECTION: &str = "8";

#[derive(Debug, Subcommand)]
pub enum Generate {
    /// Prints the shell's completion script on stdout (bash, zsh, fish, elvish or powershell).
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Prints the man page (roff, section 8) on stdout.
    Man,
}

impl Generate {
    /// Writes the script or page of the command line `cmd` to stdout; returns the exit status.
    pub fn print(&self, cmd: clap::Command) -> i32 {
        let text = match self {
            Generate::Completions { shell } => completions(*shell, cmd),
            Generate::Man => man_page(cmd),
        };
        let mut stdout = std::io::stdout().lock();
        match stdout.write_all(&text).and_then(|()| stdout.flush()) {
            Ok(()) => 0,
            // The reader had enough (`| head`).
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
            Err(e) => {
                eprintln!("firewall-agent: writing to stdout: {e}");
                1
            }
        }
    }
}

/// The completion script of `shell` for `cmd`, completing `cmd`'s own name.
pub fn completions(shell: Shell, mut cmd: clap::Command) -> Vec<u8> {
    let name = cmd.get_name().to_owned();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out
}

/// The top-level man page of `cmd` in section 8 (name, synopsis, description, global options,
/// the verbs), then where the agent keeps its files and the pages to see also.
///
/// clap_mangen names each verb as a page of its own, `firewall-agent-serve(8)`; there is only
/// the top-level page, so the verbs are named in bold instead (`firewall-agent VERB --help`
/// describes each one).
pub fn man_page(cmd: clap::Command) -> Vec<u8> {
    let own_page = format!("{}\\-", cmd.get_name().replace('-', "\\-"));
    let section = format!("({MAN_SECTION})");
    let mut rendered = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(MAN_SECTION)
        .render(&mut rendered)
        .expect("writing to a Vec cannot fail");
    let rendered = String::from_utf8(rendered).expect("clap_mangen writes UTF-8");
    let mut page = String::with_capacity(rendered.len() + 1024);
    for line in rendered.lines() {
        match line
            .strip_prefix(&own_page)
            .and_then(|rest| rest.strip_suffix(&section))
        {
            Some(verb) => page.push_str(&format!("\\fB{verb}\\fR")),
            None => page.push_str(line),
        }
        page.push('\n');
    }
    page.push_str(&files_and_see_also().to_roff());
    page.into_bytes()
}

/// The FILES and SEE ALSO sections (the defaults of `serve` and the package's paths).
fn files_and_see_also() -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["FILES"]);
    for (path, what) in [
        (
            "/var/lib/firewall-agent",
            "The desired state (state.redb) and the EC2 API keys (credentials); serve --state-dir.",
        ),
        (
            "/run/firewall-agent.sock",
            "The control socket the verbs talk to; --socket or FIREWALL_AGENT_SOCKET.",
        ),
        (
            "/sys/fs/bpf/firewall-agent",
            "The pinned eBPF programs, maps and links: enforcement goes on while the agent restarts.",
        ),
        (
            "/usr/lib/cni/firewall-sg",
            "The CNI plugin that puts containers behind security groups.",
        ),
    ] {
        roff.control("TP", [])
            .text([bold(path)])
            .text([roman(what)]);
    }
    roff.control("SH", ["SEE ALSO"]).text([
        bold("systemctl"),
        roman("(1), "),
        bold("ip"),
        roman("(8), "),
        bold("bpftool"),
        roman("(8)"),
    ]);
    roff
}

#[cfg(test)]
mod tests {
    use clap::{Command, Subcommand as _};

    use super::*;
    use crate::cli::Verb;

    /// The verbs and these subcommands under the binary's name, as main.rs assembles them.
    fn command() -> Command {
        Generate::augment_subcommands(Verb::augment_subcommands(
            Command::new("firewall-agent").version("0.1.0"),
        ))
    }

    #[test]
    fn bash_completion_completes_the_verbs_and_their_options() {
        let script = String::from_utf8(completions(Shell::Bash, command())).unwrap();
        assert!(
            script.contains("authorize-security-group-ingress"),
            "{script}"
        );
        assert!(script.contains("--ip-permissions"));
        assert!(
            script
                .contains("complete -F _firewall__agent -o bashdefault -o default firewall-agent")
        );
    }

    #[test]
    fn zsh_and_fish_completions_name_the_binary() {
        let zsh = String::from_utf8(completions(Shell::Zsh, command())).unwrap();
        assert!(zsh.starts_with("#compdef firewall-agent"), "{zsh}");
        let fish = String::from_utf8(completions(Shell::Fish, command())).unwrap();
        assert!(fish.contains("complete -c firewall-agent"), "{fish}");
    }

    #[test]
    fn man_page_is_titled_firewall_agent_in_section_8_and_lists_verbs_and_files() {
        let page = String::from_utf8(man_page(command())).unwrap();
        // Before the title only roff's apostrophe preamble (`.ie`/`.el` lines).
        let first = page
            .lines()
            .find(|line| !line.starts_with(".ie") && !line.starts_with(".el"))
            .unwrap();
        assert!(first.starts_with(".TH firewall-agent 8 "), "{page}");
        assert!(page.contains(".SH NAME\nfirewall\\-agent"), "{page}");
        assert!(page.contains("\\fBauthorize\\-security\\-group\\-ingress\\fR\n"));
        assert!(
            !page.contains("firewall\\-agent\\-authorize"),
            "no page per verb: {page}"
        );
        assert!(page.contains(".SH FILES"));
        assert!(page.contains("/run/firewall\\-agent.sock"));
    }
}
