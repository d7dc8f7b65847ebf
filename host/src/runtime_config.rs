//! Where a tenant's database is, in Spin's own runtime-config format, so one
//! file serves `spin up --runtime-config-file` and this host alike:
//!
//! ```toml
//! [sqlite_database.default]
//! type = "libsql"                 # a libSQL server (sqld, Turso)
//! url = "http://127.0.0.1:8081"
//! token = ""                      # Spin's field; empty for a server without auth
//! ```
//!
//! or `type = "spin"` with `path = "..."` for a SQLite file (relative to the
//! runtime-config file's directory). Only the label `default` matters (the
//! component opens no other); the rest of the file (other labels, key-value
//! stores, variables providers) is Spin's business and ignored here. The
//! native host also takes the token from a file (`token_file`) or an
//! environment variable (`token_env`) instead, so it need not sit in the
//! file; Spin knows only `token`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// A tenant's database.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseSpec {
    /// A SQLite file on this machine.
    File(PathBuf),
    /// A libSQL server's HTTP endpoint and bearer token (may be empty).
    Libsql { url: String, token: Secret },
}

impl DatabaseSpec {
    /// Where it is, for logs and errors: never the token.
    pub fn location(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Libsql { url, .. } => url.clone(),
        }
    }
}

impl fmt::Debug for DatabaseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
            Self::Libsql { url, .. } => f
                .debug_struct("Libsql")
                .field("url", url)
                .finish_non_exhaustive(),
        }
    }
}

/// A value that is never printed.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    sqlite_database: std::collections::BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum Entry {
    Spin {
        path: Option<PathBuf>,
    },
    Libsql {
        url: String,
        token: Option<String>,
        token_file: Option<PathBuf>,
        token_env: Option<String>,
    },
}

/// Reads the database of label `default` from a runtime-config file;
/// `None` when the file configures none (the host's default file then).
pub fn load(path: &Path) -> Result<Option<DatabaseSpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the runtime config {}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    parse(&text, dir).map_err(|e| format!("runtime config {}: {e}", path.display()))
}

/// [`load`] on the file's text; relative paths are relative to `dir`.
pub fn parse(text: &str, dir: &Path) -> Result<Option<DatabaseSpec>, String> {
    let file: File = toml::from_str(text).map_err(|e| e.message().to_owned())?;
    file.sqlite_database
        .get("default")
        .map(|table| database(table, dir))
        .transpose()
}

/// One `[sqlite_database.LABEL]` table (of a runtime-config file, or inline
/// in a tenants file); relative paths are relative to `dir`.
pub fn database(table: &toml::Table, dir: &Path) -> Result<DatabaseSpec, String> {
    let entry = Entry::deserialize(toml::Value::Table(table.clone()))
        .map_err(|e| format!("[sqlite_database.default]: {}", e.message()))?;
    match entry {
        Entry::Spin { path } => Ok(DatabaseSpec::File(path.map(|p| dir.join(p)).ok_or(
            "[sqlite_database.default]: `type = \"spin\"` needs a `path` here (Spin's \
                 default, `.spin/sqlite_db.db`, is Spin's own state directory)",
        )?)),
        Entry::Libsql {
            url,
            token,
            token_file,
            token_env,
        } => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "[sqlite_database.default]: url `{url}` must start with http:// or https://"
                ));
            }
            let token = match (token, token_file, token_env) {
                (Some(token), None, None) => token,
                (None, Some(file), None) => {
                    let file = dir.join(file);
                    std::fs::read_to_string(&file)
                        .map(|t| t.trim().to_owned())
                        .map_err(|e| {
                            format!(
                                "[sqlite_database.default]: cannot read token_file {}: {e}",
                                file.display()
                            )
                        })?
                }
                (None, None, Some(var)) => std::env::var(&var).map_err(|_| {
                    format!("[sqlite_database.default]: token_env `{var}` is not set")
                })?,
                _ => {
                    return Err(
                        "[sqlite_database.default]: `type = \"libsql\"` needs exactly \
                                one of `token` (may be empty), `token_file` or `token_env`"
                            .into(),
                    );
                }
            };
            Ok(DatabaseSpec::Libsql {
                url: url.trim_end_matches('/').to_owned(),
                token: Secret::new(token),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Option<DatabaseSpec>, String> {
        parse(text, Path::new("/etc/wp"))
    }

    #[test]
    fn spin_s_libsql_entry_is_read_as_spin_writes_it() {
        let spec = parsed(
            "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://127.0.0.1:8081/\"\n\
             token = \"t0k3n\"\n[sqlite_database.other]\ntype = \"spin\"\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            spec,
            DatabaseSpec::Libsql {
                url: "http://127.0.0.1:8081".into(),
                token: Secret::new("t0k3n".into())
            }
        );
        // Neither the token nor its length reaches a log line.
        assert!(!format!("{spec:?}").contains("t0k3n"));
        assert_eq!(spec.location(), "http://127.0.0.1:8081");
    }

    #[test]
    fn a_file_path_is_relative_to_the_runtime_config() {
        let spec = parsed("[sqlite_database.default]\ntype = \"spin\"\npath = \"data/p.db\"\n");
        assert_eq!(
            spec.unwrap(),
            Some(DatabaseSpec::File(PathBuf::from("/etc/wp/data/p.db")))
        );
        assert_eq!(
            parsed("[[config_provider]]\ntype = \"vault\"\n").unwrap(),
            None
        );
    }

    #[test]
    fn tokens_come_from_a_file_or_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("token"), "from-file\n").unwrap();
        let text = "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://h\"\n\
                    token_file = \"token\"\n";
        let Some(DatabaseSpec::Libsql { token, .. }) = parse(text, dir.path()).unwrap() else {
            panic!("not libsql")
        };
        assert_eq!(token.expose(), "from-file");
        let missing = "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://h\"\n\
                       token_env = \"WASMPASTE_TEST_UNSET_TOKEN\"\n";
        assert!(parsed(missing).unwrap_err().contains("is not set"));
    }

    #[test]
    fn mistakes_are_named() {
        let no_token = "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"http://h\"\n";
        assert!(
            parsed(no_token)
                .unwrap_err()
                .contains("exactly one of `token`")
        );
        let scheme = "[sqlite_database.default]\ntype = \"libsql\"\nurl = \"h:1\"\ntoken = \"\"\n";
        assert!(parsed(scheme).unwrap_err().contains("http://"));
        let unknown = "[sqlite_database.default]\ntype = \"postgres\"\n";
        assert!(parsed(unknown).unwrap_err().contains("postgres"));
        let no_path = "[sqlite_database.default]\ntype = \"spin\"\n";
        assert!(parsed(no_path).unwrap_err().contains("needs a `path`"));
    }
}
