//! Programs for the benchmarks only (never attached by the agent): the floors the data plane is
//! compared with in the same run, and the in-kernel packet injector.

use aya_ebpf::{
    bindings::{tcx_action_base::TCX_NEXT, xdp_action::XDP_PASS},
    helpers::bpf_ktime_get_coarse_ns,
    macros::{classifier, map, xdp},
    maps::{HashMap, LpmTrie, PerCpuArray, ProgramArray, lpm_trie::Key},
    programs::{TcContext, XdpContext},
};
use firewall_common::CtKey;

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

/// Floor: an XDP program that does nothing.
#[xdp]
pub fn bench_empty_xdp(_ctx: XdpContext) -> u32 {
    XDP_PASS
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

/// A conntrack-shaped table (the data plane's 44-byte key), for the key-size floor.
#[map]
static BENCH_CT44: HashMap<CtKey, u64> = HashMap::with_max_entries(16, 0);

/// The same with a 16-byte key (an IPv4 5-tuple and an interface).
#[map]
static BENCH_CT16: HashMap<[u32; 4], u64> = HashMap::with_max_entries(16, 0);

/// Floor: one lookup of a zeroed 44-byte key in `BENCH_CT44` (the benchmark inserts it).
#[classifier]
pub fn bench_ct44(_ctx: TcContext) -> i32 {
    let key = CtKey {
        ifindex: 1,
        family: 0,
        proto: 0,
        _pad: [0; 2],
        addr_lo: [0; 16],
        addr_hi: [0; 16],
        port_lo: [0; 2],
        port_hi: [0; 2],
    };
    // SAFETY: read-only lookup.
    if unsafe { BENCH_CT44.get(&key) }.is_some() {
        TCX_NEXT
    } else {
        2
    }
}

/// Floor: one lookup of a 16-byte key in `BENCH_CT16` (the benchmark inserts it).
#[classifier]
pub fn bench_ct16(_ctx: TcContext) -> i32 {
    let key = [1u32, 0, 0, 0];
    // SAFETY: read-only lookup.
    if unsafe { BENCH_CT16.get(&key) }.is_some() {
        TCX_NEXT
    } else {
        2
    }
}

/// Floor: one coarse clock read (the helper conntrack calls on every tracked packet).
#[classifier]
pub fn bench_clock(_ctx: TcContext) -> i32 {
    let now = unsafe { bpf_ktime_get_coarse_ns() };
    if now != 0 { TCX_NEXT } else { 2 }
}

/// The injector's settings, patched by the benchmark at load time. The live-frame pages are
/// recycled with the changes the stack made to them (forwarding writes the next hop's Ethernet
/// header and decrements the TTL in place), so every frame gets back `INJECT_HEAD`, its first 16
/// bytes (Ethernet header, IP version and TOS), and `INJECT_IP_WORD`, bytes 8–11 of its IPv4
/// header (TTL, protocol, checksum). `INJECT_FLOWS`: 0 sends one flow; n rewrites the UDP source
/// port to `seq % n` (checksum zeroed), so the frames cycle through n flows.
#[unsafe(no_mangle)]
static INJECT_HEAD: aya_ebpf::Global<[u32; 4]> = aya_ebpf::Global::new([0; 4]);
#[unsafe(no_mangle)]
static INJECT_IP_WORD: aya_ebpf::Global<u32> = aya_ebpf::Global::new(0);
#[unsafe(no_mangle)]
static INJECT_FLOWS: aya_ebpf::Global<u32> = aya_ebpf::Global::new(0);

/// Frames injected so far (the run is on one CPU).
#[map]
static INJECT_SEQ: PerCpuArray<u32> = PerCpuArray::with_max_entries(1, 0);

const UDP_AT: usize = 14 + 20;

/// Slot 0: the XDP program the injected frames go through before they go up the stack (the
/// data plane's `sg_from_workload_xdp`, as it would run at the veth's XDP hook); empty: none.
#[map]
static INJECT_THEN: ProgramArray = ProgramArray::with_max_entries(1, 0);

/// The injector: with BPF_F_TEST_XDP_LIVE_FRAMES every frame it passes goes up the stack of the
/// interface named in the test run's context, as if received there (the XDP program attached
/// to that interface does not run: `INJECT_THEN` stands in for it). It expects Ethernet + IPv4
/// without options + UDP.
#[xdp]
pub fn bench_inject(ctx: XdpContext) -> u32 {
    let (start, end) = (ctx.data(), ctx.data_end());
    if start + UDP_AT + 8 > end {
        return XDP_PASS;
    }
    // SAFETY: within [data, data_end), checked above; the frame is ours to rewrite.
    unsafe {
        core::ptr::write_unaligned(start as *mut [u32; 4], INJECT_HEAD.load());
        core::ptr::write_unaligned((start + 22) as *mut u32, INJECT_IP_WORD.load());
    }
    let flows = INJECT_FLOWS.load();
    if flows != 0
        && let Some(seq) = INJECT_SEQ.get_ptr_mut(0)
    {
        // SAFETY: this CPU's slot; nothing else writes it while the program runs.
        let n = unsafe {
            let n = *seq;
            *seq = n.wrapping_add(1);
            n
        };
        let port = (n % flows) as u16;
        // SAFETY: within the bounds checked above.
        unsafe {
            core::ptr::write_unaligned((start + UDP_AT) as *mut [u8; 2], port.to_be_bytes());
            core::ptr::write_unaligned((start + UDP_AT + 6) as *mut [u8; 2], [0, 0]);
        }
    }
    // SAFETY: a tail call replaces this program with slot 0's (its verdict is the frame's); an
    // empty slot returns here.
    unsafe { INJECT_THEN.tail_call(&ctx, 0) };
    XDP_PASS
}
