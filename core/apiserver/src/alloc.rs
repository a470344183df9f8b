//! ClusterIP and NodePort allocation for Services (upstream's service IP and port
//! allocators, kept in memory and rebuilt from storage at start).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::sync::Mutex;

use bosun_api::validation::FieldError;
use serde_json::{Value, json};

use crate::error::ApiError;

/// Where service addresses and node ports come from.
#[derive(Clone, Debug)]
pub struct AllocConfig {
    /// Service CIDR base address and prefix length (upstream default 10.96.0.0/12).
    pub service_cidr: (Ipv4Addr, u8),
    /// NodePort range, inclusive (upstream default 30000-32767).
    pub node_ports: (u16, u16),
}

impl Default for AllocConfig {
    fn default() -> Self {
        AllocConfig {
            service_cidr: (Ipv4Addr::new(10, 96, 0, 0), 12),
            node_ports: (30000, 32767),
        }
    }
}

struct State {
    base: u32,
    /// Number of addresses in the CIDR, network and broadcast included.
    size: u32,
    ips: HashSet<u32>,
    ports: HashSet<u16>,
}

/// The allocators; every operation is atomic under one lock.
pub struct Allocators {
    config: AllocConfig,
    state: Mutex<State>,
}

impl Default for Allocators {
    fn default() -> Self {
        Self::new(AllocConfig::default())
    }
}

fn needs_node_ports(spec: &Value) -> bool {
    matches!(
        spec.get("type").and_then(Value::as_str),
        Some("NodePort" | "LoadBalancer")
    )
}

fn node_ports_of(obj: &Value) -> Vec<u16> {
    obj.pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_u64))
        .filter(|p| *p != 0)
        .map(|p| p as u16)
        .collect()
}

