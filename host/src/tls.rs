//! HTTPS on the native host, with client-certificate identity: what a
//! reverse proxy doing mutual TLS would otherwise do in front of the host.
//!
//! rustls with ring (the stack the host's libSQL client and the CLI already
//! build; docs/architecture.md says why), driven by tokio-rustls. Each
//! connection's ClientHello is read first (`LazyConfigAcceptor`), so the SNI
//! name picks a *site*: the certificate to present and the certificate
//! authority whose client certificates identify users there. With
//! `client_ca = "pki"` that CA is the tenant's own (`POST /pki/ca`, the first
//! `POST /register`), read from its database at each handshake: a
//! certificate the server just issued works on the next connection.
//!
//! Client certificates are requested, never required (nginx's
//! `ssl_verify_client optional`): no certificate is anonymous use, while a
//! certificate that does not verify fails the handshake rather than turning
//! silently into an anonymous request. A verified certificate's SHA-1
//! fingerprint reaches the guest as `X-SSL-Client-SHA1` (server.rs), which is
//! all the guest needs: revocation and trust levels stay its job.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig,
    SignatureScheme,
};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;
use wasmpaste_contract::identity::{PKI_CA_CERTIFICATE_SQL, fingerprint_sha1};

use crate::config::ConfigError;
use crate::db::{Database, DbError, Value};
use crate::metrics::{Handshake, Metrics};
use crate::tenant::Tenants;

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Whose client certificates identify users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientCa {
    /// The CA certificates in a PEM bundle.
    Bundle(PathBuf),
    /// The tenant's own CA, from its database.
    Pki,
}

impl ClientCa {
    /// `pki`, or the path of a PEM bundle (relative paths from `dir`; write
    /// `./pki` for a file of that name).
    pub fn parse(value: &str, dir: &Path) -> Self {
        if value == "pki" {
            Self::Pki
        } else {
            Self::Bundle(dir.join(value))
        }
    }
}

impl fmt::Display for ClientCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bundle(path) => write!(f, "{}", path.display()),
            Self::Pki => f.write_str("pki"),
        }
    }
}

/// A tenant's own TLS settings (tenants file); unset ones are the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantTls {
    /// Presented for the tenant's `hosts`.
    pub cert: Option<CertFiles>,
    pub client_ca: Option<ClientCa>,
}

/// The HTTPS listener's settings (command line).
#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// For names no tenant has a certificate of its own for.
    pub cert: CertFiles,
    /// The client CA of tenants that name none.
    pub client_ca: Option<ClientCa>,
    /// A handshake not done by then is dropped (slowloris on TLS).
    pub handshake_timeout: Duration,
    /// Handshakes in progress at once; more connections wait their turn
    /// (within their handshake timeout).
    pub max_handshakes: usize,
}

/// The TLS side of every connection on the HTTPS port.
pub struct TlsFront {
    /// Sites by SNI name (lowercase).
    named: BTreeMap<String, Arc<Site>>,
    /// Names no tenant claims, and clients that send no SNI.
    default: Arc<Site>,
    certs: Vec<Arc<CertSlot>>,
    bundles: Vec<Arc<BundleCa>>,
    handshake_timeout: Duration,
    handshakes: Semaphore,
    metrics: Arc<Metrics>,
    provider: Arc<CryptoProvider>,
}

/// What one SNI name gets.
struct Site {
    /// For logs: the name, or `default`.
    label: String,
    cert: Arc<CertSlot>,
    ca: SiteCa,
    /// Tenants whose requests may carry a client identity verified here.
    tenants: Vec<Arc<str>>,
    provider: Arc<CryptoProvider>,
    /// The last config built, by the verifier it was built with.
    config: Mutex<Option<(usize, Arc<ServerConfig>)>>,
}

enum SiteCa {
    /// No client certificates requested: one verifier for every such site
    /// and handshake, so the site's config (and its session cache) is built
    /// once.
    Off(Arc<dyn ClientCertVerifier>),
    Bundle(Arc<BundleCa>),
    Pki(Box<PkiCa>),
}

