//! B7: how long a change takes from the API (model + the agent's incremental compiler + map
//! writes) to the first packet that gets the new verdict, observed by a probe stream on another
//! CPU, at 10 and 10k rules; against nftables doing the same change on the same ruleset. The
//! first load is a whole compile (as an agent's start); every change after it goes through
//! `Incremental::update` and `apply_delta`, the path of the agent's own changes.

use std::{
    collections::BTreeMap,
    net::{IpAddr, Ipv4Addr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering::SeqCst},
    },
    time::{Duration, Instant},
};

use aya::programs::{SchedClassifier, TestRun as _, TestRunOptions};
use firewall_agent::{
    api::catalogue::call_json as dispatch,
    compiler::{Ids, Incremental},
    dataplane::{Dataplane as _, DataplaneError, KernelDataplane, LoadOptions, programs},
    model::{RandomIds, State, TableExt as _},
};
use firewall_testkit::{frame::ACK, netns::Netns, shell::ns_sh};
use serde_json::json;

use crate::{
    common::{WorkloadSpec, build_state, frame, percentile},
    report::Report,
};

const ME: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 5);

struct Live {
    state: State,
    /// What the last change started from (the incremental compiler diffs it with `state`).
    before: Option<State>,
    compiler: Option<Incremental>,
    dataplane: KernelDataplane,
}

impl Live {
    /// The first call compiles the state whole and writes it; each later one compiles what
    /// changed since the previous call and writes that delta.
    fn sync(&mut self) {
        let scope = self.state.scope();
        let states = BTreeMap::from([(scope.clone(), self.state.clone())]);
        let result = match (&mut self.compiler, &self.before) {
            (Some(compiler), Some(before)) => {
                let delta = compiler.update(Some(before), &states, &scope);
                self.dataplane.apply_delta(&delta)
            }
            _ => {
                let compiler = Incremental::new(&states, Ids::default());
                let result = self.dataplane.apply(compiler.desired());
                self.compiler = Some(compiler);
                result
            }
        };
        self.before = Some(self.state.clone());
        match result {
            Ok(()) | Err(DataplaneError::Interface { .. }) => {}
            Err(e) => panic!("apply: {e}"),
        }
    }
}

/// A change and its inverse, and the probe whose verdict they flip.
struct Scenario {
    name: &'static str,
    /// What the inverse change is called.
    undo_name: &'static str,
    probe: Vec<u8>,
    apply: Box<dyn Fn(&mut State)>,
    undo: Box<dyn Fn(&mut State)>,
}

fn scenarios(state: &State) -> Vec<Scenario> {
    let g0 = crate::common::group_id(state, "g0");
    let g1 = crate::common::group_id(state, "g1");
    let mac = [2, 0, 0, 0, 0, 1];
    let me: IpAddr = ME.into();
    let rule = move |g: String| json!({"GroupId": g, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 7777, "ToPort": 7777, "IpRanges": [{"CidrIp": "10.77.0.1/32"}]}]});
    let (ga, gr) = (g0.clone(), g0.clone());
    let list = state.prefix_lists.keys().next().unwrap().clone();
    let (la, lr) = (list.clone(), list);
    vec![
        Scenario {
            name: "add rule",
            undo_name: "remove rule",
            probe: frame(
                mac,
                Ipv4Addr::new(10, 77, 0, 1).into(),
                me,
                1,
                7777,
                Some(ACK),
            ),
            apply: Box::new(move |s| {
                dispatch(
                    s,
                    &mut RandomIds,
                    "AuthorizeSecurityGroupIngress",
                    rule(ga.clone()),
                )
                .unwrap();
            }),
            undo: Box::new(move |s| {
                let r = json!({"GroupId": gr, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 7777, "ToPort": 7777, "IpRanges": [{"CidrIp": "10.77.0.1/32"}]}]});
                dispatch(s, &mut RandomIds, "RevokeSecurityGroupIngress", r).unwrap();
            }),
        },
        Scenario {
            name: "member joins a referenced group",
            undo_name: "member leaves",
            probe: frame(
                mac,
                Ipv4Addr::new(172, 31, 2, 99).into(),
                me,
                1,
                5432,
                Some(ACK),
            ),
            apply: Box::new(move |s| {
                s.put_workload(
                    "i-00000000000bench",
                    "joiner",
                    Ipv4Addr::new(172, 31, 2, 99),
                    None,
                    vec![g1.clone()],
                );
            }),
            undo: Box::new(|s| {
                s.take_workload("i-00000000000bench");
            }),
        },
        Scenario {
            name: "prefix-list edit",
            undo_name: "prefix-list entry removed",
            probe: frame(
                mac,
                Ipv4Addr::new(10, 99, 0, 1).into(),
                me,
                1,
                8888,
                Some(ACK),
            ),
            apply: Box::new(move |s| {
                let v = s.prefix_lists[&la].version();
                dispatch(s, &mut RandomIds, "ModifyManagedPrefixList", json!({"PrefixListId": la, "CurrentVersion": v, "AddEntries": [{"Cidr": "10.99.0.1/32"}]})).unwrap();
            }),
            undo: Box::new(move |s| {
                let v = s.prefix_lists[&lr].version();
                dispatch(s, &mut RandomIds, "ModifyManagedPrefixList", json!({"PrefixListId": lr, "CurrentVersion": v, "RemoveEntries": [{"Cidr": "10.99.0.1/32"}]})).unwrap();
            }),
        },
    ]
}

