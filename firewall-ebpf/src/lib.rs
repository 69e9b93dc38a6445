//! Empty host-side library target so workspace-wide commands (check, clippy, doc) have something
//! to build; the data plane itself is `main.rs`, built only for `bpfel-unknown-none`.
#![no_std]
