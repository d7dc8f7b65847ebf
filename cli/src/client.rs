//! The HTTP side: one ureq agent (rustls; optional client certificate for
//! mutual TLS and a private CA), the identity header, JSON error bodies turned
//! into [`Error::Server`], and requests that need a proof-of-work.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use ureq::http::{self, Method};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};
use wasmpaste_contract::identity::{CLIENT_FINGERPRINT_HEADER, fingerprint_sha1};

use crate::config::Settings;
use crate::error::Error;
use crate::pow::{self, Challenge, Outcome, Proof};

/// Largest response read into memory: above any server's paste limit.
const MAX_RESPONSE: u64 = 1 << 30;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

pub struct Client {
    agent: ureq::Agent,
    base: String,
    fingerprint: Option<String>,
    threads: usize,
}

/// A complete response.
pub struct Reply {
    pub status: u16,
    headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as JSON; anything else means we are not talking to the API.
    pub fn json(&self) -> Result<Value, Error> {
        serde_json::from_slice(&self.body).map_err(|_| {
            Error::Network(format!(
                "the server's answer (HTTP {}) is not JSON: is the server URL that of a wasmpaste or FlaskPaste API?",
                self.status
            ))
        })
    }

    /// The JSON body of a success; the server's error otherwise.
    pub fn ok_json(self) -> Result<Value, Error> {
        if self.is_success() {
            self.json()
        } else {
            Err(self.into_error())
        }
    }

    /// The server's `{"error": ...}` as an [`Error::Server`].
    pub fn into_error(self) -> Error {
        let parsed = serde_json::from_slice::<Value>(&self.body).ok();
        let field = |k: &str| {
            parsed
                .as_ref()
                .and_then(|v| v.get(k))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let message = field("error").unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&self.body);
            let text = text.trim();
            if text.is_empty() {
                format!("HTTP {}", self.status)
            } else {
                text.chars().take(200).collect()
            }
        });
        Error::Server {
            status: self.status,
            message,
            hint: field("hint"),
        }
    }
}

