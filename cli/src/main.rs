//! `fpaste`: the command-line client. Parses the command line, resolves the
//! settings and hands over to one function per command; owns the mapping of
//! errors to messages and exit codes, nothing else.

mod args;
mod client;
mod commands;
mod config;
mod encryption;
mod error;
mod files;
mod output;
mod pow;
mod refs;

use std::process::ExitCode;

use clap::Parser as _;

use crate::args::{Cli, Command};
use crate::error::Error;
use crate::output::Out;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.global.json);
    match run(cli, &out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            e.exit_code()
        }
    }
}

fn run(cli: Cli, out: &Out) -> Result<(), Error> {
    // Generated from the parser alone: no settings, so a broken config file
    // does not stand in the way.
    match &cli.command {
        Some(Command::Completions(a)) => return commands::shell::completions(a.shell),
        Some(Command::Man) => return commands::shell::man(),
        _ => {}
    }
    let (config_path, explicit) = match &cli.global.config {
        Some(p) => (Some(p.clone()), true),
        None => (config::default_path(), false),
    };
    let file = match &config_path {
        Some(p) => config::load(p, explicit)?,
        None => config::Layer::default(),
    };
    let settings = config::resolve(cli.global.layer(), file)?;
    let ctx = commands::Ctx {
        settings,
        config_path,
        out,
    };
    match cli.command {
        None => commands::paste::create(&ctx, cli.create),
        Some(Command::Create(a)) => commands::paste::create(&ctx, a),
        Some(Command::Get(a)) => commands::paste::get(&ctx, a),
        Some(Command::Delete(a)) => commands::paste::delete(&ctx, a),
        Some(Command::Update(a)) => commands::paste::update(&ctx, a),
        Some(Command::Info) => commands::info::info(&ctx),
        Some(Command::List(a)) => commands::listing::list(&ctx, a),
        Some(Command::Search(a)) => commands::listing::search(&ctx, a),
        Some(Command::Export(a)) => commands::listing::export(&ctx, a),
        Some(Command::Shorten(a)) => commands::short_url::shorten(&ctx, a),
        Some(Command::Pki(a)) => commands::pki::pki(&ctx, a),
        Some(Command::Register(a)) => commands::pki::register(&ctx, a),
        // Answered above, before the settings were read.
        Some(Command::Completions(_) | Command::Man) => Ok(()),
    }
}