impl Allocators {
    pub fn new(config: AllocConfig) -> Self {
        let (base, prefix) = config.service_cidr;
        let prefix = prefix.clamp(8, 30);
        let size = 1u32 << (32 - prefix);
        let base = u32::from(base) & !(size - 1);
        Allocators {
            config,
            state: Mutex::new(State {
                base,
                size,
                ips: HashSet::new(),
                ports: HashSet::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The first service address, reserved for the `kubernetes` Service.
    pub fn first_ip(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.lock().base + 1)
    }

    fn cidr_string(&self) -> String {
        format!(
            "{}/{}",
            self.config.service_cidr.0, self.config.service_cidr.1
        )
    }

    /// Marks the addresses and ports of stored services as used.
    pub fn rebuild<'a>(&self, services: impl IntoIterator<Item = &'a Value>) {
        let mut st = self.lock();
        for svc in services {
            if let Some(ip) = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
            {
                st.ips.insert(u32::from(ip));
            }
            for p in node_ports_of(svc) {
                st.ports.insert(p);
            }
        }
    }

    /// Allocates the cluster IP and node ports of a new service, in place.
    pub fn allocate_service(
        &self,
        obj: &mut Value,
        _old: Option<&Value>,
        name: &str,
    ) -> Result<(), ApiError> {
        let mut st = self.lock();
        let spec = obj.get("spec").cloned().unwrap_or(Value::Null);
        if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
            return Ok(());
        }
        let invalid = |field: &str, value: &str, detail: String| {
            ApiError::invalid(
                "Service",
                "",
                name,
                &[FieldError::invalid(field, value, &detail)],
            )
        };
        let requested = spec.get("clusterIP").and_then(Value::as_str).unwrap_or("");
        let mut taken_ip = None;
        let ip = if requested == "None" {
            "None".to_string()
        } else if requested.is_empty() {
            let ip = Self::next_ip(&mut st).ok_or_else(|| {
                invalid(
                    "spec.clusterIPs",
                    "",
                    format!(
                        "failed to allocate IP: range {} is full",
                        self.cidr_string()
                    ),
                )
            })?;
            taken_ip = Some(ip);
            Ipv4Addr::from(ip).to_string()
        } else {
            let addr: Ipv4Addr = requested.parse().map_err(|_| {
                invalid(
                    "spec.clusterIPs",
                    requested,
                    "must be a valid IP address".into(),
                )
            })?;
            let n = u32::from(addr);
            if n <= st.base || n >= st.base + st.size - 1 {
                return Err(invalid(
                    "spec.clusterIPs",
                    requested,
                    format!(
                        "failed to allocate IP {requested}: the provided IP ({requested}) is not in the valid range. The range of valid IPs is {}",
                        self.cidr_string()
                    ),
                ));
            }
            if !st.ips.insert(n) {
                return Err(invalid(
                    "spec.clusterIPs",
                    requested,
                    format!("failed to allocate IP {requested}: provided IP is already allocated"),
                ));
            }
            taken_ip = Some(n);
            requested.to_string()
        };
        let mut taken_ports = Vec::new();
        let result = self.allocate_ports(&mut st, obj, None, name, &mut taken_ports);
        if let Err(e) = result {
            if let Some(n) = taken_ip {
                st.ips.remove(&n);
            }
            for p in taken_ports {
                st.ports.remove(&p);
            }
            return Err(e);
        }
        let spec = &mut obj["spec"];
        spec["clusterIP"] = json!(ip);
        spec["clusterIPs"] = json!([ip]);
        spec["ipFamilies"] = json!(["IPv4"]);
        spec["ipFamilyPolicy"] = json!("SingleStack");
        Ok(())
    }

    /// Fills node ports: kept from `old` when the same port stays, taken as requested,
    /// or allocated; records what it took in `taken`.
    fn allocate_ports(
        &self,
        st: &mut State,
        obj: &mut Value,
        old: Option<&Value>,
        name: &str,
        taken: &mut Vec<u16>,
    ) -> Result<(), ApiError> {
        let (lo, hi) = self.config.node_ports;
        let wants = obj.get("spec").is_some_and(needs_node_ports);
        let old_ports: Vec<(i64, String, u16)> = old
            .and_then(|o| o.pointer("/spec/ports"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| {
                let np = p.get("nodePort").and_then(Value::as_u64)? as u16;
                let port = p.get("port").and_then(Value::as_i64)?;
                let proto = p
                    .get("protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("TCP")
                    .to_string();
                Some((port, proto, np))
            })
            .collect();
        let Some(ports) = obj.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        for (i, p) in ports.iter_mut().enumerate() {
            if !wants {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
                continue;
            }
            let requested = p.get("nodePort").and_then(Value::as_u64).unwrap_or(0) as u16;
            let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
            let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
            let kept = old_ports
                .iter()
                .find(|(op, opr, _)| *op == port && opr == proto)
                .map(|t| t.2);
            let np = if requested == 0 {
                match kept {
                    Some(k) => k,
                    None => {
                        let np = Self::next_port(st, lo, hi).ok_or_else(|| {
                            ApiError::invalid(
                                "Service",
                                "",
                                name,
                                &[FieldError::invalid(
                                    &format!("spec.ports[{i}].nodePort"),
                                    "",
                                    "failed to allocate a nodePort: range is full",
                                )],
                            )
                        })?;
                        taken.push(np);
                        np
                    }
                }
            } else if Some(requested) == kept || old_ports.iter().any(|t| t.2 == requested) {
                requested
            } else {
                if requested < lo || requested > hi {
                    return Err(ApiError::invalid(
                        "Service",
                        "",
                        name,
                        &[FieldError::invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            &requested.to_string(),
                            &format!(
                                "provided port is not in the valid range. The range of valid ports is {lo}-{hi}"
                            ),
                        )],
                    ));
                }
                if !st.ports.insert(requested) {
                    return Err(ApiError::invalid(
                        "Service",
                        "",
                        name,
                        &[FieldError::invalid(
                            &format!("spec.ports[{i}].nodePort"),
                            &requested.to_string(),
                            "provided port is already allocated",
                        )],
                    ));
                }
                taken.push(requested);
                requested
            };
            p["nodePort"] = json!(np);
        }
        Ok(())
    }

    /// On update: keeps the allocated address when the client omits it, keeps or
    /// allocates node ports, and releases the ports the service no longer uses.
    pub fn carry_over_service(&self, new: &mut Value, old: &Value) -> Result<(), ApiError> {
        let name = new
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut st = self.lock();
        if new
            .get("spec")
            .and_then(|s| s.get("type"))
            .and_then(Value::as_str)
            != Some("ExternalName")
        {
            let new_ip = new
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("");
            if new_ip.is_empty()
                && let Some(old_spec) = old.get("spec")
            {
                for f in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
                    if let Some(v) = old_spec.get(f) {
                        new["spec"][f] = v.clone();
                    }
                }
            }
        }
        let mut taken = Vec::new();
        if let Err(e) = self.allocate_ports(&mut st, new, Some(old), &name, &mut taken) {
            for p in taken {
                st.ports.remove(&p);
            }
            return Err(e);
        }
        let still: HashSet<u16> = node_ports_of(new).into_iter().collect();
        for p in node_ports_of(old) {
            if !still.contains(&p) {
                st.ports.remove(&p);
            }
        }
        Ok(())
    }

    /// Frees what a deleted service held.
    pub fn release_service(&self, obj: &Value) {
        let mut st = self.lock();
        if let Some(ip) = obj
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<Ipv4Addr>().ok())
        {
            st.ips.remove(&u32::from(ip));
        }
        for p in node_ports_of(obj) {
            st.ports.remove(&p);
        }
    }

