// `main` may return `impl Termination`, whose error need not be `Send`:
// the fiber reports it, and only the exit code leaves the fiber.
use std::process::Termination;

#[fiber_rt::main(workers = 1)]
fn main() -> impl Termination {
    let not_send = std::rc::Rc::new(1);
    let result: Result<(), Box<dyn std::error::Error>> = Ok(());
    assert_eq!(*not_send, 1);
    result
}
