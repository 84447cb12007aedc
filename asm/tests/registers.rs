//! The switch keeps every callee-saved register on both sides; MXCSR and
//! the x87 control word are kept per side with the `fp-control` feature,
//! and otherwise pass through a switch untouched (they are the thread's).
//! Each side loads distinctive values into them with inline assembly right
//! before it calls the switch, and reads them right after it returns, with
//! no compiler-generated code in between that could mask a register the
//! switch forgot.

use std::ptr::NonNull;

use fiber_asm::{init_stack, switch, Exit, StackPointer};

/// rbx, rbp, r12, r13, r14, r15, MXCSR, x87 control word.
type Regs = [u64; 8];

/// Loads `set` into the callee-saved registers, calls the switch, and stores
/// what the registers hold when it returns into `got`.
///
/// # Safety
///
/// As for [`fiber_asm::switch`].
unsafe fn switch_with(
    save: *mut StackPointer,
    load: StackPointer,
    value: usize,
    set: &Regs,
    got: &mut Regs,
) -> usize {
    let ret: usize;
    // SAFETY: the block saves and restores rbx, rbp, rsp, MXCSR and the x87
    // control word itself, declares r12-r15 and all caller-saved registers
    // clobbered, and calls the switch on a 16-byte aligned stack.
    unsafe {
        std::arch::asm!(
            "mov rax, rsp",
            "and rsp, -16",
            "push rax",            // caller's rsp
            "push rbx",            // rbx and rbp cannot be asm operands
            "push rbp",
            "push r9",             // where to report
            "sub rsp, 16",
            "stmxcsr [rsp]",       // caller's MXCSR and x87 control word
            "fnstcw [rsp + 4]",
            "mov rbx, [r8]",
            "mov rbp, [r8 + 8]",
            "mov r12, [r8 + 16]",
            "mov r13, [r8 + 24]",
            "mov r14, [r8 + 32]",
            "mov r15, [r8 + 40]",
            "ldmxcsr [r8 + 48]",
            "fldcw [r8 + 56]",
            "call {switch}",
            "mov r9, [rsp + 16]",
            "mov [r9], rbx",
            "mov [r9 + 8], rbp",
            "mov [r9 + 16], r12",
            "mov [r9 + 24], r13",
            "mov [r9 + 32], r14",
            "mov [r9 + 40], r15",
            "mov qword ptr [r9 + 48], 0",
            "stmxcsr [r9 + 48]",
            "mov qword ptr [r9 + 56], 0",
            "fnstcw [r9 + 56]",
            "ldmxcsr [rsp]",
            "fldcw [rsp + 4]",
            "add rsp, 24",
            "pop rbp",
            "pop rbx",
            "pop rsp",
            switch = sym raw_switch,
            inout("rdi") save => _,
            inout("rsi") load.0.as_ptr() => _,
            inout("rdx") value => _,
            inout("r8") set.as_ptr() => _,
            inout("r9") got.as_mut_ptr() => _,
            lateout("rax") ret,
            out("r12") _, out("r13") _, out("r14") _, out("r15") _,
            clobber_abi("sysv64"),
        );
    }
    ret
}

/// The symbol itself, so the asm block can `call` it directly.
unsafe extern "sysv64" fn raw_switch(
    save: *mut StackPointer,
    load: StackPointer,
    value: usize,
) -> usize {
    // SAFETY: forwarded from switch_with's caller.
    unsafe { switch(save, load, value) }
}

const MAIN_REGS: Regs = [
    0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 0x7F80, 0x0C7F,
];
const FIBER_REGS: Regs = [
    0xAAAA, 0xBBBB, 0xCCCC, 0xDDDD, 0xEEEE, 0xFFFF, 0x3F80, 0x077F,
];
/// The control words the fiber leaves loaded as it finishes (round up in
/// both): only the last two words count.
const EXIT_REGS: Regs = [0, 0, 0, 0, 0, 0, 0x5F80, 0x0B7F];