    /// Reserves a specific address (the `kubernetes` Service's).
    pub fn reserve_ip(&self, ip: Ipv4Addr) {
        self.lock().ips.insert(u32::from(ip));
    }

    fn next_ip(st: &mut State) -> Option<u32> {
        // Usable: base+1 .. base+size-2; base+1 is the `kubernetes` Service's.
        let usable = st.size.checked_sub(3)?;
        if usable == 0 {
            return None;
        }
        let start = rand::random_range(0..usable);
        (0..usable)
            .map(|i| st.base + 2 + (start + i) % usable)
            .find(|ip| st.ips.insert(*ip))
    }

    fn next_port(st: &mut State, lo: u16, hi: u16) -> Option<u16> {
        let span = u32::from(hi - lo) + 1;
        let start = rand::random_range(0..span);
        (0..span)
            .map(|i| lo + ((start + i) % span) as u16)
            .find(|p| st.ports.insert(*p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(ty: &str, ip: &str, node_port: Option<u16>) -> Value {
        let mut port = json!({"port": 80, "protocol": "TCP"});
        if let Some(np) = node_port {
            port["nodePort"] = json!(np);
        }
        json!({"metadata": {"name": "s"}, "spec": {"type": ty, "clusterIP": ip, "ports": [port]}})
    }

    #[test]
    fn allocates_distinct_addresses_inside_the_cidr() {
        let a = Allocators::new(AllocConfig {
            service_cidr: (Ipv4Addr::new(10, 0, 0, 0), 29),
            node_ports: (30000, 30001),
        });
        let mut seen = HashSet::new();
        // /29: 8 addresses, minus network, broadcast and the reserved first one: 5.
        for _ in 0..5 {
            let mut s = svc("ClusterIP", "", None);
            a.allocate_service(&mut s, None, "s").unwrap();
            let ip: Ipv4Addr = s["spec"]["clusterIP"].as_str().unwrap().parse().unwrap();
            assert!(
                ip > Ipv4Addr::new(10, 0, 0, 1) && ip < Ipv4Addr::new(10, 0, 0, 7),
                "{ip}"
            );
            assert!(seen.insert(ip));
        }
        let mut s = svc("ClusterIP", "", None);
        let err = a.allocate_service(&mut s, None, "s").unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn requested_address_and_port_conflicts_are_invalid_and_roll_back() {
        let a = Allocators::default();
        let mut s1 = svc("NodePort", "10.96.0.10", Some(30080));
        a.allocate_service(&mut s1, None, "s1").unwrap();
        assert_eq!(s1["spec"]["ports"][0]["nodePort"], 30080);
        let mut dup_ip = svc("ClusterIP", "10.96.0.10", None);
        assert_eq!(
            a.allocate_service(&mut dup_ip, None, "s2")
                .unwrap_err()
                .code,
            422
        );
        // The IP is free but the port is taken: the IP must not leak.
        let mut dup_port = svc("NodePort", "10.96.0.11", Some(30080));
        assert_eq!(
            a.allocate_service(&mut dup_port, None, "s3")
                .unwrap_err()
                .code,
            422
        );
        let mut retry = svc("ClusterIP", "10.96.0.11", None);
        a.allocate_service(&mut retry, None, "s4").unwrap();
        let mut outside = svc("ClusterIP", "192.168.0.1", None);
        assert_eq!(
            a.allocate_service(&mut outside, None, "s5")
                .unwrap_err()
                .code,
            422
        );
        a.release_service(&s1);
        let mut again = svc("NodePort", "10.96.0.10", Some(30080));
        a.allocate_service(&mut again, None, "s6").unwrap();
    }

    #[test]
    fn update_keeps_address_and_ports_and_releases_dropped_ports() {
        let a = Allocators::default();
        let mut old = svc("NodePort", "", None);
        a.allocate_service(&mut old, None, "s").unwrap();
        let np = old["spec"]["ports"][0]["nodePort"].as_u64().unwrap() as u16;
        let mut new = svc("NodePort", "", None);
        a.carry_over_service(&mut new, &old).unwrap();
        assert_eq!(new["spec"]["clusterIP"], old["spec"]["clusterIP"]);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], np);
        let mut to_cluster_ip = svc("ClusterIP", "", None);
        a.carry_over_service(&mut to_cluster_ip, &new).unwrap();
        assert!(to_cluster_ip["spec"]["ports"][0].get("nodePort").is_none());
        let mut reuse = svc("NodePort", "", Some(np));
        a.allocate_service(&mut reuse, None, "t").unwrap();
    }
}
