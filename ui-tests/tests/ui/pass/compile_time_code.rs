// Loops evaluated at compile time inside a fiber (a `const` block, an
// array length) get no preemption probe, which could not be called there.
use fiber_rt::{depends, fiber, Runtime};

#[fiber]
fn three() -> u32 {
    const {
        let mut i = 0;
        while i < 3 {
            i += 1;
        }
        i
    }
}

#[fiber]
fn buffer(n: &u32) -> usize {
    let bytes = [0u8; {
        let mut n = 0;
        while n < 4 {
            n += 1;
        }
        n
    }];
    bytes.len() + *n as usize
}

depends! {
    graph Constants {
        buffer(three);
    }
}

fn main() {
    let rt = Runtime::new().unwrap();
    assert_eq!(rt.run(Constants).unwrap().buffer, 7);
}
