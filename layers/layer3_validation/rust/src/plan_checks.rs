//! Dependency sanity of a plan's tasks, checked independently of the
//! planning layer (a gate should not trust the planner it guards).
//!
//! Rules (all integrity): `plan.empty_task_id`, `plan.duplicate_task_id`,
//! `plan.self_dependency`, `plan.unknown_dependency` and
//! `plan.dependency_cycle` are critical; `plan.duplicate_dependency` (a
//! task listing the same dependency twice) is a warning.
//!
//! Cycles are found with Kahn's algorithm over the valid edges: the tasks it
//! cannot order all have an unordered dependency, so following dependencies
//! from the first of them must revisit a task; the loop found that way is
//! reported in dependency order (each task depends on the one before it),
//! starting at the task listed first, with the number of tasks that cannot
//! be ordered.

use crate::findings::{Family, Finding, Severity};
use std::collections::{HashMap, HashSet};

/// A task as the dependency check sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanTask {
    /// Task id.
    pub id: String,
    /// Ids of its dependencies.
    pub deps: Vec<String>,
}

fn critical(rule: &'static str, message: String, location: &str) -> Finding {
    Finding::new(
        rule,
        Family::Integrity,
        Severity::Critical,
        message,
        location,
    )
}

/// Checks the dependency graph of `tasks`; returns the findings in the order
/// found (tasks in input order, cycle last).
pub fn check_dependencies(tasks: &[PlanTask]) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in tasks.iter().enumerate() {
        if t.id.is_empty() {
            out.push(critical(
                "plan.empty_task_id",
                format!("task {i} has an empty id"),
                &format!("tasks[{i}]"),
            ));
        } else if index.insert(t.id.as_str(), i).is_some() {
            out.push(critical(
                "plan.duplicate_task_id",
                format!("task id {:?} is used more than once", t.id),
                &t.id,
            ));
        }
    }
    // Edges from the first task with each id; later duplicates only get findings.
    let n = tasks.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, t) in tasks.iter().enumerate() {
        let mut seen = HashSet::new();
        for dep in &t.deps {
            if !seen.insert(dep.as_str()) {
                out.push(Finding::new(
                    "plan.duplicate_dependency",
                    Family::Integrity,
                    Severity::Warning,
                    format!("task {:?} lists dependency {dep:?} more than once", t.id),
                    &t.id,
                ));
                continue;
            }
            if *dep == t.id {
                out.push(critical(
                    "plan.self_dependency",
                    format!("task {:?} depends on itself", t.id),
                    &t.id,
                ));
                continue;
            }
            match index.get(dep.as_str()) {
                Some(&d) if index.get(t.id.as_str()) == Some(&i) => preds[i].push(d),
                Some(_) => {}
                None => out.push(critical(
                    "plan.unknown_dependency",
                    format!("task {:?} depends on unknown task {dep:?}", t.id),
                    &t.id,
                )),
            }
        }
    }
    if let Some(f) = find_cycle(tasks, &preds) {
        out.push(f);
    }
    out
}

fn find_cycle(tasks: &[PlanTask], preds: &[Vec<usize>]) -> Option<Finding> {
    let n = tasks.len();
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut indegree = vec![0usize; n];
    for (v, ps) in preds.iter().enumerate() {
        indegree[v] = ps.len();
        for &p in ps {
            succs[p].push(v);
        }
    }
    let mut stack: Vec<usize> = (0..n).filter(|&v| indegree[v] == 0).collect();
    let mut ordered = vec![false; n];
    while let Some(v) = stack.pop() {
        ordered[v] = true;
        for &s in &succs[v] {
            indegree[s] -= 1;
            if indegree[s] == 0 {
                stack.push(s);
            }
        }
    }
    let stuck = ordered.iter().filter(|&&o| !o).count();
    let first = (0..n).find(|&v| !ordered[v])?;
    // Walk unordered dependencies until a task repeats.
    let mut walk = vec![first];
    let mut position: HashMap<usize, usize> = HashMap::from([(first, 0)]);
    let mut v = first;
    loop {
        v = *preds[v].iter().find(|&&p| !ordered[p])?;
        if let Some(&at) = position.get(&v) {
            walk.drain(..at);
            break;
        }
        position.insert(v, walk.len());
        walk.push(v);
    }
    // `walk` follows dependencies backwards; reverse to dependency order and
    // start at the task listed first.
    walk.reverse();
    let min_at = walk
        .iter()
        .enumerate()
        .min_by_key(|&(_, &v)| v)
        .map_or(0, |(i, _)| i);
    walk.rotate_left(min_at);
    let mut ids: Vec<&str> = walk.iter().map(|&v| tasks[v].id.as_str()).collect();
    ids.push(ids[0]);
    Some(critical(
        "plan.dependency_cycle",
        format!(
            "dependency cycle: {} ({stuck} tasks cannot be ordered)",
            ids.join(" -> ")
        ),
        ids[0],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, deps: &[&str]) -> PlanTask {
        PlanTask {
            id: id.into(),
            deps: deps.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn rules(f: &[Finding]) -> Vec<&'static str> {
        f.iter().map(|x| x.rule).collect()
    }

    #[test]
    fn a_sane_graph_has_no_findings() {
        assert!(check_dependencies(&[t("a", &[]), t("b", &["a"]), t("c", &["a", "b"])]).is_empty());
        assert!(check_dependencies(&[]).is_empty());
    }

    #[test]
    fn cycles_are_reported_in_dependency_order() {
        let f = check_dependencies(&[
            t("x", &[]),
            t("c", &["b"]),
            t("a", &["c", "x"]),
            t("b", &["a"]),
            t("after", &["b"]),
        ]);
        assert_eq!(rules(&f), vec!["plan.dependency_cycle"]);
        assert_eq!(
            f[0].message,
            "dependency cycle: c -> a -> b -> c (4 tasks cannot be ordered)"
        );
        assert_eq!(f[0].location, "c");
    }

    #[test]
    fn each_rule_fires_with_its_location() {
        let f = check_dependencies(&[
            t("a", &["a"]),
            t("b", &["zz", "a", "a"]),
            t("a", &[]),
            t("", &[]),
        ]);
        assert_eq!(
            rules(&f),
            vec![
                "plan.duplicate_task_id",
                "plan.empty_task_id",
                "plan.self_dependency",
                "plan.unknown_dependency",
                "plan.duplicate_dependency",
            ]
        );
        assert_eq!(f[3].location, "b");
        assert_eq!(f[4].severity, Severity::Warning);
        assert!(f[3].message.contains("\"zz\""));
    }
}