impl Client {
    pub fn new(settings: &Settings) -> Result<Self, Error> {
        let mut tls = TlsConfig::builder();
        if let Some(path) = &settings.ca_cert {
            let certs = read_certs(path)?;
            tls = tls.root_certs(RootCerts::new_with_certs(&certs));
        }
        let mut fingerprint = settings.fingerprint.clone();
        if let (Some(cert), Some(key)) = (&settings.client_cert, &settings.client_key) {
            let chain = read_certs(cert)?;
            let key_pem = read(key)?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
                Error::Local(format!("{}: not a PEM private key ({e})", key.display()))
            })?;
            // The proxy derives the identity from the certificate; send the
            // header too for setups that pass it through.
            fingerprint = fingerprint.or_else(|| chain.first().map(|c| fingerprint_sha1(c.der())));
            tls = tls.client_cert(Some(ClientCert::new_with_certs(&chain, key)));
        }
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .user_agent(concat!("fpaste/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls.build())
            .build();
        Ok(Self {
            agent: config.new_agent(),
            base: settings.server.clone(),
            fingerprint,
            threads: std::thread::available_parallelism().map_or(1, usize::from),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn fingerprint(&self) -> Option<&str> {
        self.fingerprint.as_deref()
    }

    /// Sends one request to `base + path`.
    pub fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: Option<Vec<u8>>,
    ) -> Result<Reply, Error> {
        let url = format!("{}{path}", self.base);
        let mut builder = http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, value);
        }
        if let Some(fp) = &self.fingerprint {
            builder = builder.header(CLIENT_FINGERPRINT_HEADER, fp);
        }
        let sent = match body {
            Some(bytes) => builder.body(bytes).map(|r| self.agent.run(r)),
            None => builder.body(()).map(|r| self.agent.run(r)),
        };
        let mut response = sent
            .map_err(|e| Error::Usage(format!("cannot build a request for {url}: {e}")))?
            .map_err(|e| Error::Network(format!("cannot reach {url}: {e}")))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_vec()
            .map_err(|e| Error::Network(format!("reading the answer from {url}: {e}")))?;
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    pub fn get(&self, path: &str, headers: &[(&str, String)]) -> Result<Reply, Error> {
        self.send(Method::GET, path, headers, None)
    }

    /// A challenge from `path` (`/challenge`, `/register/challenge`), or none
    /// when the server has proof-of-work off.
    pub fn challenge(&self, path: &str) -> Result<Option<Challenge>, Error> {
        let v = self.get(path, &[])?.ok_json()?;
        if v["enabled"] != Value::Bool(true) {
            return Ok(None);
        }
        let (Some(nonce), Some(difficulty), Some(token)) = (
            v["nonce"].as_str(),
            v["difficulty"].as_u64().and_then(|d| u32::try_from(d).ok()),
            v["token"].as_str(),
        ) else {
            return Err(Error::Network(format!(
                "the challenge from {}{path} lacks nonce, difficulty or token",
                self.base
            )));
        };
        if difficulty > 64 {
            return Err(Error::Network(format!(
                "the server asks for {difficulty} bits of proof-of-work, which no client can solve"
            )));
        }
        Ok(Some(Challenge {
            nonce: nonce.to_owned(),
            difficulty,
            token: token.to_owned(),
        }))
    }

    /// Sends a request that needs proof-of-work from `challenge_path`,
    /// retrying with a fresh challenge when the server refuses the proof.
    pub fn send_with_pow(
        &self,
        challenge_path: &str,
        method: Method,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, Error> {
        pow::with_retries(
            || self.challenge(challenge_path),
            |c| pow::solve(c, self.threads),
            |proof: Option<&Proof>| {
                let mut all = headers.to_vec();
                if let Some(p) = proof {
                    all.push(("X-PoW-Token", p.token.clone()));
                    all.push(("X-PoW-Solution", p.solution.to_string()));
                }
                let reply = self.send(method.clone(), path, &all, Some(body.to_vec()))?;
                Ok(if reply.status == 400 && refused_proof(&reply) {
                    Outcome::Rejected(reply.into_error())
                } else {
                    Outcome::Done(reply)
                })
            },
        )
    }
}

/// `Proof-of-work required` / `Proof-of-work failed: ...`: a new challenge may help.
fn refused_proof(reply: &Reply) -> bool {
    reply
        .json()
        .ok()
        .and_then(|v| v["error"].as_str().map(|e| e.starts_with("Proof-of-work")))
        .unwrap_or(false)
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::local(&format!("cannot read {}", path.display()), e))
}

fn read_certs(path: &Path) -> Result<Vec<Certificate<'static>>, Error> {
    let pem = read(path)?;
    let certs: Vec<_> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(Error::Local(format!(
            "{}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

/// The `id` of something the server just created; URLs are built from it, so
/// an answer without a usable one is an error, not an empty URL.
pub fn new_id(doc: &Value) -> Result<String, Error> {
    doc["id"]
        .as_str()
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()))
        .map(str::to_owned)
        .ok_or_else(|| Error::Network("the server's answer has no usable `id`".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: http::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn only_proof_of_work_refusals_are_retried() {
        for retry in [
            r#"{"error":"Proof-of-work required","hint":"GET /challenge"}"#,
            r#"{"error":"Proof-of-work failed: Challenge expired"}"#,
        ] {
            assert!(refused_proof(&reply(400, retry)), "{retry}");
        }
        for final_answer in [
            r#"{"error":"No content provided"}"#,
            "<html>bad gateway</html>",
            "",
        ] {
            assert!(!refused_proof(&reply(400, final_answer)), "{final_answer}");
        }
    }

    #[test]
    fn server_errors_carry_the_message_and_hint_or_the_text() {
        let Error::Server {
            status,
            message,
            hint,
        } = reply(
            400,
            r#"{"error":"Proof-of-work required","hint":"solve it"}"#,
        )
        .into_error()
        else {
            panic!("a server error");
        };
        assert_eq!(
            (status, message.as_str(), hint.as_deref()),
            (400, "Proof-of-work required", Some("solve it"))
        );
        let e = reply(502, "Bad Gateway from nginx").into_error();
        assert_eq!(
            e.to_string(),
            "server refused (502): Bad Gateway from nginx"
        );
        assert_eq!(
            reply(503, "").into_error().to_string(),
            "server refused (503): HTTP 503"
        );
        assert!(matches!(
            reply(200, "not json").ok_json(),
            Err(Error::Network(_))
        ));
    }

    #[test]
    fn created_ids_must_be_usable_in_urls() {
        assert_eq!(
            new_id(&serde_json::json!({"id": "Xk3m9QaZ"}))
                .ok()
                .as_deref(),
            Some("Xk3m9QaZ")
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"id": ""}),
            serde_json::json!({"id": "../x"}),
            serde_json::json!({"id": 7}),
        ] {
            assert!(matches!(new_id(&bad), Err(Error::Network(_))), "{bad}");
        }
    }
}
