//! The data of one store: one flat struct with the resource table, the WASI
//! and wasi-http contexts, memory limits, the SQL and variables contexts, and
//! the small views each linked interface gets of it.

use std::future::Future;
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::p2::body::{HostIncomingBody, HostOutgoingBody};
use wasmtime_wasi_http::p2::types::{
    HostIncomingRequest, HostOutgoingResponse, HostResponseOutparam,
};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks,
    WasiHttpView,
};

use crate::db::Database;
use crate::guest_log::GuestStderr;
use crate::spin_sqlite::{SqliteCtx, SqliteView};
use crate::variables::Variables;

/// Most resources (streams, fields, connections...) a guest may hold at once.
const MAX_RESOURCES: usize = 10_000;

pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutbound,
    pub limits: Limiter,
    sqlite: SqliteCtx,
    variables: Variables,
    /// The same sink as `wasi`'s stderr, kept to retag a reused instance.
    stderr: GuestStderr,
}

impl HostState {
    pub fn new(
        db: Arc<dyn Database>,
        variables: Variables,
        max_memory: usize,
        stderr: GuestStderr,
    ) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        Self {
            table,
            // Only stderr, for the guest's JSON log lines; no files, no env, no network.
            wasi: WasiCtx::builder().stderr(stderr.clone()).build(),
            http: WasiHttpCtx::new(),
            hooks: DenyOutbound,
            limits: Limiter {
                limits: StoreLimitsBuilder::new()
                    .memory_size(max_memory)
                    .trap_on_grow_failure(true)
                    .build(),
                largest_memory: 0,
            },
            sqlite: SqliteCtx::new(db),
            variables,
            stderr,
        }
    }

    /// Whether the guest still holds a resource of the HTTP exchange it
    /// served (request, body, response, out-parameter). Such an instance is
    /// not reused: the resource would keep the client's connection (an
    /// unread request body, an unfinished response) waiting on it.
    pub fn holds_http_exchange(&mut self) -> bool {
        self.table.iter_mut().any(|r| {
            r.is::<HostIncomingRequest>()
                || r.is::<HostIncomingBody>()
                || r.is::<HostResponseOutparam>()
                || r.is::<HostOutgoingResponse>()
                || r.is::<HostOutgoingBody>()
        })
    }

    /// Tags the guest's log lines with the request a reused instance serves now.
    pub fn set_request_id(&mut self, rid: &str) {
        self.stderr.set_rid(Arc::from(rid));
    }

    /// The view `fermyon:spin/sqlite` is linked against.
    pub fn sqlite(&mut self) -> SqliteView<'_> {
        SqliteView {
            ctx: &mut self.sqlite,
            table: &mut self.table,
        }
    }

    /// The view `fermyon:spin/variables` is linked against.
    pub fn variables(&mut self) -> &Variables {
        &self.variables
    }
}

/// The store's memory limits, noting how large its largest linear memory
/// grew (the soak and the `wasmpaste_instance_memory_bytes` gauge watch a
/// reused instance's memory for leaks).
pub struct Limiter {
    limits: StoreLimits,
    largest_memory: usize,
}

impl Limiter {
    /// Bytes of the largest linear memory of this store's instances.
    pub fn largest_memory(&self) -> usize {
        self.largest_memory
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.largest_memory = self.largest_memory.max(desired);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// The guest has no business making outbound HTTP requests: refuse them all.
pub struct DenyOutbound;

impl WasiHttpHooks for DenyOutbound {
    #[allow(clippy::type_complexity)]
    fn send_request(
        &mut self,
        _request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        Box::new(async { Err(HttpError::HttpRequestDenied) })
    }
}
