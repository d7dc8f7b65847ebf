//! The wasmtime side: one `Engine`, the component compiled once, a
//! pre-instantiated `WasmpastePre`, and a fresh `Store` per call with the
//! sandbox limits (memory, CPU deadline, resources) set in one place.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::error::Context as _;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig, Store, Trap, UpdateDeadline,
};

use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{HostBindings, HostBindingsPre, fermyon};
use crate::sqlite::Database;
use crate::state::HostState;
use crate::variables::Variables;

/// How often the epoch advances: the granularity of deadlines and of the
/// cooperative yields that keep one busy guest from starving the others.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sandbox limits applied to every instance.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory per instance, in bytes.
    pub max_memory: usize,
    /// Wall-clock time for one request, including reading and writing bodies.
    pub request_timeout: Duration,
    /// Instances alive at once (requests in flight plus maintenance calls).
    pub max_concurrency: u32,
}

/// Everything needed to run the component.
pub struct Runtime {
    pub engine: Engine,
    /// For HTTP requests (`wasi:http/incoming-handler`).
    pub proxy: ProxyPre<HostState>,
    /// For calls of the `maintenance` export.
    pub maintenance: HostBindingsPre<HostState>,
    pub db: Arc<Database>,
    pub variables: Variables,
    pub limits: Limits,
}

impl Runtime {
    /// Compiles `wasm` (or loads its machine code from `cache_dir`) and links
    /// it against WASI, wasi-http, sqlite and variables.
    pub fn new(
        wasm: &[u8],
        db: Arc<Database>,
        variables: Variables,
        limits: Limits,
        cache_dir: Option<&Path>,
    ) -> wasmtime::Result<Self> {
        let cache = cache_dir.map(compile_cache).transpose()?;
        let engine = new_engine(&limits, cache.clone())?;
        let started = Instant::now();
        let component = Component::new(&engine, wasm).context("the component failed to compile")?;
        tracing::info!(
            ms = started.elapsed().as_millis(),
            cache = match &cache {
                Some(c) if c.cache_hits() > 0 => "hit",
                Some(_) => "miss",
                None => "off",
            },
            "component ready"
        );
        let mut linker = Linker::<HostState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        fermyon::spin::sqlite::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        fermyon::spin::variables::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;
        let pre = linker
            .instantiate_pre(&component)
            .context("the component imports something this host does not provide")?;
        let proxy = ProxyPre::new(pre.clone())
            .context("the component does not export wasi:http/incoming-handler")?;
        let maintenance = HostBindingsPre::new(pre)
            .context("the component does not export wasmpaste:app/maintenance")?;
        Ok(Self {
            engine,
            proxy,
            maintenance,
            db,
            variables,
            limits,
        })
    }

    /// A store for one call, with every limit set.
    pub fn store(&self) -> Store<HostState> {
        let state = HostState::new(
            Arc::clone(&self.db),
            self.variables.clone(),
            self.limits.max_memory,
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let started = Instant::now();
        let timeout = self.limits.request_timeout;
        store.set_epoch_deadline(1);
        // Yield to other tasks every tick; trap once the request's time is up.
        store.epoch_deadline_callback(move |_| {
            if started.elapsed() >= timeout {
                Ok(UpdateDeadline::Interrupt)
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        store
    }

    /// A fresh instance in a fresh store, for calls outside HTTP requests.
    pub async fn instantiate(&self) -> wasmtime::Result<(Store<HostState>, HostBindings)> {
        let mut store = self.store();
        let instance = self.maintenance.instantiate_async(&mut store).await?;
        Ok((store, instance))
    }

    /// Advances the epoch forever; deadlines and yields depend on it.
    pub fn start_epoch_ticker(&self) {
        let engine = self.engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = engine.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map(drop)
            .unwrap_or_else(|e| tracing::error!("cannot start the epoch ticker: {e}"));
    }
}

/// wasmtime's compilation cache in `dir`: machine code keyed by a hash of
/// the wasm and of the engine's compilation settings and version, so a
/// restart with the same component skips Cranelift, and a changed component
/// or upgraded host can never load stale code.
fn compile_cache(dir: &Path) -> wasmtime::Result<Cache> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the cache directory {}", dir.display()))?;
    let mut config = CacheConfig::new();
    config.with_directory(dir);
    Cache::new(config).with_context(|| format!("cannot use the cache directory {}", dir.display()))
}

/// The engine every component runs on: pooling allocator sized from `limits`,
/// copy-on-write memory images, epoch interruption, and the compilation
/// cache when given. Benchmarks use it too, so they measure what production
/// runs.
pub fn new_engine(limits: &Limits, cache: Option<Cache>) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    // Instances are recycled from a pool; memories are copy-on-write images
    // with the first MiB kept resident, so per-request instantiation is
    // microseconds.
    pool.total_component_instances(limits.max_concurrency)
        .total_core_instances(limits.max_concurrency.saturating_mul(4))
        .total_memories(limits.max_concurrency.saturating_mul(2))
        .total_tables(limits.max_concurrency.saturating_mul(4))
        .total_stacks(limits.max_concurrency)
        .max_memory_size(limits.max_memory)
        .linear_memory_keep_resident(1 << 20)
        .table_keep_resident(1 << 16)
        .pagemap_scan(Enabled::Auto);
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .cache(cache);
    Engine::new(&config).context("cannot configure the WebAssembly engine")
}

/// Why a guest call failed, for choosing the status code and the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The request ran out of time.
    Timeout,
    /// The guest trapped (panic, out of memory, bug).
    Trap,
    /// The host could not instantiate (pool exhausted, ...).
    Host,
}

pub fn classify(err: &wasmtime::Error) -> Failure {
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => Failure::Timeout,
        Some(_) => Failure::Trap,
        None if err.chain().any(|e| e.to_string().contains("trap")) => Failure::Trap,
        None => Failure::Host,
    }
}
