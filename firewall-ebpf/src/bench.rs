//! Programs for the benchmarks only (never attached by the agent): the floors the data plane is
//! compared with in the same run, and the in-kernel packet injector.

use aya_ebpf::{
    bindings::{tcx_action_base::TCX_NEXT, xdp_action::XDP_PASS},
    macros::{classifier, map, xdp},
    maps::{HashMap, LpmTrie, lpm_trie::Key},
    programs::{TcContext, XdpContext},
};

/// Sized by the benchmark at load time.
#[map]
static BENCH_HASH: HashMap<u32, u32> = HashMap::with_max_entries(16, 0);

#[map]
static BENCH_LPM: LpmTrie<[u8; 4], u32> = LpmTrie::with_max_entries(16, 0);

/// Floor: a TC program that does nothing.
#[classifier]
pub fn bench_empty(_ctx: TcContext) -> i32 {
    TCX_NEXT
}

/// Floor: one hash lookup keyed by the IPv4 source address.
#[classifier]
pub fn bench_hash(ctx: TcContext) -> i32 {
    let key: u32 = ctx.load(26).unwrap_or(0);
    // SAFETY: read-only lookup.
    let hit = unsafe { BENCH_HASH.get(&key) }.is_some();
    if hit { TCX_NEXT } else { 2 }
}

/// Floor: one LPM lookup of the IPv4 source address.
#[classifier]
pub fn bench_lpm(ctx: TcContext) -> i32 {
    let addr: [u8; 4] = ctx.load(26).unwrap_or([0; 4]);
    if BENCH_LPM.get(Key::new(32, addr)).is_some() {
        TCX_NEXT
    } else {
        2
    }
}

/// The injector: with BPF_F_TEST_XDP_LIVE_FRAMES every frame it passes goes up the stack of the
/// interface named in the test run's context, as if received there.
#[xdp]
pub fn bench_inject(_ctx: XdpContext) -> u32 {
    XDP_PASS
}
