//! Prometheus text metrics with upstream's names: `apiserver_request_total`,
//! `apiserver_request_duration_seconds`, `apiserver_watch_events_total`,
//! `apiserver_longrunning_requests`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// Upstream's buckets for `apiserver_request_duration_seconds`.
const BUCKETS_S: [f64; 23] = [
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0,
    10.0, 15.0, 20.0, 30.0, 45.0, 60.0,
];

/// Labels of one request series.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestLabels {
    pub verb: String,
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub scope: &'static str,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS_S.len()],
    count: u64,
    sum_s: f64,
}

#[derive(Default)]
struct Series {
    by_code: BTreeMap<u16, u64>,
    duration: Histogram,
}

/// The server's metrics registry.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestLabels, Series>>,
    watch_events: Mutex<BTreeMap<(String, String, String), u64>>,
    long_running: AtomicI64,
    /// Other components in this process whose metrics `/metrics` also serves.
    sources: Mutex<Vec<MetricsSource>>,
}

/// Renders a component's metrics in the Prometheus text format.
pub type MetricsSource = Box<dyn Fn() -> String + Send + Sync>;

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, labels: RequestLabels, code: u16, seconds: f64) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let series = map.entry(labels).or_default();
        *series.by_code.entry(code).or_default() += 1;
        let h = &mut series.duration;
        h.count += 1;
        h.sum_s += seconds;
        for (i, b) in BUCKETS_S.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
    }

    /// Counts one event sent to a watcher.
    pub fn watch_event(&self, group: &str, version: &str, kind: &str) {
        let mut map = self.watch_events.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((group.to_string(), version.to_string(), kind.to_string()))
            .or_default() += 1;
    }

    /// Tracks open watches.
    pub fn long_running(&self, delta: i64) {
        self.long_running.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let _ = writeln!(
            out,
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code."
        );
        let _ = writeln!(out, "# TYPE apiserver_request_total counter");
        for (l, s) in requests.iter() {
            for (code, n) in &s.by_code {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{{},code=\"{code}\"}} {n}",
                    label_str(l)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP apiserver_request_duration_seconds Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component."
        );
        let _ = writeln!(out, "# TYPE apiserver_request_duration_seconds histogram");
        for (l, s) in requests.iter() {
            let ls = label_str(l);
            for (i, b) in BUCKETS_S.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{ls},le=\"{b}\"}} {}",
                    s.duration.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_bucket{{{ls},le=\"+Inf\"}} {}",
                s.duration.count
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_sum{{{ls}}} {}",
                s.duration.sum_s
            );
            let _ = writeln!(
                out,
                "apiserver_request_duration_seconds_count{{{ls}}} {}",
                s.duration.count
            );
        }
        drop(requests);
        let _ = writeln!(
            out,
            "# HELP apiserver_watch_events_total Number of events sent in watch clients"
        );
        let _ = writeln!(out, "# TYPE apiserver_watch_events_total counter");
        for ((g, v, k), n) in self
            .watch_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            let _ = writeln!(
                out,
                "apiserver_watch_events_total{{group=\"{g}\",kind=\"{k}\",version=\"{v}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP apiserver_longrunning_requests Gauge of all active long-running apiserver requests."
        );
        let _ = writeln!(out, "# TYPE apiserver_longrunning_requests gauge");
        let _ = writeln!(
            out,
            "apiserver_longrunning_requests{{verb=\"WATCH\"}} {}",
            self.long_running.load(Ordering::Relaxed)
        );
        for source in self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            out.push_str(&source());
        }
        out
    }

    /// Serves another in-process component's metrics (the scheduler's, in `bosun up`)
    /// on `/metrics` after the server's own.
    pub fn add_source(&self, source: MetricsSource) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(source);
    }
}

fn label_str(l: &RequestLabels) -> String {
    format!(
        "component=\"apiserver\",group=\"{}\",resource=\"{}\",scope=\"{}\",subresource=\"{}\",verb=\"{}\",version=\"{}\"",
        l.group, l.resource, l.scope, l.subresource, l.verb, l.version
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        let l = RequestLabels {
            verb: "LIST".into(),
            group: "".into(),
            version: "v1".into(),
            resource: "pods".into(),
            subresource: "".into(),
            scope: "namespace",
        };
        m.observe(l.clone(), 200, 0.01);
        m.observe(l, 404, 2.5);
        let text = m.render();
        assert!(text.contains("apiserver_request_total{component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\",code=\"200\"} 1"), "{text}");
        assert!(text.contains("le=\"0.005\"} 0"));
        assert!(text.contains("le=\"0.025\"} 1"));
        assert!(text.contains("le=\"3\"} 2"));
        assert!(text.contains("apiserver_request_duration_seconds_count{component=\"apiserver\",group=\"\",resource=\"pods\",scope=\"namespace\",subresource=\"\",verb=\"LIST\",version=\"v1\"} 2"));
    }
}
