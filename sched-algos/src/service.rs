//! The scheduler as a service: informers on nodes and pods feed the [`Cache`] and a
//! bounded [`SchedulingQueue`]; one loop takes the next pod, runs [`schedule_one`] and
//! assumes the pod; a task beside the loop binds it through `pods/binding` (upstream's
//! asynchronous binding cycle, at most [`ServiceConfig::max_binds_in_flight`] at once),
//! and the loop then records a core/v1 Event.
//!
//! When no node fits and DefaultPreemption proposes victims, the service does what
//! upstream's preemption does with the decision: records a `Preempted` Event on each
//! victim and deletes it (its own grace period, preconditioned on its UID), sets the
//! preemptor's `status.nominatedNodeName`, and parks the preemptor; the victims'
//! deletion events bring it back. Metrics: [`crate::metrics`].
//!
//! A pod that a Permit plugin asks to wait stays assumed (its resources counted) and
//! leaves the loop: a task waits for the plugins' verdict ([`crate::permit`]) and then
//! binds, while the loop schedules other pods. A rejection (by a plugin, a plugin's
//! timeout, or the pod's deletion) unreserves and forgets the pod and parks it as
//! unschedulable, as upstream does.
//!
//! This is the IO edge of the crate; everything it calls into is pure. All state (cache,
//! queue, snapshot) is owned by the single loop in [`run`], so there are no locks but
//! the waiting pods' (shared with the plugins and the binding tasks).
//!
//! Queueing follows kube-scheduler's three queues: active pods are taken by priority,
//! then arrival; a pod that fits nowhere goes to the unschedulable set, from which a
//! cluster event that may make it schedulable (a node added or updated, a pod deleted)
//! moves it to the backoff queue if its backoff ([`ServiceConfig::backoff_initial`]
//! doubling to [`ServiceConfig::backoff_max`]) is still running and to the active queue
//! otherwise, and where it stays at most [`UNSCHEDULABLE_FLUSH`] (upstream's
//! `podMaxInUnschedulablePodsDuration`) without an event; a pod whose attempt failed
//! for another reason (a plugin error, a failed binding) goes straight to backoff. Every queue is bounded: the informer channels
//! ([`ServiceConfig::informer_channel_capacity`]), the scheduling queue
//! ([`ServiceConfig::max_queued_pods`]) and the event channel
//! ([`ServiceConfig::max_pending_events`]; events beyond it are dropped, counted).

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bosun_client::{Api, Client, Event, Informer, InformerConfig};
use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cache::{Cache, CacheError, Snapshot};
use crate::framework::CycleState;
use crate::metrics::{AttemptResult, SchedulerMetrics};
use crate::permit::{PermitOutcome, WaitingPods, run_permit};
use crate::pod_info::PodInfo;
use crate::profile::{Profile, Profiles};
use crate::registry::Registry;
use crate::schedule::{CycleContext, Diagnosis, FitError, schedule_one};
use crate::schedule::{ScheduleError, reserved_pod, run_bind, run_reserve};
use crate::status::Status;

/// Default bound on pods waiting to be scheduled.
pub const DEFAULT_MAX_QUEUED_PODS: usize = 100_000;
/// Default bound on each informer's event channel.
pub const DEFAULT_INFORMER_CHANNEL_CAPACITY: usize = 1024;
/// Default bound on Events waiting to be sent.
pub const DEFAULT_MAX_PENDING_EVENTS: usize = 1024;
/// Default bound on bindings in flight.
pub const DEFAULT_MAX_BINDS_IN_FLIGHT: usize = 64;
/// Default bound on pods held in Permit at once.
pub const DEFAULT_MAX_WAITING_PODS: usize = 10_000;
/// Upstream's `podInitialBackoffDuration`.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// Upstream's `podMaxBackoffDuration`.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Upstream's `podMaxInUnschedulablePodsDuration`: an unschedulable pod is retried at
/// the latest this long after its attempt, event or not.
pub const UNSCHEDULABLE_FLUSH: Duration = Duration::from_secs(5 * 60);

/// How the service runs.
#[derive(Clone, Debug)]
pub struct ServiceConfig {
    /// Profiles by scheduler name; pods naming no profile are ignored.
    pub profiles: Profiles,
    /// Bound on pods in the scheduling queue; pods beyond it are not queued until
    /// their next update (or the informer's next relist).
    pub max_queued_pods: usize,
    /// Bound on each informer's event channel.
    pub informer_channel_capacity: usize,
    /// Bound on Events waiting to be sent.
    pub max_pending_events: usize,
    /// Bound on pods held in Permit (a plugin's `Wait`); a pod beyond it is rejected
    /// and retried after its backoff.
    pub max_waiting_pods: usize,
    /// Bound on bindings in flight (PreBind, Bind and the API call run beside the
    /// scheduling loop, as upstream's binding cycle does); at the bound the loop waits.
    pub max_binds_in_flight: usize,
    /// First backoff of a pod that failed; doubles per attempt.
    pub backoff_initial: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// Seed of the tie-breaking RNG.
    pub seed: u64,
    /// Where the service records its metrics.
    pub metrics: Arc<SchedulerMetrics>,
    /// Set to true once both informers have synced and scheduling starts (load
    /// generators wait for it before starting their clocks).
    pub ready: Option<Arc<tokio::sync::watch::Sender<bool>>>,
}

