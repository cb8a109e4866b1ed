//! Vetting a WASM module against the module policy.
//!
//! Rules (family, severity):
//!
//! * `module.parse_error` (integrity, critical): the bytes are not a
//!   well-formed module; no structural rule below can then be checked;
//! * `module.digest_mismatch` (integrity, critical): the SHA-256 of the bytes
//!   differs from the expected digest;
//! * `module.too_large` (compliance, critical): more bytes than `max_size_bytes`;
//! * `module.import_not_allowed` (safety, critical): an import matching no
//!   allow-list entry; entries are `module.name` or `module.*`;
//! * `module.memory_max_missing` (safety): a memory without a declared
//!   maximum; critical when `require_memory_max`, otherwise a warning;
//! * `module.memory_exceeds_limit` (safety, critical): a memory whose
//!   maximum (or, without one, initial size) exceeds `max_memory_pages`;
//! * `module.missing_export` (compliance, critical): a required export
//!   (of any kind, e.g. `memory`) is absent.
//!
//! Limits of 0 mean "no limit".

use crate::findings::{self, Family, Finding, Severity};
use crate::sha256;
use crate::wasm::{self, ModuleInfo};

/// What a module must satisfy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModulePolicy {
    /// Allowed imports: `module.name` or `module.*`.
    pub allowed_imports: Vec<String>,
    /// Largest memory in 64 KiB pages; 0 = no limit.
    pub max_memory_pages: u64,
    /// Whether every memory must declare a maximum.
    pub require_memory_max: bool,
    /// Largest module in bytes; 0 = no limit.
    pub max_size_bytes: u64,
    /// Exports the module must have.
    pub required_exports: Vec<String>,
}

/// The outcome of vetting one module.
#[derive(Debug, Clone, PartialEq)]
pub struct Vetting {
    /// SHA-256 of the module bytes, lowercase hex.
    pub sha256: String,
    /// What the parser found, when the module is well-formed.
    pub info: Option<ModuleInfo>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Risk score of the findings (see [`findings::risk_score`]).
    pub risk_score: f64,
}

impl ModulePolicy {
    /// Whether `module.name` is on the allow-list.
    pub fn allows_import(&self, module: &str, name: &str) -> bool {
        let qualified = format!("{module}.{name}");
        self.allowed_imports
            .iter()
            .any(|entry| match entry.strip_suffix(".*") {
                Some(prefix) => prefix == module,
                None => *entry == qualified,
            })
    }
}

/// Vets `module` against `policy`; `expected_sha256` (lowercase hex) is
/// compared when non-empty.
pub fn vet(module: &[u8], policy: &ModulePolicy, expected_sha256: &str) -> Vetting {
    let digest = sha256::hex_digest(module);
    let mut out = Vec::new();
    if !expected_sha256.is_empty() && !expected_sha256.eq_ignore_ascii_case(&digest) {
        out.push(Finding::new(
            "module.digest_mismatch",
            Family::Integrity,
            Severity::Critical,
            format!("sha256 {digest} differs from the expected {expected_sha256}"),
            "sha256",
        ));
    }
    let size = module.len() as u64;
    if policy.max_size_bytes > 0 && size > policy.max_size_bytes {
        out.push(Finding::new(
            "module.too_large",
            Family::Compliance,
            Severity::Critical,
            format!(
                "module is {size} bytes, more than the limit of {} bytes",
                policy.max_size_bytes
            ),
            "module",
        ));
    }
    let info = match wasm::parse(module) {
        Ok(info) => Some(info),
        Err(e) => {
            out.push(Finding::new(
                "module.parse_error",
                Family::Integrity,
                Severity::Critical,
                format!("not a well-formed WASM module: {e}"),
                format!("offset {}", e.offset),
            ));
            None
        }
    };
    if let Some(info) = &info {
        check_structure(info, policy, &mut out);
    }
    findings::sort(&mut out);
    let risk_score = findings::risk_score(&out);
    Vetting {
        sha256: digest,
        info,
        findings: out,
        risk_score,
    }
}

