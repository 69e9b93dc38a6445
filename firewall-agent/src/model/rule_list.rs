//! A group's rules of one direction, in the order they were added, indexed by rule ID and by
//! rule identity (protocol, ports, peer).
//!
//! The three parts are persistent maps (`imbl`): a copy of the list is O(1) and a change to one
//! version copies O(log n) nodes, so two versions of a group (the state before a change and
//! after it) share everything but the path to what changed. Nothing a change does to a group is
//! linear in the group's size: the duplicate check is one identity lookup, a revoke by ID one ID
//! lookup, and [`RuleList::diff`] skips what two versions share unread.

use std::sync::Arc;

use imbl::{HashMap, OrdMap, ordmap::DiffItem};
use serde::{Deserialize, Deserializer, Serialize, Serializer, ser::SerializeSeq as _};

use super::rule::{Peer, Protocol, Rule};

/// A rule's identity: two rules of a group with the same one are the same rule (AWS's
/// `InvalidPermission.Duplicate`); the description, tags and ID do not count.
type Identity = (Protocol, Option<(i32, i32)>, Peer);

fn identity(rule: &Rule) -> Identity {
    let (protocol, ports, peer) = rule.identity();
    (protocol, ports, peer.clone())
}

/// A rule's position in its list: positions rise in the order rules were added (a modified rule
/// keeps its own). The store keeps a rule's position in its record, so a list reads back in the
/// same order with the same positions.
pub type Position = u64;

#[derive(Clone, Default)]
pub struct RuleList {
    /// Past every position the list has used: a position is not given twice (a record of a rule
    /// revoked meanwhile may still be on its way to another host's copy).
    next: Position,
    by_position: OrdMap<Position, Arc<Rule>>,
    by_id: HashMap<String, Position>,
    by_identity: HashMap<Identity, Position>,
}

/// One difference between two versions of a list, by position.
pub enum RuleDiff<'a> {
    Added(&'a Arc<Rule>),
    Removed(&'a Arc<Rule>),
    /// The rule at a position was replaced (a modify, a new description).
    Changed {
        old: &'a Arc<Rule>,
        new: &'a Arc<Rule>,
    },
}

impl RuleList {
    /// A list with no rules, for a group one version does not have.
    pub fn empty() -> &'static RuleList {
        static EMPTY: std::sync::LazyLock<RuleList> = std::sync::LazyLock::new(RuleList::default);
        &EMPTY
    }

    pub fn len(&self) -> usize {
        self.by_position.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_position.is_empty()
    }

    /// The rules in the order they were added.
    pub fn iter(
        &self,
    ) -> imbl::ordmap::Values<'_, Position, Arc<Rule>, imbl::shared_ptr::DefaultSharedPtr> {
        self.by_position.values()
    }

    /// The rule added first.
    pub fn first(&self) -> Option<&Arc<Rule>> {
        self.by_position.get_min().map(|(_, rule)| rule)
    }

    /// The rule added last.
    pub fn last(&self) -> Option<&Arc<Rule>> {
        self.by_position.get_max().map(|(_, rule)| rule)
    }

    /// The rule with ID `id`.
    pub fn by_id(&self, id: &str) -> Option<&Arc<Rule>> {
        self.by_position.get(self.by_id.get(id)?)
    }

    /// The rule with ID `id`, to change what is not its identity (description, tags): a change
    /// of protocol, ports or peer goes through [`RuleList::replace`], which keeps the index.
    pub fn by_id_mut(&mut self, id: &str) -> Option<&mut Arc<Rule>> {
        let at = *self.by_id.get(id)?;
        self.by_position.get_mut(&at)
    }

    /// Where the rule with ID `id` sits.
    pub fn position_of(&self, id: &str) -> Option<Position> {
        self.by_id.get(id).copied()
    }

    /// The rule of this list that is the same rule as `rule` (see [`Rule::identity`]).
    pub fn same_as(&self, rule: &Rule) -> Option<&Arc<Rule>> {
        self.by_position.get(self.by_identity.get(&identity(rule))?)
    }

    /// Appends `rule` after every rule of the list.
    pub fn push(&mut self, rule: Arc<Rule>) {
        let at = self.next.max(1);
        self.put_at(at, rule);
    }

    /// Puts `rule` at `at`, in place of the rule with its ID (wherever that was) and of the rule
    /// at `at` (none, as positions are not given twice): how the store reads a record back.
    pub fn put_at(&mut self, at: Position, rule: Arc<Rule>) {
        self.next = self.next.max(at + 1);
        self.remove(&rule.id);
        if let Some(there) = self.by_position.get(&at).cloned() {
            self.remove(&there.id);
        }
        self.by_id.insert(rule.id.clone(), at);
        self.by_identity.insert(identity(&rule), at);
        self.by_position.insert(at, rule);
    }

    /// Takes out the rule with ID `id`.
    pub fn remove(&mut self, id: &str) -> Option<Arc<Rule>> {
        let at = self.by_id.remove(id)?;
        let rule = self.by_position.remove(&at)?;
        let key = identity(&rule);
        // Only the index entry that points here: a list read from records written by hand
        // could hold two rules of one identity.
        if self.by_identity.get(&key) == Some(&at) {
            self.by_identity.remove(&key);
        }
        Some(rule)
    }

    /// Puts `rule` where the rule with its ID is (same position); false when there is none.
    pub fn replace(&mut self, rule: Arc<Rule>) -> bool {
        match self.position_of(&rule.id) {
            Some(at) => {
                self.put_at(at, rule);
                true
            }
            None => false,
        }
    }

    /// What turns `self` into `new`, by position. Parts the two versions share are skipped
    /// unread: after one change to a list, O(log n) nodes are visited.
    pub fn diff<'a>(&'a self, new: &'a RuleList) -> impl Iterator<Item = RuleDiff<'a>> {
        self.by_position
            .diff(&new.by_position)
            .map(|item| match item {
                DiffItem::Add(_, rule) => RuleDiff::Added(rule),
                DiffItem::Remove(_, rule) => RuleDiff::Removed(rule),
                DiffItem::Update { old, new } => RuleDiff::Changed {
                    old: old.1,
                    new: new.1,
                },
            })
    }
}

