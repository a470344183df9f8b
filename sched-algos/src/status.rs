//! The closed set of outcomes a plugin can report, and what each does to the pod.
//!
//! Mirrors upstream's `framework.Code` and `framework.Status`
//! (pkg/scheduler/framework/interface.go). A `Status` is cheap when successful: no
//! allocation until a reason is attached, and the common reasons are `&'static str`.

use std::borrow::Cow;
use std::fmt;

/// What a plugin's verdict means for the pod and for the scheduling queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// The plugin ran and the pod may proceed. Queueing: none, the cycle continues.
    Success,
    /// An internal failure (bad args, missing cycle state). The cycle aborts and the pod
    /// goes back to the queue with backoff; no preemption is tried.
    Error,
    /// The pod does not fit now, but preemption or a cluster change might make it fit.
    /// The pod goes to the unschedulable queue and PostFilter (preemption) runs.
    Unschedulable,
    /// The pod does not fit and preemption on this node cannot help (a taint, a node
    /// selector). Queueing as for `Unschedulable`, but preemption skips this node.
    UnschedulableAndUnresolvable,
    /// Permit only: the pod waits (bounded by the plugin's timeout) before binding.
    /// Queueing: the pod stays assumed, out of the queue, until allowed or rejected.
    Wait,
    /// The plugin has nothing to do for this pod (PreFilter, PreScore, Bind): its Filter
    /// or Score is not called in this cycle. Queueing: none, like `Success`.
    Skip,
    /// The pod waits for something outside the scheduler (a PreEnqueue gate, a
    /// resource being prepared). The pod is parked and retried only on the event the
    /// plugin registered for, without backoff.
    Pending,
}

impl Code {
    /// Upstream's name for the code (`"Unschedulable"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Success => "Success",
            Code::Error => "Error",
            Code::Unschedulable => "Unschedulable",
            Code::UnschedulableAndUnresolvable => "UnschedulableAndUnresolvable",
            Code::Wait => "Wait",
            Code::Skip => "Skip",
            Code::Pending => "Pending",
        }
    }
}

/// A plugin's verdict: a code, the human-readable reasons, and the plugin that said it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    code: Code,
    reasons: Vec<Cow<'static, str>>,
    plugin: &'static str,
}

impl Status {
    /// `Success` with no reasons; allocates nothing.
    pub const fn success() -> Status {
        Status {
            code: Code::Success,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    /// `Skip` with no reasons.
    pub const fn skip() -> Status {
        Status {
            code: Code::Skip,
            reasons: Vec::new(),
            plugin: "",
        }
    }

    /// A status with one reason.
    pub fn new(code: Code, reason: impl Into<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons: vec![reason.into()],
            plugin: "",
        }
    }

    /// A status with several reasons; each counts separately in a `FitError`.
    pub fn with_reasons(code: Code, reasons: Vec<Cow<'static, str>>) -> Status {
        Status {
            code,
            reasons,
            plugin: "",
        }
    }

    /// An `Error` status (upstream's `AsStatus`).
    pub fn error(message: impl Into<Cow<'static, str>>) -> Status {
        Status::new(Code::Error, message)
    }

    /// Records which plugin produced this status (the framework does this).
    pub fn with_plugin(mut self, plugin: &'static str) -> Status {
        self.plugin = plugin;
        self
    }

    pub fn code(&self) -> Code {
        self.code
    }

    pub fn reasons(&self) -> &[Cow<'static, str>] {
        &self.reasons
    }

    /// The plugin that produced this status, `""` when not recorded.
    pub fn plugin(&self) -> &'static str {
        self.plugin
    }

    /// The reasons joined by `", "` (upstream's `Status.Message`).
    pub fn message(&self) -> String {
        self.reasons.join(", ")
    }

    pub fn is_success(&self) -> bool {
        self.code == Code::Success
    }

    pub fn is_skip(&self) -> bool {
        self.code == Code::Skip
    }

    /// `Unschedulable`, `UnschedulableAndUnresolvable` or `Pending` (upstream's
    /// `IsRejected`): the pod was turned away, as opposed to an internal error.
    pub fn is_rejected(&self) -> bool {
        matches!(
            self.code,
            Code::Unschedulable | Code::UnschedulableAndUnresolvable | Code::Pending
        )
    }
}

impl Default for Status {
    fn default() -> Status {
        Status::success()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code.as_str())?;
        if !self.plugin.is_empty() {
            write!(f, " from {}", self.plugin)?;
        }
        if !self.reasons.is_empty() {
            write!(f, ": {}", self.message())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_joins_reasons_like_upstream() {
        let s = Status::with_reasons(
            Code::Unschedulable,
            vec!["Insufficient cpu".into(), "Insufficient memory".into()],
        );
        assert_eq!(s.message(), "Insufficient cpu, Insufficient memory");
        assert!(s.is_rejected());
        assert!(!Status::success().is_rejected());
        assert_eq!(
            s.with_plugin("NodeResourcesFit").to_string(),
            "Unschedulable from NodeResourcesFit: Insufficient cpu, Insufficient memory"
        );
    }
}
