//! The incremental compiler: keeps what the states compile to and, for each change of one
//! scope, recompiles only what the change touches and returns the map writes ([`Delta`]):
//!
//! * a rule added, revoked or changed: its grants in the policies that attach its group;
//! * a membership change (an instance started, stopped, terminated, given other groups or
//!   addresses): which referenced parts the member's addresses chain (the rules referencing a
//!   group are one port set, the same at every member: see [`super::ebpf::links`]);
//! * a prefix-list edit: the same at the entries added or removed;
//! * a new set of attached groups: one `POLICIES` entry composing the chains of its groups
//!   ([`ebpf::chains_of`]), and the chain of a group no workload had yet, compiled whole (its
//!   own rules only); a chain no set of groups in use composes any more goes idle. An idle chain
//!   is kept up to date like the others, so a workload that takes that group again
//!   (modify-instance-attribute back, a stopped instance started, a new one launched) finds it
//!   written; [`Incremental::collect_idle`], on the agent's 10 s tick, deletes those idle for a
//!   whole tick, off the requests' path; beyond [`IDLE_KEPT`] the oldest go with the change. No
//!   policy composes an idle chain, so no packet meets it. (In layout 4, a chain is a whole set
//!   of groups: a new set compiles all their rules.)
//!
//! Only the `PEERS` entries whose chain passes through a prefix whose own port set changed are
//! rewritten (see [`super::prefixes`]). The whole compile ([`super::compile`]) stays the
//! reference: with the same [`Ids`], it gives exactly [`Incremental::desired`].

use std::collections::{BTreeMap, BTreeSet};

use firewall_common::{
    Direction, IFACE_ENFORCING, IFACE_FLOW_LOG, IFACE_MANAGED, IfaceConfig, NO_RULE_SLOT, layout,
};
use imbl::ordmap::DiffItem;
use ipnet::IpNet;

use super::{
    ebpf::{self, Desired, Ids, SetItem},
    prefixes::{Delta, DirectionIndex, Shared},
    resolve,
};
use crate::{
    api::Scope,
    model::{InstanceState, Peer, Rule, RuleDiff, RuleList, SecurityGroup, State},
};

/// Idle chains kept at most (the oldest beyond are deleted by the change that idles one more):
/// each costs its share of every rule and membership change while it is kept.
const IDLE_KEPT: usize = 4;

/// What the states compile to, kept up to date change by change.
#[derive(Debug, Clone)]
pub struct Incremental {
    shared: Shared,
    /// The chains, by the groups they hold (one group each from layout 5 on).
    chains: BTreeMap<Vec<String>, PolicyIndex>,
    /// The policies in use: by attached groups (sorted), their `POLICIES` ID.
    sets: BTreeMap<Vec<String>, u32>,
    /// Counts [`Incremental::collect_idle`] calls: an idle policy notes when it went idle.
    tick: u64,
}

#[derive(Debug, Clone)]
struct PolicyIndex {
    scope: Scope,
    id: u32,
    /// Inbound, outbound.
    directions: [DirectionIndex; 2],
    /// No workload uses it since this tick.
    idle_since: Option<u64>,
}

impl PolicyIndex {
    fn direction(&mut self, direction: Direction) -> &mut DirectionIndex {
        &mut self.directions[usize::from(direction == Direction::Outbound)]
    }
}

/// One rule that appeared or went in a change.
struct RuleChange<'a> {
    group: &'a str,
    direction: Direction,
    rule: &'a Rule,
}

impl Incremental {
    /// Compiles `states` whole, reusing `ids` (those a restarted agent saved).
    pub fn new(states: &BTreeMap<Scope, State>, ids: Ids) -> Incremental {
        let mut incremental = Incremental {
            shared: Shared::new(ids),
            chains: BTreeMap::new(),
            sets: BTreeMap::new(),
            tick: 0,
        };
        for scope in states.keys() {
            incremental.update(None, states, scope);
        }
        // IDs saved for what no longer exists are forgotten, as a whole compile does.
        let policies = (incremental.chains.values().map(|p| p.id))
            .chain(incremental.sets.values().copied())
            .collect();
        let sets = incremental
            .shared
            .desired
            .peers
            .values()
            .flat_map(|v| v.port_sets)
            .filter(|id| *id != 0)
            .collect();
        let rules = states
            .values()
            .flat_map(|s| s.groups.values())
            .flat_map(|g| g.ingress.iter().chain(&g.egress))
            .map(|r| r.id.as_str())
            .collect();
        incremental.shared.ids.retain(&policies, &sets, &rules);
        incremental.shared.desired.rule_slots = incremental.shared.ids.slot_map();
        incremental.shared.delta = Delta::default();
        incremental
    }

