//! The message schemas: field numbers, JSON names and types, in a compact table.
//!
//! Transcribed from upstream's `generated.proto` files (kubernetes/api `core/v1`,
//! `apps/v1`, `discovery/v1`, `events/v1`, `coordination/v1`, `scheduling/v1`,
//! `policy/v1`, `autoscaling/v1`; kubernetes/apimachinery `pkg/apis/meta/v1`), plus
//! what the protos cannot say: whether a Go field is a non-pointer with `omitempty`.
//!
//! One message per line (`#` starts a comment line): `Name = <num> <jsonName> <type>; ...`. Types:
//! - scalars `s` (string), `b` (bool), `i32`, `i64`, `f64` (double), `y` (bytes,
//!   base64 in JSON);
//! - the special messages `Time`, `MicroTime`, `Quantity`, `IntOrString`, `FieldsV1`,
//!   `RawExtension`, whose JSON form is not an object (see the parent module);
//! - any other word names a message of this table;
//! - `[T]` is a repeated field, `{T}` a map from string to `T`.
//!
//! Suffixes: `~` on an int or bool drops a zero value when decoding (a Go non-pointer
//! with `omitempty`, which Go's marshaller writes even when zero); strings drop `""`
//! unless marked `!` (a Go field without `omitempty`, or a pointer: upstream writes a
//! pointer only when set, so its `""`, as in `storageClassName: ""`, is data); `^` on
//! a message field (named `-`) inlines its fields into the parent's
//! JSON object (Go's `json:",inline"` embedding).
//!
//! Message names are upstream's, prefixed by the group where two packages share one
//! (`events.Event`, `discovery.EndpointPort`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// A scalar protobuf type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scalar {
    Str,
    Bool,
    I32,
    I64,
    F64,
    Bytes,
}

/// A message whose JSON form is not an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Special {
    /// meta/v1 Time {int64 seconds = 1; int32 nanos = 2}: RFC 3339 seconds, or null.
    Time,
    /// meta/v1 MicroTime: RFC 3339 with six fractional digits, or null.
    MicroTime,
    /// resource.Quantity {string string = 1}: a bare JSON string.
    Quantity,
    /// intstr.IntOrString {int64 type = 1; int32 intVal = 2; string strVal = 3}.
    IntOrString,
    /// meta/v1 FieldsV1 {bytes Raw = 1}: embedded JSON.
    FieldsV1,
    /// runtime.RawExtension {bytes raw = 1}: embedded JSON.
    RawExtension,
}

/// The type of one value of a field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ty {
    Scalar(Scalar),
    Special(Special),
    Message(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Card {
    One,
    Repeated,
    /// `map<string, T>`: repeated entry messages {key = 1; value = 2}.
    Map,
}

#[derive(Debug)]
pub(super) struct Field {
    pub(super) num: u32,
    /// The JSON name; `-` for an inlined message.
    pub(super) name: &'static str,
    pub(super) ty: Ty,
    pub(super) card: Card,
    /// Decoding drops this field's zero value (Go non-pointer with `omitempty`).
    pub(super) omit_zero: bool,
    pub(super) inline: bool,
}

#[derive(Debug)]
pub(super) struct Message {
    pub(super) name: &'static str,
    pub(super) fields: Vec<Field>,
}

impl Message {
    pub(super) fn field_by_num(&self, num: u32) -> Option<&Field> {
        self.fields.iter().find(|f| f.num == num)
    }
}

/// The parsed schema, keyed by message name.
pub(super) fn messages() -> &'static HashMap<&'static str, Message> {
    static MESSAGES: OnceLock<HashMap<&'static str, Message>> = OnceLock::new();
    MESSAGES
        .get_or_init(|| parse(SCHEMA).unwrap_or_else(|err| panic!("protobuf schema table: {err}")))
}

fn parse(text: &'static str) -> Result<HashMap<&'static str, Message>, String> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (name, body) = line
            .split_once(" = ")
            .ok_or_else(|| format!("no ' = ' in {line:?}"))?;
        let mut fields: Vec<Field> = Vec::new();
        for spec in body.split(';').map(str::trim) {
            let field = parse_field(spec).map_err(|err| format!("{name}: {err}"))?;
            if fields
                .iter()
                .any(|f| f.num == field.num || (f.name == field.name && !f.inline))
            {
                return Err(format!("{name}: duplicate field {spec:?}"));
            }
            fields.push(field);
        }
        fields.sort_by_key(|f| f.num);
        if out.insert(name, Message { name, fields }).is_some() {
            return Err(format!("duplicate message {name}"));
        }
    }
    Ok(out)
}

