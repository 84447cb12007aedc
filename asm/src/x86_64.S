// fiber-asm: context switch and entry trampoline, x86_64 System V (Linux).
// Intel syntax, assembled by rustc through `global_asm!` (no C preprocessor).
//
// A suspended context is a "switch frame" on its own stack. The stored stack
// pointer points at its lowest word:
//
//          high addresses
//    +------------------------+
//    | return address         |  sp + 56   pushed by the `call` into the switch
//    | rbp                    |  sp + 48
//    | rbx                    |  sp + 40
//    | r12                    |  sp + 32
//    | r13                    |  sp + 24
//    | r14                    |  sp + 16
//    | r15                    |  sp + 8
//    | pad | x87 CW | MXCSR   |  sp + 0    MXCSR at +0 (4 bytes), x87 CW at +4 (2 bytes)
//    +------------------------+  <- stored stack pointer
//          low addresses
//
// Only callee-saved state is kept: the six integer registers above, and,
// when FIBER_ASM_FP_CONTROL is 1 (fiber-asm's `fp-control` feature), the
// MXCSR control bits and the x87 control word. Everything else is
// caller-saved, so the compiler has already spilled what it needs before it
// called us.
//
// Why the control words are not kept by default: Rust assumes they hold the
// ABI's defaults wherever Rust code runs (changing them is undefined
// behaviour, which is why `_mm_setcsr` is deprecated), and every switch is
// called from Rust code, so a switch would only ever save and load the
// defaults. Reading MXCSR (`stmxcsr`) costs about 5.5 ns on the machines
// this was measured on, over a third of a bare switch. Without the feature
// the control words belong to the thread, as they do for async tasks and
// for corosensei's coroutines; the slot stays in the frame either way, so
// the frame has one shape and everything that reads it (init_stack,
// fiber-rt's frame walker) one layout.
//
// A new stack, as `init_stack` lays it out (top is 16-byte aligned):
//
//    +------------------------+  <- top
//    | 0                      |  top - 8    never read: keeps the trampoline aligned
//    | 0                      |  top - 16
//    | fiber_asm_trampoline   |  top - 24   "return address" of the first switch
//    | rbp = 0                |  top - 32   ends the frame-pointer chain
//    | rbx = 0                |  top - 40
//    | r12 = entry function   |  top - 48
//    | r13 = entry data       |  top - 56
//    | r14 = 0                |  top - 64
//    | r15 = 0                |  top - 72
//    | MXCSR 0x1F80, CW 0x37F |  top - 80   the ABI's initial control state
//                                         (read only with FIBER_ASM_FP_CONTROL)
//    +------------------------+  <- initial stack pointer

    .text

// ---------------------------------------------------------------------------
// usize fiber_asm_switch(void **save_sp  /* rdi */,
//                        void  *load_sp  /* rsi */,
//                        usize  value    /* rdx */)
//
// Register contract:
//   in:   rdi = where to store this context's stack pointer
//         rsi = stack pointer of the context to resume (a switch frame)
//         rdx = value handed to the resumed side
//   out:  rax = the value handed to *this* side when something switches back
//   kept: rbx, rbp, r12-r15, rsp; with FIBER_ASM_FP_CONTROL also the MXCSR
//         control bits and the x87 control word (without it a switch
//         leaves both as they are: they are the thread's)
//   clobbered: all other registers, as for any call
//
// The resumed side returns from its own earlier call to fiber_asm_switch (or,
// for a new stack, "returns" into fiber_asm_trampoline) with rax = value.
// ---------------------------------------------------------------------------
    .globl  fiber_asm_switch
    .type   fiber_asm_switch, @function
    .p2align 4
fiber_asm_switch:
    .cfi_startproc
    push    rbp                     // save callee-saved registers on our stack
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbp, -16
    push    rbx
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbx, -24
    push    r12
    .cfi_adjust_cfa_offset 8
    .cfi_offset r12, -32
    push    r13
    .cfi_adjust_cfa_offset 8
    .cfi_offset r13, -40
    push    r14
    .cfi_adjust_cfa_offset 8
    .cfi_offset r14, -48
    push    r15
    .cfi_adjust_cfa_offset 8
    .cfi_offset r15, -56
    sub     rsp, 8                  // the control-word slot (see the top)
    .cfi_adjust_cfa_offset 8
