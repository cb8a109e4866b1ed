//! The task dependency graph: validation, cycle detection, topological order
//! and dependency levels.
//!
//! An edge runs from a dependency to the task that depends on it ("b depends
//! on a" is `a -> b`: a must finish before b starts).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt;

/// A task as the graph sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSpec {
    /// Id, unique within the graph.
    pub id: String,
    /// Estimated duration in milliseconds.
    pub duration_ms: u64,
    /// Ids of the tasks that must finish first.
    pub deps: Vec<String>,
}

/// Why a set of tasks is not a valid DAG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DagError {
    /// Two tasks share an id; `index` is the second one.
    DuplicateId {
        /// Position of the repeated task.
        index: usize,
        /// The repeated id.
        id: String,
    },
    /// A dependency names no task.
    UnknownDependency {
        /// Position of the task.
        task_index: usize,
        /// Position of the dependency within the task's list.
        dep_index: usize,
        /// The task's id.
        task: String,
        /// The missing id.
        dep: String,
    },
    /// The dependencies form a cycle. The ids are in dependency order: each
    /// one depends on the one before it, and the first depends on the last.
    /// The cycle is rotated to start at the task listed first in the input.
    Cycle(Vec<String>),
}

impl fmt::Display for DagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DagError::DuplicateId { index, id } => {
                write!(f, "tasks[{index}]: duplicate task id {id:?}")
            }
            DagError::UnknownDependency {
                task_index,
                dep_index,
                task,
                dep,
            } => write!(
                f,
                "tasks[{task_index}].dependencies[{dep_index}]: task {task:?} depends on unknown task {dep:?}"
            ),
            DagError::Cycle(ids) => {
                let mut path = ids.clone();
                if let Some(first) = ids.first() {
                    path.push(first.clone());
                }
                write!(f, "dependency cycle: {}", path.join(" -> "))
            }
        }
    }
}

/// A validated, acyclic task graph. Nodes are numbered by input position.
#[derive(Debug, Clone)]
pub struct Dag {
    ids: Vec<String>,
    durations: Vec<u64>,
    preds: Vec<Vec<usize>>,
    succs: Vec<Vec<usize>>,
    order: Vec<usize>,
}

impl Dag {
    /// Builds the graph, rejecting duplicate ids, unknown dependencies and
    /// cycles (in that order of checking). Repeated dependencies count once.
    pub fn new(tasks: &[TaskSpec]) -> Result<Dag, DagError> {
        let mut index: HashMap<&str, usize> = HashMap::with_capacity(tasks.len());
        for (i, t) in tasks.iter().enumerate() {
            if index.insert(t.id.as_str(), i).is_some() {
                return Err(DagError::DuplicateId {
                    index: i,
                    id: t.id.clone(),
                });
            }
        }
        let n = tasks.len();
        let mut preds = vec![Vec::new(); n];
        let mut succs = vec![Vec::new(); n];
        for (i, t) in tasks.iter().enumerate() {
            for (j, dep) in t.deps.iter().enumerate() {
                let d = *index
                    .get(dep.as_str())
                    .ok_or_else(|| DagError::UnknownDependency {
                        task_index: i,
                        dep_index: j,
                        task: t.id.clone(),
                        dep: dep.clone(),
                    })?;
                if !preds[i].contains(&d) {
                    preds[i].push(d);
                    succs[d].push(i);
                }
            }
        }
        let mut dag = Dag {
            ids: tasks.iter().map(|t| t.id.clone()).collect(),
            durations: tasks.iter().map(|t| t.duration_ms).collect(),
            preds,
            succs,
            order: Vec::new(),
        };
        match dag.kahn() {
            Some(order) => {
                dag.order = order;
                Ok(dag)
            }
            None => Err(DagError::Cycle(
                dag.find_cycle()
                    .into_iter()
                    .map(|i| dag.ids[i].clone())
                    .collect(),
            )),
        }
    }

    /// Kahn's algorithm; among ready tasks the one listed first goes first,
    /// so an input already in dependency order is kept as it is.
    fn kahn(&self) -> Option<Vec<usize>> {
        let n = self.ids.len();
        let mut indegree: Vec<usize> = self.preds.iter().map(Vec::len).collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            (0..n).filter(|&i| indegree[i] == 0).map(Reverse).collect();
        let mut order = Vec::with_capacity(n);
        while let Some(Reverse(v)) = ready.pop() {
            order.push(v);
            for &s in &self.succs[v] {
                indegree[s] -= 1;
                if indegree[s] == 0 {
                    ready.push(Reverse(s));
                }
            }
        }
        if order.len() == n {
            Some(order)
        } else {
            None
        }
    }

    /// One cycle, found by an iterative depth-first search from each node in
    /// input order, following edges in input order.
    fn find_cycle(&self) -> Vec<usize> {
        const WHITE: u8 = 0;
        const GRAY: u8 = 1;
        const BLACK: u8 = 2;
        let n = self.ids.len();
        let mut color = vec![WHITE; n];
        for root in 0..n {
            if color[root] != WHITE {
                continue;
            }
            // (node, next successor position) frames: exactly the gray nodes, in path order.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            color[root] = GRAY;
            while let Some(top) = stack.last_mut() {
                let v = top.0;
                if let Some(&s) = self.succs[v].get(top.1) {
                    top.1 += 1;
                    if color[s] == GRAY {
                        let start = stack.iter().position(|&(u, _)| u == s).unwrap_or(0);
                        let mut cycle: Vec<usize> =
                            stack[start..].iter().map(|&(u, _)| u).collect();
                        let min_pos = cycle
                            .iter()
                            .enumerate()
                            .min_by_key(|&(_, &u)| u)
                            .map(|(p, _)| p)
                            .unwrap_or(0);
                        cycle.rotate_left(min_pos);
                        return cycle;
                    }
                    if color[s] == WHITE {
                        color[s] = GRAY;
                        stack.push((s, 0));
                    }
                } else {
                    color[v] = BLACK;
                    stack.pop();
                }
            }
        }
        Vec::new()
    }

