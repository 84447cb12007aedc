// `#[fiber_rt::main]` rejects `async fn`: the body runs as a fiber, a
// plain function that may block; a future is waited for with
// `fiber_rt::block_on_future`. The function is still emitted as written,
// so rustc's own error about an `async` main follows.
#[fiber_rt::main]
async fn main() {
    let answer = async { 42 }.await;
    assert_eq!(answer, 42);
}
