//! The scheduler service against the in-process API server over loopback HTTP: a pod
//! is bound and a `Scheduled` Event recorded; a pod that fits nowhere gets a
//! `FailedScheduling` Event with upstream's FitError message and is bound once a
//! fitting node appears; a higher-priority pod preempts a lower-priority one, and the
//! metrics count it all.

use std::sync::Arc;
use std::time::Duration;

use bosun_apiserver::server::{ApiServer, ServerConfig};
use bosun_apiserver::storage::{MemoryStorage, MemoryStorageConfig};
use bosun_client::{Api, Client, Config, ListParams};
use bosun_sched_algos::fixtures::{NodeBuilder, PodBuilder};
use bosun_sched_algos::service::{self, ServiceConfig};
use k8s_openapi::api::core::v1 as corev1;

/// Bound on every wait for the scheduler to act.
const WAIT: Duration = Duration::from_secs(20);

struct Harness {
    client: Client,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
    stop_scheduler: Option<tokio::sync::oneshot::Sender<()>>,
    scheduler: tokio::task::JoinHandle<Result<(), service::ServiceError>>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(ServiceConfig::default()).await
    }

    async fn start_with(sched_config: ServiceConfig) -> Harness {
        let storage = MemoryStorage::new(MemoryStorageConfig::default());
        let config = ServerConfig {
            token: None,
            ..ServerConfig::default()
        };
        let server = ApiServer::new(storage, config).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(bosun_apiserver::serve(server, listener, None, async {
            let _ = stopped.await;
        }));
        let client = Client::new(Config::new(&base).unwrap()).unwrap();
        let (stop_scheduler, stop) = tokio::sync::oneshot::channel::<()>();
        let scheduler = tokio::spawn(service::run(client.clone(), sched_config, async {
            let _ = stop.await;
        }));
        Harness {
            client,
            stop_server: Some(stop_server),
            stop_scheduler: Some(stop_scheduler),
            scheduler,
        }
    }

    async fn add_node(&self, name: &str, cpu: &str) {
        self.create_node(NodeBuilder::new(name).capacity(cpu, "8Gi", 110))
            .await;
    }

    /// Creates a Ready node whose capacity is its allocatable.
    async fn create_node(&self, node: NodeBuilder) {
        let mut node = node.build();
        let name = node.metadata.name.clone().unwrap();
        let name = name.as_str();
        let status = node.status.as_mut().unwrap();
        status.capacity = status.allocatable.clone();
        status.conditions = Some(vec![corev1::NodeCondition {
            type_: "Ready".into(),
            status: "True".into(),
            ..Default::default()
        }]);
        let api = Api::<corev1::Node>::all(self.client.clone());
        let created = api.create(&node).await.unwrap();
        if created
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .is_none()
        {
            // The server dropped the status on create (as upstream may): set it.
            node.metadata = created.metadata;
            api.replace_status(name, &node).await.unwrap();
        }
    }

    async fn add_pod(&self, name: &str, cpu: &str) {
        self.add_pod_with(name, cpu, 0).await;
    }

    /// A pod with a priority; no grace period (there is no kubelet to finish a
    /// graceful termination).
    async fn add_pod_with(&self, name: &str, cpu: &str, priority: i32) {
        let pod = PodBuilder::new(name).request(cpu, "1Gi").priority(priority);
        self.create_pod(pod).await;
    }

    /// Creates the pod with no UID, no grace period and an image.
    async fn create_pod(&self, pod: PodBuilder) {
        let mut pod = pod.build();
        pod.metadata.uid = None;
        pod.spec.as_mut().unwrap().termination_grace_period_seconds = Some(0);
        pod.spec.as_mut().unwrap().containers[0].image = Some("nginx".into());
        Api::<corev1::Pod>::namespaced(self.client.clone(), "default")
            .create(&pod)
            .await
            .unwrap();
    }

    /// Polls until the pod has a node, or panics after [`WAIT`].
    async fn wait_bound(&self, name: &str) -> String {
        let api = Api::<corev1::Pod>::namespaced(self.client.clone(), "default");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let pod = api.get(name).await.unwrap();
            if let Some(node) = pod.spec.and_then(|s| s.node_name) {
                return node;
            }
            assert!(tokio::time::Instant::now() < deadline, "{name} not bound");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until an Event for the pod with `reason` exists; returns its message.
    async fn wait_event(&self, pod: &str, reason: &str) -> String {
        self.wait_event_where(pod, reason, |_| true).await
    }

    /// Waits for an event of `pod` with `reason` whose message satisfies `pred`.
    async fn wait_event_where(
        &self,
        pod: &str,
        reason: &str,
        pred: impl Fn(&str) -> bool,
    ) -> String {
        let api = Api::<corev1::Event>::namespaced(self.client.clone(), "default");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let events = api.list(&ListParams::default()).await.unwrap();
            if let Some(ev) = events.items.iter().find(|e| {
                e.involved_object.name.as_deref() == Some(pod)
                    && e.reason.as_deref() == Some(reason)
                    && pred(e.message.as_deref().unwrap_or(""))
            }) {
                return ev.message.clone().unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no {reason} event for {pod}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stop(mut self) {
        let _ = self.stop_scheduler.take().unwrap().send(());
        let result = tokio::time::timeout(WAIT, &mut self.scheduler)
            .await
            .expect("scheduler stops")
            .expect("scheduler task");
        result.expect("scheduler ran without error");
        let _ = self.stop_server.take().unwrap().send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_is_bound_and_scheduled_event_recorded() {
    let h = Harness::start().await;
    h.add_node("n1", "4").await;
    h.add_pod("web", "1").await;
    assert_eq!(h.wait_bound("web").await, "n1");
    let msg = h.wait_event("web", "Scheduled").await;
    assert_eq!(msg, "Successfully assigned default/web to n1");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pod_is_bound_after_node_added() {
    let h = Harness::start().await;
    h.add_node("small", "1").await;
    h.add_pod("big", "2").await;
    // The pod's watch event can reach the scheduler before the node's; the first attempt
    // then says "no nodes available" (upstream's words) and the node's arrival requeues
    // the pod. Wait for the attempt that saw the node.
    let msg = h
        .wait_event_where("big", "FailedScheduling", |m| m.starts_with("0/1"))
        .await;
    assert!(
        msg.starts_with("0/1 nodes are available"),
        "unexpected message {msg:?}"
    );
    assert!(
        msg.contains("Insufficient cpu"),
        "unexpected message {msg:?}"
    );
    h.add_node("large", "4").await;
    assert_eq!(h.wait_bound("big").await, "large");
    let msg = h.wait_event("big", "Scheduled").await;
    assert_eq!(msg, "Successfully assigned default/big to large");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn higher_priority_pod_preempts_and_metrics_count_it() {
    let config = ServiceConfig::default();
    let metrics = config.metrics.clone();
    let h = Harness::start_with(config).await;
    h.add_node("n1", "1").await;
    h.add_pod_with("low", "800m", 0).await;
    assert_eq!(h.wait_bound("low").await, "n1");
    h.add_pod_with("high", "800m", 1000).await;
    let msg = h.wait_event("low", "Preempted").await;
    assert!(
        msg.starts_with("Preempted by pod ") && msg.ends_with(" on node n1"),
        "{msg}"
    );
    // A successful preemption adds nothing to the FitError (upstream's PostFilter
    // returns Success without a message).
    let failed = h.wait_event("high", "FailedScheduling").await;
    assert_eq!(failed, "0/1 nodes are available: 1 Insufficient cpu.");
    assert_eq!(h.wait_bound("high").await, "n1");
    let pods = Api::<corev1::Pod>::namespaced(h.client.clone(), "default");
    assert!(
        pods.get_opt("low").await.unwrap().is_none(),
        "victim deleted"
    );
    let text = metrics.render();
    for line in [
        "scheduler_preemption_attempts_total 1",
        "scheduler_preemption_victims_count 1",
        "scheduler_schedule_attempts_total{profile=\"default-scheduler\",result=\"scheduled\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in\n{text}"
        );
    }
    assert!(
        metrics.attempts(bosun_sched_algos::metrics::AttemptResult::Unschedulable) >= 1,
        "{text}"
    );
    h.stop().await;
}

/// A plugin at Reserve, Permit and PostBind that records what ran and rejects pods
/// named `deny-*` in Permit.
#[derive(Default)]
struct Gate {
    log: std::sync::Mutex<Vec<String>>,
}

impl bosun_sched_algos::framework::Plugin for Gate {
    fn name(&self) -> &'static str {
        "Gate"
    }
}

impl bosun_sched_algos::framework::ReservePlugin for Gate {
    fn reserve(
        &self,
        _: &mut bosun_sched_algos::CycleState,
        pod: &bosun_sched_algos::PodInfo,
        node: &bosun_sched_algos::NodeInfo,
    ) -> bosun_sched_algos::Status {
        self.log
            .lock()
            .unwrap()
            .push(format!("reserve {} {}", pod.name, node.name));
        bosun_sched_algos::Status::success()
    }

    fn unreserve(
        &self,
        _: &mut bosun_sched_algos::CycleState,
        pod: &bosun_sched_algos::PodInfo,
        node: &str,
    ) {
        self.log
            .lock()
            .unwrap()
            .push(format!("unreserve {} {node}", pod.name));
    }
}

impl bosun_sched_algos::framework::PermitPlugin for Gate {
    fn permit(
        &self,
        _: &mut bosun_sched_algos::CycleState,
        pod: &bosun_sched_algos::PodInfo,
        _: &str,
    ) -> (bosun_sched_algos::Status, u64) {
        if pod.name.starts_with("deny-") {
            let s = bosun_sched_algos::Status::new(
                bosun_sched_algos::Code::Unschedulable,
                "denied by the gate",
            );
            return (s, 0);
        }
        (bosun_sched_algos::Status::success(), 0)
    }
}

impl bosun_sched_algos::framework::PostBindPlugin for Gate {
    fn post_bind(
        &self,
        _: &bosun_sched_algos::CycleState,
        pod: &bosun_sched_algos::PodInfo,
        node: &str,
    ) {
        self.log
            .lock()
            .unwrap()
            .push(format!("postbind {} {node}", pod.name));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserve_permit_and_post_bind_run_in_the_service() {
    use bosun_sched_algos::framework::Extensions;
    use bosun_sched_algos::{Profiles, Registry};
    let gate = Arc::new(Gate::default());
    let mut registry = Registry::in_tree();
    let g = gate.clone();
    registry
        .register("Gate", move |_| {
            Ok(Extensions::of(&*g).reserve(&g).permit(&g).post_bind(&g))
        })
        .unwrap();
    let yaml = "
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    reserve: {enabled: [{name: Gate}]}
    permit: {enabled: [{name: Gate}]}
    postBind: {enabled: [{name: Gate}]}
";
    let profiles = Profiles::from_yaml(yaml, &registry).unwrap();
    let h = Harness::start_with(ServiceConfig::new(profiles)).await;
    h.add_node("n1", "4").await;
    h.add_pod("ok", "1").await;
    assert_eq!(h.wait_bound("ok").await, "n1");
    h.add_pod("deny-me", "1").await;
    let msg = h.wait_event("deny-me", "FailedScheduling").await;
    // Upstream's FitError over the one node Permit was asked about.
    assert_eq!(msg, "0/1 nodes are available: 1 denied by the gate.");
    let log = gate.log.lock().unwrap().clone();
    for line in [
        "reserve ok n1",
        "postbind ok n1",
        "reserve deny-me n1",
        "unreserve deny-me n1",
    ] {
        assert!(
            log.iter().any(|l| l == line),
            "{line:?} missing from {log:?}"
        );
    }
    assert!(!log.iter().any(|l| l == "postbind deny-me n1"), "{log:?}");
    h.stop().await;
}

/// A gang Permit plugin (the core of the coscheduling plugin): a pod labelled
/// `gang: <name>` waits until `size` members of its gang are assumed, then the last
/// one lets every waiting member through.
struct Gang {
    size: usize,
    timeout_ms: u64,
    permits: std::sync::atomic::AtomicUsize,
}

impl Gang {
    fn new(size: usize, timeout_ms: u64) -> Gang {
        Gang {
            size,
            timeout_ms,
            permits: Default::default(),
        }
    }

    fn permits(&self) -> usize {
        self.permits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn gang_of(pod: &bosun_sched_algos::PodInfo) -> Option<String> {
    pod.pod.metadata.labels.as_ref()?.get("gang").cloned()
}

impl bosun_sched_algos::framework::Plugin for Gang {
    fn name(&self) -> &'static str {
        "Gang"
    }
}

impl bosun_sched_algos::framework::PermitPlugin for Gang {
    fn permit(
        &self,
        state: &mut bosun_sched_algos::CycleState,
        pod: &bosun_sched_algos::PodInfo,
        _: &str,
    ) -> (bosun_sched_algos::Status, u64) {
        use bosun_sched_algos::{Code, Status};
        self.permits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Some(gang) = gang_of(pod) else {
            return (Status::success(), 0);
        };
        let waiting = state
            .waiting_pods()
            .expect("the service holds waiting pods");
        let members: Vec<_> = waiting
            .list()
            .into_iter()
            .filter(|w| gang_of(&w.pod).as_deref() == Some(&gang))
            .collect();
        if members.len() + 1 < self.size {
            return (
                Status::new(Code::Wait, "waiting for the gang"),
                self.timeout_ms,
            );
        }
        for m in members {
            assert!(waiting.allow(&m.pod.uid, "Gang"));
        }
        (Status::success(), 0)
    }
}

/// A harness whose default profile has the `gang` Permit plugin; its metrics.
async fn start_with_gang(
    gang: &Arc<Gang>,
) -> (Harness, Arc<bosun_sched_algos::metrics::SchedulerMetrics>) {
    use bosun_sched_algos::framework::Extensions;
    use bosun_sched_algos::{Profiles, Registry};
    let mut registry = Registry::in_tree();
    let g = gang.clone();
    registry
        .register("Gang", move |_| Ok(Extensions::of(&*g).permit(&g)))
        .unwrap();
    let yaml = "
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
profiles:
- schedulerName: default-scheduler
  plugins:
    permit: {enabled: [{name: Gang}]}
";
    let profiles = Profiles::from_yaml(yaml, &registry).unwrap();
    let config = ServiceConfig::new(profiles);
    let metrics = config.metrics.clone();
    (Harness::start_with(config).await, metrics)
}

fn assert_metric_lines(metrics: &bosun_sched_algos::metrics::SchedulerMetrics, lines: &[&str]) {
    let text = metrics.render();
    for line in lines {
        assert!(
            text.lines().any(|l| l == *line),
            "missing {line:?} in\n{text}"
        );
    }
}

impl Harness {
    async fn add_gang_pod(&self, name: &str, cpu: &str, gang: &str) {
        self.create_pod(
            PodBuilder::new(name)
                .request(cpu, "1Gi")
                .label("gang", gang),
        )
        .await;
    }

    /// Polls until `f` holds, or panics after [`WAIT`].
    async fn wait_until(&self, what: &str, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !f() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn node_of(&self, name: &str) -> Option<String> {
        let api = Api::<corev1::Pod>::namespaced(self.client.clone(), "default");
        api.get(name).await.unwrap().spec.and_then(|s| s.node_name)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_waits_in_permit_until_it_is_complete() {
    let gang = Arc::new(Gang::new(3, 600_000));
    let (h, metrics) = start_with_gang(&gang).await;
    h.add_node("n1", "4").await;
    h.add_gang_pod("g1", "1", "a").await;
    h.add_gang_pod("g2", "1", "a").await;
    h.wait_until("two permits", || gang.permits() == 2).await;
    // Both wait, assumed on n1: nothing is bound, and their CPU is taken.
    assert_eq!(h.node_of("g1").await, None);
    assert_eq!(h.node_of("g2").await, None);
    h.add_pod("big", "3").await;
    let msg = h
        .wait_event_where("big", "FailedScheduling", |m| m.starts_with("0/1"))
        .await;
    // Equal priorities: the waiting pods are no preemption victims.
    assert!(
        msg.starts_with("0/1 nodes are available: 1 Insufficient cpu. preemption:"),
        "{msg}"
    );
    // The third member completes the gang: all three are bound.
    h.add_gang_pod("g3", "1", "a").await;
    for p in ["g1", "g2", "g3"] {
        assert_eq!(h.wait_bound(p).await, "n1");
        h.wait_event(p, "Scheduled").await;
    }
    let point = "scheduler_framework_extension_point_duration_seconds_count";
    assert_metric_lines(
        &metrics,
        &[
            "scheduler_permit_wait_duration_seconds_count{result=\"Success\"} 2",
            &format!(
                "{point}{{extension_point=\"Permit\",profile=\"default-scheduler\",status=\"Wait\"}} 2"
            ),
            &format!(
                "{point}{{extension_point=\"Permit\",profile=\"default-scheduler\",status=\"Success\"}} 1"
            ),
            &format!(
                "{point}{{extension_point=\"Bind\",profile=\"default-scheduler\",status=\"Success\"}} 3"
            ),
            &format!(
                "{point}{{extension_point=\"PostBind\",profile=\"default-scheduler\",status=\"Success\"}} 3"
            ),
        ],
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_pod_times_out_and_frees_its_node() {
    let gang = Arc::new(Gang::new(2, 300));
    let (h, metrics) = start_with_gang(&gang).await;
    h.add_node("n1", "2").await;
    h.add_gang_pod("lonely", "1", "b").await;
    // The first attempt may come before the node is known ("no nodes available").
    let msg = h
        .wait_event_where("lonely", "FailedScheduling", |m| m.starts_with("0/1"))
        .await;
    assert_eq!(
        msg,
        "0/1 nodes are available: 1 rejected due to timeout after waiting 300ms at plugin Gang."
    );
    // Forgotten: the whole node is free again (`lonely` is parked as unschedulable
    // and not retried before a cluster event).
    h.add_pod("whole", "2").await;
    assert_eq!(h.wait_bound("whole").await, "n1");
    assert_metric_lines(
        &metrics,
        &["scheduler_permit_wait_duration_seconds_count{result=\"Unschedulable\"} 1"],
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_waiting_pod_releases_it() {
    let gang = Arc::new(Gang::new(2, 600_000));
    let (h, _) = start_with_gang(&gang).await;
    h.add_node("n1", "2").await;
    h.add_gang_pod("waiting", "1", "c").await;
    h.wait_until("one permit", || gang.permits() == 1).await;
    let api = Api::<corev1::Pod>::namespaced(h.client.clone(), "default");
    api.delete("waiting", &bosun_client::DeleteParams::default())
        .await
        .unwrap();
    h.add_pod("whole", "2").await;
    assert_eq!(h.wait_bound("whole").await, "n1");
    assert_eq!(gang.permits(), 2, "the deleted pod was not retried");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binding_names_the_gpu_devices_chosen() {
    use bosun_sched_algos::plugins::gpu_device::GPU_DEVICES_ANNOTATION;
    let h = Harness::start().await;
    let node = NodeBuilder::new("gpu")
        .capacity("8", "8Gi", 110)
        .allocatable("nvidia.com/gpu", "4");
    h.create_node(node).await;
    let api = Api::<corev1::Pod>::namespaced(h.client.clone(), "default");
    let mut seen = 0u64;
    for (name, gpus) in [("two", "2"), ("one", "1")] {
        h.create_pod(PodBuilder::new(name).request_resource("nvidia.com/gpu", gpus))
            .await;
        assert_eq!(h.wait_bound(name).await, "gpu");
        let pod = api.get(name).await.unwrap();
        let list = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(GPU_DEVICES_ANNOTATION))
            .unwrap_or_else(|| panic!("{name} has no {GPU_DEVICES_ANNOTATION}"))
            .clone();
        let mask = bosun_sched_algos::plugins::gpu_device::parse_device_list(&list).unwrap();
        assert_eq!(mask.count_ones(), gpus.parse::<u32>().unwrap(), "{list}");
        assert_eq!(mask & seen, 0, "{name} shares a device: {list}");
        seen |= mask;
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_victim_is_rejected_not_deleted() {
    let gang = Arc::new(Gang::new(3, 600_000));
    let (h, _) = start_with_gang(&gang).await;
    h.add_node("n1", "2").await;
    h.add_gang_pod("w1", "1", "d").await;
    h.add_gang_pod("w2", "1", "d").await;
    h.wait_until("two permits", || gang.permits() == 2).await;
    h.add_pod_with("vip", "2", 1000).await;
    assert_eq!(h.wait_bound("vip").await, "n1");
    let api = Api::<corev1::Pod>::namespaced(h.client.clone(), "default");
    for w in ["w1", "w2"] {
        let msg = h.wait_event(w, "Preempted").await;
        assert!(msg.ends_with(" on node n1"), "{msg}");
        let pod = api.get(w).await.expect("a waiting victim is not deleted");
        assert_eq!(pod.spec.and_then(|s| s.node_name), None);
        h.wait_event_where(w, "FailedScheduling", |m| m.contains("preempted"))
            .await;
    }
    h.stop().await;
}
