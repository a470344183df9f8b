//! Converted objects pass the API server's own create validation (bosun-api, upstream's
//! rules): every loader's and generator's nodes and pods are servable as they are.

use bosun_api::kinds::{ApiKind, validate_create};
use bosun_api::validation::aggregate_message;
use bosun_harness::datasets::Datasets;
use bosun_harness::datasets::dlrm::{self, LoadConfig};
use bosun_harness::datasets::openb::{NodeList, PodList};
use bosun_harness::model::{
    GPU_MILLI_RESOURCE, GPU_RESOURCE, NodeSpec, PodSpec, RDMA_RESOURCE, priority_classes,
};
use bosun_harness::synth::{ClusterShape, PodShape, generate_nodes, generate_pods};

fn check<K: ApiKind>(mut obj: K, what: &str) {
    obj.default_fields();
    let errs = validate_create(&obj);
    assert!(errs.is_empty(), "{what}: {}", aggregate_message(&errs));
}

fn check_nodes(nodes: &[NodeSpec]) {
    for n in nodes {
        check(n.to_k8s(), &n.name);
    }
}

fn check_pods(pods: &[PodSpec]) {
    for p in pods {
        check(p.to_k8s("default"), &p.name);
    }
}

#[test]
fn trace_objects_validate() {
    let data = Datasets::shipped();
    check_nodes(&data.openb_nodes(NodeList::AllNode).unwrap());
    check_pods(&data.openb_pods(PodList::DEFAULT).unwrap());
    check_pods(
        &data
            .openb_pods(PodList::named("gpuspec33").unwrap())
            .unwrap(),
    );
    let dlrm_pods = data.dlrm_pods(LoadConfig::default()).unwrap();
    check_pods(&dlrm_pods[..2000]);
    let pool = dlrm::nodes(&dlrm::DEFAULT_POOLS, 2, 2);
    check_nodes(&pool);
    let hn = pool[3].to_k8s();
    let cap = hn.status.unwrap().capacity.unwrap();
    assert_eq!(
        (cap[GPU_RESOURCE].0.as_str(), cap[RDMA_RESOURCE].0.as_str()),
        ("8", "100")
    );
    let mut pod = dlrm_pods[0].to_k8s("default");
    assert_eq!(pod.metadata.name.as_deref(), Some("instance-0"));
    // The check can fail: the trace's own name is not a valid object name.
    pod.metadata.name = Some(dlrm_pods[0].name.clone());
    assert!(
        !validate_create(&pod).is_empty(),
        "instance_0 must be rejected"
    );
}

#[test]
fn synthetic_objects_validate() {
    check_nodes(&generate_nodes(&ClusterShape::heterogeneous(300), 1).unwrap());
    let pods = generate_pods(&PodShape::mixed(300), 1).unwrap();
    check_pods(&pods);
    let gpu = pods
        .iter()
        .find(|p| p.gpu.milli() > 0)
        .unwrap()
        .to_k8s("default");
    let res = gpu.spec.unwrap().containers[0].resources.clone().unwrap();
    assert!(
        res.limits.unwrap().contains_key(GPU_MILLI_RESOURCE),
        "extended resources carry limits"
    );
    for class in priority_classes() {
        check(class, "priority class");
    }
}