fn parse_field(spec: &'static str) -> Result<Field, String> {
    let mut parts = spec.split_whitespace();
    let (Some(num), Some(name), Some(ty), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(format!("field {spec:?} is not `num name type`"));
    };
    let num: u32 = num
        .parse()
        .map_err(|_| format!("bad field number in {spec:?}"))?;
    let (ty, flags) = ty.split_at(ty.find(['!', '~', '^']).unwrap_or(ty.len()));
    let (card, inner) = if let Some(inner) = ty.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
    {
        (Card::Repeated, inner)
    } else if let Some(inner) = ty.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
        (Card::Map, inner)
    } else {
        (Card::One, ty)
    };
    let ty = match inner {
        "s" => Ty::Scalar(Scalar::Str),
        "b" => Ty::Scalar(Scalar::Bool),
        "i32" => Ty::Scalar(Scalar::I32),
        "i64" => Ty::Scalar(Scalar::I64),
        "f64" => Ty::Scalar(Scalar::F64),
        "y" => Ty::Scalar(Scalar::Bytes),
        "Time" => Ty::Special(Special::Time),
        "MicroTime" => Ty::Special(Special::MicroTime),
        "Quantity" => Ty::Special(Special::Quantity),
        "IntOrString" => Ty::Special(Special::IntOrString),
        "FieldsV1" => Ty::Special(Special::FieldsV1),
        "RawExtension" => Ty::Special(Special::RawExtension),
        other if other.starts_with(|c: char| c.is_ascii_alphabetic()) => Ty::Message(other),
        other => return Err(format!("bad type {other:?}")),
    };
    let inline = flags.contains('^');
    let keep = flags.contains('!');
    let omit = flags.contains('~');
    let scalar = match ty {
        Ty::Scalar(s) => Some(s),
        _ => None,
    };
    if inline != (name == "-") || (inline && (card != Card::One || !matches!(ty, Ty::Message(_)))) {
        return Err(format!(
            "{spec:?}: only a single message field named `-` may be inlined"
        ));
    }
    if (keep || omit) && (card != Card::One || scalar.is_none()) {
        return Err(format!(
            "{spec:?}: `!` and `~` apply to single scalars only"
        ));
    }
    if (omit && scalar == Some(Scalar::Str)) || (keep && scalar != Some(Scalar::Str)) {
        return Err(format!(
            "{spec:?}: strings take `!`, ints and bools take `~`"
        ));
    }
    let omit_zero = omit || (scalar == Some(Scalar::Str) && card == Card::One && !keep);
    Ok(Field {
        num,
        name,
        ty,
        card,
        omit_zero,
        inline,
    })
}

