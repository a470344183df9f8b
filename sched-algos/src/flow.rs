//! Min-cost flow by successive shortest paths with Johnson potentials (Edmonds and
//! Karp 1972; Tomizawa 1971): each round, Dijkstra over the residual graph with reduced
//! costs `cost(u, v) + h(u) - h(v) >= 0` finds a cheapest augmenting path, the
//! potentials `h` advance by the distances, and the path is saturated. With integer
//! capacities the result is an integral flow of the largest value up to the limit
//! asked for, of least cost among flows of that value.
//!
//! Contracts: costs and capacities are non-negative (so `h = 0` starts valid); the
//! graph is at most [`MAX_FLOW_NODES`] nodes. Deterministic: the heap breaks distance
//! ties by node index and edges are scanned in insertion order, so the same graph
//! gives the same flow. O(F * E log V) for a flow of value F.
//!
//! ```
//! use bosun_sched_algos::flow::MinCostFlow;
//!
//! // Two units from 0 to 3: 0-1-3 costs 2, 0-2-3 costs 3, each path one unit.
//! let mut g = MinCostFlow::new(4);
//! let a = g.add_edge(0, 1, 1, 1);
//! g.add_edge(1, 3, 1, 1);
//! g.add_edge(0, 2, 1, 1);
//! g.add_edge(2, 3, 1, 2);
//! let result = g.solve(0, 3, 10);
//! assert_eq!((result.flow, result.cost), (2, 5));
//! assert_eq!(g.flow(a), 1);
//! ```

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A bound on the graph's nodes.
pub const MAX_FLOW_NODES: usize = 1 << 24;

/// An edge as [`MinCostFlow::add_edge`] returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdgeId(usize);

/// The value and cost of a solved flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowResult {
    pub flow: i64,
    pub cost: i64,
}

#[derive(Clone, Debug)]
struct Arc {
    to: u32,
    /// Residual capacity.
    cap: i64,
    cost: i64,
}

/// A flow network; see the module docs. Edge `2i` is the `i`-th edge added, `2i + 1`
/// its residual reverse.
#[derive(Clone, Debug, Default)]
pub struct MinCostFlow {
    arcs: Vec<Arc>,
    /// Per node, its outgoing arcs (forward and reverse) in insertion order.
    adjacency: Vec<Vec<u32>>,
    /// Each edge's original capacity, by edge index.
    capacity: Vec<i64>,
}

impl MinCostFlow {
    /// A network of `n_nodes` nodes numbered from 0 and no edges. Panics past
    /// [`MAX_FLOW_NODES`].
    pub fn new(n_nodes: usize) -> MinCostFlow {
        assert!(n_nodes <= MAX_FLOW_NODES, "{n_nodes} flow nodes");
        MinCostFlow {
            arcs: Vec::new(),
            adjacency: vec![Vec::new(); n_nodes],
            capacity: Vec::new(),
        }
    }

    pub fn n_nodes(&self) -> usize {
        self.adjacency.len()
    }

    /// Adds an edge. Panics on a node out of range or a negative capacity or cost.
    pub fn add_edge(&mut self, from: usize, to: usize, cap: i64, cost: i64) -> EdgeId {
        let n = self.n_nodes();
        assert!(from < n, "edge from {from} of {n} nodes");
        assert!(to < n, "edge to {to} of {n} nodes");
        assert!(cap >= 0, "negative capacity {cap}");
        assert!(cost >= 0, "negative cost {cost}");
        let id = self.arcs.len();
        self.arcs.push(Arc {
            to: to as u32,
            cap,
            cost,
        });
        self.arcs.push(Arc {
            to: from as u32,
            cap: 0,
            cost: -cost,
        });
        self.adjacency[from].push(id as u32);
        self.adjacency[to].push(id as u32 + 1);
        self.capacity.push(cap);
        EdgeId(id / 2)
    }

    /// The flow on an edge after [`solve`](MinCostFlow::solve).
    pub fn flow(&self, e: EdgeId) -> i64 {
        self.capacity[e.0] - self.arcs[2 * e.0].cap
    }

