// `r#name` and `name` are one name: a fiber that depends on itself under
// the other spelling is refused as a self-dependency, not silently run
// without that edge.
use fiber_rt::{depends, fiber};

#[fiber]
fn count() -> u32 {
    1
}

depends! {
    graph Again {
        r#count(count);
    }
}

fn main() {}
