//! Guest CPU: what each request and each tenant uses, who runs next when the
//! CPU is contended, and per-tenant quotas. The pool (`pool.rs`) meters every
//! guest call with [`Request::meter`] and consults [`Request::on_tick`] at each
//! epoch tick; nothing else here touches wasmtime.
//!
//! The model, in the order decisions are made:
//! - **Light first.** A request that has used less than [`LIGHT_CPU`] of CPU
//!   is light: it runs without yielding and never waits for a heavy slot.
//! - **Heavy slots.** Past that, a request runs only while it holds one of
//!   the heavy slots: as many as cores, less one while light requests are
//!   about, so light work always finds a core. A heavy request yields to the
//!   executor at every tick, so light work on its core runs in between.
//! - **Fair share.** Heavy requests waiting for a slot are granted one by
//!   tenant, least weighted CPU first (each tenant's CPU, light included,
//!   divided by its `cpu_weight`), in arrival order within a tenant; a
//!   heavy request gives up its slot when a waiting tenant is more than
//!   [`GRANULARITY`] behind its own.
//! - **Quotas.** A tenant with `cpu_ms_per_sec` has a bucket of that many
//!   milliseconds, refilled at that rate. While it is empty, the tenant's
//!   requests pause (at admission, and at their ticks) and then run one at a
//!   time, oldest first, so its work still finishes; beyond `cpu_queue`
//!   waiting at admission, new ones are refused (503 with Retry-After).
//!
//! Must never: make one tenant's requests wait on another tenant's quota, or
//! hold a lock across an await.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};
use wasmtime::UpdateDeadline;

use crate::metrics::CpuMetrics;

/// CPU a request may use before it counts as heavy. A read or an ordinary
/// create takes well under a millisecond; a password (PBKDF2, 600k rounds)
/// or a certificate takes hundreds.
pub const LIGHT_CPU: Duration = Duration::from_millis(5);
/// A light request seen this recently keeps one core free of heavy work.
const LIGHT_WINDOW: Duration = Duration::from_millis(20);
/// How far ahead (in weighted CPU) a tenant's heavy request may run of a
/// tenant waiting for a slot before it gives its slot up: larger means fewer
/// hand-overs, smaller means a finer share.
pub const GRANULARITY: Duration = Duration::from_millis(4);
/// The weight of a tenant that sets none (cgroup v2's default `cpu.weight`).
pub const DEFAULT_WEIGHT: u32 = 100;

/// `Cpu::light_seen` before any light request.
const NEVER: u64 = u64::MAX;

/// The host's CPU: its heavy slots and the tenants waiting for them.
pub struct Cpu {
    epoch: Instant,
    cores: usize,
    /// When a light request last started or ran (ns since `epoch`);
    /// [`NEVER`] before the first.
    light_seen: AtomicU64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Heavy slots held.
    running: usize,
    lanes: Vec<Lane>,
}

/// One tenant's heavy requests.
struct Lane {
    /// The tenant's weighted CPU, shared with its [`TenantCpu`].
    vtime: Arc<AtomicU64>,
    running: usize,
    /// Waiting for a slot, oldest request first.
    waiting: VecDeque<(u64, oneshot::Sender<HeavySlot>)>,
}

impl Lane {
    fn has_waiter(&mut self) -> bool {
        self.waiting.retain(|(_, tx)| !tx.is_closed());
        !self.waiting.is_empty()
    }
}

