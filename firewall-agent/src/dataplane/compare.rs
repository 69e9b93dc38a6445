//! Two versions of a map's entries compared in one ordered walk of both, without lookups: what
//! a write must add or change and what it must delete (`apply.rs`), and what `verify-dataplane`
//! reports (`readback.rs`). At a restart both sides hold every entry, 370k at 100k rules.

use std::{cmp::Ordering, collections::BTreeMap};

/// One key on which `desired` and `current` differ.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Difference<'a, K, V> {
    /// Only `desired` has it.
    Missing(&'a K, &'a V),
    /// Both have it: `desired`'s value, then `current`'s.
    Changed(&'a K, &'a V, &'a V),
    /// Only `current` has it.
    Extra(&'a K, &'a V),
}

/// Calls `each` with every key on which the two differ, in key order.
pub(super) fn compare<'a, K: Ord, V: PartialEq>(
    desired: &'a BTreeMap<K, V>,
    current: &'a BTreeMap<K, V>,
    mut each: impl FnMut(Difference<'a, K, V>),
) {
    let (mut desired, mut current) = (desired.iter().peekable(), current.iter().peekable());
    loop {
        let order = match (desired.peek(), current.peek()) {
            (Some((dk, _)), Some((ck, _))) => dk.cmp(ck),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => return,
        };
        match order {
            Ordering::Less => {
                let (key, want) = desired.next().expect("peeked");
                each(Difference::Missing(key, want));
            }
            Ordering::Greater => {
                let (key, got) = current.next().expect("peeked");
                each(Difference::Extra(key, got));
            }
            Ordering::Equal => {
                let ((key, want), (_, got)) = (
                    desired.next().expect("peeked"),
                    current.next().expect("peeked"),
                );
                if want != got {
                    each(Difference::Changed(key, want, got));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Difference::*, compare};

    #[test]
    fn the_walk_names_each_key_that_differs_in_order_and_skips_the_rest() {
        let desired = BTreeMap::from([(1, 'a'), (2, 'b'), (4, 'd'), (6, 'f')]);
        let current = BTreeMap::from([(0, 'z'), (2, 'b'), (4, 'x'), (5, 'e'), (7, 'g')]);
        let mut found = Vec::new();
        compare(&desired, &current, |d| found.push(d));
        assert_eq!(
            found,
            [
                Extra(&0, &'z'),
                Missing(&1, &'a'),
                Changed(&4, &'d', &'x'),
                Extra(&5, &'e'),
                Missing(&6, &'f'),
                Extra(&7, &'g'),
            ]
        );
        let mut none = 0;
        compare(&desired, &desired, |_| none += 1);
        assert_eq!(none, 0);
    }
}
