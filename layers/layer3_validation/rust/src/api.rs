//! Byte-level entry points behind the WASM exports (see [`crate::wire`] for
//! the encoding of `u8`/`u32`/`u64`/`f64`/`str`/`bytes`).
//!
//! # `validation_sha256`
//!
//! Request: the raw bytes to hash (no framing). Response: `str` digest,
//! 64 lowercase hex characters.
//!
//! # `validation_vet_module`
//!
//! Request: `u64 max_size_bytes`, `u64 max_memory_pages` (0 = no limit),
//! `u8 require_memory_max`, `u32 n` + `n x str` allowed imports, `u32 n` +
//! `n x str` required exports, `str expected_sha256` (empty = none),
//! `bytes module`.
//!
//! Response: `str sha256`, `u64 size_bytes`, `u8 parsed`; `u32 n` imports
//! (`str module`, `str name`, `u8 kind`); `u32 n` exports (`str name`,
//! `u8 kind`, `u32 index`); `u32 n` memories (`u64 min_pages`,
//! `u8 has_max`, `u64 max_pages`, `u8 imported`, `u8 shared`, `u8 is64`);
//! findings (below); `f64 risk_score`. Kinds: 0 func, 1 table, 2 memory,
//! 3 global, 4 tag.
//!
//! # `validation_check_dependencies`
//!
//! Request: `u32 tasks`, per task `str id`, `u32 n` + `n x str` dependency
//! ids. Response: findings.
//!
//! **Findings** are `u32 n`, then per finding `str rule`, `u8 family`
//! (1 safety, 2 integrity, 3 compliance), `u8 severity` (1 info,
//! 2 warning, 3 critical), `str message`, `str location`.
//!
//! Errors: status 1 (malformed request) only.

use crate::findings::Finding;
use crate::module_policy::{vet, ModulePolicy};
use crate::plan_checks::{check_dependencies, PlanTask};
use crate::sha256::hex_digest;
use crate::wire::{ApiError, Reader, Writer};

fn strings(r: &mut Reader) -> Result<Vec<String>, ApiError> {
    let n = r.count(4)?;
    (0..n).map(|_| r.str().map_err(ApiError::from)).collect()
}

fn write_findings(w: &mut Writer, findings: &[Finding]) {
    w.count(findings.len());
    for f in findings {
        w.str(f.rule)
            .u8(f.family as u8)
            .u8(f.severity as u8)
            .str(&f.message)
            .str(&f.location);
    }
}

/// SHA-256 of the whole input.
pub fn sha256(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut w = Writer::new();
    w.str(&hex_digest(input));
    Ok(w.into_bytes())
}

/// Parses a module and applies the module policy.
pub fn vet_module(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let max_size_bytes = r.u64()?;
    let max_memory_pages = r.u64()?;
    let require_memory_max = r.u8()? != 0;
    let allowed_imports = strings(&mut r)?;
    let required_exports = strings(&mut r)?;
    let expected = r.str()?;
    let module = r.bytes()?;
    r.finish()?;
    let policy = ModulePolicy {
        allowed_imports,
        max_memory_pages,
        require_memory_max,
        max_size_bytes,
        required_exports,
    };
    let v = vet(module, &policy, &expected);

    let mut w = Writer::new();
    w.str(&v.sha256)
        .u64(module.len() as u64)
        .u8(u8::from(v.info.is_some()));
    let info = v.info.unwrap_or_default();
    w.count(info.imports.len());
    for i in &info.imports {
        w.str(&i.module).str(&i.name).u8(i.kind as u8);
    }
    w.count(info.exports.len());
    for e in &info.exports {
        w.str(&e.name).u8(e.kind as u8).u32(e.index);
    }
    w.count(info.memories.len());
    for m in &info.memories {
        w.u64(m.min_pages)
            .u8(u8::from(m.max_pages.is_some()))
            .u64(m.max_pages.unwrap_or(0))
            .u8(u8::from(m.imported))
            .u8(u8::from(m.shared))
            .u8(u8::from(m.is64));
    }
    write_findings(&mut w, &v.findings);
    w.f64(v.risk_score);
    Ok(w.into_bytes())
}