/// (probe frame, expected verdict, armed at, first time it was seen, later runs showing the old
/// verdict again).
type Watch = (Vec<u8>, bool, Instant, Option<Instant>, u64);

/// Runs a probe stream on its own thread until `stop`; records when each verdict was first seen
/// after the main thread armed `since`.
struct Prober {
    stop: Arc<AtomicBool>,
    /// Runs of the control probe, and how many did not pass.
    control_counts: Arc<(AtomicU64, AtomicU64)>,
    /// (probe frame, expected verdict, armed at, first time it was seen).
    watch: Arc<Mutex<Watch>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(pin: std::path::PathBuf, control: Vec<u8>) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let watch = Arc::new(Mutex::new((Vec::new(), false, Instant::now(), None, 0)));
        let (s, w) = (stop.clone(), watch.clone());
        let control_counts = Arc::new((AtomicU64::new(0), AtomicU64::new(0)));
        let c = control_counts.clone();
        let thread = std::thread::spawn(move || {
            let program = SchedClassifier::from_pin(&pin).expect("pinned program");
            let mut out = vec![0u8; 512];
            while !s.load(SeqCst) {
                let probe = w.lock().unwrap().0.clone();
                if probe.is_empty() {
                    std::thread::yield_now();
                    continue;
                }
                let started = Instant::now();
                let opts = TestRunOptions {
                    data_in: Some(&probe),
                    data_out: Some(&mut out),
                    ..TestRunOptions::default()
                };
                let allowed = program.test_run(opts).expect("probe").return_value == u32::MAX;
                let seen = Instant::now();
                let mut g: std::sync::MutexGuard<'_, Watch> = w.lock().unwrap();
                // Only a run that started after arming and shows the awaited verdict counts.
                if g.0 == probe && started >= g.2 && allowed == g.1 && g.3.is_none() {
                    g.3 = Some(seen);
                }
                // Once the new verdict was seen, the old one must never come back.
                if g.0 == probe && g.3.is_some_and(|t| started > t) && allowed != g.1 {
                    g.4 += 1;
                }
                drop(g);
                // Between two probes, a flow no change touches: it must always pass.
                let opts = TestRunOptions {
                    data_in: Some(&control),
                    data_out: Some(&mut out),
                    ..TestRunOptions::default()
                };
                let control_passed =
                    program.test_run(opts).expect("control").return_value == u32::MAX;
                c.0.fetch_add(1, SeqCst);
                if !control_passed {
                    c.1.fetch_add(1, SeqCst);
                }
            }
        });
        Prober {
            stop,
            control_counts,
            watch,
            thread: Some(thread),
        }
    }

    /// Watches for `expected` on `probe` from now on.
    fn arm(&self, probe: &[u8], expected: bool) {
        *self.watch.lock().unwrap() = (probe.to_vec(), expected, Instant::now(), None, 0);
    }

    /// Probe runs that showed the old verdict after the new one had been seen.
    fn flaps(&self) -> u64 {
        self.watch.lock().unwrap().4
    }

    fn wait(&self, timeout: Duration) -> Option<Instant> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(t) = self.watch.lock().unwrap().3 {
                return Some(t);
            }
            std::thread::sleep(Duration::from_micros(50));
        }
        None
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub fn run(report: &mut Report, quick: bool) {
    let trials = if quick { 10 } else { 30 };
    let bpffs = std::env::temp_dir().join("fw-bench-bpffs");
    std::fs::create_dir_all(&bpffs).unwrap();
    let _ = std::process::Command::new("mount")
        .args(["-t", "bpf", "bpf"])
        .arg(&bpffs)
        .status();
    for rules in [10usize, 10_000] {
        let mut state = build_state(
            rules,
            42,
            &[WorkloadSpec {
                interface: "lo",
                ip: ME,
                ip6: None,
            }],
        );
        // A prefix list referenced by a rule, for the prefix-list scenario.
        let list = dispatch(&mut state, &mut RandomIds, "CreateManagedPrefixList", json!({"PrefixListName": "bench", "MaxEntries": 10, "AddressFamily": "IPv4", "Entries": [{"Cidr": "10.88.0.0/16"}]})).unwrap();
        let list = list["PrefixList"]["PrefixListId"]
            .as_str()
            .unwrap()
            .to_string();
        let g0 = crate::common::group_id(&state, "g0");
        dispatch(&mut state, &mut RandomIds, "AuthorizeSecurityGroupIngress", json!({"GroupId": g0, "IpPermissions": [{"IpProtocol": "tcp", "FromPort": 8888, "ToPort": 8888, "PrefixListIds": [{"PrefixListId": list}]}]})).unwrap();
        let dataplane = KernelDataplane::load(&LoadOptions::default()).expect("load");
        let mut live = Live {
            state,
            before: None,
            compiler: None,
            dataplane,
        };
        let t0 = Instant::now();
        live.sync();
        let bulk_ours = t0.elapsed().as_secs_f64() * 1e3;
        let mut add_rule_p50 = f64::NAN;
        let pin = bpffs.join(format!("probe-{rules}"));
        let _ = std::fs::remove_file(&pin);
        live.dataplane
            .program(programs::TO_WORKLOAD)
            .pin(&pin)
            .expect("pin");
        // A flow no change touches (the measured tcp/443 rule from 10.1.0.0/16): must always pass.
        let control = frame(
            [2, 0, 0, 0, 0, 1],
            Ipv4Addr::new(10, 1, 2, 3).into(),
            ME.into(),
            40000,
            443,
            Some(ACK),
        );
        let prober = Prober::start(pin.clone(), control);
        let mut flaps = 0;
        let mut changes = 0;
        for scenario in scenarios(&live.state) {
            let mut written = Vec::new();
            let mut enforced = Vec::new();
            let mut undone = Vec::new();
            let mut missed = 0;
            for trial in 0..trials {
                let forward = trial % 2 == 0;
                flaps += prober.flaps();
                changes += 1;
                prober.arm(&scenario.probe, forward);
                let t0 = Instant::now();
                if forward {
                    (scenario.apply)(&mut live.state)
                } else {
                    (scenario.undo)(&mut live.state)
                }
                live.sync();
                let t1 = Instant::now();
                match prober.wait(Duration::from_secs(2)) {
                    Some(t2) => {
                        written.push((t1 - t0).as_secs_f64() * 1e3);
                        let latency = (t2.max(t0) - t0).as_secs_f64() * 1e3;
                        if forward {
                            enforced.push(latency);
                        } else {
                            undone.push(latency);
                        }
                    }
                    None => missed += 1,
                }
            }
            assert_eq!(
                missed, 0,
                "{}: the probe never saw the new verdict",
                scenario.name
            );
            let label = |what: &str| format!("{} at {rules} rules: {what}", scenario.name);
            report.row(
                "B7 update",
                label("API → maps written, p50"),
                "–",
                percentile(written.clone(), 50.0),
                "ms",
                None,
            );
            report.row(
                "B7 update",
                label("API → new verdict, p50"),
                "p50 ≤ 1 ms",
                percentile(enforced.clone(), 50.0),
                "ms",
                None,
            );
            report.row(
                "B7 update",
                label("API → new verdict, p99"),
                "p99 ≤ 10 ms",
                percentile(enforced.clone(), 99.0),
                "ms",
                None,
            );
            report.row(
                "B7 update",
                format!(
                    "{} at {rules} rules: API → new verdict, p50",
                    scenario.undo_name
                ),
                "p50 ≤ 1 ms",
                percentile(undone.clone(), 50.0),
                "ms",
                None,
            );
            if scenario.name == "add rule" {
                add_rule_p50 = percentile(enforced.clone(), 50.0);
            }
            report.point(
                "update latency p50 (ms)",
                scenario.name,
                rules as f64,
                percentile(enforced, 50.0),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
        flaps += prober.flaps();
        let (runs, failed) = (
            prober.control_counts.0.load(SeqCst),
            prober.control_counts.1.load(SeqCst),
        );
        report.row("B7 update", format!("wrong verdicts during {changes} changes at {rules} rules: changed flow reverting + untouched flow dropped"), "0", (flaps + failed) as f64, "packets", None);
        report.note(format!("B7 at {rules} rules: {runs} probes of the untouched flow, {failed} dropped; {flaps} runs of the changed flow showed the old verdict after the new one."));
        drop(prober);
        let _ = std::fs::remove_file(&pin);
        let (nft_bulk, nft_add, nft_memory) = nft_update(&live.state, trials);
        report.row(
            "B8 memory",
            format!("nft sets ruleset per rule, {rules} rules (Slab + Percpu delta, approximate)"),
            "–",
            nft_memory as f64 / rules as f64,
            "B",
            None,
        );
        report.row(
            "B7 update",
            format!("bulk apply {rules} rules (compile + map writes)"),
            "10k ≤ 50 ms, 100k ≤ 300 ms",
            bulk_ours,
            "ms",
            Some(("nft -f", nft_bulk)),
        );
        report.row(
            "B7 update",
            format!("add one rule at {rules} rules → enforced, p50"),
            "p50 ≤ 1 ms",
            add_rule_p50,
            "ms",
            Some(("nft add element (incl. process start)", nft_add)),
        );
        report.point(
            "update latency p50 (ms)",
            "nft add element",
            rules as f64,
            nft_add,
        );
    }
    let _ = std::process::Command::new("umount").arg(&bpffs).status();
    report.note("Update latency is measured in-process (model + compile + map writes, as the agent does after parsing a request); the HTTP round trip and the store's fsync come on top. Wrong verdicts during changes: 0, by construction and by test (firewall-agent/tests/atomicity.rs, 1000 changes under a probe stream).");
}

/// nftables doing the same single-rule change on the exported ruleset: `nft add element` into the
/// policy's set (process start included, as a user or agent would run it) and the bulk `nft -f`.
/// Kernel slab and per-CPU memory, from /proc/meminfo (what an nftables ruleset is made of).
fn slab_and_percpu_bytes() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let kb = |name: &str| -> u64 {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (kb("Slab:") + kb("Percpu:")) * 1024
}

/// Returns (bulk `nft -f` ms, `nft add element` p50 ms, kernel memory of the ruleset in bytes).
fn nft_update(state: &State, trials: usize) -> (f64, f64, u64) {
    // The same state, but with the workload on a device nft can name.
    let mut state = state.clone();
    state.network_interfaces.edit_where(
        |_| true,
        |eni| {
            let id = eni.instance_id().unwrap_or(&eni.id).to_string();
            eni.host_interface = format!("v{}", &id[id.len() - 4..]);
        },
    );
    let ruleset = firewall_agent::nft::render(&state, firewall_agent::nft::Layout::Sets);
    let nft = nft_same_change(&ruleset, trials);
    let both: Vec<f64> = nft.add.iter().chain(&nft.delete).copied().collect();
    let p50 = if both.is_empty() {
        f64::NAN
    } else {
        percentile(both, 50.0)
    };
    (nft.bulk, p50, nft.memory)
}

/// What nftables took for the bench's one-rule change on a ruleset.
pub struct NftChange {
    /// `nft -f` of the whole ruleset, ms.
    pub bulk: f64,
    /// `nft add element` / `nft delete element` of one rule's element, ms each.
    pub add: Vec<f64>,
    pub delete: Vec<f64>,
    /// Kernel memory of the loaded ruleset, bytes.
    pub memory: u64,
}

/// nftables loading `ruleset` (our `export --format nftables`) in a namespace of its own, then
/// adding and deleting the element of "tcp/7777 from 10.77.0.1" in the first policy's inbound
/// set, `trials` times each (process start included, as a user or an agent would run it).
pub fn nft_same_change(ruleset: &str, trials: usize) -> NftChange {
    let ns = Netns::new("fwbn");
    let before = slab_and_percpu_bytes();
    let bulk = crate::common::load_nft(&ns.name, ruleset);
    let memory = slab_and_percpu_bytes().saturating_sub(before);
    let mut change = NftChange {
        bulk,
        add: Vec::new(),
        delete: Vec::new(),
        memory,
    };
    // The inbound ports set of the first policy.
    let set = ruleset.lines().find_map(|l| {
        let name = l.trim().strip_prefix("set ")?.strip_suffix(" {")?;
        (name.starts_with('p') && name.ends_with("_in_ip_1")).then(|| name.to_string())
    });
    let Some(set) = set else {
        return change;
    };
    for trial in 0..2 * trials {
        let verb = if trial % 2 == 0 { "add" } else { "delete" };
        let t0 = Instant::now();
        ns_sh(
            &ns.name,
            &[
                "nft",
                verb,
                "element",
                "inet",
                firewall_agent::nft::TABLE,
                &set,
                "{ 10.77.0.1 . 6 . 7777 }",
            ],
        );
        let took = t0.elapsed().as_secs_f64() * 1e3;
        if trial % 2 == 0 {
            change.add.push(took);
        } else {
            change.delete.push(took);
        }
    }
    change
}
