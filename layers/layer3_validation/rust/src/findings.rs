//! Findings: broken or noteworthy rules, as reported in a validation result.

/// Family of checks a rule belongs to (numbers match `chimera.v1.CheckFamily`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// Forbidden operations, imports outside the allow-list, memory limits.
    Safety = 1,
    /// Digests, well-formed structure, dependency sanity.
    Integrity = 2,
    /// Resource limits, size limits, required exports.
    Compliance = 3,
}

/// How serious a finding is (numbers match `chimera.v1.Severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Noteworthy only.
    Info = 1,
    /// Leaves the subject valid.
    Warning = 2,
    /// Makes the subject invalid.
    Critical = 3,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Stable rule id, e.g. `module.import_not_allowed`.
    pub rule: &'static str,
    /// Family of the rule.
    pub family: Family,
    /// Severity.
    pub severity: Severity,
    /// What is wrong, naming the offending item.
    pub message: String,
    /// Where: a task id, an import or export name, a section.
    pub location: String,
}

impl Finding {
    /// A finding.
    pub fn new(
        rule: &'static str,
        family: Family,
        severity: Severity,
        message: impl Into<String>,
        location: impl Into<String>,
    ) -> Self {
        Finding {
            rule,
            family,
            severity,
            message: message.into(),
            location: location.into(),
        }
    }
}

/// Orders findings most severe first, then by family; otherwise keeps the
/// order they were found in.
pub fn sort(findings: &mut [Finding]) {
    findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.family.cmp(&b.family)));
}

/// Risk score of a set of findings on the planning scale (0..=5): the sum
/// of 4.0 per critical safety finding, 2.5 per other critical finding and
/// 1.0 per warning, capped at 5. So one critical safety finding alone is
/// already "critical" risk (>= 4), one other critical finding "high".
pub fn risk_score(findings: &[Finding]) -> f64 {
    let total: f64 = findings
        .iter()
        .map(|f| match (f.severity, f.family) {
            (Severity::Critical, Family::Safety) => 4.0,
            (Severity::Critical, _) => 2.5,
            (Severity::Warning, _) => 1.0,
            (Severity::Info, _) => 0.0,
        })
        .sum();
    total.min(5.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(family: Family, severity: Severity, rule: &'static str) -> Finding {
        Finding::new(rule, family, severity, "m", "l")
    }

    #[test]
    fn sorts_by_severity_then_family_stably() {
        let mut v = vec![
            f(Family::Compliance, Severity::Warning, "a"),
            f(Family::Integrity, Severity::Critical, "b"),
            f(Family::Safety, Severity::Critical, "c"),
            f(Family::Safety, Severity::Critical, "d"),
        ];
        sort(&mut v);
        let rules: Vec<&str> = v.iter().map(|x| x.rule).collect();
        assert_eq!(rules, vec!["c", "d", "b", "a"]);
    }

    #[test]
    fn risk_score_weights_and_cap() {
        assert_eq!(risk_score(&[]), 0.0);
        assert_eq!(
            risk_score(&[f(Family::Compliance, Severity::Warning, "w")]),
            1.0
        );
        assert_eq!(
            risk_score(&[f(Family::Integrity, Severity::Critical, "i")]),
            2.5
        );
        assert_eq!(
            risk_score(&[f(Family::Safety, Severity::Critical, "s")]),
            4.0
        );
        let many = vec![f(Family::Safety, Severity::Critical, "s"); 3];
        assert_eq!(risk_score(&many), 5.0);
        assert_eq!(risk_score(&[f(Family::Safety, Severity::Info, "i")]), 0.0);
    }
}