/// A certificate and key, replaced whole on reload; presented at each
/// handshake as it is then.
#[derive(Debug)]
struct CertSlot {
    files: CertFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.current.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// A CA bundle file, replaced whole on reload.
struct BundleCa {
    path: PathBuf,
    verifier: RwLock<Arc<dyn ClientCertVerifier>>,
}

/// A tenant's own CA, read from its database.
struct PkiCa {
    tenant: Arc<str>,
    db: Arc<dyn Database>,
    cached: Mutex<Option<KnownCa>>,
    refuse_all: Arc<dyn ClientCertVerifier>,
    provider: Arc<CryptoProvider>,
}

/// The CA certificate last read (`None`: no CA yet) and its verifier.
type KnownCa = (Option<String>, Arc<dyn ClientCertVerifier>);

/// An established HTTPS connection.
pub struct Accepted {
    pub stream: TlsStream<TcpStream>,
    pub identity: ConnIdentity,
}

/// The client identity a connection proved, and for whom.
pub struct ConnIdentity {
    fingerprint: Option<String>,
    site: Arc<Site>,
}

/// What a request on a connection is, identity-wise.
#[derive(Debug, PartialEq, Eq)]
pub enum Identity<'a> {
    Anonymous,
    /// A certificate the tenant's CA vouches for: its fingerprint.
    Verified(&'a str),
    /// A certificate verified for another site's tenants: the client must
    /// open a connection of its own for this host (HTTP 421).
    Misdirected,
}

impl ConnIdentity {
    /// The identity of a request of `tenant` on this connection.
    pub fn for_tenant(&self, tenant: &str) -> Identity<'_> {
        match &self.fingerprint {
            None => Identity::Anonymous,
            Some(fp) if self.site.tenants.iter().any(|t| &**t == tenant) => Identity::Verified(fp),
            Some(_) => Identity::Misdirected,
        }
    }
}

/// Why a handshake failed.
enum Failed {
    /// The client's certificate did not verify.
    BadClientCert(rustls::Error),
    Other(std::io::Error),
}