    /// What the maps must hold now (equal to a whole compile's with the same IDs).
    pub fn desired(&self) -> &Desired {
        &self.shared.desired
    }

    /// The IDs in use (saved by the agent so that a restart compiles to the same entries).
    pub fn ids(&self) -> &Ids {
        &self.shared.ids
    }

    /// Recompiles what changed in `scope` from `before` (`None`: the scope is new) to its state
    /// in `states`, and returns the map writes that make the maps hold it.
    pub fn update(
        &mut self,
        before: Option<&State>,
        states: &BTreeMap<Scope, State>,
        scope: &Scope,
    ) -> Delta {
        let after = &states[scope];
        let (removed, added) = rule_changes(before, after);
        let added_ids: BTreeSet<&str> = added.iter().map(|c| c.rule.id.as_str()).collect();
        for change in &added {
            self.slot(&change.rule.id);
        }
        let expansions = before.map_or_else(Vec::new, |before| expansion_changes(before, after));

        let wanted: BTreeSet<Vec<String>> = policies_of(after)
            .iter()
            .flat_map(|set| ebpf::chains_of(set))
            .collect();
        for (groups, policy) in self.chains.iter_mut().filter(|(_, p)| p.scope == *scope) {
            if wanted.contains(groups) {
                policy.idle_since = None;
            } else {
                policy.idle_since.get_or_insert(self.tick);
            }
        }
        // Idle chains are kept up to date too: only the most recent few are kept.
        let mut idle: Vec<(u64, u32, Vec<String>)> = self
            .chains
            .iter()
            .filter_map(|(groups, p)| Some((p.idle_since?, p.id, groups.clone())))
            .collect();
        if idle.len() > IDLE_KEPT {
            idle.sort();
            let oldest = idle.len() - IDLE_KEPT;
            for (_, _, groups) in idle.into_iter().take(oldest) {
                self.delete_policy(&groups);
            }
        }
        // Chains kept: only the change's grants, in the order that keeps each referenced
        // part's addresses right: rules taken back (the part has `before`'s addresses), the
        // referenced groups' and lists' changes to `after`, then rules given (a new part takes
        // `after`'s addresses).
        if before.is_some() {
            for change in &removed {
                let slot = self.slot(&change.rule.id);
                self.grant_all(change, slot, after, false);
            }
        }
        for (target, gone, came) in &expansions {
            for policy in self.chains.values_mut().filter(|p| p.scope == *scope) {
                for direction in &mut policy.directions {
                    direction.move_ref(target, gone, came);
                }
            }
        }
        for change in &added {
            let slot = self.slot(&change.rule.id);
            self.grant_all(change, slot, after, true);
        }
        // New chains: compiled whole.
        for groups in wanted {
            if self.chains.contains_key(&groups) {
                continue;
            }
            let id = self.shared.ids.policy(&groups);
            let mut policy = PolicyIndex {
                scope: scope.clone(),
                id,
                directions: [
                    DirectionIndex::new(id, Direction::Inbound),
                    DirectionIndex::new(id, Direction::Outbound),
                ],
                idle_since: None,
            };
            for group in groups.iter().filter_map(|g| after.groups.get(g)) {
                for direction in Direction::ALL {
                    for rule in group.rules(direction) {
                        let slot = self.slot(&rule.id);
                        grant(policy.direction(direction), rule, slot, after, true);
                    }
                }
            }
            self.chains.insert(groups, policy);
        }
        for policy in self.chains.values_mut().filter(|p| p.scope == *scope) {
            for direction in &mut policy.directions {
                direction.refresh(&mut self.shared);
            }
        }
        self.compose(states);
        self.shared.desired.ifaces = self.ifaces(states);
        self.shared.delta.ifaces = self.shared.desired.ifaces.clone();
        self.shared.delta.policies = self.shared.desired.policies.clone();
        let gone: BTreeSet<String> = removed
            .iter()
            .map(|c| c.rule.id.as_str())
            .filter(|id| !added_ids.contains(id))
            .map(str::to_string)
            .collect();
        let freed = self.shared.ids.forget_rules(&gone);
        for slot in &freed {
            self.shared.desired.rule_slots.remove(slot);
        }
        self.shared.delta.freed_slots = freed;
        self.shared.finish()
    }

