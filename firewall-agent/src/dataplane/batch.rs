//! Batched map writes and reads: `BPF_MAP_UPDATE_BATCH`, `BPF_MAP_DELETE_BATCH` and
//! `BPF_MAP_LOOKUP_BATCH` (Linux 5.6; LPM tries since 5.10), which aya 0.14 does not wrap,
//! through the raw `bpf(2)` syscall on the map's fd. A lookup batch walks the map as
//! `get_next_key` + `lookup` would, inside the kernel: one syscall per [`CHUNK`] entries
//! instead of two per entry.
//!
//! For hash, array and LPM trie maps the kernel's batch commands are its generic ones: one
//! syscall, then the elements one after the other in array order, each exactly as a single
//! `BPF_MAP_UPDATE_ELEM` / `BPF_MAP_DELETE_ELEM` would be (each element is atomic on its own, a
//! lookup sees each earlier element written). The kernel stops at the first element that fails
//! and reports in `count` how many it processed. A map type without batch support answers
//! `EINVAL`/`ENOTSUPP`/`EOPNOTSUPP` before touching anything: the caller then writes one element
//! per syscall.

use std::{
    io,
    os::fd::{AsFd as _, AsRawFd, BorrowedFd},
};

use aya::{
    Pod,
    maps::{IterableMap as _, LpmTrie, MapData, PerCpuArray, lpm_trie::Key},
    util::nr_cpus,
};

use super::{DataplaneError, maps::map_err};

/// `enum bpf_cmd` values (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;
/// The kernel's internal "operation not supported" (include/linux/errno.h), seen by userspace.
const ENOTSUPP: i32 = 524;
/// Elements per syscall: the kernel copies each from userspace on its own, so this only bounds
/// the time one syscall holds the CPU.
const CHUNK: usize = 4096;

/// `union bpf_attr`'s `batch` member, as `BPF_MAP_*_BATCH` read it.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    /// Elements given; on return, elements processed.
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// A batch that stopped early: how many elements were written before `error`.
#[derive(Debug)]
pub(super) struct Partial {
    pub done: usize,
    pub error: io::Error,
}

impl Partial {
    /// The kernel has no batch command for this map type (nothing was written).
    pub fn unsupported(&self) -> bool {
        self.done == 0
            && matches!(
                self.error.raw_os_error(),
                Some(libc::EINVAL | libc::EOPNOTSUPP | ENOTSUPP)
            )
    }
}

