// The body's result comes back from its fiber to the thread that called
// `main`, so the return type must be `Send`: `Box<dyn Error>` is not
// (`Box<dyn Error + Send + Sync>` is), and rustc says so on it.
#[fiber_rt::main]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "42".parse()?;
    assert_eq!(n, 42);
    Ok(())
}
