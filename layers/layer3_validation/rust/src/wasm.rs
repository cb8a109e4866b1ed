//! A parser for the WASM binary format (core specification 2.0, plus the
//! memory64/threads limit flags) that extracts what vetting needs: imports,
//! exports, memories, function and type counts.
//!
//! Parsed sections: type (1), import (2), function (3), memory (5) and
//! export (7); every other section is skipped by its declared size (custom
//! sections after checking their name is UTF-8). Structural rules enforced:
//! magic and version, known section ids, each non-custom section at most
//! once and in the specification's order, section sizes within the module,
//! parsed sections consumed exactly, type indices of functions in range,
//! export indices in range and export names unique.

use crate::leb128;
use std::fmt;

/// Kind of an imported or exported entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExternKind {
    /// A function.
    Func = 0,
    /// A table.
    Table = 1,
    /// A linear memory.
    Memory = 2,
    /// A global.
    Global = 3,
    /// An exception tag.
    Tag = 4,
}

impl ExternKind {
    fn from_byte(b: u8) -> Option<ExternKind> {
        match b {
            0 => Some(ExternKind::Func),
            1 => Some(ExternKind::Table),
            2 => Some(ExternKind::Memory),
            3 => Some(ExternKind::Global),
            4 => Some(ExternKind::Tag),
            _ => None,
        }
    }

    /// Lower-case name (`func`, `table`, `memory`, `global`, `tag`).
    pub fn name(self) -> &'static str {
        match self {
            ExternKind::Func => "func",
            ExternKind::Table => "table",
            ExternKind::Memory => "memory",
            ExternKind::Global => "global",
            ExternKind::Tag => "tag",
        }
    }
}

/// One import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// Module name (e.g. `wasi_snapshot_preview1`).
    pub module: String,
    /// Field name (e.g. `fd_write`).
    pub name: String,
    /// What is imported.
    pub kind: ExternKind,
}

impl Import {
    /// `module.name`, the form allow-lists use.
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.module, self.name)
    }
}

/// One export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    /// Exported name.
    pub name: String,
    /// What is exported.
    pub kind: ExternKind,
    /// Index in the kind's index space.
    pub index: u32,
}

/// A memory's limits, in 64 KiB pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// Initial size.
    pub min_pages: u64,
    /// Declared maximum, if any.
    pub max_pages: Option<u64>,
    /// True for an imported memory.
    pub imported: bool,
    /// Shared (threads proposal).
    pub shared: bool,
    /// 64-bit addressing (memory64 proposal).
    pub is64: bool,
}

/// What the parser found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModuleInfo {
    /// Module size in bytes.
    pub size_bytes: u64,
    /// Function types declared.
    pub type_count: u32,
    /// Functions: imported plus defined.
    pub function_count: u32,
    /// Imports in declaration order.
    pub imports: Vec<Import>,
    /// Exports in declaration order.
    pub exports: Vec<Export>,
    /// Memories: imported first, then defined.
    pub memories: Vec<Memory>,
    /// Names of custom sections.
    pub custom_sections: Vec<String>,
}

impl ModuleInfo {
    /// Names of exported functions.
    pub fn function_exports(&self) -> Vec<&str> {
        self.exports
            .iter()
            .filter(|e| e.kind == ExternKind::Func)
            .map(|e| e.name.as_str())
            .collect()
    }
}

/// A malformed module: what is wrong and the byte offset where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// Byte offset in the module.
    pub offset: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at offset {}", self.message, self.offset)
    }
}