.if FIBER_ASM_FP_CONTROL
    // Reading MXCSR is the slow part of the switch on the machines this
    // was measured on: `stmxcsr` takes about 5.5 ns, and reading the stored
    // value back stalls another 2.5 ns, while `ldmxcsr` and the x87
    // instructions cost under 1 ns each. So MXCSR is stored and never read
    // back here, and the other side's is loaded unconditionally; the cheap
    // x87 control word is compared and loaded only when it differs.
    stmxcsr [rsp]                   // MXCSR (rounding, exception masks, FTZ/DAZ)
    fnstcw  [rsp + 4]               // x87 control word (precision, rounding)
    movzx   ecx, word ptr [rsp + 4] // our x87 control word, for the compare
.endif
    mov     [rdi], rsp              // publish where this context can be resumed
    mov     rsp, rsi                // now on the other stack; same frame shape,
                                    // so the CFI above stays true
.if FIBER_ASM_FP_CONTROL
    ldmxcsr [rsp]                   // the resumed side's MXCSR
    cmp     cx, [rsp + 4]           // the same x87 control word?
    jne     .Lfiber_asm_load_cw     // no: load it (out of line)
.endif
.Lfiber_asm_pop:
    .cfi_remember_state             // a whole frame: what the code below
                                    // this block starts from again
    add     rsp, 8                  // drop the control-word slot
    .cfi_adjust_cfa_offset -8
    pop     r15                     // restore callee-saved registers
    .cfi_adjust_cfa_offset -8
    pop     r14
    .cfi_adjust_cfa_offset -8
    pop     r13
    .cfi_adjust_cfa_offset -8
    pop     r12
    .cfi_adjust_cfa_offset -8
    pop     rbx
    .cfi_adjust_cfa_offset -8
    pop     rbp
    .cfi_adjust_cfa_offset -8
    mov     rax, rdx                // the handed-over value is the return value
    pop     rcx                     // the resumed side's return address
    .cfi_adjust_cfa_offset -8
    jmp     rcx                     // an indirect jump, not `ret`: the return
                                    // predictor holds *our* caller, and a
                                    // mispredicted `ret` costs more than the
                                    // whole rest of the switch
    .cfi_restore_state              // the paths below start on a whole frame
.Lfiber_asm_restore:
    // Entered by a jump from the trampoline's exit path with rsp = a switch
    // frame and rdx = the value to hand over: with FIBER_ASM_FP_CONTROL,
    // load both control words first.
.if FIBER_ASM_FP_CONTROL
    ldmxcsr [rsp]                   // the resumed side's MXCSR
.Lfiber_asm_load_cw:
    fldcw   [rsp + 4]               // the resumed side's x87 control word
.endif
    jmp     .Lfiber_asm_pop         // then pop its frame as above
    .cfi_endproc
    .size   fiber_asm_switch, . - fiber_asm_switch

// ---------------------------------------------------------------------------
// fiber_asm_trampoline: first code to run on a new stack. Never called; the
// first switch to a new stack "returns" into it.
//
// Register contract:
//   in:   rax = value of the first switch, r12 = entry function,
//         r13 = entry data, rbp = 0, rsp = top - 16 (16-byte aligned)
//   calls entry(value /* rdi */, data /* rsi */), which returns a pair
//         (rax = stack pointer to switch to, rdx = value to hand over)
//   out:  never returns; switches to rax for good. The stack it ran on is
//         dead afterwards and may be freed by whoever is resumed.
//
// `.cfi_undefined rip` marks this as the outermost frame: gdb's `bt` and
// unwinders stop here cleanly instead of walking into whatever lies above
// the fiber's stack.
// ---------------------------------------------------------------------------
    .globl  fiber_asm_trampoline
    .type   fiber_asm_trampoline, @function
    .p2align 4
fiber_asm_trampoline:
    .cfi_startproc
    .cfi_undefined rip              // no caller: this is the fiber's base
    mov     rdi, rax                // arg 1: value of the first switch
    mov     rsi, r13                // arg 2: entry data
    call    r12                     // entry(value, data); rsp is 16-aligned here
    mov     rsp, rax                // entry is done: jump onto the target stack
    jmp     .Lfiber_asm_restore     // and resume it with rdx as its value
    .cfi_endproc
    .size   fiber_asm_trampoline, . - fiber_asm_trampoline

