//! The `stack = ..` option of the attributes that take one: a size in
//! bytes, written as a number or as a string with a unit.

use syn::{Expr, ExprLit, Lit};

/// Smallest and largest stack the option accepts: the runtime's own
/// bounds (`fiber_rt::stack::MIN_STACK_SIZE`, its largest size class).
pub(crate) const MIN: u64 = 16 << 10;
pub(crate) const MAX: u64 = 1 << 30;

/// `65536`, `"65536"`, `"64 KiB"`, `"64K"`, `"1 MiB"`, `"1M"`.
pub(crate) fn parse(value: &Expr) -> syn::Result<u64> {
    let bad = |what: &str| {
        syn::Error::new_spanned(value, format!("{what}: write `stack = 65536` or `stack = \"64 KiB\"` (units `KiB`, `MiB`, `K`, `M`)"))
    };
    let literal = match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        _ => None,
    };
    let bytes = match literal {
        Some(Lit::Int(int)) => int
            .base10_parse::<u64>()
            .map_err(|_| bad("the stack size is too large"))?,
        Some(Lit::Str(text)) => {
            let text = text.value();
            let text = text.trim();
            let split = text
                .find(|c: char| !c.is_ascii_digit() && c != '_')
                .unwrap_or(text.len());
            let (digits, unit) = text.split_at(split);
            let number: u64 = digits
                .replace('_', "")
                .parse()
                .map_err(|_| bad("the stack size needs a number"))?;
            let scale = match unit.trim() {
                "" | "B" => 1,
                "K" | "KiB" | "KB" | "k" => 1 << 10,
                "M" | "MiB" | "MB" => 1 << 20,
                _ => return Err(bad("unknown unit")),
            };
            number
                .checked_mul(scale)
                .ok_or_else(|| bad("the stack size is too large"))?
        }
        _ => return Err(bad("the stack size is a number or a string")),
    };
    Ok(bytes)
}

/// Whether `bytes` is a size the runtime takes as it is: a size outside
/// is a mistake, which the runtime would only round or refuse.
pub(crate) fn in_range(bytes: u64) -> bool {
    (MIN..=MAX).contains(&bytes)
}
