//! Instances of each tenant's component: how a request gets one (fresh from
//! the engine's shared pooling allocator, one instantiated ahead of it, or
//! one kept for reuse), the deadline it runs under, the call of its handler,
//! and when an instance may serve again. "When is an instance reused?" is
//! answered by [`TenantPool::give_back`], here and nowhere else; "when is one
//! made ahead?" by [`TenantPool::prepare`].
//!
//! This module knows nothing of HTTP beyond handing a request to the guest
//! and its response back: limits on bodies, headers and routing are the
//! server's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::Body;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::Proxy;
use wasmtime_wasi_http::p2::bindings::http::types::{ErrorCode, Scheme};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::bindings::HostBindings;
use crate::bindings::exports::wasmpaste::app::maintenance::{CleanupReport, ConfigReport};
use crate::cpu::{OverQuota, Request, TenantCpu};
use crate::db::Database;
use crate::engine::Compiled;
use crate::guest_log::GuestStderr;
use crate::limits::Limits;
use crate::metrics::Metrics;
use crate::state::HostState;
use crate::variables::Variables;

/// Extra time after a call's own deadline before the host gives up on it:
/// the guest's epoch deadline should fire first and answer properly.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// How often idle instances are checked for their timeout.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The request id of a ready instance's store until a request takes it
/// (nothing runs in it before then; `lease` retags it).
const READY_RID: &str = "ready";

/// The instance slots of the engine, shared by every tenant: where a tenant
/// that finds them all taken asks the others to give back their idle ones.
#[derive(Default)]
pub struct Pool {
    tenants: Mutex<Vec<Arc<Idle>>>,
}

impl Pool {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Drops every tenant's idle instances, freeing their slots for a request
    /// that could not get one; returns how many.
    fn reclaim_idle(&self) -> usize {
        let tenants = self.tenants.lock().map(|t| t.clone()).unwrap_or_default();
        tenants.iter().map(|idle| idle.take(Duration::ZERO)).sum()
    }
}

/// Everything a tenant's instances are made of.
pub struct TenantSetup {
    pub name: Arc<str>,
    /// Its share of the CPU (weight, quota, usage).
    pub cpu: Arc<TenantCpu>,
    pub engine: Engine,
    pub compiled: Arc<Compiled>,
    pub db: Arc<dyn Database>,
    pub variables: Variables,
    pub limits: Limits,
}

/// One tenant's instances: its concurrency slots and the instances it keeps
/// for reuse.
pub struct TenantPool {
    setup: TenantSetup,
    shared: Arc<Pool>,
    /// Seconds each instantiation took (`wasmpaste_instantiation_seconds`).
    instantiation: Histogram,
    /// Requests that found a ready instance (`wasmpaste_ready_instances_used_total`).
    ready_used: Counter,
    /// One permit per instance this tenant may have alive.
    slots: Arc<Semaphore>,
    idle: Arc<Idle>,
}

/// The store (and, once instantiated, the instance) serving one call.
struct Instance {
    store: Store<HostState>,
    /// `None` until the component is instantiated in `store`; `Some` for an
    /// instance that served earlier requests or was made ready for one.
    proxy: Option<Proxy>,
    /// Requests it has served: 0 for a ready instance until one takes it.
    served: u32,
    idle_since: Instant,
}

/// Instances waiting for a request, most recently added last: ones that
/// served a request and may serve another (only with `max_instance_reuse`
/// above 1), and ready ones that have never run a request
/// (`ready_instances`). Without reuse, only the latter.
#[derive(Default)]
struct Idle(Mutex<Vec<Instance>>);

impl Idle {
    fn pop(&self) -> Option<Instance> {
        self.0.lock().ok().and_then(|mut idle| idle.pop())
    }

    fn push(&self, instance: Instance) {
        if let Ok(mut idle) = self.0.lock() {
            idle.push(instance);
        }
    }

    fn len(&self) -> usize {
        self.0.lock().map_or(0, |idle| idle.len())
    }

    /// The largest linear memory among the idle instances, in bytes.
    fn largest_memory(&self) -> usize {
        self.0.lock().map_or(0, |idle| {
            idle.iter()
                .map(|i| i.store.data().limits.largest_memory())
                .max()
                .unwrap_or(0)
        })
    }

    /// Drops the instances idle for at least `ttl`; returns how many.
    fn take(&self, ttl: Duration) -> usize {
        let now = Instant::now();
        let stale: Vec<Instance> = match self.0.lock() {
            // Most recently used last: the stale ones are at the front.
            Ok(mut idle) => {
                let n = idle
                    .iter()
                    .take_while(|i| now.duration_since(i.idle_since) >= ttl)
                    .count();
                idle.drain(..n).collect()
            }
            Err(_) => Vec::new(),
        };
        // Dropped outside the lock: resetting an instance's memory takes time.
        stale.len()
    }
}

