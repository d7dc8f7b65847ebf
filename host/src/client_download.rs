//! `GET /client`: the `fpaste` command-line client, served by the host, as
//! the roadmap has it (`curl https://server/client > fpaste`): the static
//! x86_64 Linux build embedded at compile time (`build.rs`), or a file the
//! operator names. The component never sees these requests; with the
//! download off they reach it, and it answers `404` with a hint, as on Spin.

use std::path::Path;

use bytes::Bytes;
use hyper::Method;
use wasmtime::error::Context as _;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::server::host_response;

/// The path, as the tenant's component would see it.
pub const PATH: &str = "/client";

#[cfg(embedded_client)]
const EMBEDDED: Option<&[u8]> = Some(include_bytes!(env!("WASMPASTE_CLIENT_BIN_PATH")));
/// Hosts built for anything but x86_64 Linux embed no client.
#[cfg(not(embedded_client))]
const EMBEDDED: Option<&[u8]> = None;

/// The client binary this host serves.
#[derive(Clone)]
pub struct ClientDownload {
    bytes: Bytes,
}

impl ClientDownload {
    /// What to serve: `file` when given, else the embedded build; `None`
    /// when `off`, or when this host has none to serve.
    pub fn load(file: Option<&Path>, off: bool) -> wasmtime::Result<Option<Self>> {
        if off {
            return Ok(None);
        }
        let bytes = match file {
            Some(file) => Bytes::from(std::fs::read(file).with_context(|| {
                format!(
                    "cannot read the client binary {} (--client-file)",
                    file.display()
                )
            })?),
            None => match EMBEDDED {
                Some(bytes) => Bytes::from_static(bytes),
                None => return Ok(None),
            },
        };
        Ok(Some(Self { bytes }))
    }

    /// The answer to `method` on the guest path `path`, if it is a download.
    pub fn answer(
        &self,
        method: &Method,
        path: &str,
        rid: &str,
    ) -> Option<hyper::Response<HyperOutgoingBody>> {
        if path != PATH || !matches!(*method, Method::GET | Method::HEAD) {
            return None;
        }
        let body = if method == Method::HEAD {
            Bytes::new()
        } else {
            self.bytes.clone()
        };
        let headers = [
            ("content-type", "application/octet-stream"),
            ("content-disposition", "attachment; filename=\"fpaste\""),
        ];
        Some(host_response(200, &headers, body, self.bytes.len(), rid))
    }

    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
