//! Shell integration: completion scripts and the manual page, generated from
//! the parser's own clap definitions so they can never drift from it. Reads
//! no settings and talks to no server.

use std::io::Write as _;

use clap::CommandFactory as _;
use clap_complete::Shell;

use crate::args::Cli;
use crate::error::Error;

/// The name the scripts complete (the binary's).
const BIN: &str = "fpaste";

/// `fpaste completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> Result<(), Error> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
    write_stdout(&script)
}

/// `fpaste man`: the manual page (roff) on stdout.
pub fn man() -> Result<(), Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .map_err(|e| Error::Local(format!("cannot render the manual page: {e}")))?;
    write_stdout(&page)
}

fn write_stdout(bytes: &[u8]) -> Result<(), Error> {
    std::io::stdout()
        .lock()
        .write_all(bytes)
        .map_err(|e| Error::Local(format!("cannot write to stdout: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shell_gets_a_script_naming_the_commands() {
        // Each shell spells a long option its own way.
        for (shell, server) in [
            (Shell::Bash, "--server"),
            (Shell::Zsh, "--server"),
            (Shell::Fish, "server="),
        ] {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), BIN, &mut script);
            let script = String::from_utf8(script).expect("UTF-8");
            for word in ["register", "shorten", "completions", server] {
                assert!(script.contains(word), "{shell}: {word} missing");
            }
        }
    }

    #[test]
    fn the_manual_page_documents_the_commands_and_options() {
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .expect("renders");
        let page = String::from_utf8(page).expect("UTF-8");
        assert!(page.contains(".TH fpaste 1"), "{page}");
        for word in ["register", "shorten", "\\-\\-server", "\\-\\-fingerprint"] {
            assert!(page.contains(word), "{word} missing from the page");
        }
    }
}