/// Why a request's guest did not answer it.
#[derive(Debug)]
pub enum Failure {
    /// Neither the URI nor a `Host` header names an authority.
    NoAuthority,
    /// The tenant is over its CPU quota and `cpu_queue` requests wait already.
    OverQuota(OverQuota),
    /// The host could not set up the exchange (a bug, never the client's).
    Setup(wasmtime::Error),
    /// The guest answered with an error code instead of a response.
    Guest(ErrorCode),
    /// The request ran out of time.
    Timeout(wasmtime::Error),
    /// The guest trapped (panic, out of memory, bug).
    Trap(wasmtime::Error),
    /// The host could not instantiate (pool exhausted, ...).
    Host(wasmtime::Error),
}

impl Failure {
    /// Sorts an error of a guest call.
    fn of_call(err: wasmtime::Error) -> Self {
        match err.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => Self::Timeout(err),
            Some(_) => Self::Trap(err),
            None if err.chain().any(|e| e.to_string().contains("trap")) => Self::Trap(err),
            None => Self::Host(err),
        }
    }
}

/// A concurrency slot of a tenant, held while one of its instances is alive.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    /// The instances of one tenant, drawing on this pool.
    pub fn tenant(self: &Arc<Self>, setup: TenantSetup, metrics: &Metrics) -> Arc<TenantPool> {
        let idle = Arc::new(Idle::default());
        if let Ok(mut tenants) = self.tenants.lock() {
            tenants.push(Arc::clone(&idle));
        }
        let permits = usize::try_from(setup.limits.max_concurrency).unwrap_or(usize::MAX);
        let instantiation = metrics.instantiation(&setup.name);
        let ready_used = metrics.ready_used(&setup.name);
        Arc::new(TenantPool {
            setup,
            shared: Arc::clone(self),
            instantiation,
            ready_used,
            slots: Arc::new(Semaphore::new(permits)),
            idle,
        })
    }
}

impl TenantPool {
    pub fn name(&self) -> &str {
        &self.setup.name
    }

    /// A slot for a request, unless `max_concurrency` are in flight.
    pub fn try_slot(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(Slot { _permit: permit })
    }

    /// A slot, waiting for one if need be (for maintenance calls).
    pub async fn slot(&self) -> wasmtime::Result<Slot> {
        Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .map(|permit| Slot { _permit: permit })
            .map_err(|e| wasmtime::format_err!("no slot: {e}"))
    }