// ---------------------------------------------------------------------------
// void fiber_asm_call_on_stack(usize  arg   /* rdi */,
//                              void (*f)(usize) /* rsi */,
//                              void  *top   /* rdx */)
//
// Calls f(arg) with the stack pointer at `top` (another stack), and returns
// on the caller's own stack once f returns. No context is made: f runs as
// part of the caller, which may itself be a fiber that switches away while
// f runs (its switch frame then lies on the new stack).
//
//    caller's stack                      new stack
//    +----------------------+            +----------------------+ <- top
//    | return address       |            | return address       |  into this
//    | saved rbp            | <- rbp     | f's frames ...       |  routine
//    +----------------------+            +----------------------+
//
// rbp holds the caller's stack pointer meanwhile: it is callee-saved, so f
// and every switch keep it, and the CFI below names it as the frame's base,
// so debuggers and unwinders walk from f's frames back onto the caller's.
//
// Register contract:
//   in:   rdi = argument for f, passed on in rdi
//         rsi = f, a System V function taking one integer argument
//         rdx = top of the new stack, 16-byte aligned
//   out:  nothing
//   kept: rbx, rbp, r12-r15, rsp (as any call)
//   clobbered: all other registers, as for any call
// ---------------------------------------------------------------------------
    .globl  fiber_asm_call_on_stack
    .type   fiber_asm_call_on_stack, @function
    .p2align 4
fiber_asm_call_on_stack:
    .cfi_startproc
    push    rbp                     // keep the caller's rbp
    .cfi_adjust_cfa_offset 8
    .cfi_offset rbp, -16
    mov     rbp, rsp                // rbp = our frame on the caller's stack
    .cfi_def_cfa_register rbp       // the frame's base is now found from rbp
    mov     rsp, rdx                // onto the new stack; aligned for a call
    call    rsi                     // f(arg): rdi still holds arg
    mov     rsp, rbp                // back onto the caller's stack
    .cfi_def_cfa_register rsp       // and the frame's base from rsp again
    pop     rbp                     // the caller's rbp
    .cfi_adjust_cfa_offset -8
    ret                             // to the caller
    .cfi_endproc
    .size   fiber_asm_call_on_stack, . - fiber_asm_call_on_stack

// ---------------------------------------------------------------------------
// fiber_asm_preempt_flag: one byte of thread-local storage in every thread.
// fiber-rt's preemption monitor sets it (non-zero) on the thread whose fiber
// has run past its time slice; the probes compiled into fiber code read it
// and yield when it is set. It lives here, and not in a Rust thread-local,
// so that every reader can name it through the initial-exec model and read
// the *current* thread's copy each time (LLVM may keep a Rust thread-local's
// address across a call that switches fibers, rust-lang/rust#98479), and
// because `links = "fiber_asm"` keeps one definition per program.
//
// How code reaches it (see `preempt_flag` in lib.rs):
//   mov  rax, qword ptr [rip + fiber_asm_preempt_flag@gottpoff]
//        // its offset from the thread pointer, from the GOT; in an
//        // executable the linker rewrites this to `mov rax, imm32`
//   movzx eax, byte ptr fs:[rax]    // this thread's copy
//
// Initial-exec puts the byte in the static TLS block that every thread gets
// when it starts. A shared object loaded with dlopen can only use that model
// while the C library's static TLS reserve has room (one byte here).
// ---------------------------------------------------------------------------
    .section .tbss,"awT",@nobits    // zero-filled thread-local data
    .globl  fiber_asm_preempt_flag
    .type   fiber_asm_preempt_flag, @object
    .size   fiber_asm_preempt_flag, 1
fiber_asm_preempt_flag:
    .zero   1                       // 0: no request, until the monitor sets it

// ---------------------------------------------------------------------------
// fiber_asm_thread_flags: two more bytes of thread-local storage, reached the
// same way, for fiber-rt's record of what the thread is doing (see its
// `sched::thread`): byte 0 is set while the thread runs fiber code outside
// the runtime, byte 1 while its fiber has been detached from its worker. Its
// signal handler reads them on the same thread. Zero, the state of a thread
// that never ran a fiber, means "in runtime code, not detached".
// ---------------------------------------------------------------------------
    .globl  fiber_asm_thread_flags
    .type   fiber_asm_thread_flags, @object
    .size   fiber_asm_thread_flags, 2
fiber_asm_thread_flags:
    .zero   2                       // both clear
    .text                           // back to code for whatever follows
