//! Rebuild the object when the linker changes (an undeclared input of the eBPF build).
fn main() {
    if let Some(linker) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bpf-linker"))
            .find(|path| path.exists())
    }) {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
