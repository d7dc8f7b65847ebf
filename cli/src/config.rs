//! Where the client's settings come from: flags, then `FPASTE_*` environment
//! variables (clap merges those two), then the config file, then defaults.
//! Never holds secrets beyond file paths: keys stay in their own files.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Error;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
const APP_DIR: &str = "fpaste";
const FILE_NAME: &str = "config.toml";

/// The config file, and the same fields as given by flags or environment.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Layer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// SHA-1 fingerprint of the client certificate, sent as `X-SSL-Client-SHA1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// PEM client certificate for mutual TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for the server's TLS certificate, instead of the
    /// bundled Mozilla roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_cert: Option<PathBuf>,
}

/// Settings after precedence and validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Base URL without a trailing slash (may carry a path prefix).
    pub server: String,
    /// 40 lowercase hex digits.
    pub fingerprint: Option<String>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
}

/// `$XDG_CONFIG_HOME/fpaste/config.toml`, else `$HOME/.config/fpaste/config.toml`.
pub fn default_dir(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
    let xdg = env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    xdg.or_else(|| {
        env("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".config"))
    })
    .map(|base| base.join(APP_DIR))
}

pub fn default_path() -> Option<PathBuf> {
    default_dir(|k| std::env::var_os(k)).map(|d| d.join(FILE_NAME))
}

/// Reads the config file. A missing file is an empty layer unless the user
/// named it explicitly. Relative paths in it are relative to its directory.
pub fn load(path: &Path, explicit: bool) -> Result<Layer, Error> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
            return Ok(Layer::default());
        }
        Err(e) => return Err(Error::local(&format!("cannot read {}", path.display()), e)),
    };
    let mut layer: Layer = toml::from_str(&text)
        .map_err(|e| Error::Local(format!("{}: {}", path.display(), e.message().trim_end())))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for p in [
        &mut layer.client_cert,
        &mut layer.client_key,
        &mut layer.ca_cert,
    ]
    .into_iter()
    .flatten()
    {
        if p.is_relative() {
            *p = dir.join(&*p);
        }
    }
    Ok(layer)
}

/// Writes the config file readable by its owner only (it names key files).
pub fn save(path: &Path, layer: &Layer) -> Result<(), Error> {
    let text = toml::to_string(layer).map_err(|e| Error::local("cannot write the config", e))?;
    let header =
        "# fpaste configuration (docs/cli.md). Flags and FPASTE_* variables override it.\n";
    crate::files::write_private(path, format!("{header}{text}").as_bytes())
}

/// Applies precedence (`over` wins over `file`) and validates.
pub fn resolve(over: Layer, file: Layer) -> Result<Settings, Error> {
    let server = over
        .server
        .or(file.server)
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let server = server.trim().trim_end_matches('/').to_owned();
    if !(server.starts_with("http://") || server.starts_with("https://")) || server.contains('#') {
        return Err(Error::Usage(format!(
            "server URL `{server}` must start with http:// or https:// (e.g. {DEFAULT_SERVER})"
        )));
    }
    let fingerprint = over
        .fingerprint
        .or(file.fingerprint)
        .map(|f| normalize_fingerprint(&f))
        .transpose()?;
    let client_cert = over.client_cert.or(file.client_cert);
    let client_key = over.client_key.or(file.client_key);
    if client_cert.is_some() != client_key.is_some() {
        return Err(Error::Usage(
            "a client certificate needs its key and the other way round: \
             give both --cert and --key (or client_cert and client_key in the config)"
                .into(),
        ));
    }
    Ok(Settings {
        server,
        fingerprint,
        client_cert,
        client_key,
        ca_cert: over.ca_cert.or(file.ca_cert),
    })
}

/// Accepts what people copy: any case, with or without colons (`openssl x509
/// -fingerprint` prints `AB:CD:...`).
pub fn normalize_fingerprint(raw: &str) -> Result<String, Error> {
    let hex: String = raw
        .trim()
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex)
    } else {
        Err(Error::Usage(format!(
            "fingerprint `{raw}` is not a SHA-1 fingerprint (40 hex digits, colons allowed)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2";

    fn layer(server: &str, fingerprint: Option<&str>) -> Layer {
        Layer {
            server: Some(server.into()),
            fingerprint: fingerprint.map(Into::into),
            ..Layer::default()
        }
    }

    #[test]
    fn flags_and_environment_win_over_the_file_field_by_field() {
        let file = layer("https://file.example", Some(FP));
        let s = resolve(layer("http://flag.example/", None), file.clone()).expect("valid");
        assert_eq!(s.server, "http://flag.example");
        assert_eq!(s.fingerprint.as_deref(), Some(FP));
        let s = resolve(Layer::default(), file).expect("valid");
        assert_eq!(s.server, "https://file.example");
        let s = resolve(Layer::default(), Layer::default()).expect("valid");
        assert_eq!(s.server, DEFAULT_SERVER);
        assert_eq!(s.fingerprint, None);
    }

    #[test]
    fn fingerprints_are_normalized_or_refused() {
        let upper_colons = FP
            .to_uppercase()
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(normalize_fingerprint(&upper_colons).expect("ok"), FP);
        for bad in [
            "",
            "abc",
            &FP[1..],
            &format!("{FP}0"),
            &FP.replace('a', "g"),
        ] {
            assert!(
                matches!(normalize_fingerprint(bad), Err(Error::Usage(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn bad_servers_and_half_a_client_certificate_are_usage_errors() {
        for bad in ["ftp://x", "127.0.0.1:8080", "http://x/#frag"] {
            assert!(matches!(
                resolve(layer(bad, None), Layer::default()),
                Err(Error::Usage(_))
            ));
        }
        let half = Layer {
            client_cert: Some("c.pem".into()),
            ..Layer::default()
        };
        assert!(matches!(
            resolve(half, Layer::default()),
            Err(Error::Usage(_))
        ));
    }

    #[test]
    fn the_default_location_follows_xdg() {
        let env = |xdg: Option<&'static str>, home: Option<&'static str>| {
            move |k: &str| match k {
                "XDG_CONFIG_HOME" => xdg.map(OsString::from),
                "HOME" => home.map(OsString::from),
                _ => None,
            }
        };
        assert_eq!(
            default_dir(env(Some("/x/cfg"), Some("/home/u"))),
            Some(PathBuf::from("/x/cfg/fpaste"))
        );
        assert_eq!(
            default_dir(env(Some("relative"), Some("/home/u"))),
            Some(PathBuf::from("/home/u/.config/fpaste"))
        );
        assert_eq!(default_dir(env(None, None)), None);
    }

    #[test]
    fn the_file_round_trips_and_resolves_relative_paths_and_rejects_typos() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("sub").join("config.toml");
        let written = Layer {
            server: Some("https://paste.example".into()),
            fingerprint: Some(FP.into()),
            client_cert: Some("client.crt".into()),
            client_key: Some(dir.path().join("abs.key")),
            ca_cert: None,
        };
        save(&path, &written).expect("saves");
        let read = load(&path, true).expect("loads");
        assert_eq!(read.server, written.server);
        assert_eq!(
            read.client_cert,
            Some(dir.path().join("sub").join("client.crt"))
        );
        assert_eq!(read.client_key, written.client_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "sever = \"https://typo\"\n").expect("write");
        let err = load(&path, true).expect_err("unknown field");
        assert!(err.to_string().contains("sever"), "{err}");
        assert_eq!(
            load(&dir.path().join("none"), false).expect("ok"),
            Layer::default()
        );
        assert!(load(&dir.path().join("none"), true).is_err());
    }
}
