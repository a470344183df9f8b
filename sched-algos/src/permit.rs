//! Permit's waiting pods: upstream's `RunPermitPlugins` and `waitingPodsMap`
//! (pkg/scheduler/framework/runtime/framework.go, waiting_pods_map.go). The waiting
//! itself (upstream's `WaitOnPermit`) is the service's: this module reads no clock.
//!
//! A Permit plugin that returns [`Code::Wait`] holds the pod between its scheduling
//! and binding cycles: the pod stays assumed on its node (its resources counted)
//! while other pods are scheduled, until every plugin that asked it to wait allows it,
//! one rejects it, or a plugin's timeout passes. Plugins reach the waiting pods
//! through [`CycleState::waiting_pods`], as upstream's reach them through the
//! framework handle: a gang plugin lets the last member of a group through and
//! [`WaitingPods::allow`]s the members already waiting.
//!
//! The set is bounded; a pod that would overflow it is rejected, never queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::framework::{CycleState, MAX_PERMIT_WAIT_MS};
use crate::pod_info::PodInfo;
use crate::profile::Profile;
use crate::status::{Code, Status};

/// What the Permit plugins decided for a pod.
#[derive(Debug)]
pub enum PermitOutcome {
    /// Every plugin said Success (or there are none): bind now.
    Allow,
    /// At least one plugin said Wait and none rejected: each waiting plugin with its
    /// timeout, capped at [`MAX_PERMIT_WAIT_MS`].
    Wait(Vec<(&'static str, Duration)>),
    /// A plugin rejected the pod (`Unschedulable*`) or failed (`Error`); the status
    /// names the plugin.
    Reject(Status),
}

/// Runs the Permit plugins in order (upstream's `RunPermitPlugins`): the first
/// rejection or error ends the run; Wait is remembered and the run goes on.
pub fn run_permit(
    profile: &Profile,
    state: &mut CycleState,
    pod: &PodInfo,
    node: &str,
) -> PermitOutcome {
    let mut waits = Vec::new();
    for pl in &profile.permit {
        let (s, timeout_ms) = pl.permit(state, pod, node);
        match s.code() {
            Code::Success | Code::Skip => {}
            Code::Wait => waits.push((
                pl.name(),
                Duration::from_millis(timeout_ms.min(MAX_PERMIT_WAIT_MS)),
            )),
            Code::Unschedulable | Code::UnschedulableAndUnresolvable => {
                return PermitOutcome::Reject(s.with_plugin(pl.name()));
            }
            Code::Error | Code::Pending => {
                let message = format!("running Permit plugin {:?}: {}", pl.name(), s.message());
                return PermitOutcome::Reject(Status::error(message).with_plugin(pl.name()));
            }
        }
    }
    if waits.is_empty() {
        PermitOutcome::Allow
    } else {
        PermitOutcome::Wait(waits)
    }
}

/// A waiting pod as plugins see it.
#[derive(Clone, Debug)]
pub struct WaitingPodView {
    pub pod: Arc<PodInfo>,
    /// The node the pod is assumed on.
    pub node: String,
    /// The plugins that have not allowed it yet.
    pub pending_plugins: Vec<&'static str>,
}

struct WaitingPod {
    pod: Arc<PodInfo>,
    node: String,
    /// Each plugin still to allow the pod, with when its wait ends and how long it was.
    pending: Vec<(&'static str, Instant, Duration)>,
    done: oneshot::Sender<Result<(), Status>>,
}

/// The pods held in Permit, by UID. Shared (`Arc`) between the scheduler, the
/// plugins (through [`CycleState::waiting_pods`]) and the tasks that wait.
pub struct WaitingPods {
    pods: Mutex<HashMap<String, WaitingPod>>,
    capacity: usize,
}

/// The receiving end of a waiting pod's verdict.
pub struct PermitWait {
    uid: String,
    rx: oneshot::Receiver<Result<(), Status>>,
}

impl WaitingPods {
    /// An empty set that holds at most `capacity` pods.
    pub fn new(capacity: usize) -> WaitingPods {
        WaitingPods {
            pods: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, WaitingPod>> {
        // A panic while holding the lock leaves the map consistent (every method
        // mutates it in one step), so a poisoned lock is still usable.
        self.pods.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Holds `pod` on `node` until each of `waits`' plugins allows it. Rejects (an
    /// `Error` status) when the set is full or the pod is already waiting.
    pub fn add(
        &self,
        pod: Arc<PodInfo>,
        node: &str,
        waits: &[(&'static str, Duration)],
        now: Instant,
    ) -> Result<PermitWait, Status> {
        let mut pods = self.lock();
        if pods.len() >= self.capacity {
            return Err(Status::error(format!(
                "{} pods are already waiting in Permit",
                pods.len()
            )));
        }
        if pods.contains_key(&pod.uid) {
            return Err(Status::error("pod is already waiting in Permit"));
        }
        let (done, rx) = oneshot::channel();
        let uid = pod.uid.clone();
        let pending = waits.iter().map(|&(p, d)| (p, now + d, d)).collect();
        pods.insert(
            uid.clone(),
            WaitingPod {
                pod,
                node: node.to_string(),
                pending,
                done,
            },
        );
        Ok(PermitWait { uid, rx })
    }

    /// The waiting pod with this UID.
    pub fn get(&self, uid: &str) -> Option<WaitingPodView> {
        self.lock().get(uid).map(view)
    }

    /// Every waiting pod (upstream's `IterateOverWaitingPods`), in no set order. A
    /// copy: the caller may allow or reject while walking it.
    pub fn list(&self) -> Vec<WaitingPodView> {
        self.lock().values().map(view).collect()
    }

    /// `plugin` allows the pod; once no plugin is pending the pod goes on to bind.
    /// False when no such pod is waiting.
    pub fn allow(&self, uid: &str, plugin: &str) -> bool {
        let mut pods = self.lock();
        let Some(w) = pods.get_mut(uid) else {
            return false;
        };
        w.pending.retain(|(p, _, _)| *p != plugin);
        if w.pending.is_empty() {
            let w = pods.remove(uid).expect("present");
            let _ = w.done.send(Ok(()));
        }
        true
    }

    /// `plugin` rejects the pod (`Unschedulable`, with `message`): it is unreserved
    /// and requeued. False when no such pod is waiting.
    pub fn reject(&self, uid: &str, plugin: &'static str, message: &str) -> bool {
        let Some(w) = self.lock().remove(uid) else {
            return false;
        };
        let s = Status::new(Code::Unschedulable, message.to_string()).with_plugin(plugin);
        let _ = w.done.send(Err(s));
        true
    }

    /// Rejects the pod if a plugin's wait has ended by `now` (upstream's per-plugin
    /// timer: "rejected due to timeout after waiting 5s at plugin X"). Returns when
    /// the next wait ends, or None once the pod is no longer waiting.
    pub fn expire(&self, uid: &str, now: Instant) -> Option<Instant> {
        let mut pods = self.lock();
        let w = pods.get(uid)?;
        let &(plugin, deadline, waited) = w.pending.iter().min_by_key(|(_, d, _)| *d)?;
        if deadline > now {
            return Some(deadline);
        }
        let w = pods.remove(uid).expect("present");
        let message =
            format!("rejected due to timeout after waiting {waited:?} at plugin {plugin}");
        let _ = w.done.send(Err(
            Status::new(Code::Unschedulable, message).with_plugin(plugin)
        ));
        None
    }
}

impl PermitWait {
    /// The UID of the waiting pod.
    pub fn uid(&self) -> &str {
        &self.uid
    }

    /// The verdict, once there is one: Ok when every plugin allowed the pod, else
    /// the rejecting status.
    pub fn try_verdict(&mut self) -> Option<Result<(), Status>> {
        match self.rx.try_recv() {
            Ok(v) => Some(v),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => {
                Some(Err(Status::error("waiting pod dropped")))
            }
        }
    }

    /// The verdict, when it comes (the caller bounds the wait with
    /// [`WaitingPods::expire`]).
    pub async fn verdict(&mut self) -> Result<(), Status> {
        (&mut self.rx)
            .await
            .unwrap_or_else(|_| Err(Status::error("waiting pod dropped")))
    }
}

fn view(w: &WaitingPod) -> WaitingPodView {
    WaitingPodView {
        pod: Arc::clone(&w.pod),
        node: w.node.clone(),
        pending_plugins: w.pending.iter().map(|(p, _, _)| *p).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::PodBuilder;

    fn pod(name: &str) -> Arc<PodInfo> {
        Arc::new(PodInfo::new(PodBuilder::new(name).request("1", "1Gi").build()).unwrap())
    }

    #[test]
    fn allowed_once_every_plugin_allows() {
        let w = WaitingPods::new(4);
        let p = pod("a");
        let long = Duration::from_secs(600);
        let mut wait = w
            .add(p.clone(), "n1", &[("A", long), ("B", long)], Instant::now())
            .unwrap();
        assert!(w.allow(&p.uid, "A"));
        assert_eq!(wait.try_verdict(), None);
        let v = w.get(&p.uid).unwrap();
        assert_eq!((v.node.as_str(), v.pending_plugins), ("n1", vec!["B"]));
        assert!(w.allow(&p.uid, "B"));
        assert!(w.get(&p.uid).is_none());
        assert_eq!(wait.try_verdict(), Some(Ok(())));
        assert!(!w.allow(&p.uid, "B"), "no longer waiting");
    }

    #[test]
    fn rejected_by_a_plugin() {
        let w = WaitingPods::new(4);
        let p = pod("a");
        let mut wait = w
            .add(
                p.clone(),
                "n1",
                &[("A", Duration::from_secs(600))],
                Instant::now(),
            )
            .unwrap();
        assert!(w.reject(&p.uid, "A", "gang broken"));
        let s = wait.try_verdict().unwrap().unwrap_err();
        assert_eq!(
            (s.code(), s.plugin(), s.message().as_str()),
            (Code::Unschedulable, "A", "gang broken")
        );
        assert!(w.is_empty());
    }

    #[test]
    fn the_first_timeout_rejects() {
        let w = WaitingPods::new(4);
        let p = pod("a");
        let t0 = Instant::now();
        let mut wait = w
            .add(
                p.clone(),
                "n1",
                &[
                    ("Slow", Duration::from_secs(600)),
                    ("Quick", Duration::from_millis(20)),
                ],
                t0,
            )
            .unwrap();
        assert_eq!(w.expire(&p.uid, t0), Some(t0 + Duration::from_millis(20)));
        assert_eq!(wait.try_verdict(), None);
        assert_eq!(w.expire(&p.uid, t0 + Duration::from_millis(20)), None);
        let s = wait.try_verdict().unwrap().unwrap_err();
        assert_eq!(s.plugin(), "Quick");
        assert_eq!(
            s.message(),
            "rejected due to timeout after waiting 20ms at plugin Quick"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn bounded() {
        let w = WaitingPods::new(1);
        let d = [("A", Duration::from_secs(1))];
        let _held = w.add(pod("a"), "n1", &d, Instant::now()).unwrap();
        let s = w.add(pod("b"), "n1", &d, Instant::now()).err().unwrap();
        assert_eq!(s.code(), Code::Error);
        assert_eq!(w.len(), 1);
    }
}