    /// The policies in use, each composing its groups' chains (all scopes: few, recomputed on
    /// every change); the IDs of those no longer in use are forgotten, unless a chain (idle
    /// now) is named by the same groups.
    fn compose(&mut self, states: &BTreeMap<Scope, State>) {
        let mut sets = BTreeMap::new();
        let mut policies = BTreeMap::new();
        for state in states.values() {
            for (eni, _) in state.enforced() {
                let set = sorted(&eni.group_ids);
                if sets.contains_key(&set) {
                    continue;
                }
                let chains: Option<Vec<u32>> = ebpf::chains_of(&set)
                    .iter()
                    .map(|chain| self.chains.get(chain).map(|c| c.id))
                    .collect();
                let Some(chains) = chains else {
                    continue;
                };
                let id = self.shared.ids.policy(&set);
                if layout::COMPOSED {
                    policies.insert(id, ebpf::policy_value(&chains));
                }
                sets.insert(set, id);
            }
        }
        for set in self.sets.keys() {
            if !sets.contains_key(set) && !self.chains.contains_key(set) {
                self.shared.ids.forget_policy(set);
            }
        }
        self.sets = sets;
        self.shared.desired.policies = policies;
    }

    /// Deletes the idle chains (`all`, or only those idle since before the previous call) and
    /// returns the map writes; their IDs are not handed out again.
    pub fn collect_idle(&mut self, all: bool) -> Delta {
        let tick = self.tick;
        self.tick += 1;
        let collected: Vec<Vec<String>> = self
            .chains
            .iter()
            .filter(|(_, p)| p.idle_since.is_some_and(|since| all || since < tick))
            .map(|(groups, _)| groups.clone())
            .collect();
        for groups in collected {
            self.delete_policy(&groups);
        }
        self.shared.delta.ifaces = self.shared.desired.ifaces.clone();
        self.shared.delta.policies = self.shared.desired.policies.clone();
        self.shared.finish()
    }

    /// Deletes a chain's entries; its ID is not handed out again.
    fn delete_policy(&mut self, groups: &[String]) {
        let mut policy = self.chains.remove(groups).expect("a chain");
        for direction in &mut policy.directions {
            direction.clear(&mut self.shared);
        }
        self.shared.ids.forget_policy(groups);
    }

    /// `whole` (a whole compile of the states) with the entries of the idle chains added:
    /// what [`Incremental::desired`] must equal.
    pub fn with_idle(&self, mut whole: Desired) -> Desired {
        let idle: BTreeSet<[u8; 4]> = self
            .chains
            .values()
            .filter(|p| p.idle_since.is_some())
            .map(|p| p.id.to_be_bytes())
            .collect();
        if idle.is_empty() {
            return whole;
        }
        let mut sets = BTreeSet::new();
        for (key, value) in &self.shared.desired.peers {
            if idle.contains(&key.1.policy_id) {
                whole.peers.insert(*key, *value);
                sets.extend(value.port_sets.iter().filter(|id| **id != 0).copied());
            }
        }
        for (key, value) in &self.shared.desired.ports {
            if sets.contains(&u32::from_be_bytes(key.1.port_set)) {
                whole.ports.insert(*key, *value);
            }
        }
        whole
    }

    /// Whether some chain is idle (kept, though no policy in use composes it).
    pub fn has_idle(&self) -> bool {
        self.chains.values().any(|p| p.idle_since.is_some())
    }

    /// The rule's counter slot, handing out one (and noting it) if it has none yet.
    fn slot(&mut self, rule_id: &str) -> u32 {
        if let Some(slot) = self.shared.ids.known_slot(rule_id) {
            return slot;
        }
        let slot = self.shared.ids.rule_slot(rule_id);
        if slot != NO_RULE_SLOT {
            self.shared
                .desired
                .rule_slots
                .insert(slot, rule_id.to_string());
            self.shared
                .delta
                .fresh_slots
                .push((slot, rule_id.to_string()));
        }
        slot
    }