impl TlsFront {
    /// Loads every certificate, key and CA bundle, and works out which
    /// tenants share an SNI name: every problem at once, before the port
    /// opens.
    pub fn new(
        settings: &TlsSettings,
        tenants: &Tenants,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Vec<ConfigError>> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let refuse_all: Arc<dyn ClientCertVerifier> = Arc::new(RefuseAll {
            schemes: provider
                .signature_verification_algorithms
                .supported_schemes(),
        });
        let no_client_auth = WebPkiClientVerifier::no_client_auth();
        let off = || SiteCa::Off(Arc::clone(&no_client_auth));
        let mut loader = Loader {
            provider: &provider,
            certs: Vec::new(),
            bundles: Vec::new(),
            errors: Vec::new(),
        };
        let default_cert = loader.cert(&settings.cert, None);

        // Tenants by the SNI names they answer; those without names share
        // the default site.
        let mut groups: BTreeMap<Option<&str>, Vec<&crate::tenant::Tenant>> = BTreeMap::new();
        groups.entry(None).or_default();
        for tenant in tenants.iter() {
            if tenant.hosts.is_empty() {
                groups.entry(None).or_default().push(tenant);
            }
            for host in &tenant.hosts {
                groups.entry(Some(host.as_str())).or_default().push(tenant);
            }
        }
        let mut named = BTreeMap::new();
        let mut default = None;
        for (name, group) in groups {
            let label = name.unwrap_or("default");
            let cert = match one_of(
                group
                    .iter()
                    .filter_map(|t| t.tls.cert.as_ref().map(|c| (&*t.name, c))),
            ) {
                Ok(Some((tenant, files))) => loader.cert(files, Some(tenant)),
                Ok(None) => default_cert.clone(),
                Err((a, b)) => {
                    loader.errors.push(ConfigError {
                        tenant: Some(b.to_owned()),
                        field: Some("tls_cert".into()),
                        message: format!(
                            "host `{label}` is also tenant `{a}`'s, with another certificate: \
                             tenants sharing a host name share its certificate"
                        ),
                    });
                    None
                }
            };
            let ca = match one_of(
                group
                    .iter()
                    .filter_map(|t| effective_ca(t, settings).map(|ca| (&*t.name, ca))),
            ) {
                Ok(Some((tenant, _)))
                    if group.iter().any(|t| effective_ca(t, settings).is_none()) =>
                {
                    let without = group
                        .iter()
                        .find(|t| effective_ca(t, settings).is_none())
                        .map_or("", |t| &*t.name);
                    loader.errors.push(ConfigError {
                        tenant: Some(without.to_owned()),
                        field: Some("client_ca".into()),
                        message: format!(
                            "host `{label}` is also tenant `{tenant}`'s, which accepts client \
                             certificates: tenants sharing a host name share its client CA"
                        ),
                    });
                    off()
                }
                Ok(Some((tenant, ClientCa::Pki))) if group.len() > 1 => {
                    loader.errors.push(ConfigError {
                        tenant: Some(tenant.to_owned()),
                        field: Some("client_ca".into()),
                        message: format!(
                            "`pki` is each tenant's own CA, but host `{label}` is shared by {} \
                             tenants: give the tenant host names of its own, or give them one \
                             CA bundle",
                            group.len()
                        ),
                    });
                    off()
                }
                // The group's only tenant (the arm above took shared hosts).
                Ok(Some((_, ClientCa::Pki))) => match group.first() {
                    Some(t) => SiteCa::Pki(Box::new(PkiCa {
                        tenant: Arc::clone(&t.name),
                        db: Arc::clone(&t.db),
                        cached: Mutex::new(None),
                        refuse_all: Arc::clone(&refuse_all),
                        provider: Arc::clone(&provider),
                    })),
                    None => off(),
                },
                Ok(Some((tenant, ClientCa::Bundle(path)))) => {
                    let from_flag = group.iter().all(|t| t.tls.client_ca.is_none());
                    let owner = (!from_flag).then_some(tenant);
                    loader.bundle(path, owner).map_or_else(off, SiteCa::Bundle)
                }
                Ok(None) => off(),
                Err((a, b)) => {
                    loader.errors.push(ConfigError {
                        tenant: Some(b.to_owned()),
                        field: Some("client_ca".into()),
                        message: format!(
                            "host `{label}` is also tenant `{a}`'s, with another client CA: \
                             tenants sharing a host name share its client CA"
                        ),
                    });
                    off()
                }
            };
            let Some(cert) = cert else { continue };
            let site = Arc::new(Site {
                label: label.to_owned(),
                cert,
                ca,
                tenants: group.iter().map(|t| Arc::clone(&t.name)).collect(),
                provider: Arc::clone(&provider),
                config: Mutex::new(None),
            });
            match name {
                Some(name) => {
                    named.insert(name.to_owned(), site);
                }
                None => default = Some(site),
            }
        }
        let Loader {
            certs,
            bundles,
            errors,
            ..
        } = loader;
        match default {
            Some(default) if errors.is_empty() => Ok(Self {
                named,
                default,
                certs,
                bundles,
                handshake_timeout: settings.handshake_timeout,
                handshakes: Semaphore::new(settings.max_handshakes),
                metrics,
                provider,
            }),
            _ => Err(errors),
        }
    }

    /// The TLS handshake of one connection; `None` when it failed (counted
    /// and logged here).
    pub async fn accept(&self, stream: TcpStream, peer: SocketAddr) -> Option<Accepted> {
        let handshake = async {
            // Closed only when the front is dropped, which ends serving anyway.
            let _permit = self.handshakes.acquire().await.ok();
            self.handshake(stream).await
        };
        let outcome = match tokio::time::timeout(self.handshake_timeout, handshake).await {
            Ok(outcome) => outcome,
            Err(_) => {
                self.metrics.handshake(Handshake::Timeout);
                tracing::debug!(%peer, "TLS handshake timed out");
                return None;
            }
        };
        match outcome {
            Ok(accepted) => {
                let kind = if accepted.identity.fingerprint.is_some() {
                    Handshake::ClientCert
                } else {
                    Handshake::NoClientCert
                };
                self.metrics.handshake(kind);
                Some(accepted)
            }
            Err((site, Failed::BadClientCert(e))) => {
                self.metrics.handshake(Handshake::BadClientCert);
                tracing::warn!(%peer, site, "refused a client certificate: {e}");
                None
            }
            Err((_, Failed::Other(e))) => {
                self.metrics.handshake(Handshake::Failed);
                // Scanners and plain-HTTP clients: not worth more than debug.
                tracing::debug!(%peer, "TLS handshake failed: {e}");
                None
            }
        }
    }