    /// Number of tasks.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a graph without tasks.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Id of task `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.ids[i]
    }

    /// Duration of task `i` in milliseconds.
    pub fn duration(&self, i: usize) -> u64 {
        self.durations[i]
    }

    /// Direct dependencies of task `i`.
    pub fn preds(&self, i: usize) -> &[usize] {
        &self.preds[i]
    }

    /// Tasks that directly depend on task `i`.
    pub fn succs(&self, i: usize) -> &[usize] {
        &self.succs[i]
    }

    /// A topological order (dependencies first; ties by input position).
    pub fn topo_order(&self) -> &[usize] {
        &self.order
    }

    /// Dependency level of each task: 0 without dependencies, otherwise one
    /// more than its deepest dependency.
    pub fn levels(&self) -> Vec<usize> {
        let mut level = vec![0usize; self.len()];
        for &v in &self.order {
            level[v] = self.preds[v]
                .iter()
                .map(|&p| level[p] + 1)
                .max()
                .unwrap_or(0);
        }
        level
    }

    /// Number of tasks on each level (index = level).
    pub fn level_widths(&self) -> Vec<usize> {
        let levels = self.levels();
        let depth = levels.iter().max().map_or(0, |m| m + 1);
        let mut widths = vec![0usize; depth];
        for l in levels {
            widths[l] += 1;
        }
        widths
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: &str, d: u64, deps: &[&str]) -> TaskSpec {
        TaskSpec {
            id: id.into(),
            duration_ms: d,
            deps: deps.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn topological_order_puts_dependencies_first_and_keeps_input_ties() {
        let dag = Dag::new(&[
            task("c", 1, &["a", "b"]),
            task("a", 1, &[]),
            task("b", 1, &["a"]),
            task("d", 1, &[]),
        ])
        .unwrap();
        let order: Vec<&str> = dag.topo_order().iter().map(|&i| dag.id(i)).collect();
        assert_eq!(order, vec!["a", "b", "c", "d"]);
        assert_eq!(dag.levels(), vec![2, 0, 1, 0]);
        assert_eq!(dag.level_widths(), vec![2, 1, 1]);
    }

    #[test]
    fn cycle_is_reported_in_dependency_order_from_the_first_listed_task() {
        // b depends on a, c on b, a on c: a -> b -> c -> a.
        let err = Dag::new(&[
            task("x", 1, &[]),
            task("c", 1, &["b"]),
            task("a", 1, &["c", "x"]),
            task("b", 1, &["a"]),
        ])
        .unwrap_err();
        assert_eq!(
            err,
            DagError::Cycle(vec!["c".into(), "a".into(), "b".into()])
        );
        assert_eq!(err.to_string(), "dependency cycle: c -> a -> b -> c");
    }

    #[test]
    fn self_dependency_is_a_one_task_cycle() {
        let err = Dag::new(&[task("a", 1, &["a"])]).unwrap_err();
        assert_eq!(err, DagError::Cycle(vec!["a".into()]));
        assert_eq!(err.to_string(), "dependency cycle: a -> a");
    }

    #[test]
    fn only_the_cycle_is_reported_not_tasks_hanging_off_it() {
        let err = Dag::new(&[
            task("root", 1, &[]),
            task("p", 1, &["root", "q"]),
            task("q", 1, &["p"]),
            task("tail", 1, &["q"]),
        ])
        .unwrap_err();
        assert_eq!(err, DagError::Cycle(vec!["p".into(), "q".into()]));
    }

    #[test]
    fn duplicates_and_unknown_dependencies_name_their_position() {
        let err = Dag::new(&[task("a", 1, &[]), task("a", 2, &[])]).unwrap_err();
        assert_eq!(
            err,
            DagError::DuplicateId {
                index: 1,
                id: "a".into()
            }
        );
        let err = Dag::new(&[task("a", 1, &[]), task("b", 1, &["a", "zz"])]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "tasks[1].dependencies[1]: task \"b\" depends on unknown task \"zz\""
        );
    }

    #[test]
    fn repeated_dependencies_count_once_and_empty_graph_is_valid() {
        let dag = Dag::new(&[task("a", 1, &[]), task("b", 1, &["a", "a"])]).unwrap();
        assert_eq!(dag.preds(1), &[0]);
        assert_eq!(dag.succs(0), &[1]);
        let empty = Dag::new(&[]).unwrap();
        assert!(empty.is_empty());
        assert!(empty.level_widths().is_empty());
    }

    #[test]
    fn long_chains_do_not_overflow_the_stack() {
        let n = 20_000;
        let mut tasks: Vec<TaskSpec> = (0..n)
            .map(|i| {
                let deps = if i == 0 {
                    vec![]
                } else {
                    vec![format!("t{}", i - 1)]
                };
                TaskSpec {
                    id: format!("t{i}"),
                    duration_ms: 1,
                    deps,
                }
            })
            .collect();
        assert_eq!(Dag::new(&tasks).unwrap().levels()[n - 1], n - 1);
        tasks[0].deps.push(format!("t{}", n - 1));
        match Dag::new(&tasks).unwrap_err() {
            DagError::Cycle(ids) => {
                assert_eq!(ids.len(), n);
                assert_eq!(ids[0], "t0");
                assert_eq!(ids[1], "t1");
            }
            other => panic!("expected a cycle, got {other:?}"),
        }
    }
}