    /// Gives (`up`) or takes back a rule's grants in every chain that holds its group.
    fn grant_all(&mut self, change: &RuleChange, slot: u32, after: &State, up: bool) {
        for policy in self
            .chains
            .iter_mut()
            .filter(|(groups, _)| groups.iter().any(|g| g == change.group))
            .map(|(_, p)| p)
        {
            grant(
                policy.direction(change.direction),
                change.rule,
                slot,
                after,
                up,
            );
        }
    }

    /// `IFACES` of every scope's workloads (few: recomputed on every change).
    fn ifaces(&self, states: &BTreeMap<Scope, State>) -> BTreeMap<String, IfaceConfig> {
        let mut ifaces = BTreeMap::new();
        for state in states.values() {
            for (eni, instance) in state.enforced() {
                let running = instance.state == InstanceState::Running;
                let set = sorted(&eni.group_ids);
                let Some(policy_id) = self.sets.get(&set) else {
                    continue;
                };
                let chains: Vec<&PolicyIndex> = ebpf::chains_of(&set)
                    .iter()
                    .filter_map(|chain| self.chains.get(chain))
                    .collect();
                let mut flags = IFACE_MANAGED
                    | ebpf::untracked(|direction, v4| {
                        chains.iter().any(|chain| {
                            chain.directions[usize::from(direction == Direction::Outbound)]
                                .has_zero(v4)
                        })
                    });
                if running {
                    flags |= IFACE_ENFORCING;
                }
                if state.flow_logs.values().any(|f| f.covers(eni)) {
                    flags |= IFACE_FLOW_LOG;
                }
                ifaces.insert(
                    eni.host_interface.clone(),
                    IfaceConfig {
                        policy_id: *policy_id,
                        flags,
                    },
                );
            }
        }
        ifaces
    }
}

/// Gives (`up`) or takes back `rule`'s grants in one policy direction: a CIDR rule's at its
/// prefix, a referencing rule's in the part of what it references (a new part is written at
/// the addresses or entries `after` has).
fn grant(index: &mut DirectionIndex, rule: &Rule, slot: u32, after: &State, up: bool) {
    let item = resolve::port_item(rule);
    match referenced(&rule.peer) {
        Some(target) => index.grant_ref(target, item, slot, up, || {
            resolve::peer_prefixes(after, &rule.peer)
        }),
        None => {
            for prefix in resolve::peer_prefixes(after, &rule.peer) {
                index.grant(prefix, SetItem::of(prefix, item, slot), up);
            }
        }
    }
}

fn sorted(groups: &[String]) -> Vec<String> {
    let mut groups = groups.to_vec();
    groups.sort();
    groups
}

/// The distinct sets of attached groups of the state's workloads (those with an interface on
/// this host).
fn policies_of(state: &State) -> BTreeSet<Vec<String>> {
    state
        .enforced()
        .map(|(eni, _)| sorted(&eni.group_ids))
        .collect()
}

/// The group or prefix list a rule's peer names.
fn referenced(peer: &Peer) -> Option<&str> {
    match peer {
        Peer::Group(id) | Peer::PrefixList(id) => Some(id),
        Peer::Cidr4(_) | Peer::Cidr6(_) => None,
    }
}

/// Whether two versions of a rule compile the same (descriptions and tags do not count).
fn same_enforcement(a: &Rule, b: &Rule) -> bool {
    a.id == b.id && a.protocol == b.protocol && a.ports == b.ports && a.peer == b.peer
}

/// The rules `before` has and `after` has not (or has otherwise), and those `after` adds (or
/// changes). Groups still shared between the two versions are skipped unread ([`crate::model::Table`]'s
/// diff).
fn rule_changes<'a>(
    before: Option<&'a State>,
    after: &'a State,
) -> (Vec<RuleChange<'a>>, Vec<RuleChange<'a>>) {
    let (mut removed, mut added) = (Vec::new(), Vec::new());
    let mut visit =
        |id: &'a String, old: Option<&'a SecurityGroup>, new: Option<&'a SecurityGroup>| {
            for direction in Direction::ALL {
                let old_rules = old.map_or(RuleList::empty(), |g| g.rules(direction));
                let new_rules = new.map_or(RuleList::empty(), |g| g.rules(direction));
                let (gone, came) = diff_rules(old_rules, new_rules);
                let change = |rule| RuleChange {
                    group: id.as_str(),
                    direction,
                    rule,
                };
                removed.extend(gone.into_iter().map(change));
                added.extend(came.into_iter().map(change));
            }
        };
    let Some(before) = before else {
        for (id, group) in &after.groups {
            visit(id, None, Some(group));
        }
        return (removed, added);
    };
    for item in before.groups.diff(&after.groups) {
        match item {
            DiffItem::Add(id, new) => visit(id, None, Some(new)),
            DiffItem::Remove(id, old) => visit(id, Some(old), None),
            DiffItem::Update { old, new } => visit(new.0, Some(old.1), Some(new.1)),
        }
    }
    (removed, added)
}