    async fn handshake(&self, stream: TcpStream) -> Result<Accepted, (String, Failed)> {
        let start = LazyConfigAcceptor::new(Acceptor::default(), stream)
            .await
            .map_err(|e| (String::new(), Failed::Other(e)))?;
        let site = match start.client_hello().server_name() {
            Some(name) => self
                .named
                .get(&name.to_ascii_lowercase())
                .unwrap_or(&self.default),
            None => &self.default,
        };
        let site = Arc::clone(site);
        let config = site.config().await;
        let stream = start.into_stream(config).await.map_err(|e| {
            let failed = match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                Some(err @ rustls::Error::InvalidCertificate(_)) => {
                    Failed::BadClientCert(err.clone())
                }
                _ => Failed::Other(e),
            };
            (site.label.clone(), failed)
        })?;
        let fingerprint = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(<[_]>::first)
            .map(|leaf| fingerprint_sha1(leaf));
        Ok(Accepted {
            stream,
            identity: ConnIdentity { fingerprint, site },
        })
    }

    /// Reads every certificate, key and CA bundle again (SIGHUP). A file
    /// that no longer loads keeps the previous one in service; returns how
    /// many failed, each logged with its reason.
    pub fn reload(&self) -> usize {
        let provider = &self.provider;
        let mut failed = 0;
        for slot in &self.certs {
            match load_cert(&slot.files, provider) {
                Ok(key) => {
                    *slot.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(key);
                    tracing::info!(cert = %slot.files.cert.display(), "reloaded the TLS certificate");
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!("keeping the previous TLS certificate: {}", e.message);
                }
            }
        }
        for bundle in &self.bundles {
            match bundle_verifier_file(&bundle.path, provider) {
                Ok(v) => {
                    *bundle
                        .verifier
                        .write()
                        .unwrap_or_else(PoisonError::into_inner) = v;
                    tracing::info!(client_ca = %bundle.path.display(), "reloaded the client CA bundle");
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!("keeping the previous client CA bundle: {e}");
                }
            }
        }
        failed
    }
}

fn effective_ca<'a>(
    tenant: &'a crate::tenant::Tenant,
    settings: &'a TlsSettings,
) -> Option<&'a ClientCa> {
    tenant
        .tls
        .client_ca
        .as_ref()
        .or(settings.client_ca.as_ref())
}

/// The one distinct value among `items` (with the first tenant naming it),
/// or the two tenants that disagree.
fn one_of<'a, T: PartialEq>(
    items: impl Iterator<Item = (&'a str, &'a T)>,
) -> Result<Option<(&'a str, &'a T)>, (&'a str, &'a str)> {
    let mut found: Option<(&str, &T)> = None;
    for (tenant, value) in items {
        match found {
            Some((first, v)) if v != value => return Err((first, tenant)),
            Some(_) => {}
            None => found = Some((tenant, value)),
        }
    }
    Ok(found)
}

impl Site {
    /// The config for a handshake now: this site's certificate and the
    /// client CA as it is now.
    async fn config(&self) -> Arc<ServerConfig> {
        let verifier = match &self.ca {
            SiteCa::Off(v) => Arc::clone(v),
            SiteCa::Bundle(b) => {
                Arc::clone(&b.verifier.read().unwrap_or_else(PoisonError::into_inner))
            }
            SiteCa::Pki(p) => p.verifier().await,
        };
        // The verifier's address identifies it while the cache holds it.
        let key = Arc::as_ptr(&verifier).cast::<()>() as usize;
        let mut cached = self.config.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((k, config)) = &*cached
            && *k == key
        {
            return Arc::clone(config);
        }
        let config = Arc::new(server_config(
            &self.provider,
            verifier,
            Arc::clone(&self.cert) as Arc<dyn ResolvesServerCert>,
        ));
        *cached = Some((key, Arc::clone(&config)));
        config
    }
}

