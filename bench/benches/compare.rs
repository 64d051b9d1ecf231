//! The side-by-side runner (`harness = false`): see the crate docs of `hotconf_bench`.

fn main() {
    hotconf_bench::main();
}
