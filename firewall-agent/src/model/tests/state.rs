//! The state at first start.

use crate::model::{Peer, State, testing::SeqIds};

#[test]
fn first_start_has_a_default_vpc_with_ipv6_and_its_default_group() {
    let state = State::initial(&mut SeqIds::default());
    let vpc = state.default_vpc().expect("default VPC");
    assert!(vpc.ipv6_cidr.is_some());
    let group = state.groups.values().next().expect("default group");
    assert_eq!(group.name, "default");
    assert_eq!(group.ingress.len(), 1);
    assert_eq!(
        group.ingress.first().unwrap().peer,
        Peer::Group(group.id.clone())
    );
    assert_eq!(group.egress.len(), 2, "0.0.0.0/0 and ::/0");
}