impl FromIterator<Arc<Rule>> for RuleList {
    fn from_iter<I: IntoIterator<Item = Arc<Rule>>>(rules: I) -> RuleList {
        let mut list = RuleList::default();
        for rule in rules {
            list.push(rule);
        }
        list
    }
}

impl Extend<Arc<Rule>> for RuleList {
    fn extend<I: IntoIterator<Item = Arc<Rule>>>(&mut self, rules: I) {
        for rule in rules {
            self.push(rule);
        }
    }
}

impl<'a> IntoIterator for &'a RuleList {
    type Item = &'a Arc<Rule>;
    type IntoIter =
        imbl::ordmap::Values<'a, Position, Arc<Rule>, imbl::shared_ptr::DefaultSharedPtr>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

/// Two lists are equal when they hold equal rules in the same order (positions aside: a list
/// read from JSON numbers its rules afresh).
impl PartialEq for RuleList {
    fn eq(&self, other: &RuleList) -> bool {
        self.by_position.ptr_eq(&other.by_position)
            || (self.len() == other.len() && self.iter().eq(other.iter()))
    }
}

impl Eq for RuleList {}

impl std::fmt::Debug for RuleList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// As a JSON array of rules, the shape a `Vec` of them had.
impl Serialize for RuleList {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for rule in self.iter() {
            seq.serialize_element(rule)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for RuleList {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<RuleList, D::Error> {
        Ok(Vec::<Arc<Rule>>::deserialize(deserializer)?
            .into_iter()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: &str, port: i32) -> Arc<Rule> {
        let mut rule = Rule::new(
            id.into(),
            Protocol::Number(super::super::rule::TCP),
            Peer::Cidr4("10.0.0.0/8".parse().unwrap()),
        );
        rule.ports = Some((port, port));
        Arc::new(rule)
    }

    fn ids(list: &RuleList) -> Vec<&str> {
        list.iter().map(|r| r.id.as_str()).collect()
    }

    #[test]
    fn rules_keep_the_order_they_were_added_in_and_a_replaced_rule_keeps_its_place() {
        let mut list: RuleList = [rule("a", 1), rule("b", 2), rule("c", 3)]
            .into_iter()
            .collect();
        list.remove("b");
        list.push(rule("d", 4));
        assert!(list.replace(rule("a", 5)));
        assert_eq!(ids(&list), ["a", "c", "d"]);
        assert_eq!(list.by_id("a").unwrap().ports, Some((5, 5)));
        assert!(!list.replace(rule("x", 6)));
    }

    #[test]
    fn the_same_rule_is_found_by_identity_whatever_its_id_and_description() {
        let mut list: RuleList = [rule("a", 80)].into_iter().collect();
        let mut other = Rule::clone(&rule("z", 80));
        other.description = Some("web".into());
        assert_eq!(list.same_as(&other).unwrap().id, "a");
        assert!(list.same_as(&rule("z", 81)).is_none());
        list.remove("a");
        assert!(list.same_as(&other).is_none());
        assert!(list.by_id("a").is_none());
    }

    #[test]
    fn a_diff_names_only_what_changed_between_two_versions() {
        let before: RuleList = (0..1000).map(|i| rule(&format!("r{i}"), i)).collect();
        let mut after = before.clone();
        after.remove("r10");
        after.push(rule("new", 5000));
        after.replace(rule("r500", 6000));
        let (mut added, mut removed, mut changed) = (Vec::new(), Vec::new(), Vec::new());
        for item in before.diff(&after) {
            match item {
                RuleDiff::Added(r) => added.push(r.id.clone()),
                RuleDiff::Removed(r) => removed.push(r.id.clone()),
                RuleDiff::Changed { old, new } => changed.push((old.ports, new.ports)),
            }
        }
        assert_eq!(added, ["new"]);
        assert_eq!(removed, ["r10"]);
        assert_eq!(changed, [(Some((500, 500)), Some((6000, 6000)))]);
    }

    #[test]
    fn a_rule_read_back_at_its_position_takes_the_place_of_its_older_version() {
        let mut list = RuleList::default();
        list.put_at(7, rule("b", 2));
        list.put_at(3, rule("a", 1));
        list.put_at(9, rule("a", 5));
        assert_eq!(ids(&list), ["b", "a"]);
        assert_eq!(list.position_of("a"), Some(9));
        list.push(rule("c", 3));
        assert_eq!(list.position_of("c"), Some(10));
    }

    #[test]
    fn a_list_is_a_json_array_of_its_rules() {
        let list: RuleList = [rule("a", 1), rule("b", 2)].into_iter().collect();
        let text = serde_json::to_string(&list).unwrap();
        assert!(text.starts_with("[{\"id\":\"a\""));
        let back: RuleList = serde_json::from_str(&text).unwrap();
        assert_eq!(back, list);
    }
}