fn server_config(
    provider: &Arc<CryptoProvider>,
    verifier: Arc<dyn ClientCertVerifier>,
    cert: Arc<dyn ResolvesServerCert>,
) -> ServerConfig {
    // TLS 1.2 and 1.3 are all rustls speaks; both, for older clients.
    let mut config = ServerConfig::builder_with_provider(Arc::clone(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .unwrap_or_else(|_| unreachable!("ring supports TLS 1.2 and 1.3"))
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

impl PkiCa {
    /// The verifier for the tenant's CA as the database has it now. While the
    /// database is away, the last CA read keeps working.
    async fn verifier(&self) -> Arc<dyn ClientCertVerifier> {
        let fetched = self.fetch().await;
        let mut cached = self.cached.lock().unwrap_or_else(PoisonError::into_inner);
        let pem = match fetched {
            Ok(pem) => pem,
            Err(e) => {
                tracing::debug!(tenant = %self.tenant, "cannot read the tenant's CA: {e}");
                return cached
                    .as_ref()
                    .map_or_else(|| Arc::clone(&self.refuse_all), |(_, v)| Arc::clone(v));
            }
        };
        if let Some((known, verifier)) = &*cached
            && *known == pem
        {
            return Arc::clone(verifier);
        }
        let verifier = match &pem {
            // No CA yet: no certificate of this server exists, so none verifies.
            None => Arc::clone(&self.refuse_all),
            Some(text) => bundle_verifier(text.as_bytes(), &self.provider).unwrap_or_else(|e| {
                tracing::error!(tenant = %self.tenant, "the tenant's CA certificate is unusable: {e}");
                Arc::clone(&self.refuse_all)
            }),
        };
        *cached = Some((pem, Arc::clone(&verifier)));
        verifier
    }

    async fn fetch(&self) -> Result<Option<String>, DbError> {
        let mut conn = self.db.open()?;
        let rows = conn
            .execute(PKI_CA_CERTIFICATE_SQL.to_owned(), Vec::new())
            .await?;
        Ok(rows
            .rows
            .into_iter()
            .next()
            .and_then(|row| row.into_iter().next())
            .and_then(|v| match v {
                Value::Text(pem) => Some(pem),
                _ => None,
            }))
    }
}

/// Loads files once per distinct path, collecting errors.
struct Loader<'p> {
    provider: &'p Arc<CryptoProvider>,
    certs: Vec<Arc<CertSlot>>,
    bundles: Vec<Arc<BundleCa>>,
    errors: Vec<ConfigError>,
}

impl Loader<'_> {
    /// `tenant` is `None` for the command line's `--tls-cert`/`--tls-key`.
    fn cert(&mut self, files: &CertFiles, tenant: Option<&str>) -> Option<Arc<CertSlot>> {
        if let Some(slot) = self.certs.iter().find(|s| s.files == *files) {
            return Some(Arc::clone(slot));
        }
        match load_cert(files, self.provider) {
            Ok(key) => {
                let slot = Arc::new(CertSlot {
                    files: files.clone(),
                    current: RwLock::new(Arc::new(key)),
                });
                self.certs.push(Arc::clone(&slot));
                Some(slot)
            }
            Err(e) => {
                let field = match (e.in_key, tenant) {
                    (false, Some(_)) => "tls_cert",
                    (true, Some(_)) => "tls_key",
                    (false, None) => "--tls-cert",
                    (true, None) => "--tls-key",
                };
                self.errors.push(ConfigError {
                    tenant: tenant.map(str::to_owned),
                    field: Some(field.into()),
                    message: e.message,
                });
                None
            }
        }
    }

    fn bundle(&mut self, path: &Path, tenant: Option<&str>) -> Option<Arc<BundleCa>> {
        if let Some(b) = self.bundles.iter().find(|b| b.path == path) {
            return Some(Arc::clone(b));
        }
        match bundle_verifier_file(path, self.provider) {
            Ok(verifier) => {
                let b = Arc::new(BundleCa {
                    path: path.to_path_buf(),
                    verifier: RwLock::new(verifier),
                });
                self.bundles.push(Arc::clone(&b));
                Some(b)
            }
            Err(message) => {
                self.errors.push(ConfigError {
                    tenant: tenant.map(str::to_owned),
                    field: Some(
                        if tenant.is_some() {
                            "client_ca"
                        } else {
                            "--client-ca"
                        }
                        .into(),
                    ),
                    message,
                });
                None
            }
        }
    }
}

struct CertError {
    /// Whether the key file (rather than the certificate) is at fault.
    in_key: bool,
    message: String,
}

/// A certificate chain and the private key that matches it.
fn load_cert(files: &CertFiles, provider: &CryptoProvider) -> Result<CertifiedKey, CertError> {
    let cert_error = |message: String| CertError {
        in_key: false,
        message,
    };
    let key_error = |message: String| CertError {
        in_key: true,
        message,
    };
    let cert_path = files.cert.display();
    let key_path = files.key.display();
    let pem = std::fs::read(&files.cert)
        .map_err(|e| cert_error(format!("cannot read {cert_path}: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(format!("{cert_path}: not a PEM certificate chain ({e})")))?;
    if chain.is_empty() {
        return Err(cert_error(format!("{cert_path}: no certificate in it")));
    }
    let pem =
        std::fs::read(&files.key).map_err(|e| key_error(format!("cannot read {key_path}: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&pem)
        .map_err(|e| key_error(format!("{key_path}: not a PEM private key ({e})")))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|e| {
        key_error(match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("{key_path} is not the private key of the certificate in {cert_path}")
            }
            other => format!("{key_path}: unusable private key ({other})"),
        })
    })
}

fn bundle_verifier_file(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    bundle_verifier(&pem, provider).map_err(|e| format!("{}: {e}", path.display()))
}

/// Optional client authentication against the CA certificates in `pem`.
fn bundle_verifier(
    pem: &[u8],
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("not a PEM certificate bundle ({e})"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate ({e})"))?;
    }
    if roots.is_empty() {
        return Err("no CA certificate in it".into());
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider))
        .allow_unauthenticated()
        .build()
        .map_err(|e| format!("cannot verify client certificates with it ({e})"))
}

/// What a certificate no accepted CA issued gets (the `unknown_ca` alert).
fn unknown_issuer() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)
}

/// Client certificates requested, and every one refused: a tenant whose CA
/// does not exist yet (no certificate of it can exist either).
#[derive(Debug)]
struct RefuseAll {
    schemes: Vec<SignatureScheme>,
}

impl ClientCertVerifier for RefuseAll {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Err(unknown_issuer())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(unknown_issuer())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(unknown_issuer())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_ca_pki_is_the_word_anything_else_a_path() {
        let dir = Path::new("/etc/wasmpaste");
        assert_eq!(ClientCa::parse("pki", dir), ClientCa::Pki);
        assert_eq!(
            ClientCa::parse("./pki", dir),
            ClientCa::Bundle(dir.join("./pki"))
        );
        assert_eq!(
            ClientCa::parse("/ca.pem", dir),
            ClientCa::Bundle(PathBuf::from("/ca.pem"))
        );
    }

    #[test]
    fn one_of_finds_the_single_value_or_the_two_that_differ() {
        let (a, b) = (1, 2);
        assert_eq!(one_of::<i32>(std::iter::empty()), Ok(None));
        assert_eq!(
            one_of([("t1", &a), ("t2", &a)].into_iter()),
            Ok(Some(("t1", &a)))
        );
        assert_eq!(
            one_of([("t1", &a), ("t2", &a), ("t3", &b)].into_iter()),
            Err(("t1", "t3"))
        );
    }
}
