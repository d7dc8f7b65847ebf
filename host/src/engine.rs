//! The wasmtime side: one `Engine` for all tenants (pooling allocator,
//! copy-on-write images, epoch interruption, compilation cache), and each
//! distinct component compiled once, linked against what the host provides
//! and pre-instantiated. Instances themselves are the pool's (`pool.rs`).

use std::path::Path;
use std::time::{Duration, Instant};

use wasmtime::component::{Component, Linker};
use wasmtime::error::Context as _;
use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::{HostBindingsPre, fermyon};
use crate::limits::Limits;
use crate::spin_sqlite::SpinSqlite;
use crate::spin_variables::SpinVariables;
use crate::state::HostState;

/// How often the epoch advances: the granularity of deadlines and of CPU
/// scheduling (`cpu.rs`): a heavy request yields to light work on its core
/// at every tick, and slots change hands at ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);

/// How big the shared instance pool is: every tenant draws from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Component instances alive at once, over all tenants.
    pub instances: u32,
    /// The largest memory any tenant may use, in bytes.
    pub max_memory: usize,
}

impl PoolSize {
    /// Room for every tenant's concurrency (plus one maintenance call each,
    /// and its ready instances), but never more than `cap` slots: an
    /// instance slot reserves address space, and a hoster bounds the total.
    pub fn for_tenants<'a>(limits: impl IntoIterator<Item = &'a Limits>, cap: u32) -> Self {
        let (instances, max_memory) = limits.into_iter().fold((0u32, 0usize), |(n, m), l| {
            (
                n.saturating_add(l.max_concurrency)
                    .saturating_add(1)
                    .saturating_add(l.ready_instances),
                m.max(l.max_memory),
            )
        });
        Self {
            instances: instances.clamp(1, cap.max(1)),
            max_memory,
        }
    }
}

/// One compiled component, linked and ready to instantiate; tenants running
/// the same bytes share it.
pub struct Compiled {
    /// For HTTP requests (`wasi:http/incoming-handler`).
    pub proxy: ProxyPre<HostState>,
    /// For calls of the `maintenance` export.
    pub maintenance: HostBindingsPre<HostState>,
}

impl Compiled {
    /// Compiles `wasm` (or loads its machine code from the engine's cache)
    /// and links it against WASI, wasi-http, sqlite and variables.
    /// `cache` is the engine's compilation cache, only to log hit or miss.
    pub fn new(engine: &Engine, wasm: &[u8], cache: Option<&Cache>) -> wasmtime::Result<Self> {
        let started = Instant::now();
        let hits = cache.map(Cache::cache_hits);
        let component = Component::new(engine, wasm).context("the component failed to compile")?;
        tracing::info!(
            ms = started.elapsed().as_millis(),
            cache = match (hits, cache.map(Cache::cache_hits)) {
                (Some(before), Some(after)) if after > before => "hit",
                (Some(_), _) => "miss",
                (None, _) => "off",
            },
            "component ready"
        );
        let mut linker = Linker::<HostState>::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        fermyon::spin::sqlite::add_to_linker::<_, SpinSqlite>(&mut linker, HostState::sqlite)?;
        fermyon::spin::variables::add_to_linker::<_, SpinVariables>(
            &mut linker,
            HostState::variables,
        )?;
        let pre = linker
            .instantiate_pre(&component)
            .context("the component imports something this host does not provide")?;
        let proxy = ProxyPre::new(pre.clone())
            .context("the component does not export wasi:http/incoming-handler")?;
        let maintenance = HostBindingsPre::new(pre)
            .context("the component does not export wasmpaste:app/maintenance")?;
        Ok(Self { proxy, maintenance })
    }
}

/// Advances the engine's epoch forever; deadlines and yields depend on it.
pub fn start_epoch_ticker(engine: &Engine) {
    let engine = engine.weak();
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

/// wasmtime's compilation cache in `dir`: machine code keyed by a hash of
/// the wasm and of the engine's compilation settings and version, so a
/// restart with the same component skips Cranelift, and a changed component
/// or upgraded host can never load stale code.
pub fn compile_cache(dir: &Path) -> wasmtime::Result<Cache> {
    std::fs::create_dir_all(dir).map_err(|e| {
        wasmtime::format_err!(
            "cannot create the cache directory {}: {e}{}",
            dir.display(),
            crate::db::file::permission_hint(dir, &e)
        )
    })?;
    // wasmtime wants an absolute path; `--db x.db` or `--config t.toml` give a relative one.
    let dir = std::path::absolute(dir)
        .with_context(|| format!("cannot resolve the cache directory {}", dir.display()))?;
    let mut config = CacheConfig::new();
    config.with_directory(&dir);
    Cache::new(config).with_context(|| format!("cannot use the cache directory {}", dir.display()))
}

/// The one engine every tenant's components run on: pooling allocator sized
/// by `pool`, copy-on-write memory images, epoch interruption, and the
/// compilation cache when given. Benchmarks use it too, so they measure what
/// production runs.
pub fn new_engine(pool_size: PoolSize, cache: Option<Cache>) -> wasmtime::Result<Engine> {
    let n = pool_size.instances;
    let mut pool = PoolingAllocationConfig::new();
    // Instances are recycled from a pool; memories are copy-on-write images
    // with the first MiB kept resident, so per-request instantiation is
    // microseconds.
    pool.total_component_instances(n)
        .total_core_instances(n.saturating_mul(4))
        .total_memories(n.saturating_mul(2))
        .total_tables(n.saturating_mul(4))
        .total_stacks(n)
        .max_memory_size(pool_size.max_memory)
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