impl Cpu {
    /// A scheduler for `cores` cores (the executor's worker threads).
    pub fn new(cores: usize) -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            cores: cores.max(1),
            light_seen: AtomicU64::new(NEVER),
            state: Mutex::new(State::default()),
        })
    }

    /// The cores of this machine, as the executor counts them.
    pub fn available_cores() -> usize {
        std::thread::available_parallelism().map_or(1, usize::from)
    }

    /// A tenant of this CPU.
    pub fn tenant(
        self: &Arc<Self>,
        weight: u32,
        quota: Option<QuotaSettings>,
        metrics: CpuMetrics,
    ) -> Arc<TenantCpu> {
        let vtime = Arc::new(AtomicU64::new(0));
        let mut state = self.lock();
        let lane = state.lanes.len();
        state.lanes.push(Lane {
            vtime: Arc::clone(&vtime),
            running: 0,
            waiting: VecDeque::new(),
        });
        Arc::new(TenantCpu {
            cpu: Arc::clone(self),
            lane,
            weight: u64::from(weight.max(1)),
            vtime,
            arrivals: AtomicU64::new(0),
            quota: quota.map(Quota::new),
            metrics,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves counts that are still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn saw_light(&self) {
        self.light_seen.store(self.now_ns(), Ordering::Relaxed);
    }

    /// Heavy slots that may be held now.
    fn allowed(&self) -> usize {
        let seen = self.light_seen.load(Ordering::Relaxed);
        let since = self.now_ns().saturating_sub(seen);
        let light_about = seen != NEVER && u128::from(since) < LIGHT_WINDOW.as_nanos();
        self.cores.saturating_sub(usize::from(light_about)).max(1)
    }

    /// A slot for a request of `lane` (arrival `seq`) now, or a place in
    /// the queue.
    fn request_slot(self: &Arc<Self>, lane: usize, seq: u64) -> Result<HeavySlot, Waiting> {
        let mut state = self.lock();
        let anyone_waiting = state.lanes.iter_mut().any(Lane::has_waiter);
        if !anyone_waiting && state.running < self.allowed() {
            return Ok(self.hand_out(&mut state, lane));
        }
        // A tenant that had nothing running catches up with the others only
        // by one granularity: idle time is not saved up as a claim on CPU.
        let floor = state
            .lanes
            .iter()
            .filter(|l| l.running > 0 || !l.waiting.is_empty())
            .map(|l| l.vtime.load(Ordering::Relaxed))
            .min();
        let Some(this) = state.lanes.get_mut(lane) else {
            return Ok(self.hand_out(&mut state, lane));
        };
        if this.running == 0
            && this.waiting.is_empty()
            && let Some(floor) = floor
        {
            let floor = floor.saturating_sub(duration_ns(GRANULARITY));
            this.vtime.fetch_max(floor, Ordering::Relaxed);
        }
        let (tx, rx) = oneshot::channel();
        let at = this.waiting.partition_point(|(s, _)| *s < seq);
        this.waiting.insert(at, (seq, tx));
        // A slot may be free with others waiting (more slots are allowed
        // since they queued): hand it out now, possibly to this request.
        self.grant(&mut state);
        Err(Waiting(rx))
    }

    fn hand_out(self: &Arc<Self>, state: &mut State, lane: usize) -> HeavySlot {
        state.running += 1;
        if let Some(l) = state.lanes.get_mut(lane) {
            l.running += 1;
        }
        HeavySlot {
            cpu: Some(Arc::clone(self)),
            lane,
        }
    }

    /// Grants free slots to waiters: least weighted CPU first.
    fn grant(self: &Arc<Self>, state: &mut State) {
        while state.running < self.allowed() {
            let next = state
                .lanes
                .iter_mut()
                .enumerate()
                .filter_map(|(i, l)| l.has_waiter().then(|| (l.vtime.load(Ordering::Relaxed), i)))
                .min();
            let Some((_, lane)) = next else {
                return;
            };
            let Some((_, tx)) = state
                .lanes
                .get_mut(lane)
                .and_then(|l| l.waiting.pop_front())
            else {
                return;
            };
            let slot = self.hand_out(state, lane);
            if let Err(mut slot) = tx.send(slot) {
                // The waiter went away meanwhile: undo without re-locking.
                slot.cpu = None;
                state.running = state.running.saturating_sub(1);
                if let Some(l) = state.lanes.get_mut(lane) {
                    l.running = l.running.saturating_sub(1);
                }
            }
        }
    }

    fn release(self: &Arc<Self>, lane: usize) {
        let mut state = self.lock();
        state.running = state.running.saturating_sub(1);
        if let Some(l) = state.lanes.get_mut(lane) {
            l.running = l.running.saturating_sub(1);
        }
        self.grant(&mut state);
    }

    /// Whether a heavy request of `lane` holding a slot should give it up:
    /// too many slots are held, or another tenant waits that is more than a
    /// granularity behind. Hands out free slots on the way.
    fn should_step_down(self: &Arc<Self>, lane: usize) -> bool {
        let mut state = self.lock();
        if state.running > self.allowed() {
            return true;
        }
        self.grant(&mut state);
        let Some(mine) = state
            .lanes
            .get(lane)
            .map(|l| l.vtime.load(Ordering::Relaxed))
        else {
            return false;
        };
        let slack = duration_ns(GRANULARITY);
        state.lanes.iter_mut().enumerate().any(|(i, l)| {
            i != lane
                && l.has_waiter()
                && l.vtime.load(Ordering::Relaxed).saturating_add(slack) < mine
        })
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A heavy slot; given back when dropped.
pub struct HeavySlot {
    /// `None` once defused (handed out to a waiter that had gone).
    cpu: Option<Arc<Cpu>>,
    lane: usize,
}

impl Drop for HeavySlot {
    fn drop(&mut self) {
        if let Some(cpu) = self.cpu.take() {
            cpu.release(self.lane);
        }
    }
}

/// A place in the queue for a heavy slot.
struct Waiting(oneshot::Receiver<HeavySlot>);

/// A tenant's `cpu_ms_per_sec` and `cpu_queue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaSettings {
    pub ms_per_sec: u32,
    pub queue: u32,
}

/// A token bucket of CPU time: one second's worth, refilled continuously.
struct Quota {
    settings: QuotaSettings,
    bucket: Mutex<Bucket>,
    /// Taken by a request that found the bucket empty, until it ends: while
    /// the tenant is over its quota its requests run one at a time.
    gate: Arc<Semaphore>,
    /// Requests waiting at admission.
    waiting: AtomicUsize,
}

struct Bucket {
    /// Nanoseconds of CPU left; negative is a debt.
    balance: i64,
    at: Instant,
}

impl Quota {
    fn new(settings: QuotaSettings) -> Self {
        Self {
            settings,
            bucket: Mutex::new(Bucket {
                balance: i64::from(settings.ms_per_sec).saturating_mul(1_000_000),
                at: Instant::now(),
            }),
            gate: Arc::new(Semaphore::new(1)),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Refills the bucket, applies `charge` and says how long until it is no
    /// longer in debt (`None` when it is not).
    fn update(&self, charge: Duration) -> Option<Duration> {
        let rate = i64::from(self.settings.ms_per_sec.max(1));
        let capacity = rate.saturating_mul(1_000_000);
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let elapsed = i64::try_from(now.duration_since(bucket.at).as_nanos()).unwrap_or(i64::MAX);
        // `rate` ms of CPU per 1000 ms of time.
        let refill = elapsed.saturating_mul(rate) / 1000;
        let charge = i64::try_from(charge.as_nanos()).unwrap_or(i64::MAX);
        bucket.balance = bucket
            .balance
            .saturating_add(refill)
            .min(capacity)
            .saturating_sub(charge);
        bucket.at = now;
        (bucket.balance < 0).then(|| {
            let debt = bucket.balance.unsigned_abs();
            // 1000 ns of time repay `rate` ns of CPU; round up to whole ms.
            let wait = debt.saturating_mul(1000) / u64::try_from(rate).unwrap_or(1);
            Duration::from_nanos(wait).max(Duration::from_millis(1))
        })
    }
}

/// One tenant's share of the CPU: its weight, quota, usage and metrics.
pub struct TenantCpu {
    cpu: Arc<Cpu>,
    lane: usize,
    weight: u64,
    /// CPU used, in nanoseconds scaled by `DEFAULT_WEIGHT / weight`.
    vtime: Arc<AtomicU64>,
    /// Numbers requests in arrival order.
    arrivals: AtomicU64,
    quota: Option<Quota>,
    metrics: CpuMetrics,
}

/// Why a request was refused before it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    /// When the bucket will have refilled enough for the waiting requests.
    pub retry_after: Duration,
}

impl TenantCpu {
    /// Admits a request: at once, or once the tenant's quota allows it;
    /// refused when `cpu_queue` requests already wait.
    pub async fn admit(self: &Arc<Self>) -> Result<Arc<Request>, OverQuota> {
        self.cpu.saw_light();
        let request = self.new_request();
        if let Some(quota) = &self.quota
            && let Some(wait) = quota.update(Duration::ZERO)
        {
            let queued = quota.waiting.fetch_add(1, Ordering::Relaxed);
            let _queued = Decrement(&quota.waiting);
            if queued >= usize::try_from(quota.settings.queue).unwrap_or(usize::MAX) {
                return Err(OverQuota { retry_after: wait });
            }
            request.wait_for_quota().await;
        }
        Ok(request)
    }

    /// Admits a maintenance call: waits for the quota like a request, but
    /// is never refused (it is the host's own work for the tenant).
    pub async fn admit_unbounded(self: &Arc<Self>) -> Arc<Request> {
        let request = self.new_request();
        if let Some(quota) = &self.quota
            && quota.update(Duration::ZERO).is_some()
        {
            request.wait_for_quota().await;
        }
        request
    }

    fn new_request(self: &Arc<Self>) -> Arc<Request> {
        Arc::new(Request {
            tenant: Arc::clone(self),
            seq: self.arrivals.fetch_add(1, Ordering::Relaxed),
            used: AtomicU64::new(0),
            polling_since: AtomicU64::new(NEVER),
            slot: Mutex::new(None),
            gate: Mutex::new(None),
        })
    }

    fn charge(&self, used: Duration) {
        let ns = duration_ns(used);
        self.metrics.cpu_seconds.inc_by(used.as_secs_f64());
        let weighted = ns.saturating_mul(u64::from(DEFAULT_WEIGHT)) / self.weight;
        self.vtime.fetch_add(weighted, Ordering::Relaxed);
        if let Some(quota) = &self.quota {
            quota.update(used);
        }
    }
}

/// Decrements a counter when dropped.
struct Decrement<'a>(&'a AtomicUsize);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One request's (or maintenance call's) CPU: what it used, and the heavy
/// slot and quota gate it holds.
pub struct Request {
    tenant: Arc<TenantCpu>,
    seq: u64,
    /// CPU of the polls that ended, in ns.
    used: AtomicU64,
    /// When the poll running now began (ns since the scheduler's epoch);
    /// [`NEVER`] between polls. The epoch callback runs inside a poll, so
    /// what a request has used counts the current poll too.
    polling_since: AtomicU64,
    slot: Mutex<Option<HeavySlot>>,
    gate: Mutex<Option<OwnedSemaphorePermit>>,
}

impl Request {
    /// `call`, with the CPU of each of its polls charged to this request and
    /// its tenant. Whatever the request holds is given back when it ends.
    pub fn meter<F: Future>(self: &Arc<Self>, call: F) -> Metered<F> {
        Metered {
            call: Box::pin(call),
            request: Arc::clone(self),
        }
    }

    /// CPU used so far, the poll running now included.
    fn used(&self) -> Duration {
        let ended = self.used.load(Ordering::Relaxed);
        let since = self.polling_since.load(Ordering::Relaxed);
        let running = match since {
            NEVER => 0,
            since => self.tenant.cpu.now_ns().saturating_sub(since),
        };
        Duration::from_nanos(ended.saturating_add(running))
    }

    fn holds_slot(&self) -> bool {
        self.slot.lock().is_ok_and(|s| s.is_some())
    }

    fn set_slot(&self, slot: Option<HeavySlot>) {
        let old = match self.slot.lock() {
            Ok(mut held) => std::mem::replace(&mut *held, slot),
            Err(_) => slot,
        };
        // Released outside the lock: releasing grants to the next waiter.
        drop(old);
    }

    /// What the guest does at an epoch tick (its deadline is the caller's).
    pub fn on_tick(self: &Arc<Self>) -> UpdateDeadline {
        let cpu = &self.tenant.cpu;
        if let Some(quota) = &self.tenant.quota
            && quota.update(Duration::ZERO).is_some()
        {
            // Over quota: pause, leaving the heavy slot to others meanwhile.
            let heavy = self.holds_slot() || self.used() >= LIGHT_CPU;
            self.set_slot(None);
            let me = Arc::clone(self);
            return UpdateDeadline::YieldCustom(
                1,
                Box::pin(async move {
                    me.wait_for_quota().await;
                    if heavy {
                        me.acquire_slot().await;
                    }
                }),
            );
        }
        if self.used() < LIGHT_CPU {
            cpu.saw_light();
            return UpdateDeadline::Continue(1);
        }
        if self.holds_slot() && cpu.should_step_down(self.tenant.lane) {
            self.set_slot(None);
        }
        if self.holds_slot() {
            // Let whatever is ready on this core (light work) run first.
            return UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()));
        }
        let me = Arc::clone(self);
        UpdateDeadline::YieldCustom(1, Box::pin(async move { me.acquire_slot().await }))
    }

    /// Waits for a heavy slot, in the tenant's turn.
    async fn acquire_slot(&self) {
        let started = Instant::now();
        let slot = match self.tenant.cpu.request_slot(self.tenant.lane, self.seq) {
            Ok(slot) => Some(slot),
            Err(Waiting(rx)) => {
                let slot = rx.await.ok();
                self.tenant
                    .metrics
                    .wait
                    .observe(started.elapsed().as_secs_f64());
                slot
            }
        };
        // Without a slot (the scheduler went away) the request still runs.
        self.set_slot(slot);
        tokio::task::yield_now().await;
    }

    /// Waits until the tenant's bucket is out of debt, holding its gate (one
    /// over-quota request of the tenant runs at a time, the oldest first).
    async fn wait_for_quota(&self) {
        let Some(quota) = &self.tenant.quota else {
            return;
        };
        let started = Instant::now();
        let has_gate = self.gate.lock().is_ok_and(|g| g.is_some());
        if !has_gate {
            // The first time this request waits for the quota.
            self.tenant.metrics.throttled.inc();
            let permit = Arc::clone(&quota.gate).acquire_owned().await.ok();
            if let Ok(mut gate) = self.gate.lock() {
                *gate = permit;
            }
        }
        while let Some(wait) = quota.update(Duration::ZERO) {
            tokio::time::sleep(wait).await;
        }
        self.tenant
            .metrics
            .wait
            .observe(started.elapsed().as_secs_f64());
    }

    /// Gives back what the request holds.
    fn finish(&self) {
        self.set_slot(None);
        if let Ok(mut gate) = self.gate.lock() {
            gate.take();
        }
    }
}

