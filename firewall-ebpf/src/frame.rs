//! The packet as the two hooks hand it over: a TC `__sk_buff` or an XDP `xdp_md`. Parsing,
//! conntrack, policy and flow logs see only this trait, so both hooks run the same code.

use aya_ebpf::programs::{TcContext, XdpContext};

/// One frame, from its Ethernet header on.
pub trait Frame {
    /// Start of the directly readable bytes.
    fn data(&self) -> usize;
    /// One past their end.
    fn data_end(&self) -> usize;
    /// The whole frame's length (the per-flow byte counters).
    fn len(&self) -> u32;
    /// The interface the hook runs on (the host-side veth).
    fn ifindex(&self) -> u32;
    /// Reads bytes beyond `data_end`, where the frame has any; `Err` if it has none.
    fn load_beyond<T>(&self, offset: usize) -> Result<T, ()>;
}

impl Frame for TcContext {
    #[inline(always)]
    fn data(&self) -> usize {
        TcContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        TcContext::data_end(self)
    }

    #[inline(always)]
    fn len(&self) -> u32 {
        TcContext::len(self)
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: the context pointer is valid for the whole program run.
        unsafe { (*self.skb.skb).ifindex }
    }

    /// A non-linear skb: `bpf_skb_load_bytes` copies from its fragments.
    #[inline(always)]
    fn load_beyond<T>(&self, offset: usize) -> Result<T, ()> {
        self.load::<T>(offset).map_err(|_| ())
    }
}

/// The XDP program is loaded without `xdp.frags`, so the kernel only runs it on frames held in
/// one buffer: `[data, data_end)` is the whole frame.
impl Frame for XdpContext {
    #[inline(always)]
    fn data(&self) -> usize {
        XdpContext::data(self)
    }

    #[inline(always)]
    fn data_end(&self) -> usize {
        XdpContext::data_end(self)
    }

    #[inline(always)]
    fn len(&self) -> u32 {
        (XdpContext::data_end(self) - XdpContext::data(self)) as u32
    }

    #[inline(always)]
    fn ifindex(&self) -> u32 {
        // SAFETY: the context pointer is valid for the whole program run.
        unsafe { (*self.ctx).ingress_ifindex }
    }

    #[inline(always)]
    fn load_beyond<T>(&self, _offset: usize) -> Result<T, ()> {
        Err(())
    }
}