fn bpf(cmd: libc::c_long, attr: &mut BatchAttr) -> io::Result<()> {
    // SAFETY: `attr` is a valid `bpf_attr` prefix of the size given; the pointers in it point at
    // `count` keys (and values) of the map's key (value) size, alive for the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut BatchAttr,
            std::mem::size_of::<BatchAttr>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Writes `keys[i]` → `values[i * per_key..(i + 1) * per_key]` in order (`K` and `V` laid out
/// exactly as the map's key and value; a per-CPU map's value is one `V` per possible CPU, each
/// 8-byte aligned, so `per_key` is the number of CPUs).
pub(super) fn update<K, V>(
    map: BorrowedFd<'_>,
    keys: &[K],
    values: &[V],
    per_key: usize,
) -> Result<(), Partial> {
    assert_eq!(keys.len() * per_key, values.len(), "per_key values per key");
    let mut done = 0;
    for (keys, values) in keys.chunks(CHUNK).zip(values.chunks(CHUNK * per_key)) {
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            values: values.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = bpf(BPF_MAP_UPDATE_BATCH, &mut attr);
        done += attr.count.min(keys.len() as u32) as usize;
        if let Err(error) = result {
            return Err(Partial { done, error });
        }
    }
    Ok(())
}

/// Whether the kernel has `BPF_MAP_UPDATE_BATCH` for this map (an empty batch, which writes
/// nothing, is refused before anything else when it has not).
pub(super) fn supported(map: BorrowedFd<'_>) -> bool {
    let mut attr = BatchAttr {
        map_fd: map.as_raw_fd() as u32,
        ..BatchAttr::default()
    };
    bpf(BPF_MAP_UPDATE_BATCH, &mut attr).is_ok()
}

/// Deletes `keys` in order; a key that is not there stops the batch (`ENOENT`).
pub(super) fn delete<K>(map: BorrowedFd<'_>, keys: &[K]) -> Result<(), Partial> {
    let mut done = 0;
    for keys in keys.chunks(CHUNK) {
        let mut attr = BatchAttr {
            keys: keys.as_ptr() as u64,
            count: keys.len() as u32,
            map_fd: map.as_raw_fd() as u32,
            ..BatchAttr::default()
        };
        let result = bpf(BPF_MAP_DELETE_BATCH, &mut attr);
        done += attr.count.min(keys.len() as u32) as usize;
        if let Err(error) = result {
            return Err(Partial { done, error });
        }
    }
    Ok(())
}

/// An LPM trie key as the kernel reads it (`struct bpf_lpm_trie_key_u8`): the prefix length,
/// then the key data.
#[repr(C)]
#[derive(Clone, Copy)]
struct LpmKey<K: Copy> {
    prefix_len: u32,
    data: K,
}

// The kernel reads keys at the map's key size apart: no padding after the data.
const _: () = assert!(
    std::mem::size_of::<LpmKey<firewall_common::PeerKey>>()
        == 4 + std::mem::size_of::<firewall_common::PeerKey>()
);
const _: () = assert!(
    std::mem::size_of::<LpmKey<firewall_common::PortKey>>()
        == 4 + std::mem::size_of::<firewall_common::PortKey>()
);

/// Writes `entries` into an LPM trie in order: batched, or one per syscall where the kernel
/// has no batch for the map. Returns how many were written, and the error that stopped it.
pub(super) fn write_lpm<K: Pod, V: Pod>(
    trie: &mut LpmTrie<MapData, K, V>,
    name: &'static str,
    entries: &[(crate::compiler::LpmKey<K>, V)],
) -> (usize, Result<(), DataplaneError>) {
    let keys: Vec<LpmKey<K>> = entries
        .iter()
        .map(|((prefix_len, data), _)| LpmKey {
            prefix_len: *prefix_len,
            data: *data,
        })
        .collect();
    let values: Vec<V> = entries.iter().map(|(_, v)| *v).collect();
    match update(trie.map().fd().as_fd(), &keys, &values, 1) {
        Ok(()) => (entries.len(), Ok(())),
        Err(partial) if partial.unsupported() => {
            for (done, ((len, key), value)) in entries.iter().enumerate() {
                if let Err(e) = trie.insert(&Key::new(*len, *key), value, 0) {
                    return (done, Err(map_err(name)(e)));
                }
            }
            (entries.len(), Ok(()))
        }
        Err(partial) => (partial.done, Err(batch_err(name, partial))),
    }
}

/// Deletes `keys` from an LPM trie in order, batched where the kernel can. Returns how many were
/// deleted, and the error that stopped it.
pub(super) fn delete_lpm<K: Pod, V: Pod>(
    trie: &mut LpmTrie<MapData, K, V>,
    name: &'static str,
    keys: &[crate::compiler::LpmKey<K>],
) -> (usize, Result<(), DataplaneError>) {
    let raw: Vec<LpmKey<K>> = keys
        .iter()
        .map(|(prefix_len, data)| LpmKey {
            prefix_len: *prefix_len,
            data: *data,
        })
        .collect();
    match delete(trie.map().fd().as_fd(), &raw) {
        Ok(()) => (keys.len(), Ok(())),
        Err(partial) if partial.unsupported() => {
            for (done, (len, key)) in keys.iter().enumerate() {
                if let Err(e) = trie.remove(&Key::new(*len, *key)) {
                    return (done, Err(map_err(name)(e)));
                }
            }
            (keys.len(), Ok(()))
        }
        Err(partial) => (partial.done, Err(batch_err(name, partial))),
    }
}

/// One `BPF_MAP_LOOKUP_BATCH` call on the map `fd`: up to `count` entries after the key
/// `after` (`None`: from the map's first key) into `keys` and `values`; the key to continue
/// after is left in `next`. Returns how many entries were read, and the call's result
/// (`ENOENT`: the walk reached the map's end, with the entries read so far).
fn lookup_batch<K, V>(
    fd: u32,
    after: Option<&K>,
    next: &mut K,
    keys: &mut [K],
    values: &mut [V],
    count: usize,
) -> (usize, io::Result<()>) {
    let mut attr = BatchAttr {
        in_batch: after.map_or(0, |key| key as *const K as u64),
        out_batch: next as *mut K as u64,
        keys: keys.as_mut_ptr() as u64,
        values: values.as_mut_ptr() as u64,
        count: count as u32,
        map_fd: fd,
        ..BatchAttr::default()
    };
    let result = bpf(BPF_MAP_LOOKUP_BATCH, &mut attr);
    ((attr.count as usize).min(count), result)
}

/// Every entry of an LPM trie, batched where the kernel can (else through aya's iterator: two
/// syscalls per entry).
pub(super) fn read_lpm<K: Pod, V: Pod>(
    trie: &LpmTrie<MapData, K, V>,
    name: &'static str,
) -> Result<Vec<(crate::compiler::LpmKey<K>, V)>, DataplaneError> {
    // SAFETY (the `zeroed` below): `K` and `V` are `Pod`, valid for any bytes, zeroes included.
    let zero_key = || LpmKey::<K> {
        prefix_len: 0,
        data: unsafe { std::mem::zeroed() },
    };
    let mut keys = vec![zero_key(); CHUNK];
    let mut values: Vec<V> = vec![unsafe { std::mem::zeroed() }; CHUNK];
    let (mut token, mut next) = (zero_key(), zero_key());
    let mut out = Vec::new();
    let fd = trie.map().fd().as_fd().as_raw_fd() as u32;
    for round in 0.. {
        // The first call starts at the map's first key; later ones after the last one read.
        let after = (round > 0).then_some(&token);
        let (read, result) = lookup_batch(fd, after, &mut next, &mut keys, &mut values, CHUNK);
        out.extend(
            keys[..read]
                .iter()
                .zip(&values[..read])
                .map(|(k, v)| ((k.prefix_len, k.data), *v)),
        );
        match result {
            Ok(()) => token = next,
            // The walk reached the end.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
            Err(error) => {
                let partial = Partial { done: 0, error };
                if round == 0 && partial.unsupported() {
                    return trie
                        .iter()
                        .map(|entry| {
                            let (key, value) = entry.map_err(map_err(name))?;
                            Ok(((key.prefix_len(), key.data()), value))
                        })
                        .collect();
                }
                return Err(batch_err(name, partial));
            }
        }
    }
    unreachable!("the loop returns")
}

/// The first `len` slots of a per-CPU `u64` array, each summed over the CPUs, batched where the
/// kernel can (else one `bpf_map_lookup_elem` per slot). An array's lookup batch walks the slots
/// in index order; each value comes as one `u64` per possible CPU (the kernel rounds a per-CPU
/// value up to 8 bytes).
pub(super) fn read_per_cpu_sums(
    array: &PerCpuArray<MapData, u64>,
    name: &'static str,
    len: u32,
) -> Result<Vec<u64>, DataplaneError> {
    let cpus = nr_cpus().map_err(|(_, error)| DataplaneError::Batch {
        name,
        done: 0,
        source: error,
    })?;
    let mut keys = vec![0u32; CHUNK];
    let mut values = vec![0u64; CHUNK * cpus];
    let (mut token, mut next) = (0u32, 0u32);
    let mut sums: Vec<u64> = Vec::with_capacity(len as usize);
    let fd = array.map().fd().as_fd().as_raw_fd() as u32;
    while sums.len() < len as usize {
        let wanted = (len as usize - sums.len()).min(CHUNK);
        // The first call starts at slot 0; later ones after the last one read.
        let after = (!sums.is_empty()).then_some(&token);
        let (read, result) = lookup_batch(fd, after, &mut next, &mut keys, &mut values, wanted);
        sums.extend(
            values[..read * cpus]
                .chunks(cpus)
                .map(|per_cpu| per_cpu.iter().sum::<u64>()),
        );
        match result {
            Ok(()) => token = next,
            // The walk reached the array's end.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => break,
            Err(error) => {
                let partial = Partial { done: 0, error };
                if sums.is_empty() && partial.unsupported() {
                    return (0..len)
                        .map(|slot| {
                            let per_cpu = array.get(&slot, 0).map_err(map_err(name))?;
                            Ok(per_cpu.iter().sum())
                        })
                        .collect();
                }
                return Err(batch_err(name, partial));
            }
        }
    }
    Ok(sums)
}

fn batch_err(name: &'static str, partial: Partial) -> DataplaneError {
    DataplaneError::Batch {
        name,
        done: partial.done,
        source: partial.error,
    }
}