impl ServiceConfig {
    pub fn new(profiles: Profiles) -> ServiceConfig {
        ServiceConfig {
            profiles,
            max_queued_pods: DEFAULT_MAX_QUEUED_PODS,
            informer_channel_capacity: DEFAULT_INFORMER_CHANNEL_CAPACITY,
            max_pending_events: DEFAULT_MAX_PENDING_EVENTS,
            max_waiting_pods: DEFAULT_MAX_WAITING_PODS,
            max_binds_in_flight: DEFAULT_MAX_BINDS_IN_FLIGHT,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            seed: 0,
            metrics: Arc::default(),
            ready: None,
        }
    }
}

impl Default for ServiceConfig {
    /// Upstream's default profile (`default-scheduler`) with the in-tree plugins.
    fn default() -> ServiceConfig {
        let profiles = Profiles::default_profiles(&Registry::in_tree())
            .expect("the default profile builds from the in-tree registry");
        ServiceConfig::new(profiles)
    }
}

/// Why [`run`] stopped before its shutdown signal.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("invalid service config: {0}")]
    Config(&'static str),
    #[error("the {0} informer stopped")]
    InformerStopped(&'static str),
}

/// A pod could not be queued: the queue holds `max_queued_pods` already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduling queue full ({0} pods)")]
pub struct QueueFull(pub usize);

#[derive(Debug)]
struct QueueEntry {
    pod: Arc<PodInfo>,
    seq: u64,
    /// Failed attempts so far.
    attempts: u32,
    /// `Some` while parked: when it leaves the backoff queue, or when the unschedulable
    /// set flushes it.
    ready_at: Option<Instant>,
    /// `Some(end of backoff)` while in the unschedulable set.
    unschedulable: Option<Instant>,
}

/// Pods waiting to be scheduled: active ones by (priority desc, arrival), parked ones
/// by the end of their backoff. Pure: the caller passes the time.
#[derive(Debug)]
pub struct SchedulingQueue {
    max_pods: usize,
    backoff_initial: Duration,
    backoff_max: Duration,
    next_seq: u64,
    entries: HashMap<String, QueueEntry>,
    active: BTreeSet<(Reverse<i32>, u64, String)>,
    parked: BTreeSet<(Instant, String)>,
    /// How many parked pods are in the unschedulable set (kept, not counted, since
    /// the service reads it after every step).
    n_unschedulable: usize,
}

impl SchedulingQueue {
    pub fn new(max_pods: usize, backoff_initial: Duration, backoff_max: Duration) -> Self {
        assert!(max_pods > 0, "max_pods must be positive");
        assert!(backoff_initial > Duration::ZERO, "zero backoff busy-loops");
        SchedulingQueue {
            max_pods,
            backoff_initial,
            backoff_max: backoff_max.max(backoff_initial),
            next_seq: 0,
            entries: HashMap::new(),
            active: BTreeSet::new(),
            parked: BTreeSet::new(),
            n_unschedulable: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, uid: &str) -> bool {
        self.entries.contains_key(uid)
    }

    /// Queues a new pod as active, or replaces the object of a queued one (keeping
    /// its place, attempts and backoff).
    pub fn add_or_update(&mut self, pod: Arc<PodInfo>) -> Result<(), QueueFull> {
        if let Some(e) = self.entries.get_mut(&pod.uid) {
            if e.ready_at.is_none() && e.pod.priority != pod.priority {
                let removed =
                    self.active
                        .remove(&(Reverse(e.pod.priority), e.seq, pod.uid.clone()));
                assert!(
                    removed,
                    "active pod {} missing from the active set",
                    pod.uid
                );
                self.active
                    .insert((Reverse(pod.priority), e.seq, pod.uid.clone()));
            }
            e.pod = pod;
            return Ok(());
        }
        self.insert(pod, 0, None)
    }

    fn insert(
        &mut self,
        pod: Arc<PodInfo>,
        attempts: u32,
        ready_at: Option<Instant>,
    ) -> Result<(), QueueFull> {
        if self.entries.len() >= self.max_pods {
            return Err(QueueFull(self.max_pods));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let uid = pod.uid.clone();
        match ready_at {
            None => self
                .active
                .insert((Reverse(pod.priority), seq, uid.clone())),
            Some(t) => self.parked.insert((t, uid.clone())),
        };
        let entry = QueueEntry {
            pod,
            seq,
            attempts,
            ready_at,
            unschedulable: None,
        };
        assert!(self.entries.insert(uid, entry).is_none());
        Ok(())
    }

    /// Removes a pod (bound elsewhere, deleted, or no longer ours).
    pub fn remove(&mut self, uid: &str) -> Option<Arc<PodInfo>> {
        let e = self.entries.remove(uid)?;
        let removed = match e.ready_at {
            None => self
                .active
                .remove(&(Reverse(e.pod.priority), e.seq, uid.to_owned())),
            Some(t) => self.parked.remove(&(t, uid.to_owned())),
        };
        assert!(removed, "queued pod {uid} missing from its set");
        if e.unschedulable.is_some() {
            self.n_unschedulable -= 1;
        }
        Some(e.pod)
    }

    /// Makes active every parked pod whose backoff ended by `now`, and every
    /// unschedulable pod that waited [`UNSCHEDULABLE_FLUSH`].
    pub fn promote_due(&mut self, now: Instant) {
        while let Some((t, _)) = self.parked.first()
            && *t <= now
        {
            let (_, uid) = self.parked.pop_first().expect("non-empty");
            self.activate(uid);
        }
    }

    /// A cluster event that may make unschedulable pods schedulable (upstream's
    /// `MoveAllToActiveOrBackoffQueue`): each goes to the active queue, or to the
    /// backoff queue until its backoff ends. Pods already backing off stay there.
    pub fn move_all_to_active(&mut self, now: Instant) {
        let moved: Vec<(Instant, String)> = self
            .parked
            .iter()
            .filter(|(_, uid)| self.entries[uid].unschedulable.is_some())
            .cloned()
            .collect();
        for (t, uid) in moved {
            self.parked.remove(&(t, uid.clone()));
            let e = self.entries.get_mut(&uid).expect("parked pod has an entry");
            let backoff_until = e.unschedulable.take().expect("filtered above");
            self.n_unschedulable -= 1;
            if backoff_until > now {
                e.ready_at = Some(backoff_until);
                self.parked.insert((backoff_until, uid));
            } else {
                self.activate(uid);
            }
        }
    }

    fn activate(&mut self, uid: String) {
        let e = self.entries.get_mut(&uid).expect("parked pod has an entry");
        assert!(e.ready_at.is_some(), "pod {uid} parked twice");
        e.ready_at = None;
        if e.unschedulable.take().is_some() {
            self.n_unschedulable -= 1;
        }
        self.active.insert((Reverse(e.pod.priority), e.seq, uid));
    }

    /// Pods in the active queue, the backoff queue and the unschedulable set.
    pub fn sizes(&self) -> (usize, usize, usize) {
        (
            self.active.len(),
            self.parked.len() - self.n_unschedulable,
            self.n_unschedulable,
        )
    }

    /// When the earliest parked pod's backoff ends.
    pub fn next_ready_at(&self) -> Option<Instant> {
        self.parked.first().map(|(t, _)| *t)
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Takes the highest-priority, longest-waiting active pod with its failed attempts.
    pub fn pop(&mut self) -> Option<(Arc<PodInfo>, u32)> {
        let (_, _, uid) = self.active.pop_first()?;
        let e = self.entries.remove(&uid).expect("active pod has an entry");
        Some((e.pod, e.attempts))
    }

    /// The backoff after `attempts` failed attempts (>= 1): initial, doubling, capped.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let shift = attempts.saturating_sub(1).min(30);
        self.backoff_initial
            .saturating_mul(1 << shift)
            .min(self.backoff_max)
    }

    /// Parks a popped pod in the backoff queue after a failed attempt (its `attempts`
    /// before this one). A pod popped from the queue always fits back, whatever
    /// arrived meanwhile.
    pub fn park(&mut self, pod: Arc<PodInfo>, attempts: u32, now: Instant) {
        let attempts = attempts.saturating_add(1);
        let ready_at = now + self.backoff(attempts);
        self.make_room();
        self.insert(pod, attempts, Some(ready_at))
            .expect("room was made");
    }

    /// Parks a popped pod that fits nowhere in the unschedulable set: it waits for a
    /// cluster event, or [`UNSCHEDULABLE_FLUSH`] at most.
    pub fn park_unschedulable(&mut self, pod: Arc<PodInfo>, attempts: u32, now: Instant) {
        let attempts = attempts.saturating_add(1);
        let backoff_until = now + self.backoff(attempts);
        let uid = pod.uid.clone();
        self.make_room();
        self.insert(pod, attempts, Some(now + UNSCHEDULABLE_FLUSH))
            .expect("room was made");
        self.entries
            .get_mut(&uid)
            .expect("just inserted")
            .unschedulable = Some(backoff_until);
        self.n_unschedulable += 1;
    }

    fn make_room(&mut self) {
        if self.entries.len() >= self.max_pods {
            // Only possible if pods were added between pop and park; let this one in.
            self.max_pods = self.entries.len() + 1;
        }
    }
}

/// What the service sends to the event task.
struct PendingEvent {
    pod: Arc<PodInfo>,
    reason: &'static str,
    type_: &'static str,
    action: &'static str,
    message: String,
}

/// Runs the scheduler until `shutdown` completes. Returns an error only if an informer
/// stops or the config is invalid; API errors are retried (binding) or dropped (events).
pub async fn run(
    client: Client,
    config: ServiceConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServiceError> {
    if config.max_queued_pods == 0 {
        return Err(ServiceError::Config("max_queued_pods must be positive"));
    }
    if config.backoff_initial.is_zero() {
        return Err(ServiceError::Config("backoff_initial must be positive"));
    }
    let mut nodes = Informer::new(
        Api::<corev1::Node>::all(client.clone()),
        InformerConfig::default(),
    );
    let mut node_rx = nodes.subscribe(config.informer_channel_capacity);
    let mut pods = Informer::new(
        Api::<corev1::Pod>::all(client.clone()),
        InformerConfig::default(),
    );
    let mut pod_rx = pods.subscribe(config.informer_channel_capacity);
    let nodes = nodes.spawn();
    let pods = pods.spawn();
    let mut node_synced = nodes.synced();
    let mut pod_synced = pods.synced();

    let (event_tx, event_rx) = mpsc::channel(config.max_pending_events.max(1));
    let events_task = tokio::spawn(send_events(client.clone(), event_rx));

    let mut svc = Service {
        client,
        queue: SchedulingQueue::new(
            config.max_queued_pods,
            config.backoff_initial,
            config.backoff_max,
        ),
        profiles: config.profiles,
        cache: Cache::new(),
        snapshot: Snapshot::default(),
        ctx: CycleContext::seeded(config.seed),
        events: event_tx,
        dropped_events: 0,
        metrics: config.metrics,
        waiting: Arc::new(WaitingPods::new(config.max_waiting_pods)),
        max_binds_in_flight: config.max_binds_in_flight.max(1),
        binding: tokio::task::JoinSet::new(),
        deleted_while_waiting: Default::default(),
    };
    let mut shutdown = std::pin::pin!(shutdown);
    let (mut nodes_ready, mut pods_ready) = (false, false);
    let mut ready = config.ready;
    let result = loop {
        if nodes_ready
            && pods_ready
            && let Some(tx) = ready.take()
        {
            tx.send_replace(true);
        }
        svc.queue.promote_due(Instant::now());
        // Binding runs beside scheduling (upstream's asynchronous binding cycle), at
        // most `max_binds_in_flight` pods past Permit at once.
        let binds_in_flight = svc.binding.len().saturating_sub(svc.waiting.len());
        let can_schedule = nodes_ready
            && pods_ready
            && svc.queue.has_active()
            && binds_in_flight < svc.max_binds_in_flight;
        let next_ready = svc.queue.next_ready_at();
        let step = tokio::select! {
            biased;
            () = &mut shutdown => break Ok(()),
            ev = node_rx.recv() => match ev {
                Some(ev) => Step::Node(ev),
                None => break Err(ServiceError::InformerStopped("node")),
            },
            ev = pod_rx.recv() => match ev {
                Some(ev) => Step::Pod(ev),
                None => break Err(ServiceError::InformerStopped("pod")),
            },
            ok = node_synced.wait_synced(), if !nodes_ready => {
                if !ok {
                    break Err(ServiceError::InformerStopped("node"));
                }
                nodes_ready = true;
                Step::Idle
            }
            ok = pod_synced.wait_synced(), if !pods_ready => {
                if !ok {
                    break Err(ServiceError::InformerStopped("pod"));
                }
                pods_ready = true;
                Step::Idle
            }
            Some(done) = svc.binding.join_next(), if !svc.binding.is_empty() => match done {
                Ok(outcome) => Step::Bound(Box::new(outcome)),
                Err(e) => {
                    // Only a panicking plugin gets here; its pod stays assumed until
                    // the informer reports it.
                    eprintln!("scheduler: binding task: {e}");
                    Step::Idle
                }
            },
            () = std::future::ready(()), if can_schedule => Step::Schedule,
            () = tokio::time::sleep_until(next_ready.unwrap_or_else(Instant::now)),
                if next_ready.is_some() => Step::Idle,
        };
        match step {
            Step::Node(ev) => svc.on_node(&ev),
            Step::Pod(ev) => svc.on_pod(&ev),
            Step::Schedule => svc.schedule_next().await,
            Step::Bound(outcome) => svc.finish_binding(*outcome),
            Step::Idle => {}
        }
        let (active, backoff, unschedulable) = svc.queue.sizes();
        svc.metrics.pending(active, backoff, unschedulable);
    };
    drop(svc);
    // The event task ends once the queued events are sent (its sender is gone).
    let _ = tokio::time::timeout(Duration::from_secs(5), events_task).await;
    result
}

enum Step {
    Node(Event<corev1::Node>),
    Pod(Event<corev1::Pod>),
    Schedule,
    Bound(Box<BindOutcome>),
    Idle,
}

/// A binding cycle's end: what [`Service::finish_binding`] needs to confirm or undo it.
struct BindOutcome {
    pod: Arc<PodInfo>,
    attempts: u32,
    node: String,
    /// GPU devices chosen for the pod, written on the binding.
    devices: Option<u64>,
    profile: Profile,
    state: CycleState,
    result: Result<(), Status>,
}

struct Service {
    client: Client,
    profiles: Profiles,
    cache: Cache,
    snapshot: Snapshot,
    ctx: CycleContext,
    queue: SchedulingQueue,
    events: mpsc::Sender<PendingEvent>,
    dropped_events: u64,
    metrics: Arc<SchedulerMetrics>,
    /// Pods held in Permit; each has a task in `binding` waiting for its verdict.
    waiting: Arc<WaitingPods>,
    max_binds_in_flight: usize,
    /// Binding cycles: pods binding (at most `max_binds_in_flight`) and pods waiting
    /// in Permit (at most `max_waiting_pods`).
    binding: tokio::task::JoinSet<BindOutcome>,
    /// Waiting pods whose deletion rejected them: undone, not requeued.
    deleted_while_waiting: std::collections::HashSet<String>,
}

impl Service {
    fn on_node(&mut self, ev: &Event<corev1::Node>) {
        let r = match ev {
            Event::Added(n) | Event::Updated { new: n, .. } => match self.cache.update_node(n) {
                Err(CacheError::NodeNotFound(_)) => self.cache.add_node(n),
                r => r,
            },
            Event::Deleted(n) => self
                .cache
                .remove_node(n.metadata.name.as_deref().unwrap_or_default()),
        };
        if let Err(e) = r {
            eprintln!("scheduler: node event: {e}");
        }
        if !matches!(ev, Event::Deleted(_)) {
            self.queue.move_all_to_active(Instant::now());
        }
    }

    fn on_pod(&mut self, ev: &Event<corev1::Pod>) {
        let pod = match ev {
            Event::Deleted(p) => {
                let uid = p.metadata.uid.as_deref().unwrap_or_default();
                self.queue.remove(uid);
                if self
                    .waiting
                    .reject(uid, "", "pod deleted while waiting in Permit")
                {
                    self.deleted_while_waiting.insert(uid.to_string());
                }
                // Errors: the pod was never in the cache (unassigned, terminal).
                let _ = self.cache.remove_pod(uid);
                self.queue.move_all_to_active(Instant::now());
                return;
            }
            Event::Added(p) | Event::Updated { new: p, .. } => p,
        };
        let info = match PodInfo::new((**pod).clone()) {
            Ok(info) => Arc::new(info),
            Err(e) => {
                eprintln!("scheduler: pod ignored: {e}");
                return;
            }
        };
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let terminal = matches!(phase, Some("Succeeded" | "Failed"));
        if !info.node_name.is_empty() {
            self.queue.remove(&info.uid);
            let r = if terminal {
                self.cache.remove_pod(&info.uid).map(drop)
            } else {
                match self.cache.add_pod(info.clone()) {
                    Err(CacheError::PodExists(_)) => self.cache.update_pod(info),
                    r => r,
                }
            };
            if let Err(e) = r
                && !(terminal && matches!(e, CacheError::PodNotFound(_)))
            {
                eprintln!("scheduler: pod event: {e}");
            }
            return;
        }
        let ours = self.profiles.for_pod(&info).is_some();
        if !ours
            || terminal
            || info.is_terminating()
            || !info.scheduling_gates.is_empty()
            || self.cache.is_assumed(&info.uid)
        {
            self.queue.remove(&info.uid);
            return;
        }
        if let Err(e) = self.queue.add_or_update(info) {
            eprintln!("scheduler: pod not queued: {e}");
        }
    }

    /// One cycle: schedule, assume, bind, record.
    async fn schedule_next(&mut self) {
        let Some((pod, attempts)) = self.queue.pop() else {
            return;
        };
        let Some(profile) = self.profiles.for_pod(&pod) else {
            return;
        };
        let started = std::time::Instant::now();
        self.cache.update_snapshot(&mut self.snapshot);
        let result = schedule_one(profile, &self.snapshot, &pod, &mut self.ctx);
        let outcome = match &result {
            Ok(_) => AttemptResult::Scheduled,
            Err(ScheduleError::Plugin { .. }) => AttemptResult::Error,
            Err(_) => AttemptResult::Unschedulable,
        };
        let profile_name = profile.scheduler_name.clone();
        let decision = match result {
            Ok(d) => d,
            Err(e) => {
                self.metrics
                    .attempt(&profile_name, outcome, started.elapsed().as_secs_f64());
                // Upstream's message: the FitError's summary, or ErrNoNodesAvailable's.
                self.event(
                    &pod,
                    "FailedScheduling",
                    "Warning",
                    "Scheduling",
                    e.to_string(),
                );
                if let ScheduleError::Fit(fit) = &e
                    && let Some(r) = &fit.post_filter_result
                {
                    self.preempt(&pod, r).await;
                }
                if outcome == AttemptResult::Unschedulable {
                    self.queue.park_unschedulable(pod, attempts, Instant::now());
                } else {
                    self.queue.park(pod, attempts, Instant::now());
                }
                return;
            }
        };
        let node = decision.node_name.clone();
        let profile = profile.clone();
        let node_info = Arc::clone(&self.snapshot.nodes()[decision.node_idx as usize]);
        let mut state = decision.state;
        state.set_waiting_pods(Arc::clone(&self.waiting));
        // Reserve, then assume (the pod as Reserve pinned it), then Permit; PreBind
        // and Bind follow at once, or in a task once a waiting pod is allowed.
        let t = std::time::Instant::now();
        let reserved = run_reserve(&profile, &mut state, &pod, &node_info);
        let code = reserved
            .as_ref()
            .err()
            .map_or("Success", |s| s.code().as_str());
        self.metrics
            .extension_point(&profile_name, "Reserve", code, t.elapsed().as_secs_f64());
        if let Err(status) = reserved {
            self.metrics.attempt(
                &profile_name,
                AttemptResult::Error,
                started.elapsed().as_secs_f64(),
            );
            self.fail_binding(
                pod,
                attempts,
                format!(
                    "running Reserve plugin {:?}: {}",
                    status.plugin(),
                    status.message()
                ),
            );
            return;
        }
        let reserved = reserved_pod(&state, &pod, &node_info);
        // Devices the scheduler chose (not the pod's own pin) go on the binding as the
        // pod's annotation, so that every later reader, this cache included once the
        // informer confirms the binding, agrees on them.
        let devices = reserved
            .gpu_device_mask
            .filter(|_| pod.gpu_device_mask.is_none());
        let assumed = self.cache.assume_pod(reserved, &node);
        self.metrics
            .attempt(&profile_name, outcome, started.elapsed().as_secs_f64());
        if let Err(e) = assumed {
            // The pod is already in the cache: it was bound meanwhile.
            unreserve(&profile, &mut state, &pod, &node);
            eprintln!("scheduler: assume {}: {e}", pod.key());
            return;
        }
        let t = std::time::Instant::now();
        let permit = run_permit(&profile, &mut state, &pod, &node);
        let code = match &permit {
            PermitOutcome::Allow => "Success",
            PermitOutcome::Wait(_) => "Wait",
            PermitOutcome::Reject(s) => s.code().as_str(),
        };
        self.metrics
            .extension_point(&profile_name, "Permit", code, t.elapsed().as_secs_f64());
        let mut outcome = BindOutcome {
            pod,
            attempts,
            node,
            devices,
            profile,
            state,
            result: Ok(()),
        };
        match permit {
            PermitOutcome::Allow => {
                let (client, metrics) = (self.client.clone(), Arc::clone(&self.metrics));
                self.binding.spawn(async move {
                    let mut o = outcome;
                    o.result = bind(&client, &metrics, &mut o).await;
                    o
                });
                return;
            }
            PermitOutcome::Reject(s) => outcome.result = Err(s),
            PermitOutcome::Wait(waits) => {
                let held = self.waiting.add(
                    Arc::clone(&outcome.pod),
                    &outcome.node,
                    &waits,
                    std::time::Instant::now(),
                );
                match held {
                    Err(s) => outcome.result = Err(s),
                    Ok(wait) => {
                        let (client, waiting) = (self.client.clone(), Arc::clone(&self.waiting));
                        let metrics = Arc::clone(&self.metrics);
                        self.binding.spawn(async move {
                            let mut o = outcome;
                            let t = std::time::Instant::now();
                            let verdict = wait_on_permit(&waiting, wait).await;
                            let code = verdict
                                .as_ref()
                                .err()
                                .map_or("Success", |s| s.code().as_str());
                            metrics.permit_wait(code, t.elapsed().as_secs_f64());
                            o.result = match verdict {
                                Ok(()) => bind(&client, &metrics, &mut o).await,
                                Err(s) => Err(s),
                            };
                            o
                        });
                        return;
                    }
                }
            }
        }
        self.finish_binding(outcome);
    }

    /// Confirms a binding cycle (PostBind, a `Scheduled` Event) or undoes it
    /// (Unreserve, forget the assumed pod, requeue). A pod that Permit rejected goes to
    /// the unschedulable set with upstream's FitError over its one node, and the
    /// resources it held may let other pods fit; another failure backs off.
    fn finish_binding(&mut self, o: BindOutcome) {
        let BindOutcome {
            pod,
            attempts,
            node,
            profile,
            devices: _,
            mut state,
            result,
        } = o;
        let status = match result {
            Ok(()) => {
                let t = std::time::Instant::now();
                for pl in &profile.post_bind {
                    pl.post_bind(&state, &pod, &node);
                }
                let (name, secs) = (&profile.scheduler_name, t.elapsed().as_secs_f64());
                self.metrics
                    .extension_point(name, "PostBind", "Success", secs);
                let message = format!("Successfully assigned {} to {node}", pod.key());
                self.event(&pod, "Scheduled", "Normal", "Binding", message);
                return;
            }
            Err(s) => s,
        };
        unreserve(&profile, &mut state, &pod, &node);
        let forgotten = self.cache.forget_pod(&pod.uid);
        if self.deleted_while_waiting.remove(&pod.uid) {
            // The informer's deletion already took it out of the cache.
            self.queue.move_all_to_active(Instant::now());
            return;
        }
        if let Err(e) = forgotten {
            eprintln!("scheduler: forget {}: {e}", pod.key());
        }
        if status.is_rejected() {
            let fit = FitError {
                pod: pod.key(),
                num_all_nodes: 1,
                diagnosis: Diagnosis {
                    node_statuses: vec![(0, status.clone())],
                    unschedulable_plugins: [status.plugin()].into_iter().collect(),
                    ..Diagnosis::default()
                },
                post_filter_result: None,
            };
            self.event(
                &pod,
                "FailedScheduling",
                "Warning",
                "Scheduling",
                fit.to_string(),
            );
            let now = Instant::now();
            self.queue.move_all_to_active(now);
            self.queue.park_unschedulable(pod, attempts, now);
        } else {
            self.fail_binding(pod, attempts, status.message());
        }
    }

    /// A pod whose binding cycle failed: a FailedScheduling event and a backoff.
    fn fail_binding(&mut self, pod: Arc<PodInfo>, attempts: u32, message: String) {
        let message = format!("Binding rejected: {message}");
        self.event(&pod, "FailedScheduling", "Warning", "Binding", message);
        self.queue.park(pod, attempts, Instant::now());
    }

    /// Carries out a preemption decision: evicts the victims, nominates the node.
    async fn preempt(&mut self, pod: &Arc<PodInfo>, r: &crate::framework::PostFilterResult) {
        let Some(node) = r.nominated_node_name.as_deref() else {
            return;
        };
        if !node.is_empty() && !r.victims.is_empty() {
            let victims: Vec<Arc<PodInfo>> = self
                .snapshot
                .node_index(node)
                .map(|idx| {
                    let info = self.snapshot.node(idx);
                    r.victims
                        .iter()
                        .filter_map(|uid| info.pods.iter().find(|p| &p.uid == uid).cloned())
                        .collect()
                })
                .unwrap_or_default();
            self.metrics.preemption(victims.len());
            for v in victims {
                let message = format!("Preempted by pod {} on node {node}", pod.uid);
                self.event(&v, "Preempted", "Normal", "Preempting", message);
                // A victim still waiting in Permit is not bound: upstream rejects it
                // (it is unreserved and requeued) rather than deleting it.
                if self
                    .waiting
                    .reject(&v.uid, "DefaultPreemption", "preempted")
                {
                    continue;
                }
                let api = Api::<corev1::Pod>::namespaced(self.client.clone(), &v.namespace);
                let dp = bosun_client::DeleteParams {
                    preconditions: Some(
                        k8s_openapi::apimachinery::pkg::apis::meta::v1::Preconditions {
                            uid: Some(v.uid.clone()),
                            resource_version: None,
                        },
                    ),
                    ..bosun_client::DeleteParams::default()
                };
                if let Err(e) = api.delete(&v.name, &dp).await {
                    eprintln!("scheduler: preempting {}: {e}", v.key());
                }
            }
        }
        // Upstream's `updatePod`: status.nominatedNodeName ("" clears it).
        let current = pod
            .pod
            .status
            .as_ref()
            .and_then(|s| s.nominated_node_name.as_deref())
            .unwrap_or("");
        if current != node {
            let api = Api::<corev1::Pod>::namespaced(self.client.clone(), &pod.namespace);
            let value = if node.is_empty() {
                serde_json::Value::Null
            } else {
                serde_json::Value::from(node)
            };
            let patch = bosun_client::Patch::Merge(
                serde_json::json!({"status": {"nominatedNodeName": value}}),
            );
            if let Err(e) = api.patch_status(&pod.name, &patch).await {
                eprintln!("scheduler: nominating {node} for {}: {e}", pod.key());
            }
        }
    }

    fn event(
        &mut self,
        pod: &Arc<PodInfo>,
        reason: &'static str,
        type_: &'static str,
        action: &'static str,
        message: String,
    ) {
        let ev = PendingEvent {
            pod: pod.clone(),
            reason,
            type_,
            action,
            message,
        };
        if self.events.try_send(ev).is_err() {
            self.dropped_events += 1;
        }
    }
}

/// Every Unreserve, in reverse order (upstream's `RunReservePluginsUnreserve`).
/// Waits for a pod held in Permit (upstream's `WaitOnPermit`): Ok once every plugin
/// allowed it; the rejecting status when one rejected it or its wait ended.
async fn wait_on_permit(
    waiting: &WaitingPods,
    mut w: crate::permit::PermitWait,
) -> Result<(), Status> {
    loop {
        let Some(deadline) = waiting.expire(w.uid(), std::time::Instant::now()) else {
            return w.verdict().await;
        };
        tokio::select! {
            v = w.verdict() => return v,
            () = tokio::time::sleep_until(Instant::from_std(deadline)) => {}
        }
    }
}

/// PreBind, Bind and the `pods/binding` POST (upstream's binding cycle after
/// `WaitOnPermit`). The binding carries the chosen GPU devices as the pod's
/// annotation (the API server copies a binding's annotations onto the pod, as
/// upstream's does). A failure is an `Error` status: the pod backs off.
async fn bind(
    client: &Client,
    metrics: &SchedulerMetrics,
    o: &mut BindOutcome,
) -> Result<(), Status> {
    let (profile, state, pod, node) = (&o.profile, &mut o.state, &*o.pod, o.node.as_str());
    let record = |point, r: &Result<(), Status>, t: std::time::Instant| {
        let code = r.as_ref().err().map_or("Success", |s| s.code().as_str());
        let secs = t.elapsed().as_secs_f64();
        metrics.extension_point(&profile.scheduler_name, point, code, secs);
    };
    let t = std::time::Instant::now();
    let pre_bound = profile.pre_bind.iter().try_for_each(|pl| {
        let s = pl.pre_bind(state, pod, node);
        if s.is_success() {
            return Ok(());
        }
        let message = format!("running PreBind plugin {:?}: {}", pl.name(), s.message());
        Err(Status::error(message).with_plugin(pl.name()))
    });
    record("PreBind", &pre_bound, t);
    pre_bound?;
    let t = std::time::Instant::now();
    let bound = bind_now(client, profile, state, pod, node, o.devices).await;
    record("Bind", &bound, t);
    bound
}

/// The Bind plugins (or the default binding) and the `pods/binding` POST.
async fn bind_now(
    client: &Client,
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &str,
    devices: Option<u64>,
) -> Result<(), Status> {
    let mut binding = if profile.bind.is_empty() {
        default_binding(pod, node)
    } else {
        run_bind(profile, state, pod, node).map_err(|s| {
            let message = format!("running Bind plugin {:?}: {}", s.plugin(), s.message());
            Status::error(message).with_plugin(s.plugin())
        })?
    };
    if let Some(mask) = devices {
        use crate::plugins::gpu_device::{GPU_DEVICES_ANNOTATION, format_device_list};
        let annotations = binding.metadata.annotations.get_or_insert_default();
        annotations.insert(GPU_DEVICES_ANNOTATION.into(), format_device_list(mask));
    }
    let api = Api::<corev1::Pod>::namespaced(client.clone(), &pod.namespace);
    match api.bind(&pod.name, &binding).await {
        Ok(_) => Ok(()),
        Err(e) => Err(Status::error(e.to_string())),
    }
}

fn unreserve(
    profile: &crate::profile::Profile,
    state: &mut crate::framework::CycleState,
    pod: &PodInfo,
    node: &str,
) {
    for pl in profile.reserve.iter().rev() {
        pl.unreserve(state, pod, node);
    }
}

fn default_binding(pod: &PodInfo, node: &str) -> corev1::Binding {
    corev1::Binding {
        metadata: ObjectMeta {
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: Some(pod.uid.clone()),
            ..ObjectMeta::default()
        },
        target: corev1::ObjectReference {
            kind: Some("Node".to_owned()),
            name: Some(node.to_owned()),
            ..corev1::ObjectReference::default()
        },
    }
}

/// The core/v1 Event kube-scheduler records for a pod, named as client-go's recorder
/// names it: `<pod>.<unique hex>`.
fn event_object(ev: &PendingEvent, unique: u64) -> corev1::Event {
    let pod = &ev.pod;
    corev1::Event {
        metadata: ObjectMeta {
            namespace: Some(pod.namespace.clone()),
            name: Some(format!("{}.{unique:x}", pod.name)),
            ..ObjectMeta::default()
        },
        involved_object: corev1::ObjectReference {
            api_version: Some("v1".to_owned()),
            kind: Some("Pod".to_owned()),
            namespace: Some(pod.namespace.clone()),
            name: Some(pod.name.clone()),
            uid: Some(pod.uid.clone()),
            ..corev1::ObjectReference::default()
        },
        reason: Some(ev.reason.to_owned()),
        message: Some(ev.message.clone()),
        type_: Some(ev.type_.to_owned()),
        action: Some(ev.action.to_owned()),
        count: Some(1),
        source: Some(corev1::EventSource {
            component: Some(pod.scheduler_name.clone()),
            host: None,
        }),
        reporting_component: Some(pod.scheduler_name.clone()),
        ..corev1::Event::default()
    }
}

async fn send_events(client: Client, mut rx: mpsc::Receiver<PendingEvent>) {
    // Unix nanoseconds, as upstream's recorder, but strictly increasing so that two
    // events in the same nanosecond (or after a clock step back) get distinct names.
    let mut last_unique = 0u64;
    while let Some(ev) = rx.recv().await {
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        last_unique = now_ns.max(last_unique + 1);
        let api = Api::<corev1::Event>::namespaced(client.clone(), &ev.pod.namespace);
        if let Err(e) = api.create(&event_object(&ev, last_unique)).await {
            eprintln!("scheduler: event for {}: {e}", ev.pod.key());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::PodBuilder;

    fn pod(name: &str, priority: i32) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(PodBuilder::new(name).priority(priority).build()).unwrap())
    }

    fn queue(max: usize) -> SchedulingQueue {
        SchedulingQueue::new(max, Duration::from_secs(1), Duration::from_secs(10))
    }

    fn pop_name(q: &mut SchedulingQueue) -> Option<String> {
        q.pop().map(|(p, _)| p.name.clone())
    }

    #[test]
    fn priority_then_arrival() {
        let mut q = queue(10);
        for (name, prio) in [("a", 0), ("b", 5), ("c", 0), ("d", 5)] {
            q.add_or_update(pod(name, prio)).unwrap();
        }
        let order: Vec<_> = std::iter::from_fn(|| pop_name(&mut q)).collect();
        assert_eq!(order, ["b", "d", "a", "c"]);
        assert!(q.is_empty());
    }

    #[test]
    fn bounded() {
        let mut q = queue(2);
        q.add_or_update(pod("a", 0)).unwrap();
        q.add_or_update(pod("b", 0)).unwrap();
        assert_eq!(q.add_or_update(pod("c", 0)), Err(QueueFull(2)));
        // An update of a queued pod is not a new entry.
        q.add_or_update(pod("a", 3)).unwrap();
        assert_eq!(pop_name(&mut q).as_deref(), Some("a"));
    }

    #[test]
    fn backoff_doubles_to_max() {
        let q = queue(1);
        let secs: Vec<u64> = (1..=6).map(|a| q.backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn parked_until_backoff_or_event() {
        let mut q = queue(10);
        let t0 = Instant::now();
        q.add_or_update(pod("a", 0)).unwrap();
        let (p, attempts) = q.pop().unwrap();
        q.park(p, attempts, t0);
        assert!(!q.has_active());
        assert_eq!(q.next_ready_at(), Some(t0 + Duration::from_secs(1)));
        q.promote_due(t0 + Duration::from_millis(999));
        assert!(!q.has_active());
        q.promote_due(t0 + Duration::from_secs(1));
        let (p, attempts) = q.pop().unwrap();
        assert_eq!(attempts, 1);
        q.park(p, attempts, t0);
        assert_eq!(q.next_ready_at(), Some(t0 + Duration::from_secs(2)));
        // An event does not cut a backoff short.
        q.move_all_to_active(t0);
        assert_eq!(q.next_ready_at(), Some(t0 + Duration::from_secs(2)));
        q.promote_due(t0 + Duration::from_secs(2));
        assert_eq!(pop_name(&mut q).as_deref(), Some("a"));
    }

    /// Upstream's unschedulable set: an event moves the pod to backoff (or active once
    /// its backoff is over); without events it is flushed after five minutes.
    #[test]
    fn unschedulable_until_event_or_flush() {
        let mut q = queue(10);
        let t0 = Instant::now();
        q.add_or_update(pod("u", 0)).unwrap();
        let (p, attempts) = q.pop().unwrap();
        q.park_unschedulable(p, attempts, t0);
        assert_eq!(q.sizes(), (0, 0, 1));
        // Its backoff (1 s) ends, but with no event it stays unschedulable.
        q.promote_due(t0 + Duration::from_secs(60));
        assert_eq!(q.sizes(), (0, 0, 1));
        // An event during the backoff moves it to the backoff queue.
        q.move_all_to_active(t0 + Duration::from_millis(500));
        assert_eq!(q.sizes(), (0, 1, 0));
        assert_eq!(q.next_ready_at(), Some(t0 + Duration::from_secs(1)));
        q.promote_due(t0 + Duration::from_secs(1));
        let (p, attempts) = q.pop().unwrap();
        assert_eq!(attempts, 1);
        // Second failure; no event: flushed after UNSCHEDULABLE_FLUSH.
        q.park_unschedulable(p, attempts, t0);
        q.promote_due(t0 + UNSCHEDULABLE_FLUSH - Duration::from_millis(1));
        assert!(!q.has_active());
        q.promote_due(t0 + UNSCHEDULABLE_FLUSH);
        assert_eq!(q.sizes(), (1, 0, 0));
        // An event after the backoff: straight to active.
        let (p, attempts) = q.pop().unwrap();
        q.park_unschedulable(p, attempts, t0);
        q.move_all_to_active(t0 + Duration::from_secs(30));
        assert_eq!(q.sizes(), (1, 0, 0));
        // Removing an unschedulable pod keeps the counts right.
        let (p, attempts) = q.pop().unwrap();
        q.park_unschedulable(p, attempts, t0);
        assert_eq!(q.sizes(), (0, 0, 1));
        q.remove("uid-u");
        assert_eq!(q.sizes(), (0, 0, 0));
    }

    #[test]
    fn remove_from_either_set() {
        let mut q = queue(10);
        q.add_or_update(pod("a", 0)).unwrap();
        q.add_or_update(pod("b", 0)).unwrap();
        let (p, n) = q.pop().unwrap();
        q.park(p, n, Instant::now());
        assert!(q.remove("uid-a").is_some());
        assert!(q.remove("uid-b").is_some());
        assert!(q.remove("uid-b").is_none());
        assert!(q.is_empty());
        assert_eq!(q.next_ready_at(), None);
    }
}