/// A guest call whose polls are timed and charged; see [`Request::meter`].
pub struct Metered<F> {
    call: Pin<Box<F>>,
    request: Arc<Request>,
}

impl<F: Future> Future for Metered<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let request = &self.request;
        let started = request.tenant.cpu.now_ns();
        request.polling_since.store(started, Ordering::Relaxed);
        let result = self.call.as_mut().poll(cx);
        let request = &self.request;
        let used = request.tenant.cpu.now_ns().saturating_sub(started);
        request.polling_since.store(NEVER, Ordering::Relaxed);
        request.used.fetch_add(used, Ordering::Relaxed);
        request.tenant.charge(Duration::from_nanos(used));
        result
    }
}

impl<F> Drop for Metered<F> {
    fn drop(&mut self) {
        self.request.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(cpu: &Arc<Cpu>, weight: u32, quota: Option<QuotaSettings>) -> Arc<TenantCpu> {
        cpu.tenant(weight, quota, CpuMetrics::default())
    }

    #[test]
    fn one_core_is_kept_for_light_work_while_it_is_about() {
        let cpu = Cpu::new(4);
        assert_eq!(cpu.allowed(), 4);
        cpu.saw_light();
        assert_eq!(cpu.allowed(), 3);
        let one = Cpu::new(1);
        one.saw_light();
        assert_eq!(one.allowed(), 1, "never fewer than one heavy slot");
    }

    #[test]
    fn slots_are_granted_in_arrival_order_within_a_tenant() {
        let cpu = Cpu::new(1);
        let t = tenant(&cpu, DEFAULT_WEIGHT, None);
        let first = cpu.request_slot(t.lane, 0).ok().expect("a free slot");
        let Err(Waiting(mut late)) = cpu.request_slot(t.lane, 7) else {
            panic!("the only slot is taken");
        };
        let Err(Waiting(mut early)) = cpu.request_slot(t.lane, 3) else {
            panic!("the only slot is taken");
        };
        drop(first);
        let _held = early.try_recv().expect("the older request goes first");
        assert!(late.try_recv().is_err());
    }

    #[test]
    fn the_tenant_with_less_weighted_cpu_is_served_first() {
        let cpu = Cpu::new(1);
        let heavy = tenant(&cpu, 200, None);
        let light = tenant(&cpu, 100, None);
        // 300 ms at weight 200 weighs less than 200 ms at weight 100.
        heavy.charge(Duration::from_millis(300));
        light.charge(Duration::from_millis(200));
        let holder = cpu.request_slot(heavy.lane, 0).ok().expect("free");
        let Err(Waiting(mut a)) = cpu.request_slot(light.lane, 1) else {
            panic!("taken");
        };
        let Err(Waiting(mut b)) = cpu.request_slot(heavy.lane, 2) else {
            panic!("taken");
        };
        drop(holder);
        let _held = b.try_recv().expect("150 weighted ms beat 200");
        assert!(a.try_recv().is_err());
    }

    #[test]
    fn a_holder_steps_down_for_a_tenant_far_behind() {
        let cpu = Cpu::new(1);
        let busy = tenant(&cpu, DEFAULT_WEIGHT, None);
        let quiet = tenant(&cpu, DEFAULT_WEIGHT, None);
        let slot = cpu.request_slot(busy.lane, 0).ok().expect("free");
        busy.charge(Duration::from_millis(50));
        assert!(!cpu.should_step_down(busy.lane), "nobody waits");
        let Err(Waiting(mut waiter)) = cpu.request_slot(quiet.lane, 0) else {
            panic!("taken");
        };
        // The newcomer starts one granularity behind: not yet far enough.
        assert!(!cpu.should_step_down(busy.lane));
        busy.charge(GRANULARITY);
        assert!(cpu.should_step_down(busy.lane));
        drop(slot);
        assert!(waiter.try_recv().is_ok());
    }

    #[test]
    fn an_idle_tenant_does_not_bank_its_idle_time() {
        let cpu = Cpu::new(1);
        let busy = tenant(&cpu, DEFAULT_WEIGHT, None);
        let late = tenant(&cpu, DEFAULT_WEIGHT, None);
        let _slot = cpu.request_slot(busy.lane, 0).ok().expect("free");
        busy.charge(Duration::from_secs(10));
        assert!(cpu.request_slot(late.lane, 0).is_err());
        let caught_up = late.vtime.load(Ordering::Relaxed);
        assert_eq!(
            caught_up,
            duration_ns(Duration::from_secs(10) - GRANULARITY),
            "a newcomer starts one granularity behind the busy tenant"
        );
    }

    #[test]
    fn a_slot_offered_to_a_waiter_that_left_goes_to_the_next() {
        let cpu = Cpu::new(1);
        let t = tenant(&cpu, DEFAULT_WEIGHT, None);
        let holder = cpu.request_slot(t.lane, 0).ok().expect("free");
        let Err(Waiting(gone)) = cpu.request_slot(t.lane, 1) else {
            panic!("taken");
        };
        let Err(Waiting(mut next)) = cpu.request_slot(t.lane, 2) else {
            panic!("taken");
        };
        drop(gone);
        drop(holder);
        let slot = next.try_recv().expect("granted to the next waiter");
        drop(slot);
        assert_eq!(cpu.lock().running, 0);
    }

    #[test]
    fn the_quota_bucket_refills_at_its_rate() {
        let quota = Quota::new(QuotaSettings {
            ms_per_sec: 100,
            queue: 1,
        });
        assert_eq!(
            quota.update(Duration::from_millis(100)),
            None,
            "a full second's worth"
        );
        let wait = quota
            .update(Duration::from_millis(10))
            .expect("10 ms in debt");
        // 10 ms of CPU at 100 ms per second take 100 ms to repay.
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
    }

    #[tokio::test]
    async fn admission_waits_for_the_quota_and_refuses_past_the_queue() {
        let cpu = Cpu::new(2);
        let t = tenant(
            &cpu,
            DEFAULT_WEIGHT,
            Some(QuotaSettings {
                ms_per_sec: 1000,
                queue: 1,
            }),
        );
        t.charge(Duration::from_millis(1030));
        let started = Instant::now();
        let first = t.admit();
        let second = t.admit();
        let (first, second) = tokio::join!(first, second);
        let refused = second.err().expect("one waiter at most");
        assert!(refused.retry_after > Duration::ZERO);
        assert!(first.is_ok());
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "waited for the debt to be repaid"
        );
        assert_eq!(t.metrics.throttled.get(), 1);
    }
}