/// The WASM magic number `\0asm`.
pub const MAGIC: [u8; 4] = [0x00, 0x61, 0x73, 0x6d];
/// The binary format version this parser reads.
pub const VERSION: [u8; 4] = [0x01, 0x00, 0x00, 0x00];

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Cursor<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            offset: self.pos,
            message: message.into(),
        })
    }

    fn byte(&mut self) -> Result<u8, ParseError> {
        if self.pos >= self.end {
            return self.err("unexpected end of section");
        }
        self.pos += 1;
        Ok(self.data[self.pos - 1])
    }

    fn leb(&mut self, bits: u32) -> Result<u64, ParseError> {
        match leb128::read_unsigned(&self.data[self.pos..self.end], bits) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(e) => self.err(e.to_string()),
        }
    }

    fn u32(&mut self) -> Result<u32, ParseError> {
        self.leb(32).map(|v| v as u32)
    }

    /// A vector length, bounded by the bytes left (every item takes at least one).
    fn count(&mut self) -> Result<u32, ParseError> {
        let n = self.u32()?;
        if n as usize > self.end - self.pos {
            return self.err(format!("vector length {n} exceeds the section"));
        }
        Ok(n)
    }

    fn name(&mut self) -> Result<String, ParseError> {
        let n = self.u32()? as usize;
        if n > self.end - self.pos {
            return self.err("name runs past the end of the section");
        }
        let start = self.pos;
        self.pos += n;
        match std::str::from_utf8(&self.data[start..self.pos]) {
            Ok(s) => Ok(s.to_string()),
            Err(_) => Err(ParseError {
                offset: start,
                message: "name is not valid UTF-8".into(),
            }),
        }
    }

    fn limits(&mut self, memory: bool) -> Result<(u64, Option<u64>, bool, bool), ParseError> {
        let flags = self.byte()?;
        let allowed = if memory { 0x07 } else { 0x01 };
        if flags & !allowed != 0 {
            return self.err(format!("unknown limits flags 0x{flags:02x}"));
        }
        let is64 = flags & 0x04 != 0;
        let bits = if is64 { 64 } else { 32 };
        let min = self.leb(bits)?;
        let max = if flags & 0x01 != 0 {
            Some(self.leb(bits)?)
        } else {
            None
        };
        if let Some(max) = max {
            if max < min {
                return self.err(format!("limits maximum {max} is below minimum {min}"));
            }
        }
        let shared = flags & 0x02 != 0;
        if shared && max.is_none() {
            return self.err("shared memory must declare a maximum");
        }
        Ok((min, max, shared, is64))
    }

    fn value_type(&mut self) -> Result<(), ParseError> {
        match self.byte()? {
            0x7f | 0x7e | 0x7d | 0x7c | 0x7b | 0x70 | 0x6f => Ok(()),
            b => {
                self.pos -= 1;
                self.err(format!("unknown value type 0x{b:02x}"))
            }
        }
    }
}

/// Position of a section id in the order the specification requires
/// (the data count section, id 12, sits between element and code; the tag
/// section, id 13, between memory and global).
fn section_rank(id: u8) -> Option<u8> {
    match id {
        1..=5 => Some(id),
        13 => Some(6),
        6..=9 => Some(id + 1),
        12 => Some(11),
        10 | 11 => Some(id + 2),
        _ => None,
    }
}

