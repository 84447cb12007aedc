// `main` may return any `Termination`, as a plain `main` may, errors that
// are not `Send` included (`Box<dyn Error>`, the usual one): its fiber
// reports the value itself, and only the exit code leaves the fiber.
use std::error::Error;

#[fiber_rt::main(workers = 1)]
fn main() -> Result<(), Box<dyn Error>> {
    let not_send = std::rc::Rc::new(6);
    let n: u64 = "7".parse()?;
    assert_eq!(fiber_rt::spawn(move || n * 6).join()?, 42);
    assert_eq!(*not_send, 6);
    Ok(())
}
