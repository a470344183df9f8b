//! SchedulingGates: a pod with `spec.schedulingGates` waits outside the active queue
//! (upstream schedulinggates/scheduling_gates.go).

use crate::framework::{Plugin, PreEnqueuePlugin};
use crate::pod_info::PodInfo;
use crate::status::{Code, Status};

pub const NAME: &str = "SchedulingGates";

#[derive(Debug, Default)]
pub struct SchedulingGates;

impl Plugin for SchedulingGates {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl PreEnqueuePlugin for SchedulingGates {
    fn pre_enqueue(&self, pod: &PodInfo) -> Status {
        if pod.scheduling_gates.is_empty() {
            return Status::success();
        }
        // Go's %v of a []string: "[a b]".
        let gates = format!("[{}]", pod.scheduling_gates.join(" "));
        Status::new(
            Code::UnschedulableAndUnresolvable,
            format!("waiting for scheduling gates: {gates}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::PodBuilder;
    use crate::plugins::testutil::pod;

    #[test]
    fn golden() {
        let ungated = pod(PodBuilder::new("p").build());
        assert!(SchedulingGates.pre_enqueue(&ungated).is_success());
        let gated = pod(PodBuilder::new("p").gate("foo").gate("bar").build());
        let s = SchedulingGates.pre_enqueue(&gated);
        assert_eq!(s.code(), Code::UnschedulableAndUnresolvable);
        assert_eq!(s.message(), "waiting for scheduling gates: [foo bar]");
    }
}