/// Parses `data` as a WASM module.
pub fn parse(data: &[u8]) -> Result<ModuleInfo, ParseError> {
    if data.len() < 8 || data[..4] != MAGIC {
        return Err(ParseError {
            offset: 0,
            message: "missing WASM magic number \\0asm".into(),
        });
    }
    if data[4..8] != VERSION {
        return Err(ParseError {
            offset: 4,
            message: "unsupported WASM version (expected 1)".into(),
        });
    }
    let mut info = ModuleInfo {
        size_bytes: data.len() as u64,
        ..ModuleInfo::default()
    };
    let mut imported_funcs = 0u32;
    let mut defined_funcs = 0u32;
    let mut counts = [0u32; 5]; // per ExternKind: imported + defined entities
    let mut last_rank = 0u8;
    let mut pos = 8;
    while pos < data.len() {
        let mut header = Cursor {
            data,
            pos,
            end: data.len(),
        };
        let id = header.byte()?;
        let size = header.u32()? as usize;
        let start = header.pos;
        if size > data.len() - start {
            return header.err(format!(
                "section {id} size {size} runs past the end of the module"
            ));
        }
        let mut c = Cursor {
            data,
            pos: start,
            end: start + size,
        };
        if id != 0 {
            let rank = match section_rank(id) {
                Some(r) => r,
                None => {
                    return Err(ParseError {
                        offset: pos,
                        message: format!("unknown section id {id}"),
                    })
                }
            };
            if rank <= last_rank {
                return Err(ParseError {
                    offset: pos,
                    message: format!("section {id} is duplicated or out of order"),
                });
            }
            last_rank = rank;
        }
        match id {
            0 => {
                let name = c.name()?;
                info.custom_sections.push(name);
                c.pos = c.end;
            }
            1 => {
                let n = c.count()?;
                for _ in 0..n {
                    let form = c.byte()?;
                    if form != 0x60 {
                        c.pos -= 1;
                        return c.err(format!("unsupported type form 0x{form:02x}"));
                    }
                    for _ in 0..2 {
                        let arity = c.count()?;
                        for _ in 0..arity {
                            c.value_type()?;
                        }
                    }
                }
                info.type_count = n;
            }
            2 => {
                let n = c.count()?;
                for _ in 0..n {
                    let module = c.name()?;
                    let name = c.name()?;
                    let kind_at = c.pos;
                    let kind = ExternKind::from_byte(c.byte()?).ok_or(ParseError {
                        offset: kind_at,
                        message: "unknown import kind".into(),
                    })?;
                    match kind {
                        ExternKind::Func => {
                            let ty = c.u32()?;
                            if ty >= info.type_count {
                                return c.err(format!("import type index {ty} out of range"));
                            }
                            imported_funcs += 1;
                        }
                        ExternKind::Table => {
                            let reftype = c.byte()?;
                            if reftype != 0x70 && reftype != 0x6f {
                                return c
                                    .err(format!("unknown table element type 0x{reftype:02x}"));
                            }
                            c.limits(false)?;
                        }
                        ExternKind::Memory => {
                            let (min, max, shared, is64) = c.limits(true)?;
                            info.memories.push(Memory {
                                min_pages: min,
                                max_pages: max,
                                imported: true,
                                shared,
                                is64,
                            });
                        }
                        ExternKind::Global => {
                            c.value_type()?;
                            let mutability = c.byte()?;
                            if mutability > 1 {
                                return c.err("unknown global mutability");
                            }
                        }
                        ExternKind::Tag => {
                            let attribute = c.byte()?;
                            if attribute != 0 {
                                return c.err("unknown tag attribute");
                            }
                            c.u32()?;
                        }
                    }
                    counts[kind as usize] += 1;
                    info.imports.push(Import { module, name, kind });
                }
            }
            3 => {
                let n = c.count()?;
                for _ in 0..n {
                    let ty = c.u32()?;
                    if ty >= info.type_count {
                        return c.err(format!("function type index {ty} out of range"));
                    }
                }
                defined_funcs = n;
                counts[ExternKind::Func as usize] += n;
            }
            5 => {
                let n = c.count()?;
                for _ in 0..n {
                    let (min, max, shared, is64) = c.limits(true)?;
                    info.memories.push(Memory {
                        min_pages: min,
                        max_pages: max,
                        imported: false,
                        shared,
                        is64,
                    });
                }
                counts[ExternKind::Memory as usize] += n;
            }
            7 => {
                let n = c.count()?;
                for _ in 0..n {
                    let name_at = c.pos;
                    let name = c.name()?;
                    if info.exports.iter().any(|e| e.name == name) {
                        return Err(ParseError {
                            offset: name_at,
                            message: format!("duplicate export name {name:?}"),
                        });
                    }
                    let kind_at = c.pos;
                    let kind = ExternKind::from_byte(c.byte()?).ok_or(ParseError {
                        offset: kind_at,
                        message: "unknown export kind".into(),
                    })?;
                    let index = c.u32()?;
                    // Tables, globals and tags defined by the module are not
                    // counted (their sections are skipped), so only function
                    // and memory indices can be range-checked.
                    let bounded = matches!(kind, ExternKind::Func | ExternKind::Memory);
                    if bounded && index >= counts[kind as usize] {
                        return c.err(format!(
                            "export {name:?} refers to {} {index}, which does not exist",
                            kind.name()
                        ));
                    }
                    info.exports.push(Export { name, kind, index });
                }
            }
            _ => c.pos = c.end,
        }
        if c.pos != c.end {
            return c.err(format!("section {id} has {} unread bytes", c.end - c.pos));
        }
        pos = c.end;
    }
    info.function_count = imported_funcs + defined_funcs;
    Ok(info)
}

/// Builds modules for tests: `section(id, contents)` and friends.
#[cfg(test)]
pub mod build {
    use crate::leb128::encode_u64;

