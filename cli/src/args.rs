//! The command line. Each doc comment is the `--help` text; names and short
//! flags follow FlaskPaste's `fpaste` so habits carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::Layer;

/// Command-line client for wasmpaste (and FlaskPaste) servers.
///
/// `fpaste FILE` (or content on stdin) creates a paste, encrypted on this machine
/// by default: the key is only in the URL fragment it prints, never sent to the server.
#[derive(Debug, Parser)]
#[command(name = "fpaste", version)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub create: CreateArgs,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Server base URL (with its path prefix, if any)
    #[arg(long, short = 's', env = "FPASTE_SERVER", global = true)]
    pub server: Option<String>,
    /// Your client certificate's SHA-1 fingerprint, sent as X-SSL-Client-SHA1
    #[arg(long, env = "FPASTE_FINGERPRINT", global = true)]
    pub fingerprint: Option<String>,
    /// PEM client certificate for mutual TLS (with --key)
    #[arg(long = "cert", env = "FPASTE_CLIENT_CERT", global = true)]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --cert
    #[arg(long = "key", env = "FPASTE_CLIENT_KEY", global = true)]
    pub client_key: Option<PathBuf>,
    /// PEM CA certificate to trust for the server's TLS certificate
    #[arg(long, env = "FPASTE_CA_CERT", global = true)]
    pub ca_cert: Option<PathBuf>,
    /// Config file [default: $XDG_CONFIG_HOME/fpaste/config.toml]
    #[arg(long, env = "FPASTE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Machine-readable output: one JSON document on stdout (errors as JSON on stderr)
    #[arg(long, global = true)]
    pub json: bool,
}

impl Global {
    pub fn layer(&self) -> Layer {
        Layer {
            server: self.server.clone(),
            fingerprint: self.fingerprint.clone(),
            client_cert: self.client_cert.clone(),
            client_key: self.client_key.clone(),
            ca_cert: self.ca_cert.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a paste from FILE or stdin (encrypted unless -E)
    Create(CreateArgs),
    /// Fetch a paste's content (decrypted when the URL carries a key) or metadata
    Get(GetArgs),
    /// Delete pastes you own
    Delete(DeleteArgs),
    /// Change a paste you own: content, password, expiry, display name
    Update(UpdateArgs),
    /// Server information and the current proof-of-work difficulty
    Info,
    /// List your pastes
    List(ListArgs),
    /// Search your pastes by MIME type and creation time
    Search(SearchArgs),
    /// Download all your pastes into a directory
    Export(ExportArgs),
    /// Shorten a URL
    Shorten(ShortenArgs),
    /// The server's certificate authority
    Pki(PkiArgs),
    /// Get a client certificate from the server (solves its proof-of-work)
    Register(RegisterArgs),
    /// Print a completion script for SHELL (bash, zsh, fish, elvish, powershell)
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `fpaste man > fpaste.1`
    Man,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args, Default)]
pub struct CreateArgs {
    /// File to paste; stdin when absent or `-`
    pub file: Option<PathBuf>,
    /// Do not encrypt (the server and anyone with the ID can read it)
    #[arg(short = 'E', long = "no-encrypt")]
    pub no_encrypt: bool,
    /// Delete the paste when it is first read
    #[arg(short = 'b', long)]
    pub burn: bool,
    /// Lifetime: seconds, or a number with s, m, h, d or w (e.g. 90m, 7d)
    #[arg(short = 'x', long, value_parser = parse_duration)]
    pub expiry: Option<u64>,
    /// Password readers must give (X-Paste-Password)
    #[arg(short = 'p', long, env = "FPASTE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Display name (authenticated clients only)
    #[arg(short = 'n', long = "name")]
    pub display_name: Option<String>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// Paste ID or URL; a `#key` fragment decrypts it
    pub paste: String,
    /// Password of a protected paste
    #[arg(short = 'p', long, env = "FPASTE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Write the content to FILE (`-` forces stdout, even for binary content on a terminal)
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Show the metadata instead of the content
    #[arg(short = 'm', long)]
    pub meta: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Paste IDs or URLs
    #[arg(required = true)]
    pub pastes: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Paste ID or URL
    pub paste: String,
    /// New content from FILE (`-` for stdin); encrypted with a new key unless -E
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Do not encrypt the new content
    #[arg(short = 'E', long = "no-encrypt")]
    pub no_encrypt: bool,
    /// Set or change the password
    #[arg(short = 'p', long, env = "FPASTE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// Remove the password
    #[arg(long, conflicts_with = "password")]
    pub remove_password: bool,
    /// Extend the expiry by this long (seconds, or 90m, 7d, ...)
    #[arg(short = 'x', long, value_parser = parse_duration)]
    pub extend: Option<u64>,
    /// Set the display name
    #[arg(short = 'n', long = "name")]
    pub display_name: Option<String>,
    /// Remove the display name
    #[arg(long, conflicts_with = "display_name")]
    pub remove_name: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// At most this many (the server caps it at 1000)
    #[arg(short = 'l', long, default_value_t = 100)]
    pub limit: u32,
    /// Skip this many
    #[arg(long, default_value_t = 0)]
    pub offset: u32,
    /// Every paste on the server (admin only)
    #[arg(short = 'a', long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    /// MIME type glob, e.g. `image/*`
    #[arg(short = 't', long = "type")]
    pub mime_type: Option<String>,
    /// Created at or after: Unix time or YYYY-MM-DD (UTC)
    #[arg(long, value_parser = parse_time)]
    pub after: Option<i64>,
    /// Created at or before: Unix time or YYYY-MM-DD (UTC)
    #[arg(long, value_parser = parse_time)]
    pub before: Option<i64>,
    #[command(flatten)]
    pub page: ListArgs,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Directory to write into (created if missing)
    #[arg(short = 'o', long)]
    pub output: PathBuf,
    /// Password to try on protected pastes (others are skipped)
    #[arg(short = 'p', long, env = "FPASTE_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
}

#[derive(Debug, Args)]
pub struct ShortenArgs {
    /// The http or https URL to shorten
    pub url: String,
    /// Lifetime: seconds, or 90m, 7d, ...
    #[arg(short = 'x', long, value_parser = parse_duration)]
    pub expiry: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    pub command: PkiCommand,
}

#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Whether the server has a CA, and its details
    Status,
    /// Have the CA issue a certificate and key (written as SERIAL.crt and SERIAL.key)
    Issue {
        /// Common name of the certificate
        #[arg(short = 'n', long = "name")]
        common_name: String,
        /// Directory for the files
        #[arg(short = 'o', long, default_value = ".")]
        output: PathBuf,
    },
    /// Revoke a certificate you requested or hold
    Revoke {
        /// Serial number (32 hex digits)
        serial: String,
    },
}