/// Dependency sanity of a plan's tasks.
pub fn check_plan_dependencies(input: &[u8]) -> Result<Vec<u8>, ApiError> {
    let mut r = Reader::new(input);
    let n = r.count(8)?;
    let mut tasks = Vec::with_capacity(n);
    for _ in 0..n {
        let id = r.str()?;
        let deps = strings(&mut r)?;
        tasks.push(PlanTask { id, deps });
    }
    r.finish()?;
    let mut w = Writer::new();
    write_findings(&mut w, &check_dependencies(&tasks));
    Ok(w.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::build::sample;
    use crate::wire::STATUS_BAD_REQUEST;

    #[test]
    fn sha256_of_raw_input() {
        let out = sha256(b"abc").unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(
            r.str().unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        r.finish().unwrap();
    }

    fn vet_request(allowed: &[&str], module: &[u8]) -> Vec<u8> {
        let mut w = Writer::new();
        w.u64(0).u64(0).u8(1).count(allowed.len());
        for a in allowed {
            w.str(a);
        }
        w.count(1).str("run").str("").count(module.len());
        let mut bytes = w.into_bytes();
        bytes.extend_from_slice(module);
        bytes
    }

    #[test]
    fn vet_module_reports_facts_and_findings() {
        let data = sample();
        let out = vet_module(&vet_request(&[], &data)).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.str().unwrap(), hex_digest(&data));
        assert_eq!(r.u64().unwrap(), data.len() as u64);
        assert_eq!(r.u8().unwrap(), 1);
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(
            (r.str().unwrap(), r.str().unwrap(), r.u8().unwrap()),
            ("env".into(), "log".into(), 0)
        );
        assert_eq!(r.u32().unwrap(), 3);
        assert_eq!(
            (r.str().unwrap(), r.u8().unwrap(), r.u32().unwrap()),
            ("run".into(), 0, 1)
        );
        for _ in 0..2 {
            r.str().unwrap();
            r.u8().unwrap();
            r.u32().unwrap();
        }
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(
            (r.u64().unwrap(), r.u8().unwrap(), r.u64().unwrap()),
            (1, 1, 16)
        );
        assert_eq!(
            (r.u8().unwrap(), r.u8().unwrap(), r.u8().unwrap()),
            (0, 0, 0)
        );
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "module.import_not_allowed");
        assert_eq!((r.u8().unwrap(), r.u8().unwrap()), (1, 3));
        r.str().unwrap();
        assert_eq!(r.str().unwrap(), "env.log");
        assert_eq!(r.f64().unwrap(), 4.0);
        r.finish().unwrap();
    }

    #[test]
    fn unparsable_module_still_answers() {
        let out = vet_module(&vet_request(&[], b"junk")).unwrap();
        let mut r = Reader::new(&out);
        r.str().unwrap();
        assert_eq!(r.u64().unwrap(), 4);
        assert_eq!(r.u8().unwrap(), 0);
        assert_eq!(
            (r.u32().unwrap(), r.u32().unwrap(), r.u32().unwrap()),
            (0, 0, 0)
        );
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "module.parse_error");
    }

    #[test]
    fn dependency_check_and_malformed_requests() {
        let mut w = Writer::new();
        w.count(2)
            .str("a")
            .count(1)
            .str("b")
            .str("b")
            .count(1)
            .str("a");
        let out = check_plan_dependencies(&w.into_bytes()).unwrap();
        let mut r = Reader::new(&out);
        assert_eq!(r.u32().unwrap(), 1);
        assert_eq!(r.str().unwrap(), "plan.dependency_cycle");
        assert_eq!(vet_module(&[1, 2, 3]).unwrap_err().code, STATUS_BAD_REQUEST);
        assert_eq!(
            check_plan_dependencies(&[9]).unwrap_err().code,
            STATUS_BAD_REQUEST
        );
    }
}
