//! pki status|issue|revoke and register: getting and managing client
//! certificates. Private keys go to owner-only files and never to stdout.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use p12_keystore::{KeyStore, Pkcs12ImportPolicy};
use serde_json::json;
use ureq::http::Method;

use super::Ctx;
use crate::args::{PkiArgs, PkiCommand, RegisterArgs};
use crate::config;
use crate::error::Error;
use crate::files::{write_private, write_public};
use crate::output::format_time;
use wasmpaste_contract::identity::fingerprint_sha1;

pub fn pki(ctx: &Ctx, args: PkiArgs) -> Result<(), Error> {
    match args.command {
        PkiCommand::Status => status(ctx),
        PkiCommand::Issue {
            common_name,
            output,
        } => issue(ctx, &common_name, &output),
        PkiCommand::Revoke { serial } => revoke(ctx, &serial),
    }
}

fn status(ctx: &Ctx) -> Result<(), Error> {
    let doc = ctx.client()?.get("/pki", &[])?.ok_json()?;
    ctx.out.result(&doc, || {
        if doc["enabled"] != json!(true) {
            return "PKI: off on this server (`fpaste register` may still work)".into();
        }
        if doc["ca_exists"] != json!(true) {
            return "PKI: on, no CA yet (the first `fpaste register` creates it)".into();
        }
        [
            "PKI: on".to_owned(),
            format!(
                "CA:          {}",
                doc["common_name"].as_str().unwrap_or("?")
            ),
            format!(
                "fingerprint: {}",
                doc["fingerprint_sha1"].as_str().unwrap_or("?")
            ),
            format!("created:     {}", format_time(&doc["created_at"])),
            format!("expires:     {}", format_time(&doc["expires_at"])),
            format!(
                "key:         {}",
                doc["key_algorithm"].as_str().unwrap_or("?")
            ),
        ]
        .join("\n")
    });
    Ok(())
}

fn issue(ctx: &Ctx, common_name: &str, dir: &Path) -> Result<(), Error> {
    let body = json!({ "common_name": common_name })
        .to_string()
        .into_bytes();
    let mut doc = ctx
        .client()?
        .send(
            Method::POST,
            "/pki/issue",
            &[("Content-Type", "application/json".into())],
            Some(body),
        )?
        .ok_json()?;
    let serial = doc["serial"].as_str().unwrap_or_default().to_owned();
    if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Network(
            "the server's answer has no usable serial".into(),
        ));
    }
    let (cert, key) = (
        dir.join(format!("{serial}.crt")),
        dir.join(format!("{serial}.key")),
    );
    let field = |k: &str| doc[k].as_str().unwrap_or_default().as_bytes().to_vec();
    write_private(&key, &field("private_key_pem"))?;
    write_public(&cert, &field("certificate_pem"))?;
    if let Some(o) = doc.as_object_mut() {
        o.remove("private_key_pem");
        o.remove("certificate_pem");
    }
    doc["certificate_file"] = json!(cert.display().to_string());
    doc["key_file"] = json!(key.display().to_string());
    ctx.out.result(&doc, || {
        format!(
            "issued {common_name}\n  serial:      {serial}\n  fingerprint: {}\n  certificate: {}\n  key:         {}\n  expires:     {}",
            doc["fingerprint_sha1"].as_str().unwrap_or("?"),
            cert.display(),
            key.display(),
            format_time(&doc["expires_at"]),
        )
    });
    Ok(())
}

fn revoke(ctx: &Ctx, serial: &str) -> Result<(), Error> {
    if serial.is_empty() || serial.len() > 64 || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Usage(format!(
            "`{serial}` is not a certificate serial (hex digits, as `fpaste pki issue` prints)"
        )));
    }
    let doc = ctx
        .client()?
        .send(Method::POST, &format!("/pki/revoke/{serial}"), &[], None)?
        .ok_json()?;
    ctx.out.result(&doc, || format!("revoked {serial}"));
    Ok(())
}