/// What `mine` reads right after a switch back from a side that loaded
/// `other`: the integer registers are always its own; the control words
/// too with `fp-control`, and otherwise those the other side left.
fn expected(mine: &Regs, other: &Regs) -> Regs {
    let mut regs = *mine;
    if !fiber_asm::KEEPS_FP_CONTROL {
        regs[6..].copy_from_slice(&other[6..]);
    }
    regs
}

struct Shared {
    main_sp: Option<StackPointer>,
    fiber_sp: Option<StackPointer>,
    fiber_saw: Regs,
    fiber_got_value: usize,
}

unsafe extern "sysv64" fn fiber_entry(value: usize, data: *mut u8) -> Exit {
    // SAFETY: `data` is the `Shared` the test passed to init_stack.
    let shared = unsafe { &mut *(data as *mut Shared) };
    shared.fiber_got_value = value;
    let mut got = [0; 8];
    // SAFETY: main's context was saved by the switch that started us.
    let back = unsafe {
        switch_with(
            &mut shared.fiber_sp as *mut _ as *mut StackPointer,
            shared.main_sp.unwrap(),
            20,
            &FIBER_REGS,
            &mut got,
        )
    };
    shared.fiber_saw = got;
    let (mxcsr, cw) = (EXIT_REGS[6] as u32, EXIT_REGS[7] as u16);
    // SAFETY: loads the two control registers from valid locals; no
    // floating-point code runs on this side before the exit path, which
    // either leaves them to main (without `fp-control`) or loads main's.
    unsafe {
        std::arch::asm!(
            "ldmxcsr [{m}]",
            "fldcw [{c}]",
            m = in(reg) &mxcsr,
            c = in(reg) &cw,
            options(nostack, readonly, preserves_flags),
        )
    };
    Exit {
        to: shared.main_sp.unwrap(),
        value: back + 1,
    }
}

#[test]
fn callee_saved_state_survives_switches_both_ways() {
    let mut memory = vec![0u128; 64 * 1024 / 16];
    let top = memory.as_mut_ptr_range().end as *mut u8;
    let mut shared = Shared {
        main_sp: None,
        fiber_sp: None,
        fiber_saw: [0; 8],
        fiber_got_value: 0,
    };
    let data = &mut shared as *mut Shared as *mut u8;
    // SAFETY: `memory` outlives the fiber and `top` is 16-aligned.
    let sp = unsafe { init_stack(NonNull::new(top).unwrap(), fiber_entry, data) };

    let mut got = [0; 8];
    // SAFETY: a fresh context; main's goes to `main_sp`. Access through the
    // raw pointer only, as the fiber does.
    let first = unsafe {
        let main_sp = &mut (*(data as *mut Shared)).main_sp as *mut _ as *mut StackPointer;
        switch_with(main_sp, sp, 10, &MAIN_REGS, &mut got)
    };
    assert_eq!(first, 20, "the fiber's value reaches main");
    assert_eq!(
        got,
        expected(&MAIN_REGS, &FIBER_REGS),
        "main's registers after the fiber ran with others"
    );

    let mut got = [0; 8];
    // SAFETY: the fiber suspended itself into `fiber_sp`.
    let last = unsafe {
        let s = &mut *(data as *mut Shared);
        let fiber_sp = s.fiber_sp.unwrap();
        switch_with(
            &mut s.main_sp as *mut _ as *mut StackPointer,
            fiber_sp,
            30,
            &MAIN_REGS,
            &mut got,
        )
    };
    assert_eq!(last, 31, "the entry's Exit value reaches main");
    // The exit path loads main's control words with `fp-control`, and
    // leaves those the fiber finished with otherwise.
    assert_eq!(got, expected(&MAIN_REGS, &EXIT_REGS));
    assert_eq!(
        shared.fiber_got_value, 10,
        "the first switch's value is the entry's argument"
    );
    assert_eq!(
        shared.fiber_saw,
        expected(&FIBER_REGS, &MAIN_REGS),
        "the fiber's registers after main ran with others"
    );
}
