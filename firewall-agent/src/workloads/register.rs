//! Which existing interfaces of the agent's network namespace may be registered as a workload
//! (`run-instances --interface`, the CNI plugin): an operator's act, and even then only a veth —
//! the host side of a workload's pair — that does not carry the namespace's default route.
//! Registering `lo` would drop the agent's own API traffic; the uplink, a bridge or a physical
//! device would cut the host off. `serve --allow-interface PATTERN` names the exceptions.
//!
//! Asked over netlink with iproute2's JSON output (`ip -d -j link`, `ip -j route`): under `ip
//! netns exec` the agent's `/sys` may show another namespace's interfaces.

use super::ip_json;

/// The interfaces `serve --allow-interface` lets be registered whatever they are (shell-style
/// patterns: `*`, `?`, `[…]`).
#[derive(Debug, Clone, Default)]
pub struct Allowed(Vec<glob::Pattern>);

impl Allowed {
    /// Parses `serve --allow-interface`'s patterns.
    pub fn new(patterns: &[String]) -> Result<Allowed, String> {
        patterns
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("--allow-interface {p}: {e}")))
            .collect::<Result<_, _>>()
            .map(Allowed)
    }

    fn matches(&self, interface: &str) -> bool {
        self.0.iter().any(|p| p.matches(interface))
    }
}

/// What `ip` says about one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// `linkinfo.info_kind` (`veth`, `bridge`, …), none for loopback and physical devices.
    pub kind: Option<String>,
    /// `link_type` (`ether`, `loopback`, …).
    pub link_type: String,
}

/// Why `interface` may not be registered, given what `ip` said of it (`None` when it does not
/// exist: the caller reports that in its own words) and the devices holding a default route.
pub fn refusal(
    interface: &str,
    link: Option<&Link>,
    default_route_devices: &[String],
    allowed: &Allowed,
) -> Option<String> {
    if allowed.matches(interface) {
        return None;
    }
    let link = link?;
    let hint = "; an operator can allow it with `serve --allow-interface`";
    if default_route_devices.iter().any(|d| d == interface) {
        return Some(format!(
            "The interface '{interface}' carries the agent's namespace's default route: \
             enforcing on it would cut the host off{hint}."
        ));
    }
    match link.kind.as_deref() {
        Some("veth") => None,
        Some(kind) => Some(format!(
            "The interface '{interface}' is a {kind}, not a workload's veth{hint}."
        )),
        None if link.link_type == "loopback" => Some(format!(
            "The interface '{interface}' is the loopback: enforcing on it would cut the agent \
             off from its own clients{hint}."
        )),
        None => Some(format!(
            "The interface '{interface}' is a {} device, not a workload's veth{hint}.",
            link.link_type
        )),
    }
}

/// The interface as `ip -d -j link show dev NAME` describes it, if it exists.
pub fn link(interface: &str) -> Option<Link> {
    let shown = ip_json(&["-d", "-j", "link", "show", "dev", interface]);
    let link = shown.first()?;
    Some(Link {
        kind: link["linkinfo"]["info_kind"].as_str().map(str::to_string),
        link_type: link["link_type"].as_str().unwrap_or_default().to_string(),
    })
}

/// The devices of the namespace's IPv4 and IPv6 default routes (multipath hops included).
pub fn default_route_devices() -> Vec<String> {
    let mut devices = Vec::new();
    for family in ["-4", "-6"] {
        for route in &ip_json(&[family, "-j", "route", "show", "default"]) {
            let hops = route["nexthops"].as_array().cloned().unwrap_or_default();
            for dev in std::iter::once(&route["dev"]).chain(hops.iter().map(|h| &h["dev"])) {
                if let Some(dev) = dev.as_str() {
                    devices.push(dev.to_string());
                }
            }
        }
    }
    devices
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(kind: Option<&str>, link_type: &str) -> Link {
        Link {
            kind: kind.map(str::to_string),
            link_type: link_type.into(),
        }
    }

    #[test]
    fn only_a_veth_without_the_default_route_is_registered_unless_allowed() {
        let none = Allowed::default();
        let uplink = vec!["uplink0".to_string()];
        let veth = kind(Some("veth"), "ether");
        assert_eq!(refusal("fv1", Some(&veth), &uplink, &none), None);
        let said = |name, link: &Link| refusal(name, Some(link), &uplink, &none).unwrap();
        assert!(said("uplink0", &veth).contains("default route"));
        assert!(said("lo", &kind(None, "loopback")).contains("loopback"));
        assert!(said("br0", &kind(Some("bridge"), "ether")).contains("bridge"));
        assert!(said("eth1", &kind(None, "ether")).contains("ether device"));
        let allowed = Allowed::new(&["uplink*".into(), "br?".into()]).unwrap();
        assert_eq!(refusal("uplink0", Some(&veth), &uplink, &allowed), None);
        assert_eq!(
            refusal(
                "br0",
                Some(&kind(Some("bridge"), "ether")),
                &uplink,
                &allowed
            ),
            None
        );
        assert!(
            Allowed::new(&["[".into()]).is_err(),
            "a bad pattern is refused"
        );
    }
}
