//! DefaultBinder: binds the pod to the chosen node with a `v1.Binding` (upstream
//! defaultbinder/default_binder.go). Here the binding is returned as a decision; the
//! caller POSTs it to `pods/{name}/binding`.

use k8s_openapi::api::core::v1 as corev1;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::framework::{BindPlugin, CycleState, Plugin};
use crate::pod_info::PodInfo;
use crate::status::Status;

pub const NAME: &str = "DefaultBinder";

#[derive(Debug, Default)]
pub struct DefaultBinder;

impl Plugin for DefaultBinder {
    fn name(&self) -> &'static str {
        NAME
    }
}

impl BindPlugin for DefaultBinder {
    fn bind(
        &self,
        _: &mut CycleState,
        pod: &PodInfo,
        node_name: &str,
    ) -> Result<corev1::Binding, Status> {
        Ok(corev1::Binding {
            metadata: ObjectMeta {
                namespace: Some(pod.namespace.clone()),
                name: Some(pod.name.clone()),
                uid: Some(pod.uid.clone()),
                ..ObjectMeta::default()
            },
            target: corev1::ObjectReference {
                kind: Some("Node".to_owned()),
                name: Some(node_name.to_owned()),
                ..corev1::ObjectReference::default()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::PodBuilder;
    use crate::plugins::testutil::pod;

    #[test]
    fn golden() {
        let p = pod(PodBuilder::new("web").build());
        let b = DefaultBinder
            .bind(&mut CycleState::new(), &p, "n7")
            .expect("binding");
        assert_eq!(b.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(b.metadata.name.as_deref(), Some("web"));
        assert_eq!(b.metadata.uid.as_deref(), Some("uid-web"));
        assert_eq!(b.target.kind.as_deref(), Some("Node"));
        assert_eq!(b.target.name.as_deref(), Some("n7"));
    }
}