#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// Common name for the certificate [default: chosen by the server]
    #[arg(short = 'n', long = "name")]
    pub common_name: Option<String>,
    /// Write server, fingerprint and certificate paths into the config file
    #[arg(long)]
    pub configure: bool,
    /// Directory for client.p12, client.crt and client.key [default: the config directory]
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,
    /// Replace an existing client.key there
    #[arg(long)]
    pub force: bool,
}

/// `3600`, `90s`, `10m`, `2h`, `7d`, `1w`: seconds, more than zero.
pub fn parse_duration(raw: &str) -> Result<u64, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&raw[..i], c.to_ascii_lowercase()),
        _ => (raw, 's'),
    };
    let scale = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 604_800,
        _ => return Err(format!("unknown unit `{unit}`: use s, m, h, d or w")),
    };
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{raw}` is not a duration like 3600, 90m or 7d"))?;
    match n.checked_mul(scale) {
        Some(0) => Err("the duration must be more than zero".into()),
        Some(s) => Ok(s),
        None => Err(format!("`{raw}` is too long")),
    }
}

/// Unix seconds, or a date `YYYY-MM-DD` taken as midnight UTC.
pub fn parse_time(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    if let Ok(t) = raw.parse::<i64>() {
        return Ok(t);
    }
    time::Date::parse(
        raw,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map(|d| d.midnight().assume_utc().unix_timestamp())
    .map_err(|_| format!("`{raw}` is neither Unix time nor a date YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_refuse_zero_and_junk() {
        assert_eq!(parse_duration("3600"), Ok(3600));
        assert_eq!(parse_duration("90m"), Ok(5400));
        assert_eq!(parse_duration("2H"), Ok(7200));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        for bad in [
            "0",
            "0d",
            "",
            "d",
            "-5",
            "1.5h",
            "3y",
            "99999999999999999999w",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_midnight_utc_and_checked() {
        assert_eq!(parse_time("0"), Ok(0));
        assert_eq!(parse_time("1700000000"), Ok(1_700_000_000));
        assert_eq!(parse_time("1970-01-01"), Ok(0));
        assert_eq!(parse_time("2024-12-20"), Ok(1_734_652_800));
        assert_eq!(parse_time("2000-03-01"), Ok(951_868_800));
        assert_eq!(parse_time("2024-02-29"), Ok(1_709_164_800));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1",
            "yesterday",
            "2024-01-32",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_command_line_parses_the_fpaste_forms() {
        let cli =
            Cli::try_parse_from(["fpaste", "-b", "-x", "1h", "notes.txt"]).expect("bare create");
        assert!(cli.command.is_none());
        assert_eq!(cli.create.file, Some(PathBuf::from("notes.txt")));
        assert!(cli.create.burn);
        assert_eq!(cli.create.expiry, Some(3600));
        let cli = Cli::try_parse_from(["fpaste", "create", "-E", "-n", "notes"]).expect("create");
        assert!(matches!(
            cli.command,
            Some(Command::Create(CreateArgs {
                no_encrypt: true,
                ..
            }))
        ));
        let cli = Cli::try_parse_from([
            "fpaste",
            "--json",
            "search",
            "--type",
            "image/*",
            "--after",
            "2024-01-01",
        ])
        .expect("search");
        assert!(cli.global.json);
        let cli = Cli::try_parse_from(["fpaste", "pki", "revoke", "ab"]).expect("pki");
        assert!(matches!(cli.command, Some(Command::Pki(_))));
        assert!(
            Cli::try_parse_from(["fpaste", "update", "id", "--remove-name", "-n", "x"]).is_err()
        );
        assert!(Cli::try_parse_from(["fpaste", "delete"]).is_err());
    }
}