    /// A length-prefixed name.
    pub fn name(s: &str) -> Vec<u8> {
        let mut v = encode_u64(s.len() as u64);
        v.extend_from_slice(s.as_bytes());
        v
    }

    /// A section with its id and size.
    pub fn section(id: u8, contents: &[u8]) -> Vec<u8> {
        let mut v = vec![id];
        v.extend(encode_u64(contents.len() as u64));
        v.extend_from_slice(contents);
        v
    }

    /// A vector: count, then the items.
    pub fn vec_of(items: &[Vec<u8>]) -> Vec<u8> {
        let mut v = encode_u64(items.len() as u64);
        for i in items {
            v.extend_from_slice(i);
        }
        v
    }

    /// Magic, version, then the sections.
    pub fn module(sections: &[Vec<u8>]) -> Vec<u8> {
        let mut v = b"\0asm\x01\0\0\0".to_vec();
        for s in sections {
            v.extend_from_slice(s);
        }
        v
    }

    /// A module with one `() -> i32` type, an import `env.log` (func), two
    /// defined functions, one memory (min 1, max 16 pages) and exports
    /// `run` (func 1), `helper` (func 2) and `memory`.
    pub fn sample() -> Vec<u8> {
        let types = section(1, &vec_of(&[vec![0x60, 0x00, 0x01, 0x7f]]));
        let mut import = name("env");
        import.extend(name("log"));
        import.extend([0x00, 0x00]);
        let imports = section(2, &vec_of(&[import]));
        let funcs = section(3, &vec_of(&[vec![0x00], vec![0x00]]));
        let memory = section(5, &vec_of(&[vec![0x01, 0x01, 0x10]]));
        let export = |n: &str, kind: u8, idx: u8| {
            let mut e = name(n);
            e.extend([kind, idx]);
            e
        };
        let exports = section(
            7,
            &vec_of(&[
                export("run", 0, 1),
                export("helper", 0, 2),
                export("memory", 2, 0),
            ]),
        );
        // Code section: two bodies `i32.const 7; end`.
        let body = vec![0x04, 0x00, 0x41, 0x07, 0x0b];
        let code = section(10, &vec_of(&[body.clone(), body]));
        let mut custom = name("producers");
        custom.extend([1, 2, 3]);
        module(&[
            types,
            imports,
            funcs,
            memory,
            exports,
            code,
            section(0, &custom),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::build::*;
    use super::*;

    #[test]
    fn parses_imports_exports_and_memory() {
        let data = sample();
        let info = parse(&data).unwrap();
        assert_eq!(info.size_bytes, data.len() as u64);
        assert_eq!(info.type_count, 1);
        assert_eq!(info.function_count, 3);
        assert_eq!(info.imports.len(), 1);
        assert_eq!(info.imports[0].qualified(), "env.log");
        assert_eq!(info.imports[0].kind, ExternKind::Func);
        assert_eq!(info.function_exports(), vec!["run", "helper"]);
        assert_eq!(info.exports[2].kind, ExternKind::Memory);
        assert_eq!(
            info.memories,
            vec![Memory {
                min_pages: 1,
                max_pages: Some(16),
                imported: false,
                shared: false,
                is64: false
            }]
        );
        assert_eq!(info.custom_sections, vec!["producers"]);
    }

    #[test]
    fn minimal_module_is_valid() {
        let info = parse(b"\0asm\x01\0\0\0").unwrap();
        assert_eq!(info.size_bytes, 8);
        assert!(info.imports.is_empty() && info.memories.is_empty());
    }

    #[test]
    fn imported_memory_table_and_global() {
        let mut mem = name("env");
        mem.extend(name("memory"));
        mem.extend([0x02, 0x00, 0x02]); // memory, no max, min 2
        let mut table = name("env");
        table.extend(name("table"));
        table.extend([0x01, 0x70, 0x00, 0x01]);
        let mut global = name("env");
        global.extend(name("g"));
        global.extend([0x03, 0x7f, 0x00]);
        let data = module(&[section(2, &vec_of(&[mem, table, global]))]);
        let info = parse(&data).unwrap();
        let kinds: Vec<&str> = info.imports.iter().map(|i| i.kind.name()).collect();
        assert_eq!(kinds, vec!["memory", "table", "global"]);
        assert_eq!(info.memories[0].min_pages, 2);
        assert_eq!(info.memories[0].max_pages, None);
        assert!(info.memories[0].imported);
    }

    fn parse_err(data: &[u8]) -> String {
        parse(data).unwrap_err().to_string()
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(parse_err(b"").contains("magic"));
        assert!(parse_err(b"\0asm\x02\0\0\0").contains("version"));
        assert!(parse_err(b"\x7fELF\x01\0\0\0").contains("magic"));
    }

    #[test]
    fn rejects_structural_errors() {
        // Unknown section id.
        assert!(parse_err(&module(&[section(14, &[])])).contains("unknown section id 14"));
        // Out of order and duplicated sections.
        let t = section(1, &vec_of(&[]));
        let f = section(3, &vec_of(&[]));
        assert!(parse_err(&module(&[f.clone(), t.clone()])).contains("out of order"));
        assert!(parse_err(&module(&[t.clone(), t.clone()])).contains("duplicated"));
        // Section size past the end.
        let mut data = module(&[]);
        data.extend([1, 10, 0]);
        assert!(parse_err(&data).contains("runs past the end"));
        // Unread bytes inside a parsed section.
        assert!(parse_err(&module(&[section(1, &[0, 0])])).contains("unread"));
        // Function with an undeclared type.
        assert!(parse_err(&module(&[section(3, &vec_of(&[vec![0]]))])).contains("out of range"));
        // Export of a missing function.
        let mut e = name("f");
        e.extend([0, 0]);
        assert!(parse_err(&module(&[section(7, &vec_of(&[e.clone()]))])).contains("does not exist"));
        // Duplicate export names.
        let mut m = name("m");
        m.extend([2, 0]);
        let mems = section(5, &vec_of(&[vec![0, 1]]));
        let exports = section(7, &vec_of(&[m.clone(), m]));
        assert!(parse_err(&module(&[mems, exports])).contains("duplicate export"));
        // Truncated LEB128 and overlong vector.
        assert!(parse_err(&module(&[section(5, &[0x05])])).contains("vector length"));
        assert!(parse_err(&module(&[section(5, &[0x01, 0x00, 0x80])])).contains("truncated"));
        // max < min, and unknown limit flags.
        assert!(
            parse_err(&module(&[section(5, &vec_of(&[vec![1, 5, 2]]))])).contains("below minimum")
        );
        assert!(parse_err(&module(&[section(5, &vec_of(&[vec![0x08, 1]]))])).contains("flags"));
        // Names must be UTF-8; type forms must be 0x60.
        let mut bad = vec![2, 0xff, 0xfe];
        bad.extend(name("x"));
        bad.extend([0, 0]);
        assert!(parse_err(&module(&[section(2, &vec_of(&[bad]))])).contains("UTF-8"));
        assert!(parse_err(&module(&[section(1, &vec_of(&[vec![0x5f]]))])).contains("type form"));
    }

    #[test]
    fn every_truncation_inside_a_section_fails_cleanly() {
        let data = sample();
        // Offsets where a section ends: prefixes cut there are valid modules.
        let mut boundaries = vec![8usize];
        let mut pos = 8;
        while pos < data.len() {
            let (size, n) = leb128::read_u32(&data[pos + 1..]).unwrap();
            pos += 1 + n + size as usize;
            boundaries.push(pos);
        }
        for len in 0..data.len() {
            let parsed = parse(&data[..len]);
            assert_eq!(
                parsed.is_ok(),
                boundaries.contains(&len),
                "prefix of {len} bytes"
            );
        }
    }

    #[test]
    fn memory64_and_shared_flags() {
        let data = module(&[section(5, &vec_of(&[vec![0x07, 0x01, 0x80, 0x80, 0x04]]))]);
        let info = parse(&data).unwrap();
        assert!(info.memories[0].is64 && info.memories[0].shared);
        assert_eq!(info.memories[0].max_pages, Some(65_536));
        let no_max = module(&[section(5, &vec_of(&[vec![0x02, 0x01]]))]);
        assert!(parse_err(&no_max).contains("shared memory"));
    }
}