pub fn register(ctx: &Ctx, args: RegisterArgs) -> Result<(), Error> {
    let dir = match (&args.output, &ctx.config_path) {
        (Some(d), _) => d.clone(),
        (None, Some(cfg)) => cfg.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => {
            return Err(Error::Usage(
                "no config directory (neither XDG_CONFIG_HOME nor HOME is set): give -o DIR".into(),
            ));
        }
    };
    let paths = BundlePaths::in_dir(&dir);
    if paths.key.exists() && !args.force {
        return Err(Error::Local(format!(
            "{} exists: keep that identity, pass --force to replace it, or -o another directory",
            paths.key.display()
        )));
    }
    let body = match &args.common_name {
        Some(cn) => json!({ "common_name": cn }).to_string().into_bytes(),
        None => b"{}".to_vec(),
    };
    let client = ctx.client()?;
    let reply = client.send_with_pow(
        "/register/challenge",
        Method::POST,
        "/register",
        &[("Content-Type", "application/json".into())],
        &body,
    )?;
    if !reply.is_success() {
        return Err(reply.into_error());
    }
    let announced = reply.header("x-fingerprint-sha1").map(str::to_owned);
    let expires = reply
        .header("x-certificate-expires")
        .and_then(|t| t.parse::<i64>().ok());
    let bundle = unpack(&reply.body)?;
    let fingerprint = fingerprint_sha1(&bundle.cert_der);
    if announced.as_deref() != Some(fingerprint.as_str()) {
        return Err(Error::Network(format!(
            "the server announced fingerprint {announced:?} but the certificate's is {fingerprint}"
        )));
    }
    write_private(&paths.p12, &reply.body)?;
    write_private(&paths.cert, pem("CERTIFICATE", &bundle.cert_der).as_bytes())?;
    write_private(&paths.key, pem("PRIVATE KEY", &bundle.key_der).as_bytes())?;
    write_public(&paths.fingerprint, format!("{fingerprint}\n").as_bytes())?;
    let configured = if args.configure {
        Some(configure(ctx, client.base(), &paths)?)
    } else {
        None
    };
    let doc = json!({
        "fingerprint": fingerprint,
        "expires_at": expires,
        "p12": paths.p12.display().to_string(),
        "certificate": paths.cert.display().to_string(),
        "key": paths.key.display().to_string(),
        "fingerprint_file": paths.fingerprint.display().to_string(),
        "configured": configured.as_ref().map(|p| p.display().to_string()),
    });
    ctx.out.result(&doc, || {
        let mut text = format!(
            "registered: fingerprint {fingerprint}\n  certificate: {}\n  key:         {}\n  PKCS#12:     {} (empty password)\n  expires:     {}",
            paths.cert.display(),
            paths.key.display(),
            paths.p12.display(),
            format_time(&json!(expires)),
        );
        match &configured {
            Some(p) => text.push_str(&format!("\nconfigured {}: fpaste now uses this identity", p.display())),
            None => text.push_str(&format!(
                "\nuse it with --fingerprint {fingerprint} (or run `fpaste register --configure` next time)"
            )),
        }
        text
    });
    Ok(())
}

struct BundlePaths {
    p12: PathBuf,
    /// The identity as `X-SSL-Client-SHA1` wants it, for scripts and other clients.
    fingerprint: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl BundlePaths {
    fn in_dir(dir: &Path) -> Self {
        Self {
            p12: dir.join("client.p12"),
            fingerprint: dir.join("client.sha1"),
            cert: dir.join("client.crt"),
            key: dir.join("client.key"),
        }
    }
}

struct Bundle {
    cert_der: Vec<u8>,
    key_der: Vec<u8>,
}

/// The leaf certificate and its PKCS#8 key from the registration PKCS#12 (empty password).
fn unpack(p12: &[u8]) -> Result<Bundle, Error> {
    let bad =
        |why: String| Error::Network(format!("the server's PKCS#12 bundle is unusable: {why}"));
    let store = KeyStore::from_pkcs12(p12, "", Pkcs12ImportPolicy::Strict)
        .map_err(|e| bad(e.to_string()))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or_else(|| bad("no private key in it".into()))?;
    let leaf = chain
        .certs()
        .first()
        .ok_or_else(|| bad("no certificate in it".into()))?;
    Ok(Bundle {
        cert_der: leaf.as_der().to_vec(),
        key_der: chain.key().as_der().to_vec(),
    })
}

fn pem(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Points the config file at the new identity, keeping its other settings.
fn configure(ctx: &Ctx, server: &str, paths: &BundlePaths) -> Result<PathBuf, Error> {
    let path = ctx.config_path.clone().ok_or_else(|| {
        Error::Usage(
            "no config file location: set HOME or XDG_CONFIG_HOME, or pass --config".into(),
        )
    })?;
    let mut layer = config::load(&path, false)?;
    layer.server = Some(server.to_owned());
    // The identity is the certificate: over HTTPS it is presented in the
    // handshake, and the fingerprint header (for proxies that pass one
    // through) is derived from it. A stale fingerprint would only disagree.
    layer.fingerprint = None;
    layer.client_cert = Some(absolute(&paths.cert));
    layer.client_key = Some(absolute(&paths.key));
    // A private CA the server was reached with stays trusted for it.
    if let Some(ca) = &ctx.settings.ca_cert {
        layer.ca_cert = Some(absolute(ca));
    }
    config::save(&path, &layer)?;
    Ok(path)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