    /// Serves one HTTP request with an instance holding `slot`: the guest's
    /// response as soon as it sets one (its body streams on while the guest
    /// writes it), or why there is none.
    pub async fn serve<B>(
        self: &Arc<Self>,
        req: hyper::Request<B>,
        rid: &str,
        slot: Slot,
    ) -> Result<hyper::Response<HyperOutgoingBody>, Failure>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        // The deadline covers waiting for CPU at admission, too.
        let deadline = self.deadline();
        let cpu = match tokio::time::timeout_at(deadline, self.setup.cpu.admit()).await {
            Ok(admitted) => admitted.map_err(Failure::OverQuota)?,
            Err(_) => return Err(Failure::Timeout(Trap::Interrupt.into())),
        };
        let mut instance = self.lease(rid, &cpu);
        let (sender, receiver) = oneshot::channel();
        let mut http = instance.store.data_mut().http();
        let wasi_req = http
            .new_incoming_request(Scheme::Http, req)
            .map_err(|_| Failure::NoAuthority)?;
        let out = http.new_response_outparam(sender).map_err(Failure::Setup)?;
        let pool = Arc::clone(self);
        // How the call ended, for an exchange the guest did not answer; sent
        // before the task makes a ready instance, which no answer waits for.
        let (ended, outcome) = oneshot::channel();
        let task = tokio::spawn(async move {
            let call = async {
                let proxy = match instance.proxy.take() {
                    Some(proxy) => proxy,
                    None => pool.instantiate(&mut instance.store).await?,
                };
                let result = proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut instance.store, wasi_req, out)
                    .await;
                instance.proxy = Some(proxy);
                result
            };
            // Also bounds time spent waiting on a slow client's body.
            let result = match tokio::time::timeout_at(deadline, cpu.meter(call)).await {
                Ok(result) => result,
                Err(_) => Err(wasmtime::Error::from(Trap::Interrupt)),
            };
            // Only an instance whose call returned may serve again; after a
            // trap or a timeout it is dropped with its store at once (that
            // ends an unanswered exchange: the host answers for the guest).
            if result.is_ok() {
                if let Some(spent) = pool.give_back(instance) {
                    // The answer is complete: let its connection write it
                    // before the teardown (the memory reset) takes this core.
                    tokio::task::yield_now().await;
                    drop(spent);
                }
            } else {
                drop(instance);
            }
            let _ = ended.send(result);
            // A ready instance holds no slot, like one kept for reuse.
            drop(slot);
            pool.prepare().await;
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(Failure::Guest(code)),
            // The guest never set a response: find out why.
            Err(_) => Err(Failure::of_call(match outcome.await {
                Ok(Ok(())) => {
                    wasmtime::format_err!("the guest returned without sending a response")
                }
                Ok(Err(e)) => e,
                // The task ended without a word: it panicked.
                Err(_) => match task.await {
                    Err(e) => wasmtime::Error::from(e),
                    Ok(()) => wasmtime::format_err!("the guest's task ended without an outcome"),
                },
            })),
        }
    }

    /// One cleanup pass of the guest (`maintenance.cleanup`), which also
    /// migrates the database.
    pub async fn cleanup(&self, rid: &str) -> wasmtime::Result<CleanupReport> {
        self.maintenance(rid, async |store, guest| {
            guest
                .wasmpaste_app_maintenance()
                .call_cleanup(store)
                .await?
                .map_err(|e| wasmtime::format_err!("the database is not usable: {e}"))
        })
        .await
    }

    /// The guest's verdict on its configuration (`maintenance.check-config`).
    pub async fn check_config(&self, rid: &str) -> wasmtime::Result<ConfigReport> {
        self.maintenance(rid, async |store, guest| {
            guest
                .wasmpaste_app_maintenance()
                .call_check_config(store)
                .await
        })
        .await
    }

    /// A fresh instance for a call of the `maintenance` export.
    async fn maintenance_instance(
        &self,
        rid: &str,
        cpu: &Arc<Request>,
    ) -> wasmtime::Result<(Store<HostState>, HostBindings)> {
        let mut store = self.new_store(rid, cpu);
        let guest = self
            .setup
            .compiled
            .maintenance
            .instantiate_async(&mut store)
            .await?;
        Ok((store, guest))
    }

    /// `call` with a fresh maintenance instance, its CPU metered like a
    /// request's (waiting for the quota, if need be, without a queue bound),
    /// given up on a grace period after the tenant's deadline.
    async fn maintenance<R>(
        &self,
        rid: &str,
        call: impl AsyncFnOnce(&mut Store<HostState>, &HostBindings) -> wasmtime::Result<R>,
    ) -> wasmtime::Result<R> {
        let _slot = self.slot().await?;
        let deadline = self.deadline();
        let run = async {
            let cpu = self.setup.cpu.admit_unbounded().await;
            cpu.meter(async {
                let (mut store, guest) = self.maintenance_instance(rid, &cpu).await?;
                call(&mut store, &guest).await
            })
            .await
        };
        tokio::time::timeout_at(deadline, run)
            .await
            .map_err(|_| wasmtime::Error::from(Trap::Interrupt))?
    }

    /// When the host gives up on a call starting now: a grace period after
    /// the tenant's deadline, so the guest's own epoch deadline fires first
    /// and answers properly.
    fn deadline(&self) -> tokio::time::Instant {
        tokio::time::Instant::now() + self.setup.limits.request_timeout + DEADLINE_GRACE
    }

    /// What serves the request `rid`: a waiting instance when there is one
    /// (ready, or kept for reuse; its deadline restarted, its log lines
    /// retagged), else a fresh store.
    fn lease(&self, rid: &str, cpu: &Arc<Request>) -> Instance {
        match self.idle.pop() {
            Some(mut instance) => {
                if instance.served == 0 {
                    self.ready_used.inc();
                }
                instance.store.data_mut().set_request_id(rid);
                let timeout = self.setup.limits.request_timeout;
                arm_deadline(&mut instance.store, timeout, Arc::clone(cpu));
                instance
            }
            None => Instance {
                store: self.new_store(rid, cpu),
                proxy: None,
                served: 0,
                idle_since: Instant::now(),
            },
        }
    }

    /// A store for one call of this tenant, with its limits, database and
    /// variables, and its stderr tagged with the tenant and `rid`.
    fn new_store(&self, rid: &str, cpu: &Arc<Request>) -> Store<HostState> {
        let setup = &self.setup;
        let state = HostState::new(
            Arc::clone(&setup.db),
            setup.variables.clone(),
            setup.limits.max_memory,
            GuestStderr::new(Arc::clone(&setup.name), Arc::from(rid)),
        );
        let mut store = Store::new(&setup.engine, state);
        store.limiter(|s| &mut s.limits);
        arm_deadline(&mut store, setup.limits.request_timeout, Arc::clone(cpu));
        store
    }

    /// Instantiates the component in `store` for a request. The shared pool
    /// may be full of waiting instances: those give way to a request.
    async fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Proxy> {
        match self.instantiate_in_free_slot(store).await {
            Err(_) if self.shared.reclaim_idle() > 0 => self.instantiate_in_free_slot(store).await,
            made => made,
        }
    }

    /// Instantiates the component in `store`, timed, if the shared pool has
    /// a free slot.
    async fn instantiate_in_free_slot(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Proxy> {
        let started = Instant::now();
        let proxy = self.setup.compiled.proxy.instantiate_async(store).await?;
        self.instantiation.observe(started.elapsed().as_secs_f64());
        Ok(proxy)
    }

    /// Whether fewer than `ready_instances` instances wait for a request.
    fn wants_ready(&self) -> bool {
        self.idle.len() < usize::try_from(self.setup.limits.ready_instances).unwrap_or(usize::MAX)
    }

    /// Instantiates one instance ahead of the next request when fewer than
    /// `ready_instances` wait: that request skips instantiation, and a fresh
    /// instance is still one that never ran a request. Its CPU is the
    /// tenant's, like a maintenance call's. With the shared pool full it
    /// gives up rather than take other tenants' idle instances: a request
    /// makes room for itself, a guess does not.
    async fn prepare(&self) {
        if !self.wants_ready() {
            return;
        }
        let cpu = self.setup.cpu.admit_unbounded().await;
        let made: wasmtime::Result<_> = cpu
            .meter(async {
                let mut store = self.new_store(READY_RID, &cpu);
                let proxy = self.instantiate_in_free_slot(&mut store).await?;
                Ok((store, proxy))
            })
            .await;
        match made {
            // Requests that ended together may each have made one.
            Ok((store, proxy)) if self.wants_ready() => self.idle.push(Instance {
                store,
                proxy: Some(proxy),
                served: 0,
                idle_since: Instant::now(),
            }),
            Ok(_) => {}
            Err(e) => tracing::debug!(tenant = %self.setup.name, "no ready instance: {e:#}"),
        }
    }

    /// Takes back an instance whose call returned normally. It is kept for
    /// another request unless it has served `max_instance_reuse` of them or
    /// still holds a resource of the exchange it served; then it is handed
    /// back for the caller to drop. Callers drop (never return) a store
    /// whose call trapped or timed out: it may be stuck mid-call.
    fn give_back(&self, mut instance: Instance) -> Option<Instance> {
        instance.served = instance.served.saturating_add(1);
        if instance.proxy.is_none()
            || instance.served >= self.setup.limits.max_instance_reuse
            || instance.store.data_mut().holds_http_exchange()
        {
            return Some(instance);
        }
        instance.idle_since = Instant::now();
        self.idle.push(instance);
        None
    }

    /// Drops the instances unused for the tenant's `idle_instance_timeout`
    /// (kept or ready), giving back their memory; returns how many.
    pub fn sweep(&self) -> usize {
        self.idle.take(self.setup.limits.idle_instance_timeout)
    }

    /// Instances waiting for a request right now (kept or ready).
    pub fn idle_instances(&self) -> usize {
        self.idle.len()
    }

    /// The largest linear memory of a waiting instance, in bytes: a guest
    /// that leaks grows it request after request when instances are reused.
    pub fn idle_instance_memory(&self) -> usize {
        self.idle.largest_memory()
    }
}

