//! Names for code addresses: the `FUNC` symbols of the running executable's
//! ELF symbol table (`/proc/self/exe`, `.symtab` and its string table),
//! shifted by the executable's load address; for addresses in shared
//! libraries, the dynamic symbols `dladdr` knows.
//!
//! The table is read once, on the first dump, and kept: only the symbol and
//! string sections are read, not the (much larger) debug information.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::sync::OnceLock;

use super::demangle::demangle;

/// A code address resolved to the function that holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Symbol {
    /// The function's demangled name.
    pub name: String,
    /// How far into the function the address is.
    pub offset: usize,
}

/// The function holding `addr`, if any symbol table knows it.
pub(crate) fn resolve(addr: usize) -> Option<Symbol> {
    static TABLE: OnceLock<Option<SymbolTable>> = OnceLock::new();
    let table = TABLE.get_or_init(|| SymbolTable::load().ok());
    table
        .as_ref()
        .and_then(|t| t.lookup(addr))
        .or_else(|| dynamic(addr))
}

/// `FUNC` symbols of the executable, sorted by address.
struct SymbolTable {
    /// (start, size, offset of the name in `names`), at run-time addresses.
    funcs: Vec<(usize, usize, u32)>,
    names: Vec<u8>,
}

const SHT_SYMTAB: usize = 2;
const STT_FUNC: u8 = 2;
const SYM_SIZE: usize = 24;
const SECTION_HEADER_SIZE: usize = 64;

impl SymbolTable {
    fn load() -> io::Result<SymbolTable> {
        let mut file = File::open("/proc/self/exe")?;
        let mut ident = [0u8; 64];
        file.read_exact(&mut ident)?;
        // ELF magic, 64-bit class, little-endian.
        if &ident[..4] != b"\x7fELF" || ident[4] != 2 || ident[5] != 1 {
            return Err(io::Error::other("not an ELF64 little-endian executable"));
        }
        let shoff = u64_at(&ident, 0x28) as u64;
        let shentsize = u16_at(&ident, 0x3a);
        let shnum = u16_at(&ident, 0x3c);
        if shentsize != SECTION_HEADER_SIZE {
            return Err(io::Error::other("unexpected ELF section header size"));
        }
        let sections = read_at(&mut file, shoff, shnum * SECTION_HEADER_SIZE)?;
        let section = |i: usize| &sections[i * SECTION_HEADER_SIZE..(i + 1) * SECTION_HEADER_SIZE];
        let symtab = (0..shnum)
            .map(section)
            .find(|s| u32_at(s, 4) == SHT_SYMTAB)
            .ok_or_else(|| io::Error::other("the executable has no symbol table (stripped?)"))?;
        let strtab_index = u32_at(symtab, 40);
        if strtab_index >= shnum {
            return Err(io::Error::other("bad string table index"));
        }
        let strtab = section(strtab_index);
        let syms = read_at(&mut file, u64_at(symtab, 24) as u64, u64_at(symtab, 32))?;
        let names = read_at(&mut file, u64_at(strtab, 24) as u64, u64_at(strtab, 32))?;
        let bias = load_bias();
        let mut funcs: Vec<(usize, usize, u32)> = syms
            .chunks_exact(SYM_SIZE)
            .filter(|s| s[4] & 0xf == STT_FUNC && u64_at(s, 8) != 0)
            .map(|s| (u64_at(s, 8) + bias, u64_at(s, 16), u32_at(s, 0) as u32))
            .collect();
        funcs.sort_unstable_by_key(|&(start, _, _)| start);
        Ok(SymbolTable { funcs, names })
    }

    fn lookup(&self, addr: usize) -> Option<Symbol> {
        let i = self.funcs.partition_point(|&(start, _, _)| start <= addr);
        let &(start, size, name) = self.funcs.get(i.checked_sub(1)?)?;
        let offset = addr - start;
        // A symbol without a size (assembly, `_fini`) covers up to the next
        // one; the last one covers nothing, or it would claim every
        // address above the executable.
        let covers = match size {
            0 => self.funcs.get(i).is_some_and(|&(next, _, _)| addr < next),
            size => offset < size,
        };
        if !covers {
            return None;
        }
        let bytes = self.names.get(name as usize..)?;
        let end = bytes.iter().position(|&b| b == 0)?;
        let raw = std::str::from_utf8(&bytes[..end]).ok()?;
        Some(Symbol {
            name: demangle(raw),
            offset,
        })
    }
}

fn read_at(file: &mut File, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.seek(SeekFrom::Start(offset))?;
    file.read_exact(&mut buf)?;
    Ok(buf)
}

fn u16_at(b: &[u8], at: usize) -> usize {
    u16::from_le_bytes([b[at], b[at + 1]]) as usize
}

fn u32_at(b: &[u8], at: usize) -> usize {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes")) as usize
}

fn u64_at(b: &[u8], at: usize) -> usize {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes")) as usize
}

/// Where the executable was loaded, relative to the addresses in its file:
/// the first object `dl_iterate_phdr` reports is the executable itself.
fn load_bias() -> usize {
    /// Records the first object's load address and stops the iteration.
    ///
    /// # Safety
    ///
    /// Called by `dl_iterate_phdr` with a valid `info`, and with `data`
    /// pointing to a writable `usize`.
    unsafe extern "C" fn first(
        info: *mut libc::dl_phdr_info,
        _size: usize,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: `info` is valid for this call, `data` is the `usize`
        // passed below.
        unsafe { *(data as *mut usize) = (*info).dlpi_addr as usize };
        1 // stop after the first object
    }
    let mut bias = 0usize;
    // SAFETY: the callback matches the C signature and writes only `bias`,
    // which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(first), std::ptr::addr_of_mut!(bias).cast()) };
    bias
}

/// The dynamic symbol `dladdr` finds for `addr` (shared libraries).
fn dynamic(addr: usize) -> Option<Symbol> {
    // SAFETY: an all-zero Dl_info is a valid value of the plain C struct.
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: `dladdr` only inspects the address and fills `info`.
    if unsafe { libc::dladdr(addr as *const libc::c_void, &mut info) } == 0
        || info.dli_sname.is_null()
    {
        return None;
    }
    // SAFETY: a non-null `dli_sname` is a NUL-terminated string in the
    // loaded object's string table, which stays mapped.
    let raw = unsafe { std::ffi::CStr::from_ptr(info.dli_sname) };
    Some(Symbol {
        name: demangle(&raw.to_string_lossy()),
        offset: addr.wrapping_sub(info.dli_saddr as usize),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_function_with_a_name_to_find() -> usize {
        std::hint::black_box(42)
    }

    #[test]
    fn resolves_a_function_of_this_executable() {
        let addr = a_function_with_a_name_to_find as *const () as usize;
        let symbol = resolve(addr + 1).expect("the test binary has a symbol table");
        assert!(
            symbol.name.ends_with("a_function_with_a_name_to_find"),
            "{symbol:?}"
        );
        assert_eq!(symbol.offset, 1);
        assert_eq!(a_function_with_a_name_to_find(), 42);
    }

    #[test]
    fn resolves_a_libc_function() {
        // SAFETY: dlsym with a NUL-terminated name; no other precondition.
        let getpid = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"getpid".as_ptr()) } as usize;
        assert_ne!(getpid, 0);
        let symbol = resolve(getpid).expect("dladdr knows getpid");
        assert!(symbol.name.contains("getpid"), "{symbol:?}");
    }
}
