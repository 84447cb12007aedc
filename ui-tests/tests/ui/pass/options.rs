// `#[fiber]` options land in the node table: the display name, the stack
// size (as a number or with a unit), and the cost hint that ranks nodes.
use fiber_rt::{depends, fiber};

#[fiber(name = "fetch data", stack = "64 KiB")]
fn fetch() -> u32 {
    1
}

#[fiber(cost = 100, stack = 1048576)]
fn heavy(x: &u32) -> u32 {
    x + 1
}

#[fiber(cost = 1)]
fn light(x: &u32) -> u32 {
    x + 2
}

#[fiber]
fn done(a: &u32, b: &u32) -> u32 {
    a + b
}

depends! {
    graph Weighted {
        light(fetch);
        heavy(fetch);
        done(light, heavy);
    }
}

fn main() {
    let (index, fetch) = Weighted::TABLE.node("fetch data").unwrap();
    assert_eq!(index, 0);
    assert_eq!(fetch.field, "fetch");
    assert_eq!(fetch.stack_size, 64 * 1024);
    let (heavy_index, heavy) = Weighted::TABLE.node("heavy").unwrap();
    assert_eq!((heavy.cost, heavy.stack_size), (100, 1 << 20));
    // rank = own cost + the largest rank after it.
    assert_eq!(heavy.rank, 101);
    assert_eq!(fetch.rank, 102);
    // The heavier branch comes first among the successors.
    assert_eq!(fetch.successors[0] as usize, heavy_index);
    assert_eq!(Weighted::TABLE.critical_path(), ["fetch data", "heavy", "done"]);
    let out = fiber_rt::dag::run_with(Weighted, |task| task.run()).unwrap();
    assert_eq!(out.done, 5);
}