const SCHEMA: &str = r#"
# meta/v1
ObjectMeta = 1 name s; 2 generateName s; 3 namespace s; 4 selfLink s; 5 uid s; 6 resourceVersion s; 7 generation i64~; 8 creationTimestamp Time; 9 deletionTimestamp Time; 10 deletionGracePeriodSeconds i64; 11 labels {s}; 12 annotations {s}; 13 ownerReferences [OwnerReference]; 14 finalizers [s]; 17 managedFields [ManagedFieldsEntry]
OwnerReference = 5 apiVersion s!; 1 kind s!; 3 name s!; 4 uid s!; 6 controller b; 7 blockOwnerDeletion b
ManagedFieldsEntry = 1 manager s; 2 operation s; 3 apiVersion s; 4 time Time; 6 fieldsType s; 7 fieldsV1 FieldsV1; 8 subresource s
LabelSelector = 1 matchLabels {s}; 2 matchExpressions [LabelSelectorRequirement]
LabelSelectorRequirement = 1 key s!; 2 operator s!; 3 values [s]
Condition = 1 type s!; 2 status s!; 3 observedGeneration i64~; 4 lastTransitionTime Time; 5 reason s!; 6 message s!
DeleteOptions = 1 gracePeriodSeconds i64; 2 preconditions Preconditions; 3 orphanDependents b; 4 propagationPolicy s!; 5 dryRun [s]; 6 ignoreStoreReadErrorWithClusterBreakingPotential b
Preconditions = 1 uid s!; 2 resourceVersion s!
# core/v1
AWSElasticBlockStoreVolumeSource = 1 volumeID s!; 2 fsType s; 3 partition i32~; 4 readOnly b~
Affinity = 1 nodeAffinity NodeAffinity; 2 podAffinity PodAffinity; 3 podAntiAffinity PodAntiAffinity
AppArmorProfile = 1 type s!; 2 localhostProfile s!
AttachedVolume = 1 name s!; 2 devicePath s!
AzureDiskVolumeSource = 1 diskName s!; 2 diskURI s!; 3 cachingMode s!; 4 fsType s!; 5 readOnly b; 6 kind s!
AzureFileVolumeSource = 1 secretName s!; 2 shareName s!; 3 readOnly b~
Binding = 1 metadata ObjectMeta; 2 target ObjectReference
CSIVolumeSource = 1 driver s!; 2 readOnly b; 3 fsType s!; 4 volumeAttributes {s}; 5 nodePublishSecretRef LocalObjectReference
Capabilities = 1 add [s]; 2 drop [s]
CephFSVolumeSource = 1 monitors [s]; 2 path s; 3 user s; 4 secretFile s; 5 secretRef LocalObjectReference; 6 readOnly b~
CinderVolumeSource = 1 volumeID s!; 2 fsType s; 3 readOnly b~; 4 secretRef LocalObjectReference
ClientIPConfig = 1 timeoutSeconds i32
ClusterTrustBundleProjection = 1 name s!; 2 signerName s!; 3 labelSelector LabelSelector; 5 optional b; 4 path s!
ConfigMap = 1 metadata ObjectMeta; 4 immutable b; 2 data {s}; 3 binaryData {y}
ConfigMapEnvSource = 1 - LocalObjectReference^; 2 optional b
ConfigMapKeySelector = 1 - LocalObjectReference^; 2 key s!; 3 optional b
ConfigMapProjection = 1 - LocalObjectReference^; 2 items [KeyToPath]; 4 optional b
ConfigMapVolumeSource = 1 - LocalObjectReference^; 2 items [KeyToPath]; 3 defaultMode i32; 4 optional b
Container = 1 name s!; 2 image s; 3 command [s]; 4 args [s]; 5 workingDir s; 6 ports [ContainerPort]; 19 envFrom [EnvFromSource]; 7 env [EnvVar]; 8 resources ResourceRequirements; 23 resizePolicy [ContainerResizePolicy]; 24 restartPolicy s!; 25 restartPolicyRules [ContainerRestartRule]; 9 volumeMounts [VolumeMount]; 21 volumeDevices [VolumeDevice]; 10 livenessProbe Probe; 11 readinessProbe Probe; 22 startupProbe Probe; 12 lifecycle Lifecycle; 13 terminationMessagePath s; 20 terminationMessagePolicy s; 14 imagePullPolicy s; 15 securityContext SecurityContext; 16 stdin b~; 17 stdinOnce b~; 18 tty b~
ContainerExtendedResourceRequest = 1 containerName s!; 2 resourceName s!; 3 requestName s!
ContainerImage = 1 names [s]; 2 sizeBytes i64~
ContainerPort = 1 name s; 2 hostPort i32~; 3 containerPort i32; 4 protocol s; 5 hostIP s
ContainerResizePolicy = 1 resourceName s!; 2 restartPolicy s!
ContainerRestartRule = 1 action s!; 2 exitCodes ContainerRestartRuleOnExitCodes
ContainerRestartRuleOnExitCodes = 1 operator s!; 2 values [i32]
ContainerState = 1 waiting ContainerStateWaiting; 2 running ContainerStateRunning; 3 terminated ContainerStateTerminated
ContainerStateRunning = 1 startedAt Time
ContainerStateTerminated = 1 exitCode i32; 2 signal i32~; 3 reason s; 4 message s; 5 startedAt Time; 6 finishedAt Time; 7 containerID s
ContainerStateWaiting = 1 reason s; 2 message s
ContainerStatus = 1 name s!; 2 state ContainerState; 3 lastState ContainerState; 4 ready b; 5 restartCount i32; 6 image s!; 7 imageID s!; 8 containerID s; 9 started b; 10 allocatedResources {Quantity}; 11 resources ResourceRequirements; 12 volumeMounts [VolumeMountStatus]; 13 user ContainerUser; 14 allocatedResourcesStatus [ResourceStatus]; 15 stopSignal s!
ContainerUser = 1 linux LinuxContainerUser
DaemonEndpoint = 1 Port i32
DownwardAPIProjection = 1 items [DownwardAPIVolumeFile]
DownwardAPIVolumeFile = 1 path s!; 2 fieldRef ObjectFieldSelector; 3 resourceFieldRef ResourceFieldSelector; 4 mode i32
DownwardAPIVolumeSource = 1 items [DownwardAPIVolumeFile]; 2 defaultMode i32
EmptyDirVolumeSource = 1 medium s; 2 sizeLimit Quantity
EndpointAddress = 1 ip s!; 3 hostname s; 4 nodeName s; 2 targetRef ObjectReference
EndpointPort = 1 name s; 2 port i32; 3 protocol s; 4 appProtocol s!
EndpointSubset = 1 addresses [EndpointAddress]; 2 notReadyAddresses [EndpointAddress]; 3 ports [EndpointPort]
Endpoints = 1 metadata ObjectMeta; 2 subsets [EndpointSubset]
EnvFromSource = 1 prefix s; 2 configMapRef ConfigMapEnvSource; 3 secretRef SecretEnvSource
EnvVar = 1 name s!; 2 value s; 3 valueFrom EnvVarSource
EnvVarSource = 1 fieldRef ObjectFieldSelector; 2 resourceFieldRef ResourceFieldSelector; 3 configMapKeyRef ConfigMapKeySelector; 4 secretKeyRef SecretKeySelector; 5 fileKeyRef FileKeySelector
EphemeralContainer = 1 - EphemeralContainerCommon^; 2 targetContainerName s
EphemeralContainerCommon = 1 name s!; 2 image s; 3 command [s]; 4 args [s]; 5 workingDir s; 6 ports [ContainerPort]; 19 envFrom [EnvFromSource]; 7 env [EnvVar]; 8 resources ResourceRequirements; 23 resizePolicy [ContainerResizePolicy]; 24 restartPolicy s!; 25 restartPolicyRules [ContainerRestartRule]; 9 volumeMounts [VolumeMount]; 21 volumeDevices [VolumeDevice]; 10 livenessProbe Probe; 11 readinessProbe Probe; 22 startupProbe Probe; 12 lifecycle Lifecycle; 13 terminationMessagePath s; 20 terminationMessagePolicy s; 14 imagePullPolicy s; 15 securityContext SecurityContext; 16 stdin b~; 17 stdinOnce b~; 18 tty b~
EphemeralVolumeSource = 1 volumeClaimTemplate PersistentVolumeClaimTemplate
Event = 1 metadata ObjectMeta; 2 involvedObject ObjectReference; 3 reason s; 4 message s; 5 source EventSource; 6 firstTimestamp Time; 7 lastTimestamp Time; 8 count i32~; 9 type s; 10 eventTime MicroTime; 11 series EventSeries; 12 action s; 13 related ObjectReference; 14 reportingComponent s!; 15 reportingInstance s!
EventSeries = 1 count i32~; 2 lastObservedTime MicroTime
EventSource = 1 component s; 2 host s
ExecAction = 1 command [s]
FCVolumeSource = 1 targetWWNs [s]; 2 lun i32; 3 fsType s; 4 readOnly b~; 5 wwids [s]
FileKeySelector = 1 volumeName s!; 2 path s!; 3 key s!; 4 optional b
FlexVolumeSource = 1 driver s!; 2 fsType s; 3 secretRef LocalObjectReference; 4 readOnly b~; 5 options {s}
FlockerVolumeSource = 1 datasetName s; 2 datasetUUID s
GCEPersistentDiskVolumeSource = 1 pdName s!; 2 fsType s; 3 partition i32~; 4 readOnly b~
GRPCAction = 1 port i32; 2 service s!
GitRepoVolumeSource = 1 repository s!; 2 revision s; 3 directory s
GlusterfsVolumeSource = 1 endpoints s!; 2 path s!; 3 readOnly b~
HTTPGetAction = 1 path s; 2 port IntOrString; 3 host s; 4 scheme s; 5 httpHeaders [HTTPHeader]
HTTPHeader = 1 name s!; 2 value s!
HostAlias = 1 ip s!; 2 hostnames [s]
HostIP = 1 ip s!
HostPathVolumeSource = 1 path s!; 2 type s!
ISCSIVolumeSource = 1 targetPortal s!; 2 iqn s!; 3 lun i32; 4 iscsiInterface s; 5 fsType s; 6 readOnly b~; 7 portals [s]; 8 chapAuthDiscovery b~; 11 chapAuthSession b~; 10 secretRef LocalObjectReference; 12 initiatorName s!
ImageVolumeSource = 1 reference s; 2 pullPolicy s
ImageVolumeStatus = 1 imageRef s!
KeyToPath = 1 key s!; 2 path s!; 3 mode i32
Lifecycle = 1 postStart LifecycleHandler; 2 preStop LifecycleHandler; 3 stopSignal s!
LifecycleHandler = 1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; 4 sleep SleepAction
LinuxContainerUser = 1 uid i64; 2 gid i64; 3 supplementalGroups [i64]
LoadBalancerIngress = 1 ip s; 2 hostname s; 3 ipMode s!; 4 ports [PortStatus]
LoadBalancerStatus = 1 ingress [LoadBalancerIngress]
LocalObjectReference = 1 name s
ModifyVolumeStatus = 1 targetVolumeAttributesClassName s; 2 status s!
NFSVolumeSource = 1 server s!; 2 path s!; 3 readOnly b~
Namespace = 1 metadata ObjectMeta; 2 spec NamespaceSpec; 3 status NamespaceStatus
NamespaceCondition = 1 type s!; 2 status s!; 4 lastTransitionTime Time; 5 reason s; 6 message s
NamespaceSpec = 1 finalizers [s]
NamespaceStatus = 1 phase s; 2 conditions [NamespaceCondition]
Node = 1 metadata ObjectMeta; 2 spec NodeSpec; 3 status NodeStatus
NodeAddress = 1 type s!; 2 address s!
NodeAffinity = 1 requiredDuringSchedulingIgnoredDuringExecution NodeSelector; 2 preferredDuringSchedulingIgnoredDuringExecution [PreferredSchedulingTerm]
NodeCondition = 1 type s!; 2 status s!; 3 lastHeartbeatTime Time; 4 lastTransitionTime Time; 5 reason s; 6 message s
NodeConfigSource = 2 configMap ConfigMapNodeConfigSource
ConfigMapNodeConfigSource = 1 namespace s!; 2 name s!; 3 uid s; 4 resourceVersion s; 5 kubeletConfigKey s!
NodeConfigStatus = 1 assigned NodeConfigSource; 2 active NodeConfigSource; 3 lastKnownGood NodeConfigSource; 4 error s
NodeDaemonEndpoints = 1 kubeletEndpoint DaemonEndpoint
NodeFeatures = 1 supplementalGroupsPolicy b; 2 containerUlimits b
NodeRuntimeHandler = 1 name s!; 2 features NodeRuntimeHandlerFeatures
NodeRuntimeHandlerFeatures = 1 recursiveReadOnlyMounts b; 2 userNamespaces b
NodeSelector = 1 nodeSelectorTerms [NodeSelectorTerm]
NodeSelectorRequirement = 1 key s!; 2 operator s!; 3 values [s]
NodeSelectorTerm = 1 matchExpressions [NodeSelectorRequirement]; 2 matchFields [NodeSelectorRequirement]
NodeSpec = 1 podCIDR s; 7 podCIDRs [s]; 3 providerID s; 4 unschedulable b~; 5 taints [Taint]; 6 configSource NodeConfigSource; 2 externalID s
NodeStatus = 1 capacity {Quantity}; 2 allocatable {Quantity}; 3 phase s; 4 conditions [NodeCondition]; 5 addresses [NodeAddress]; 6 daemonEndpoints NodeDaemonEndpoints; 7 nodeInfo NodeSystemInfo; 8 images [ContainerImage]; 9 volumesInUse [s]; 10 volumesAttached [AttachedVolume]; 11 config NodeConfigStatus; 12 runtimeHandlers [NodeRuntimeHandler]; 13 features NodeFeatures; 14 declaredFeatures [s]
NodeSwapStatus = 1 capacity i64
NodeSystemInfo = 1 machineID s!; 2 systemUUID s!; 3 bootID s!; 4 kernelVersion s!; 5 osImage s!; 6 containerRuntimeVersion s!; 7 kubeletVersion s!; 8 kubeProxyVersion s!; 9 operatingSystem s!; 10 architecture s!; 11 swap NodeSwapStatus
ObjectFieldSelector = 1 apiVersion s; 2 fieldPath s!
ObjectReference = 1 kind s; 2 namespace s; 3 name s; 4 uid s; 5 apiVersion s; 6 resourceVersion s; 7 fieldPath s
PersistentVolumeClaimSpec = 1 accessModes [s]; 4 selector LabelSelector; 2 resources VolumeResourceRequirements; 3 volumeName s; 5 storageClassName s!; 6 volumeMode s!; 7 dataSource TypedLocalObjectReference; 8 dataSourceRef TypedObjectReference; 9 volumeAttributesClassName s!
PersistentVolumeClaimTemplate = 1 metadata ObjectMeta; 2 spec PersistentVolumeClaimSpec
PersistentVolumeClaimVolumeSource = 1 claimName s!; 2 readOnly b~
PhotonPersistentDiskVolumeSource = 1 pdID s!; 2 fsType s
Pod = 1 metadata ObjectMeta; 2 spec PodSpec; 3 status PodStatus
PodAffinity = 1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]; 2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]
PodAffinityTerm = 1 labelSelector LabelSelector; 2 namespaces [s]; 3 topologyKey s!; 4 namespaceSelector LabelSelector; 5 matchLabelKeys [s]; 6 mismatchLabelKeys [s]
PodAntiAffinity = 1 requiredDuringSchedulingIgnoredDuringExecution [PodAffinityTerm]; 2 preferredDuringSchedulingIgnoredDuringExecution [WeightedPodAffinityTerm]
PodCertificateProjection = 1 signerName s; 2 keyType s; 3 maxExpirationSeconds i32; 4 credentialBundlePath s; 5 keyPath s; 6 certificateChainPath s; 7 userAnnotations {s}
PodCondition = 1 type s!; 7 observedGeneration i64~; 2 status s!; 3 lastProbeTime Time; 4 lastTransitionTime Time; 5 reason s; 6 message s
PodDNSConfig = 1 nameservers [s]; 2 searches [s]; 3 options [PodDNSConfigOption]
PodDNSConfigOption = 1 name s; 2 value s
PodExtendedResourceClaimStatus = 1 requestMappings [ContainerExtendedResourceRequest]; 2 resourceClaimName s!
PodIP = 1 ip s!
PodOS = 1 name s!
PodReadinessGate = 1 conditionType s!
PodResourceClaim = 1 name s!; 3 resourceClaimName s!; 4 resourceClaimTemplateName s!
PodResourceClaimStatus = 1 name s!; 2 resourceClaimName s!
PodSchedulingGate = 1 name s!
PodSecurityContext = 1 seLinuxOptions SELinuxOptions; 8 windowsOptions WindowsSecurityContextOptions; 2 runAsUser i64; 6 runAsGroup i64; 3 runAsNonRoot b; 4 supplementalGroups [i64]; 12 supplementalGroupsPolicy s!; 5 fsGroup i64; 7 sysctls [Sysctl]; 9 fsGroupChangePolicy s!; 10 seccompProfile SeccompProfile; 11 appArmorProfile AppArmorProfile; 13 seLinuxChangePolicy s!
PodSpec = 1 volumes [Volume]; 20 initContainers [Container]; 2 containers [Container]; 34 ephemeralContainers [EphemeralContainer]; 3 restartPolicy s; 4 terminationGracePeriodSeconds i64; 5 activeDeadlineSeconds i64; 6 dnsPolicy s; 7 nodeSelector {s}; 8 serviceAccountName s; 9 serviceAccount s; 21 automountServiceAccountToken b; 10 nodeName s; 11 hostNetwork b~; 12 hostPID b~; 13 hostIPC b~; 27 shareProcessNamespace b; 14 securityContext PodSecurityContext; 15 imagePullSecrets [LocalObjectReference]; 16 hostname s; 17 subdomain s; 18 affinity Affinity; 19 schedulerName s; 22 tolerations [Toleration]; 23 hostAliases [HostAlias]; 24 priorityClassName s; 25 priority i32; 26 dnsConfig PodDNSConfig; 28 readinessGates [PodReadinessGate]; 29 runtimeClassName s!; 30 enableServiceLinks b; 31 preemptionPolicy s!; 32 overhead {Quantity}; 33 topologySpreadConstraints [TopologySpreadConstraint]; 35 setHostnameAsFQDN b; 36 os PodOS; 37 hostUsers b; 38 schedulingGates [PodSchedulingGate]; 39 resourceClaims [PodResourceClaim]; 40 resources ResourceRequirements; 41 hostnameOverride s!; 42 workloadRef WorkloadReference
PodStatus = 17 observedGeneration i64~; 1 phase s; 2 conditions [PodCondition]; 3 message s; 4 reason s; 11 nominatedNodeName s; 5 hostIP s; 16 hostIPs [HostIP]; 6 podIP s; 12 podIPs [PodIP]; 7 startTime Time; 10 initContainerStatuses [ContainerStatus]; 8 containerStatuses [ContainerStatus]; 9 qosClass s; 13 ephemeralContainerStatuses [ContainerStatus]; 14 resize s; 15 resourceClaimStatuses [PodResourceClaimStatus]; 18 extendedResourceClaimStatus PodExtendedResourceClaimStatus; 19 allocatedResources {Quantity}; 20 resources ResourceRequirements
PodTemplateSpec = 1 metadata ObjectMeta; 2 spec PodSpec
PortStatus = 1 port i32; 2 protocol s!; 3 error s!
PortworxVolumeSource = 1 volumeID s!; 2 fsType s; 3 readOnly b~
PreferredSchedulingTerm = 1 weight i32; 2 preference NodeSelectorTerm
Probe = 1 - ProbeHandler^; 2 initialDelaySeconds i32~; 3 timeoutSeconds i32~; 4 periodSeconds i32~; 5 successThreshold i32~; 6 failureThreshold i32~; 7 terminationGracePeriodSeconds i64
ProbeHandler = 1 exec ExecAction; 2 httpGet HTTPGetAction; 3 tcpSocket TCPSocketAction; 4 grpc GRPCAction
ProjectedVolumeSource = 1 sources [VolumeProjection]; 2 defaultMode i32
QuobyteVolumeSource = 1 registry s!; 2 volume s!; 3 readOnly b~; 4 user s; 5 group s; 6 tenant s
RBDVolumeSource = 1 monitors [s]; 2 image s!; 3 fsType s; 4 pool s; 5 user s; 6 keyring s; 7 secretRef LocalObjectReference; 8 readOnly b~
ResourceClaim = 1 name s!; 2 request s
ResourceFieldSelector = 1 containerName s; 2 resource s!; 3 divisor Quantity
ResourceHealth = 1 resourceID s!; 2 health s; 6 message s!
ResourceRequirements = 1 limits {Quantity}; 2 requests {Quantity}; 3 claims [ResourceClaim]
ResourceStatus = 1 name s!; 2 resources [ResourceHealth]
SELinuxOptions = 1 user s; 2 role s; 3 type s; 4 level s
ScaleIOVolumeSource = 1 gateway s!; 2 system s!; 3 secretRef LocalObjectReference; 4 sslEnabled b~; 5 protectionDomain s; 6 storagePool s; 7 storageMode s; 8 volumeName s; 9 fsType s; 10 readOnly b~
SeccompProfile = 1 type s!; 2 localhostProfile s!
Secret = 1 metadata ObjectMeta; 5 immutable b; 2 data {y}; 4 stringData {s}; 3 type s
SecretEnvSource = 1 - LocalObjectReference^; 2 optional b
SecretKeySelector = 1 - LocalObjectReference^; 2 key s!; 3 optional b
SecretProjection = 1 - LocalObjectReference^; 2 items [KeyToPath]; 4 optional b
SecretReference = 1 name s; 2 namespace s
SecretVolumeSource = 1 secretName s; 2 items [KeyToPath]; 3 defaultMode i32; 4 optional b
SecurityContext = 1 capabilities Capabilities; 2 privileged b; 3 seLinuxOptions SELinuxOptions; 10 windowsOptions WindowsSecurityContextOptions; 4 runAsUser i64; 8 runAsGroup i64; 5 runAsNonRoot b; 6 readOnlyRootFilesystem b; 7 allowPrivilegeEscalation b; 9 procMount s!; 11 seccompProfile SeccompProfile; 12 appArmorProfile AppArmorProfile; 13 ulimits [Ulimit]
Service = 1 metadata ObjectMeta; 2 spec ServiceSpec; 3 status ServiceStatus
ServiceAccountTokenProjection = 1 audience s; 2 expirationSeconds i64; 3 path s!
ServicePort = 1 name s; 2 protocol s; 6 appProtocol s!; 3 port i32; 4 targetPort IntOrString; 5 nodePort i32~
ServiceSpec = 1 ports [ServicePort]; 2 selector {s}; 3 clusterIP s; 18 clusterIPs [s]; 4 type s; 5 externalIPs [s]; 7 sessionAffinity s; 8 loadBalancerIP s; 9 loadBalancerSourceRanges [s]; 10 externalName s; 11 externalTrafficPolicy s; 12 healthCheckNodePort i32~; 13 publishNotReadyAddresses b~; 14 sessionAffinityConfig SessionAffinityConfig; 19 ipFamilies [s]; 17 ipFamilyPolicy s!; 20 allocateLoadBalancerNodePorts b; 21 loadBalancerClass s!; 22 internalTrafficPolicy s!; 23 trafficDistribution s!
ServiceStatus = 1 loadBalancer LoadBalancerStatus; 2 conditions [Condition]
SessionAffinityConfig = 1 clientIP ClientIPConfig
SleepAction = 1 seconds i64
StorageOSVolumeSource = 1 volumeName s; 2 volumeNamespace s; 3 fsType s; 4 readOnly b~; 5 secretRef LocalObjectReference
Sysctl = 1 name s!; 2 value s!
TCPSocketAction = 1 port IntOrString; 2 host s
Taint = 1 key s!; 2 value s; 3 effect s!; 4 timeAdded Time
Toleration = 1 key s; 2 operator s; 3 value s; 4 effect s; 5 tolerationSeconds i64
TopologySpreadConstraint = 1 maxSkew i32; 2 topologyKey s!; 3 whenUnsatisfiable s!; 4 labelSelector LabelSelector; 5 minDomains i32; 6 nodeAffinityPolicy s!; 7 nodeTaintsPolicy s!; 8 matchLabelKeys [s]
TypedLocalObjectReference = 1 apiGroup s!; 2 kind s!; 3 name s!
TypedObjectReference = 1 apiGroup s!; 2 kind s!; 3 name s!; 4 namespace s!
Ulimit = 1 name s!; 2 hard i64; 3 soft i64
Volume = 1 name s!; 2 - VolumeSource^
VolumeDevice = 1 name s!; 2 devicePath s!
VolumeMount = 1 name s!; 2 readOnly b~; 7 recursiveReadOnly s!; 3 mountPath s!; 4 subPath s; 5 mountPropagation s; 6 subPathExpr s
VolumeMountStatus = 1 name s!; 2 mountPath s!; 3 readOnly b~; 4 recursiveReadOnly s!; 5 volumeStatus VolumeStatus
VolumeProjection = 1 secret SecretProjection; 2 downwardAPI DownwardAPIProjection; 3 configMap ConfigMapProjection; 4 serviceAccountToken ServiceAccountTokenProjection; 5 clusterTrustBundle ClusterTrustBundleProjection; 6 podCertificate PodCertificateProjection
VolumeResourceRequirements = 1 limits {Quantity}; 2 requests {Quantity}
VolumeSource = 1 hostPath HostPathVolumeSource; 2 emptyDir EmptyDirVolumeSource; 3 gcePersistentDisk GCEPersistentDiskVolumeSource; 4 awsElasticBlockStore AWSElasticBlockStoreVolumeSource; 5 gitRepo GitRepoVolumeSource; 6 secret SecretVolumeSource; 7 nfs NFSVolumeSource; 8 iscsi ISCSIVolumeSource; 9 glusterfs GlusterfsVolumeSource; 10 persistentVolumeClaim PersistentVolumeClaimVolumeSource; 11 rbd RBDVolumeSource; 12 flexVolume FlexVolumeSource; 13 cinder CinderVolumeSource; 14 cephfs CephFSVolumeSource; 15 flocker FlockerVolumeSource; 16 downwardAPI DownwardAPIVolumeSource; 17 fc FCVolumeSource; 18 azureFile AzureFileVolumeSource; 19 configMap ConfigMapVolumeSource; 20 vsphereVolume VsphereVirtualDiskVolumeSource; 21 quobyte QuobyteVolumeSource; 22 azureDisk AzureDiskVolumeSource; 23 photonPersistentDisk PhotonPersistentDiskVolumeSource; 26 projected ProjectedVolumeSource; 24 portworxVolume PortworxVolumeSource; 25 scaleIO ScaleIOVolumeSource; 27 storageos StorageOSVolumeSource; 28 csi CSIVolumeSource; 29 ephemeral EphemeralVolumeSource; 30 image ImageVolumeSource
VolumeStatus = 1 image ImageVolumeStatus
VsphereVirtualDiskVolumeSource = 1 volumePath s!; 2 fsType s; 3 storagePolicyName s; 4 storagePolicyID s
WeightedPodAffinityTerm = 1 weight i32; 2 podAffinityTerm PodAffinityTerm
WindowsSecurityContextOptions = 1 gmsaCredentialSpecName s!; 2 gmsaCredentialSpec s!; 3 runAsUserName s!; 4 hostProcess b
WorkloadReference = 1 name s!; 2 podGroup s!; 3 podGroupReplicaKey s
# apps, discovery, events, coordination, scheduling, policy, autoscaling
Deployment = 1 metadata ObjectMeta; 2 spec DeploymentSpec; 3 status DeploymentStatus
DeploymentSpec = 1 replicas i32; 2 selector LabelSelector; 3 template PodTemplateSpec; 4 strategy DeploymentStrategy; 5 minReadySeconds i32~; 6 revisionHistoryLimit i32; 7 paused b~; 9 progressDeadlineSeconds i32; 10 podReplacementPolicy s!
DeploymentStatus = 1 observedGeneration i64~; 2 replicas i32~; 3 updatedReplicas i32~; 7 readyReplicas i32~; 4 availableReplicas i32~; 5 unavailableReplicas i32~; 9 terminatingReplicas i32; 6 conditions [DeploymentCondition]; 8 collisionCount i32
DeploymentCondition = 1 type s!; 2 status s!; 6 lastUpdateTime Time; 7 lastTransitionTime Time; 4 reason s; 5 message s
DeploymentStrategy = 1 type s; 2 rollingUpdate RollingUpdateDeployment
RollingUpdateDeployment = 1 maxUnavailable IntOrString; 2 maxSurge IntOrString
ReplicaSet = 1 metadata ObjectMeta; 2 spec ReplicaSetSpec; 3 status ReplicaSetStatus
ReplicaSetSpec = 1 replicas i32; 4 minReadySeconds i32~; 2 selector LabelSelector; 3 template PodTemplateSpec
ReplicaSetStatus = 1 replicas i32; 2 fullyLabeledReplicas i32~; 4 readyReplicas i32~; 5 availableReplicas i32~; 7 terminatingReplicas i32; 3 observedGeneration i64~; 6 conditions [ReplicaSetCondition]
ReplicaSetCondition = 1 type s!; 2 status s!; 3 lastTransitionTime Time; 4 reason s; 5 message s
EndpointSlice = 1 metadata ObjectMeta; 4 addressType s!; 2 endpoints [Endpoint]; 3 ports [discovery.EndpointPort]
Endpoint = 1 addresses [s]; 2 conditions EndpointConditions; 3 hostname s!; 4 targetRef ObjectReference; 5 deprecatedTopology {s}; 6 nodeName s!; 7 zone s!; 8 hints EndpointHints
EndpointConditions = 1 ready b; 2 serving b; 3 terminating b
EndpointHints = 1 forZones [ForZone]; 2 forNodes [ForNode]
ForZone = 1 name s!
ForNode = 1 name s!
discovery.EndpointPort = 1 name s!; 2 protocol s!; 3 port i32; 4 appProtocol s!
events.Event = 1 metadata ObjectMeta; 2 eventTime MicroTime; 3 series events.EventSeries; 4 reportingController s; 5 reportingInstance s; 6 action s; 7 reason s; 8 regarding ObjectReference; 9 related ObjectReference; 10 note s; 11 type s; 12 deprecatedSource EventSource; 13 deprecatedFirstTimestamp Time; 14 deprecatedLastTimestamp Time; 15 deprecatedCount i32~
events.EventSeries = 1 count i32; 2 lastObservedTime MicroTime
Lease = 1 metadata ObjectMeta; 2 spec LeaseSpec
LeaseSpec = 1 holderIdentity s!; 2 leaseDurationSeconds i32; 3 acquireTime MicroTime; 4 renewTime MicroTime; 5 leaseTransitions i32; 6 strategy s!; 7 preferredHolder s!
PriorityClass = 1 metadata ObjectMeta; 2 value i32; 3 globalDefault b~; 4 description s; 5 preemptionPolicy s!
Eviction = 1 metadata ObjectMeta; 2 deleteOptions DeleteOptions
Scale = 1 metadata ObjectMeta; 2 spec ScaleSpec; 3 status ScaleStatus
ScaleSpec = 1 replicas i32
ScaleStatus = 1 replicas i32; 2 selector s
"#;
