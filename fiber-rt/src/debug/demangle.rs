//! Demangling of Rust's legacy symbol names (`_ZN..E`), the scheme rustc
//! uses by default. Names in the v0 scheme (`_R..`) and C++ names are
//! returned as they are.

/// `_ZN4core3ptr13drop_in_place17h0123456789abcdefE` becomes
/// `core::ptr::drop_in_place`: path segments joined with `::`, the hash
/// segment dropped, `$..$` escapes decoded.
pub(crate) fn demangle(symbol: &str) -> String {
    legacy(symbol).unwrap_or_else(|| symbol.to_owned())
}

fn legacy(symbol: &str) -> Option<String> {
    // `__ZN` on some platforms, `_ZN` on Linux.
    let mut rest = symbol
        .strip_prefix("_ZN")
        .or_else(|| symbol.strip_prefix("__ZN"))?;
    let mut segments = Vec::new();
    loop {
        if let Some(after) = rest.strip_prefix('E') {
            // Anything after the `E` (`.llvm.123`, `.cold`) is a suffix
            // added by the compiler; it does not name anything.
            let _ = after;
            break;
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let len: usize = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let segment = rest.get(..len)?;
        rest = &rest[len..];
        segments.push(segment);
    }
    if segments
        .last()
        .is_some_and(|s| s.len() == 17 && s.starts_with('h') && is_hex(&s[1..]))
    {
        segments.pop();
    }
    let decoded: Vec<String> = segments.iter().map(|s| decode_segment(s)).collect();
    Some(decoded.join("::"))
}

fn is_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Decodes one path segment: `$LT$` and friends, `..` for `::`, and a
/// leading `_$` that protects a segment starting with `$`.
fn decode_segment(segment: &str) -> String {
    let mut s = segment;
    if s.starts_with("_$") {
        s = &s[1..];
    }
    let mut out = String::with_capacity(s.len());
    while !s.is_empty() {
        if let Some(after) = s.strip_prefix("..") {
            out.push_str("::");
            s = after;
        } else if s.starts_with('$') {
            match s[1..]
                .find('$')
                .and_then(|end| Some((escape(&s[1..=end])?, end)))
            {
                Some((c, end)) => {
                    out.push(c);
                    s = &s[end + 2..];
                }
                None => {
                    out.push('$');
                    s = &s[1..];
                }
            }
        } else {
            let c = s.chars().next().unwrap_or('?');
            out.push(c);
            s = &s[c.len_utf8()..];
        }
    }
    out
}

/// The character an escape (without its `$` delimiters) stands for.
fn escape(code: &str) -> Option<char> {
    Some(match code {
        "SP" => '@',
        "BP" => '*',
        "RF" => '&',
        "LT" => '<',
        "GT" => '>',
        "LP" => '(',
        "RP" => ')',
        "C" => ',',
        _ => {
            let hex = code.strip_prefix('u')?;
            char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::demangle;

    #[test]
    fn plain_path_loses_its_hash() {
        assert_eq!(
            demangle("_ZN4core3ptr13drop_in_place17h0123456789abcdefE"),
            "core::ptr::drop_in_place"
        );
    }

    #[test]
    fn escapes_are_decoded() {
        assert_eq!(
            demangle("_ZN67_$LT$fiber_rt..sync..Mutex$LT$T$GT$$u20$as$u20$core..fmt..Debug$GT$3fmt17h00112233445566aaE"),
            "<fiber_rt::sync::Mutex<T> as core::fmt::Debug>::fmt"
        );
        assert_eq!(
            demangle("_ZN4test11{{closure}}17h0011223344556677E.llvm.42"),
            "test::{{closure}}"
        );
        assert_eq!(demangle("_ZN3foo11$RF$$BP$mut3barE"), "foo::&*mut::bar");
    }

    #[test]
    fn other_names_stay_as_they_are() {
        assert_eq!(demangle("main"), "main");
        assert_eq!(demangle("_RNvCs1234_4test4main"), "_RNvCs1234_4test4main");
        assert_eq!(demangle("_ZN3fooE_broken"), "foo");
        assert_eq!(demangle("_ZN99tooshortE"), "_ZN99tooshortE");
    }
}