fn check_structure(info: &ModuleInfo, policy: &ModulePolicy, out: &mut Vec<Finding>) {
    for import in &info.imports {
        if !policy.allows_import(&import.module, &import.name) {
            out.push(Finding::new(
                "module.import_not_allowed",
                Family::Safety,
                Severity::Critical,
                format!(
                    "import {} ({}) is not on the allow-list",
                    import.qualified(),
                    import.kind.name()
                ),
                import.qualified(),
            ));
        }
    }
    for (i, m) in info.memories.iter().enumerate() {
        let location = format!("memory[{i}]");
        if m.max_pages.is_none() {
            let severity = if policy.require_memory_max {
                Severity::Critical
            } else {
                Severity::Warning
            };
            out.push(Finding::new(
                "module.memory_max_missing",
                Family::Safety,
                severity,
                format!("memory {i} declares no maximum and could grow without bound"),
                location.clone(),
            ));
        }
        let bound = m.max_pages.unwrap_or(m.min_pages);
        if policy.max_memory_pages > 0 && bound > policy.max_memory_pages {
            out.push(Finding::new(
                "module.memory_exceeds_limit",
                Family::Safety,
                Severity::Critical,
                format!(
                    "memory {i} may reach {bound} pages, more than the limit of {} pages",
                    policy.max_memory_pages
                ),
                location,
            ));
        }
    }
    for required in &policy.required_exports {
        if !info.exports.iter().any(|e| &e.name == required) {
            out.push(Finding::new(
                "module.missing_export",
                Family::Compliance,
                Severity::Critical,
                format!("required export {required:?} is missing"),
                required.clone(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::build::sample;

    fn policy() -> ModulePolicy {
        ModulePolicy {
            allowed_imports: vec!["env.log".into()],
            max_memory_pages: 16,
            require_memory_max: true,
            max_size_bytes: 1024,
            required_exports: vec!["run".into(), "memory".into()],
        }
    }

    fn rules(v: &Vetting) -> Vec<&'static str> {
        v.findings.iter().map(|f| f.rule).collect()
    }

    #[test]
    fn a_compliant_module_has_no_findings() {
        let data = sample();
        let v = vet(&data, &policy(), &sha256::hex_digest(&data));
        assert!(v.findings.is_empty(), "{:?}", v.findings);
        assert_eq!(v.risk_score, 0.0);
        assert_eq!(v.sha256, sha256::hex_digest(&data));
        assert_eq!(v.info.unwrap().function_exports(), vec!["run", "helper"]);
    }

    #[test]
    fn each_policy_rule_fires() {
        let data = sample();
        let strict = ModulePolicy {
            allowed_imports: vec![],
            max_memory_pages: 8,
            max_size_bytes: 10,
            required_exports: vec!["run".into(), "_start".into()],
            ..policy()
        };
        let v = vet(&data, &strict, &"0".repeat(64));
        assert_eq!(
            rules(&v),
            vec![
                "module.import_not_allowed",
                "module.memory_exceeds_limit",
                "module.digest_mismatch",
                "module.too_large",
                "module.missing_export",
            ]
        );
        assert_eq!(v.findings[0].location, "env.log");
        assert_eq!(v.findings[4].location, "_start");
        assert_eq!(v.risk_score, 5.0);
    }

    #[test]
    fn wildcard_allow_list_entries_match_whole_module_names() {
        let p = ModulePolicy {
            allowed_imports: vec!["env.*".into(), "wasi.fd_write".into()],
            ..ModulePolicy::default()
        };
        assert!(p.allows_import("env", "anything"));
        assert!(p.allows_import("wasi", "fd_write"));
        assert!(!p.allows_import("wasi", "fd_read"));
        assert!(!p.allows_import("environment", "x"));
        assert!(!p.allows_import("wasi.fd", "write"));
        assert!(!p.allows_import("wasi.fd_write", ""));
    }

    #[test]
    fn memory_without_maximum_is_a_warning_unless_required() {
        // A module with one memory of min 2 pages and no maximum.
        let data = b"\0asm\x01\0\0\0\x05\x03\x01\x00\x02".to_vec();
        let lax = ModulePolicy {
            require_memory_max: false,
            max_memory_pages: 1,
            ..ModulePolicy::default()
        };
        let v = vet(&data, &lax, "");
        assert_eq!(
            rules(&v),
            vec!["module.memory_exceeds_limit", "module.memory_max_missing"]
        );
        assert_eq!(v.findings[1].severity, Severity::Warning);
        let v = vet(
            &data,
            &ModulePolicy {
                require_memory_max: true,
                ..ModulePolicy::default()
            },
            "",
        );
        assert_eq!(v.findings[0].severity, Severity::Critical);
        assert_eq!(v.risk_score, 4.0);
    }

    #[test]
    fn malformed_modules_fail_integrity_with_an_offset() {
        let v = vet(b"not wasm", &ModulePolicy::default(), "");
        assert_eq!(rules(&v), vec!["module.parse_error"]);
        assert_eq!(v.findings[0].family, Family::Integrity);
        assert_eq!(v.findings[0].location, "offset 0");
        assert!(v.info.is_none());
        assert_eq!(v.risk_score, 2.5);
    }

    #[test]
    fn expected_digest_compares_case_insensitively() {
        let data = sample();
        let upper = sha256::hex_digest(&data).to_uppercase();
        assert!(vet(&data, &policy(), &upper).findings.is_empty());
    }
}
