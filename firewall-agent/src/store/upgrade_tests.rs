//! The records of the release before subnets and network interfaces, as that release wrote
//! them (`tests/fixtures/records_before_interfaces.json`, made by its own records code from a
//! default VPC, a VPC of its own without subnets, three registered instances and a terminated
//! one), read by this release from a real redb file.

use serde_json::{Value, json};

use super::*;
use crate::{api::catalogue::call_json, model::testing::SeqIds};

const FIXTURE: &str = include_str!("../../tests/fixtures/records_before_interfaces.json");
const DEFAULT_VPC: &str = "vpc-00000000000000001";
const OWN_VPC: &str = "vpc-00000000000000006";
/// The instances and the interface IDs that release gave them.
const LB: (&str, &str) = ("i-00000000000000016", "eni-00000000000000018");
const WEB: (&str, &str) = ("i-00000000000000019", "eni-0000000000000001b");
const APP: (&str, &str) = ("i-0000000000000001c", "eni-0000000000000001e");
const GONE: (&str, &str) = ("i-0000000000000001f", "eni-00000000000000021");
const WEB_GROUP: &str = "sg-0000000000000000b";

/// A redb file holding the fixture's records, removed on drop.
struct OldDb(std::path::PathBuf);

impl OldDb {
    fn new(name: &str) -> OldDb {
        let dir = std::env::temp_dir().join(format!("fw-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let db = OldDb(dir);
        let records: serde_json::Map<String, Value> = serde_json::from_str(FIXTURE).unwrap();
        let database = Database::create(db.path()).unwrap();
        let txn = database.begin_write().unwrap();
        {
            let mut table = txn.open_table(RECORDS).unwrap();
            for (key, value) in &records {
                table
                    .insert(key.as_str(), value.to_string().as_str())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
        db
    }

    fn path(&self) -> std::path::PathBuf {
        self.0.join("state.redb")
    }
}

impl Drop for OldDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_live_instance_of_the_release_before_interfaces_gets_its_primary_interface_unchanged() {
    let db = OldDb::new("upgrade-primary");
    let state = RedbStore::open(&db.path())
        .unwrap()
        .load()
        .unwrap()
        .remove(0);
    let default_subnet = state.default_subnet(DEFAULT_VPC).expect("default subnet");
    assert_eq!(default_subnet.cidr.to_string(), "172.31.0.0/20");

    let lb = &state.network_interfaces[LB.1];
    assert_eq!(lb.private_ip.to_string(), "172.31.40.10");
    assert_eq!(
        lb.ipv6.map(|a| a.to_string()).as_deref(),
        Some("fd00:ec2::40:10")
    );
    assert_eq!(lb.host_interface, "fwold-lb");
    assert_eq!(lb.group_ids, ["sg-0000000000000000e"]);
    assert_eq!(lb.vpc_id, DEFAULT_VPC);
    let attachment = lb.attachment.as_ref().expect("attached");
    assert_eq!(
        (attachment.instance_id.as_str(), attachment.device_index),
        (LB.0, 0)
    );
    assert!(attachment.delete_on_termination);
    assert_eq!(
        lb.subnet_id, default_subnet.id,
        "an address outside every subnet: listed in the default subnet, as a registered one is"
    );
    assert_eq!(state.instances[LB.0].subnet_id, default_subnet.id);

    let app = &state.network_interfaces[APP.1];
    let spanning = &state.subnets[&app.subnet_id];
    assert_eq!(
        (spanning.vpc_id.as_str(), spanning.cidr.to_string()),
        (OWN_VPC, "10.40.0.0/16".to_string()),
        "a VPC that had no subnets gets one spanning it"
    );
    assert!(!spanning.default_for_az);
    assert!(
        !state.network_interfaces.contains_key(GONE.1),
        "a terminated instance has no interface"
    );
    let members: Vec<&str> = state.members_of(WEB_GROUP).map(|e| e.id.as_str()).collect();
    assert_eq!(
        members,
        [WEB.1],
        "the group's members are its live instances' interfaces"
    );
}

#[test]
fn the_upgrade_is_the_same_at_every_load_and_changes_made_after_it_read_back() {
    let db = OldDb::new("upgrade-again");
    let store = RedbStore::open(&db.path()).unwrap();
    let first = store.load().unwrap().remove(0);
    assert_eq!(store.load().unwrap().remove(0), first, "deterministic");

    let mut changed = first.clone();
    let mut ids = SeqIds::at(1000);
    call_json(
        &mut changed,
        &mut ids,
        "ModifyNetworkInterfaceAttribute",
        json!({"NetworkInterfaceId": WEB.1, "Groups": ["sg-0000000000000000e"]}),
    )
    .unwrap();
    store.save(Some(&first), &changed).unwrap();
    drop(store);
    let store = RedbStore::open(&db.path()).unwrap();
    let reread = store.load().unwrap().remove(0);
    assert_eq!(reread, changed);
    assert_eq!(
        reread.network_interfaces[WEB.1].group_ids,
        ["sg-0000000000000000e"]
    );
    assert_eq!(
        reread.subnets, first.subnets,
        "the subnets made at the upgrade are stored"
    );
}