    /// Sends up to `max_flow` units from `source` to `sink` at least cost, on top of
    /// any flow already sent. Returns what this call sent and its cost.
    pub fn solve(&mut self, source: usize, sink: usize, max_flow: i64) -> FlowResult {
        assert_ne!(source, sink, "source is the sink");
        let n = self.n_nodes();
        let mut potential = vec![0_i64; n];
        let mut dist = vec![i64::MAX; n];
        let mut prev_arc = vec![u32::MAX; n];
        let mut done = vec![false; n];
        let mut result = FlowResult { flow: 0, cost: 0 };
        while result.flow < max_flow {
            self.shortest_paths(source, &potential, &mut dist, &mut prev_arc, &mut done);
            if dist[sink] == i64::MAX {
                break;
            }
            for v in 0..n {
                if dist[v] != i64::MAX {
                    potential[v] += dist[v];
                }
            }
            // The bottleneck along the path, then push it.
            let mut push = max_flow - result.flow;
            let mut v = sink;
            while v != source {
                let a = prev_arc[v] as usize;
                push = push.min(self.arcs[a].cap);
                v = self.arcs[a ^ 1].to as usize;
            }
            let mut v = sink;
            while v != source {
                let a = prev_arc[v] as usize;
                self.arcs[a].cap -= push;
                self.arcs[a ^ 1].cap += push;
                result.cost += push * self.arcs[a].cost;
                v = self.arcs[a ^ 1].to as usize;
            }
            result.flow += push;
        }
        result
    }

