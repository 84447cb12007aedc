//! Safe points for preemption: `#[fiber]` calls the runtime's probe at the
//! entry of the function and at the top of every `loop` and `while` body,
//! so every iteration passes one (a `continue` included). The entry macros
//! (`#[fiber_rt::main]`, `#[fiber_rt::test]`) probe the body they run as a
//! fiber the same way. A probe is a load of the running thread's
//! preemption flag (thread-local, read afresh at each probe) and a branch;
//! it is a no-op where no worker runs.
//!
//! `for` loops get none: a probe in a loop the compiler would vectorise can
//! cost several times the loop. Nested functions and `async` blocks are
//! separate bodies and are left alone; `const fn`s cannot call the probe,
//! nor can code evaluated at compile time inside a body (`const { .. }`
//! blocks, array lengths, const generic arguments, types).

use syn::visit_mut::{self, VisitMut};
use syn::{parse_quote, Block, Expr, ItemFn, Stmt};

/// Adds the probes to a copy of `func`.
pub(crate) fn insert(func: &ItemFn) -> ItemFn {
    let mut func = func.clone();
    if func.sig.constness.is_some() {
        return func;
    }
    let mut probes = Probes;
    probes.visit_block_mut(&mut func.block);
    func.block.stmts.insert(0, probe());
    func
}

fn probe() -> Stmt {
    parse_quote!(::fiber_rt::__private::probe();)
}

struct Probes;

impl VisitMut for Probes {
    fn visit_expr_mut(&mut self, expr: &mut Expr) {
        match expr {
            // Another body, run elsewhere: not this fiber's code.
            Expr::Async(_) => return,
            // Evaluated at compile time, where the probe cannot be called.
            Expr::Const(_) => return,
            Expr::Loop(inner) => at_top(&mut inner.body),
            Expr::While(inner) => at_top(&mut inner.body),
            _ => {}
        }
        visit_mut::visit_expr_mut(self, expr);
    }

    // Items inside the body are functions of their own.
    fn visit_item_mut(&mut self, _item: &mut syn::Item) {}

    // `[x; N]`: the value runs, the length is a constant.
    fn visit_expr_repeat_mut(&mut self, repeat: &mut syn::ExprRepeat) {
        self.visit_expr_mut(&mut repeat.expr);
    }

    // Types hold no code that runs (array lengths are constants).
    fn visit_type_mut(&mut self, _ty: &mut syn::Type) {}

    // `f::<{ N }>()`: a constant.
    fn visit_generic_argument_mut(&mut self, arg: &mut syn::GenericArgument) {
        if !matches!(arg, syn::GenericArgument::Const(_)) {
            visit_mut::visit_generic_argument_mut(self, arg);
        }
    }
}

fn at_top(body: &mut Block) {
    body.stmts.insert(0, probe());
}

#[cfg(test)]
mod tests {
    use quote::ToTokens;

    fn probed(source: &str) -> String {
        let func: syn::ItemFn = syn::parse_str(source).unwrap();
        super::insert(&func)
            .into_token_stream()
            .to_string()
            .replace(":: fiber_rt :: __private :: probe ()", "P")
    }

    #[test]
    fn entry_and_loop_tops_get_a_probe() {
        let out = probed(
            "fn f(n: u32) { let mut i = 0; while i < n { i += 1; } loop { if i > 0 { break; } } }",
        );
        assert_eq!(out, "fn f (n : u32) { P ; let mut i = 0 ; while i < n { P ; i += 1 ; } loop { P ; if i > 0 { break ; } } }");
    }

    #[test]
    fn for_loops_nested_items_and_async_blocks_get_none() {
        let out = probed(
            "fn f() { for x in 0..3 { let _ = x; } fn g() { loop {} } let _ = async { loop {} }; }",
        );
        assert_eq!(out, "fn f () { P ; for x in 0 .. 3 { let _ = x ; } fn g () { loop { } } let _ = async { loop { } } ; }");
    }

    #[test]
    fn loops_inside_closures_are_probed() {
        let out = probed("fn f() { let c = || loop { break; }; c() }");
        assert_eq!(
            out,
            "fn f () { P ; let c = | | loop { P ; break ; } ; c () }"
        );
    }

    #[test]
    fn compile_time_code_is_left_alone() {
        let out = probed(
            "fn f() -> usize { let a = const { let mut i = 0; while i < 3 { i += 1; } i }; \
             let b = [0u8; { let mut n = 0; while n < 2 { n += 1; } n }]; \
             let c: [u8; { let mut n = 0; loop { break n; } }] = [0; 0]; \
             g::<{ let mut n = 0; while n < 1 { n += 1; } n }>(); a + b.len() + c.len() }",
        );
        assert_eq!(out.matches('P').count(), 1, "only the entry probe: {out}");
    }

    #[test]
    fn const_fns_are_left_alone() {
        assert_eq!(
            probed("const fn f() -> u8 { 1 }"),
            "const fn f () -> u8 { 1 }"
        );
    }
}