/// The rules of `old` not in `new` with the same enforcement, and those of `new` not in `old`:
/// what the two versions of a list do not share, by position ([`RuleList::diff`]).
fn diff_rules<'a>(old: &'a RuleList, new: &'a RuleList) -> (Vec<&'a Rule>, Vec<&'a Rule>) {
    let (mut gone, mut came) = (Vec::new(), Vec::new());
    for item in old.diff(new) {
        match item {
            RuleDiff::Added(rule) => came.push(&**rule),
            RuleDiff::Removed(rule) => gone.push(&**rule),
            RuleDiff::Changed { old, new } if !same_enforcement(old, new) => {
                gone.push(&**old);
                came.push(&**new);
            }
            RuleDiff::Changed { .. } => {}
        }
    }
    (gone, came)
}

/// Referenced groups whose running members' addresses changed, and prefix lists whose entries
/// changed: (ID, prefixes gone, prefixes come), counted (two members may share an address).
fn expansion_changes<'a>(
    before: &'a State,
    after: &'a State,
) -> Vec<(String, Vec<IpNet>, Vec<IpNet>)> {
    let mut targets: BTreeSet<Peer> = BTreeSet::new();
    // An interface's membership follows its groups, addresses and attachment, and its
    // instance's state: every group of an interface or instance that changed is a target.
    // Only what the two versions do not share is visited ([`imbl::OrdMap::diff`]).
    for item in before.instances.diff(&after.instances) {
        let id = match item {
            DiffItem::Add(id, _) | DiffItem::Remove(id, _) => id,
            DiffItem::Update { new: (id, _), .. } => id,
        };
        for state in [before, after] {
            for eni in state.interfaces_of(id) {
                targets.extend(eni.group_ids.iter().cloned().map(Peer::Group));
            }
        }
    }
    for item in before.network_interfaces.diff(&after.network_interfaces) {
        let (old, new) = match item {
            DiffItem::Add(_, new) => (None, Some(new)),
            DiffItem::Remove(_, old) => (Some(old), None),
            DiffItem::Update { old, new } => (Some(old.1), Some(new.1)),
        };
        for eni in old.into_iter().chain(new) {
            targets.extend(eni.group_ids.iter().cloned().map(Peer::Group));
        }
    }
    let lists: BTreeSet<&String> = before
        .prefix_lists
        .keys()
        .chain(after.prefix_lists.keys())
        .collect();
    for id in lists {
        let entries = |state: &'a State| state.prefix_lists.get(id).map(|l| l.entries());
        if entries(before) != entries(after) {
            targets.insert(Peer::PrefixList(id.clone()));
        }
    }
    let mut out = Vec::new();
    for peer in targets {
        let mut count: BTreeMap<IpNet, i64> = BTreeMap::new();
        for prefix in resolve::peer_prefixes(before, &peer) {
            *count.entry(prefix).or_default() -= 1;
        }
        for prefix in resolve::peer_prefixes(after, &peer) {
            *count.entry(prefix).or_default() += 1;
        }
        let (mut gone, mut came) = (Vec::new(), Vec::new());
        for (prefix, n) in count {
            let to = if n < 0 { &mut gone } else { &mut came };
            to.extend(std::iter::repeat_n(prefix, n.unsigned_abs() as usize));
        }
        if !gone.is_empty() || !came.is_empty() {
            let id = referenced(&peer).expect("a group or a list").to_string();
            out.push((id, gone, came));
        }
    }
    out
}

#[cfg(test)]
#[path = "incremental_tests.rs"]
mod tests;