    /// Dijkstra on reduced costs from `source` over arcs with residual capacity:
    /// `dist` (`i64::MAX` when unreachable) and the arc each node was reached by.
    fn shortest_paths(
        &self,
        source: usize,
        potential: &[i64],
        dist: &mut [i64],
        prev_arc: &mut [u32],
        done: &mut [bool],
    ) {
        dist.fill(i64::MAX);
        prev_arc.fill(u32::MAX);
        done.fill(false);
        dist[source] = 0;
        let mut heap = BinaryHeap::new();
        heap.push(Reverse((0_i64, source as u32)));
        while let Some(Reverse((d, u))) = heap.pop() {
            let u = u as usize;
            if done[u] {
                continue;
            }
            done[u] = true;
            for &a in &self.adjacency[u] {
                let arc = &self.arcs[a as usize];
                if arc.cap == 0 {
                    continue;
                }
                let v = arc.to as usize;
                let reduced = arc.cost + potential[u] - potential[v];
                debug_assert!(reduced >= 0, "negative reduced cost {reduced}");
                let nd = d + reduced;
                if nd < dist[v] {
                    dist[v] = nd;
                    prev_arc[v] = a;
                    heap.push(Reverse((nd, v as u32)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::SplitMix64;

    /// A hand-worked network: three units from s to t. Paths s-a-b-t and s-b-t cost 3
    /// and share b-t (capacity 2); the third unit takes s-a-t (4): 3 + 3 + 4 = 10.
    #[test]
    fn diamond_golden() {
        let (s, a, b, t) = (0, 1, 2, 3);
        let mut g = MinCostFlow::new(4);
        let sa = g.add_edge(s, a, 2, 1);
        let sb = g.add_edge(s, b, 1, 2);
        let ab = g.add_edge(a, b, 1, 1);
        let at = g.add_edge(a, t, 1, 3);
        let bt = g.add_edge(b, t, 2, 1);
        assert_eq!(g.clone().solve(s, t, 2), FlowResult { flow: 2, cost: 6 });
        assert_eq!(g.solve(s, t, 10), FlowResult { flow: 3, cost: 10 });
        let flows = [sa, sb, ab, at, bt].map(|e| g.flow(e));
        assert_eq!(flows, [2, 1, 1, 1, 2]);
    }

    /// Cancelling flow along a reverse edge: the first path s-a-b-t (cost 2) must be
    /// partly undone to send two units: s-a-t + s-b-t = 3 + 3 = 6, not 2 + infinity.
    #[test]
    fn uses_reverse_edges() {
        let mut g = MinCostFlow::new(4);
        g.add_edge(0, 1, 1, 1);
        g.add_edge(0, 2, 1, 2);
        let ab = g.add_edge(1, 2, 1, 0);
        g.add_edge(1, 3, 1, 2);
        g.add_edge(2, 3, 1, 1);
        assert_eq!(g.solve(0, 3, 2), FlowResult { flow: 2, cost: 6 });
        assert_eq!(g.flow(ab), 0);
    }

    /// The placement network [`crate::batch`] builds, against brute force: pods choose
    /// a node (within capacity) or "unscheduled" at a high cost; the flow's cost must
    /// be the cheapest assignment's, and the flow must be a valid assignment.
    #[test]
    fn assignment_matches_brute_force() {
        let mut rng = SplitMix64::new(7);
        let mut below = |n: u64| rng.next_u64() % n;
        for case in 0..400 {
            let n_pods = 1 + below(5) as usize;
            let n_nodes = 1 + below(3) as usize;
            let caps: Vec<i64> = (0..n_nodes).map(|_| 1 + below(2) as i64).collect();
            let arcs: Vec<Vec<Option<i64>>> = (0..n_pods)
                .map(|_| {
                    (0..n_nodes)
                        .map(|_| (below(10) < 7).then(|| below(21) as i64))
                        .collect()
                })
                .collect();
            let unscheduled = 1000;
            let (source, sink) = (0, 1 + n_pods + n_nodes);
            let mut g = MinCostFlow::new(sink + 1);
            let mut edges = Vec::new();
            for (p, row) in arcs.iter().enumerate() {
                g.add_edge(source, 1 + p, 1, 0);
                g.add_edge(1 + p, sink, 1, unscheduled);
                for (n, cost) in row.iter().enumerate() {
                    if let Some(c) = *cost {
                        edges.push((p, n, c, g.add_edge(1 + p, 1 + n_pods + n, 1, c)));
                    }
                }
            }
            for (n, &cap) in caps.iter().enumerate() {
                g.add_edge(1 + n_pods + n, sink, cap, 0);
            }
            let result = g.solve(source, sink, n_pods as i64);
            assert_eq!(result.flow, n_pods as i64, "case {case}");
            let want = brute_force(&arcs, &caps, unscheduled);
            assert_eq!(result.cost, want, "case {case}: {arcs:?} caps {caps:?}");
            // The flow is an assignment within capacity whose cost is the result's.
            let mut used = vec![0; n_nodes];
            let mut placed = vec![0; n_pods];
            let mut cost = 0;
            for &(p, n, c, e) in &edges {
                let f = g.flow(e);
                assert!(f == 0 || f == 1);
                used[n] += f;
                placed[p] += f;
                cost += f * c;
            }
            assert!(used.iter().zip(&caps).all(|(u, c)| u <= c));
            assert!(placed.iter().all(|&p| p <= 1));
            let unplaced = placed.iter().filter(|&&p| p == 0).count() as i64;
            assert_eq!(cost + unplaced * unscheduled, result.cost);
        }
    }

    /// The cheapest assignment of pods to nodes (or to "unscheduled") by enumeration.
    fn brute_force(arcs: &[Vec<Option<i64>>], caps: &[i64], unscheduled: i64) -> i64 {
        fn go(p: usize, arcs: &[Vec<Option<i64>>], left: &mut [i64], unscheduled: i64) -> i64 {
            let Some(row) = arcs.get(p) else { return 0 };
            let mut best = unscheduled + go(p + 1, arcs, left, unscheduled);
            for (n, cost) in row.iter().enumerate() {
                if let Some(c) = *cost
                    && left[n] > 0
                {
                    left[n] -= 1;
                    best = best.min(c + go(p + 1, arcs, left, unscheduled));
                    left[n] += 1;
                }
            }
            best
        }
        go(0, arcs, &mut caps.to_vec(), unscheduled)
    }

    #[test]
    fn unreachable_sink_sends_nothing() {
        let mut g = MinCostFlow::new(3);
        g.add_edge(0, 1, 5, 1);
        assert_eq!(g.solve(0, 2, 5), FlowResult { flow: 0, cost: 0 });
    }
}
