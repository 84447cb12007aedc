// `links = "fiber_asm"` in Cargo.toml needs a build script; it has nothing else to do.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
}
