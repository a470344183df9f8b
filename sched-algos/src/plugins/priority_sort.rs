//! PrioritySort: higher `spec.priority` first, then earlier queue time
//! (upstream queuesort/priority_sort.go `Less`).

use crate::framework::{Plugin, QueueSortPlugin};
use crate::pod_info::QueuedPodInfo;

pub const NAME: &str = "PrioritySort";

#[derive(Debug, Default)]
pub struct PrioritySort;

impl Plugin for PrioritySort {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl QueueSortPlugin for PrioritySort {
    fn less(&self, a: &QueuedPodInfo, b: &QueuedPodInfo) -> bool {
        let (pa, pb) = (a.pod.priority, b.pod.priority);
        pa > pb || (pa == pb && a.timestamp < b.timestamp)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::fixtures::PodBuilder;
    use crate::plugins::testutil::pod;

    #[test]
    fn golden_order() {
        let q = |name: &str, prio: i32, ts: u64| QueuedPodInfo {
            pod: Arc::new(pod(PodBuilder::new(name).priority(prio).build())),
            timestamp: ts,
        };
        // (a, b, a before b?)
        let cases = [
            (q("hi", 10, 5), q("lo", 1, 1), true),
            (q("lo", 1, 1), q("hi", 10, 5), false),
            (q("early", 5, 1), q("late", 5, 2), true),
            (q("same", 5, 1), q("same2", 5, 1), false),
        ];
        for (a, b, want) in &cases {
            assert_eq!(
                PrioritySort.less(a, b),
                *want,
                "{} vs {}",
                a.pod.name,
                b.pod.name
            );
        }
        let mut pods = [q("a", 1, 3), q("b", 9, 9), q("c", 1, 1), q("d", 9, 2)];
        pods.sort_by(|a, b| PrioritySort.compare(a, b));
        let names: Vec<&str> = pods.iter().map(|p| p.pod.name.as_str()).collect();
        assert_eq!(names, ["d", "b", "c", "a"]);
    }
}
