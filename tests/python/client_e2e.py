"""The official Kubernetes Python client against a running `bosun up`.

Usage: client_e2e.py KUBECONFIG. Exits non-zero (with a traceback) on any mismatch.
Creates, lists, watches, patches and deletes pods and nodes.
"""
import sys
import threading

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()

# Nodes: create, list with a label selector, patch, delete.
node = client.V1Node(
    metadata=client.V1ObjectMeta(name="py-node", labels={"zone": "a"}),
    status=client.V1NodeStatus(capacity={"cpu": "4", "memory": "8Gi"}),
)
created = v1.create_node(node)
assert created.metadata.uid, created
assert created.status.allocatable["cpu"] == "4", created.status
nodes = v1.list_node(label_selector="zone=a")
assert [n.metadata.name for n in nodes.items] == ["py-node"], nodes
v1.patch_node("py-node", {"metadata": {"labels": {"zone": "b"}}})
assert v1.read_node("py-node").metadata.labels["zone"] == "b"
assert v1.list_node(label_selector="zone=a").items == []

# Pods: watch in the background while another thread writes.
start_rv = v1.list_namespaced_pod("default").metadata.resource_version
events = []
done = threading.Event()


def watcher():
    w = watch.Watch()
    for ev in w.stream(v1.list_namespaced_pod, "default", resource_version=start_rv, timeout_seconds=30):
        events.append((ev["type"], ev["object"].metadata.name, ev["object"].metadata.labels or {}))
        if ev["type"] == "DELETED":
            w.stop()
    done.set()


t = threading.Thread(target=watcher)
t.start()

pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]),
)
created = v1.create_namespaced_pod("default", pod)
assert created.spec.restart_policy == "Always"
assert created.status.phase == "Pending"
try:
    v1.create_namespaced_pod("default", pod)
    raise AssertionError("duplicate create succeeded")
except ApiException as e:
    assert e.status == 409, e
assert [p.metadata.name for p in v1.list_namespaced_pod("default", label_selector="app=py").items] == ["py-pod"]
assert [p.metadata.name for p in v1.list_pod_for_all_namespaces(field_selector="metadata.name=py-pod").items] == ["py-pod"]
patched = v1.patch_namespaced_pod("py-pod", "default", {"metadata": {"labels": {"patched": "yes"}}})
assert patched.metadata.labels == {"app": "py", "patched": "yes"}, patched.metadata.labels
try:
    v1.read_namespaced_pod("nope", "default")
    raise AssertionError("read of a missing pod succeeded")
except ApiException as e:
    assert e.status == 404, e
v1.delete_namespaced_pod("py-pod", "default")
v1.delete_node("py-node")

assert done.wait(30), "watch did not see the delete"
t.join()
types = [(e[0], e[1]) for e in events]
assert types == [("ADDED", "py-pod"), ("MODIFIED", "py-pod"), ("DELETED", "py-pod")], events
assert events[1][2].get("patched") == "yes", events
print("python client: ok")
