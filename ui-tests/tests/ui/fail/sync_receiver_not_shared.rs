// An mpsc receiver has one owner: it may move between fibers but not be
// shared, since the channel keeps a single waiting receiver.
use fiber_rt::sync::mpsc;

fn shared<T: Sync>(_: &T) {}

fn main() {
    let (_tx, rx) = mpsc::unbounded::<u32>();
    shared(&rx);
}