/// Starts the clock of one call in `store`: a reused instance gets a full
/// `timeout` again for each request it serves. At every epoch tick the
/// guest traps once its time is up, else does what the CPU scheduler says
/// (`cpu.rs`: run on, yield, or wait for its turn).
fn arm_deadline(store: &mut Store<HostState>, timeout: Duration, cpu: Arc<Request>) {
    let started = Instant::now();
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if started.elapsed() >= timeout {
            Ok(UpdateDeadline::Interrupt)
        } else {
            Ok(cpu.on_tick())
        }
    });
}

/// Drops, every second, the instances tenants keep waiting (for reuse, or
/// ready) and no longer use (only when some tenant keeps any).
pub fn start_idle_sweeper(pools: Vec<Arc<TenantPool>>) {
    if pools
        .iter()
        .all(|p| p.setup.limits.max_instance_reuse <= 1 && p.setup.limits.ready_instances == 0)
    {
        return;
    }
    let pools: Vec<_> = pools.iter().map(Arc::downgrade).collect();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for pool in &pools {
                let Some(pool) = pool.upgrade() else {
                    return;
                };
                let dropped = pool.sweep();
                if dropped > 0 {
                    tracing::debug!(tenant = %pool.name(), dropped, "idle instances dropped");
                }
            }
        }
    });
}
