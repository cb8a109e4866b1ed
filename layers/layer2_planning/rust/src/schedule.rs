//! Critical-path analysis and the plan's timeline.
//!
//! **Critical path method** (dependencies only): earliest start `ES` is the
//! latest earliest finish of a task's dependencies (0 without any), `EF = ES +
//! duration`; the makespan is the largest `EF`; latest finish `LF` is the
//! smallest latest start of the task's dependents (the makespan without any),
//! `LS = LF - duration`; total float (slack) is `LS - ES`. The **critical
//! path** is the longest dependency chain by duration: it ends at the task
//! with the largest `EF` and steps back through the dependency with the
//! largest `EF` (ties: the longer chain, then the task listed first).
//!
//! **Timeline**: without a parallelism limit every task starts at its `ES`.
//! With a limit `k` smaller than the task count, tasks are list-scheduled:
//! whenever fewer than `k` run, the ready task with the least CPM slack
//! starts (ties: higher priority, then topological position) on the free
//! slot with the lowest number. Slack in the timeline is then measured
//! against the scheduled starts: how far a task can slip before it delays the
//! scheduled start of a dependent, of the next task on its slot, or the
//! makespan (without a limit this equals the CPM total float).

use crate::dag::Dag;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Critical-path-method figures per task (indexed by input position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpm {
    /// Earliest start.
    pub earliest_start: Vec<u64>,
    /// Earliest finish.
    pub earliest_finish: Vec<u64>,
    /// Latest start that does not delay the makespan.
    pub latest_start: Vec<u64>,
    /// Latest finish that does not delay the makespan.
    pub latest_finish: Vec<u64>,
    /// Total float: `latest_start - earliest_start`.
    pub slack: Vec<u64>,
    /// Task positions of the longest dependency chain, first to last.
    pub critical_path: Vec<usize>,
    /// Largest earliest finish.
    pub makespan: u64,
}

/// Critical-path analysis of `dag` (see the module docs).
pub fn critical_path(dag: &Dag) -> Cpm {
    let n = dag.len();
    let order = dag.topo_order();
    let mut es = vec![0u64; n];
    let mut ef = vec![0u64; n];
    let mut chain = vec![1usize; n];
    let mut best_pred: Vec<Option<usize>> = vec![None; n];
    for &v in order {
        let mut best: Option<usize> = None;
        for &p in dag.preds(v) {
            best = match best {
                Some(b) if (ef[b], chain[b], Reverse(b)) >= (ef[p], chain[p], Reverse(p)) => {
                    Some(b)
                }
                _ => Some(p),
            };
        }
        if let Some(b) = best {
            es[v] = ef[b];
            chain[v] = chain[b] + 1;
        }
        best_pred[v] = best;
        ef[v] = es[v].saturating_add(dag.duration(v));
    }
    let makespan = ef.iter().copied().max().unwrap_or(0);
    let mut lf = vec![makespan; n];
    let mut ls = vec![0u64; n];
    for &v in order.iter().rev() {
        lf[v] = dag
            .succs(v)
            .iter()
            .map(|&s| ls[s])
            .min()
            .unwrap_or(makespan);
        ls[v] = lf[v].saturating_sub(dag.duration(v));
    }
    let slack = (0..n).map(|v| ls[v].saturating_sub(es[v])).collect();

    let end = (0..n).max_by_key(|&v| (ef[v], chain[v], Reverse(v)));
    let mut path = Vec::new();
    let mut cursor = end;
    while let Some(v) = cursor {
        path.push(v);
        cursor = best_pred[v];
    }
    path.reverse();
    Cpm {
        earliest_start: es,
        earliest_finish: ef,
        latest_start: ls,
        latest_finish: lf,
        slack,
        critical_path: path,
        makespan,
    }
}

/// When each task runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Scheduled start offset per task, in milliseconds.
    pub start: Vec<u64>,
    /// Scheduled end offset per task.
    pub end: Vec<u64>,
    /// Slack against the scheduled starts (see the module docs).
    pub slack: Vec<u64>,
    /// Largest end offset.
    pub makespan: u64,
    /// Parallelism limit applied; 0 when none was.
    pub parallel_limit: usize,
    /// The unconstrained critical-path analysis.
    pub cpm: Cpm,
}

impl Schedule {
    /// Task positions ordered by start offset (ties: topological position).
    pub fn timeline(&self, dag: &Dag) -> Vec<usize> {
        let mut pos = vec![0usize; dag.len()];
        for (i, &v) in dag.topo_order().iter().enumerate() {
            pos[v] = i;
        }
        let mut out: Vec<usize> = (0..dag.len()).collect();
        out.sort_by_key(|&v| (self.start[v], pos[v]));
        out
    }
}

/// Schedules `dag` with at most `max_parallel` tasks running at once (0 = no
/// limit). `priority[i]` breaks ties between equally urgent ready tasks
/// (higher first); missing entries count as 0.
pub fn schedule(dag: &Dag, max_parallel: usize, priority: &[u32]) -> Schedule {
    let cpm = critical_path(dag);
    let n = dag.len();
    let limited = max_parallel > 0 && max_parallel < n;
    let placed = if limited {
        list_schedule(dag, &cpm, max_parallel, priority)
    } else {
        Placement {
            start: cpm.earliest_start.clone(),
            sequence: dag.topo_order().to_vec(),
            slot_pred: vec![None; n],
        }
    };
    let start = placed.start;
    let end: Vec<u64> = (0..n)
        .map(|v| start[v].saturating_add(dag.duration(v)))
        .collect();
    let makespan = end.iter().copied().max().unwrap_or(0);
    // Backward pass in reverse start sequence: every arc (dependency or slot
    // hand-over) runs from an earlier-started task to a later-started one.
    let mut slot_succ: Vec<Option<usize>> = vec![None; n];
    for (v, p) in placed.slot_pred.iter().enumerate() {
        if let Some(p) = *p {
            slot_succ[p] = Some(v);
        }
    }
    let mut latest_start = vec![0u64; n];
    for &v in placed.sequence.iter().rev() {
        let latest_finish = dag
            .succs(v)
            .iter()
            .chain(slot_succ[v].iter())
            .map(|&s| latest_start[s])
            .min()
            .unwrap_or(makespan);
        latest_start[v] = latest_finish.saturating_sub(dag.duration(v));
    }
    let slack = (0..n)
        .map(|v| latest_start[v].saturating_sub(start[v]))
        .collect();
    Schedule {
        start,
        end,
        slack,
        makespan,
        parallel_limit: if limited { max_parallel } else { 0 },
        cpm,
    }
}

/// Start offsets, the order tasks started in, and for each task the task
/// that used its slot before it.
struct Placement {
    start: Vec<u64>,
    sequence: Vec<usize>,
    slot_pred: Vec<Option<usize>>,
}

fn list_schedule(dag: &Dag, cpm: &Cpm, limit: usize, priority: &[u32]) -> Placement {
    let n = dag.len();
    let mut pos = vec![0usize; n];
    for (i, &v) in dag.topo_order().iter().enumerate() {
        pos[v] = i;
    }
    let key = |v: usize| {
        Reverse((
            cpm.slack[v],
            Reverse(priority.get(v).copied().unwrap_or(0)),
            pos[v],
            v,
        ))
    };
    let mut waiting: Vec<usize> = (0..n).map(|v| dag.preds(v).len()).collect();
    let mut ready: BinaryHeap<_> = (0..n).filter(|&v| waiting[v] == 0).map(key).collect();
    // (end, topological position, task, slot), earliest end first.
    let mut running: BinaryHeap<Reverse<(u64, usize, usize, usize)>> = BinaryHeap::new();
    let mut free_slots: BinaryHeap<Reverse<usize>> = (0..limit).map(Reverse).collect();
    let mut last_on_slot: Vec<Option<usize>> = vec![None; limit];
    let mut placed = Placement {
        start: vec![0u64; n],
        sequence: Vec::with_capacity(n),
        slot_pred: vec![None; n],
    };
    let mut now = 0u64;
    loop {
        while let Some(&Reverse(slot)) = free_slots.peek() {
            let v = match ready.pop() {
                Some(Reverse((_, _, _, v))) => v,
                None => break,
            };
            free_slots.pop();
            placed.start[v] = now;
            placed.sequence.push(v);
            placed.slot_pred[v] = last_on_slot[slot];
            last_on_slot[slot] = Some(v);
            running.push(Reverse((
                now.saturating_add(dag.duration(v)),
                pos[v],
                v,
                slot,
            )));
        }
        now = match running.peek() {
            Some(Reverse((end, _, _, _))) => *end,
            None => break,
        };
        while let Some(&Reverse((end, _, v, slot))) = running.peek() {
            if end != now {
                break;
            }
            running.pop();
            free_slots.push(Reverse(slot));
            for &s in dag.succs(v) {
                waiting[s] -= 1;
                if waiting[s] == 0 {
                    ready.push(key(s));
                }
            }
        }
    }
    placed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::TaskSpec;

    fn dag(spec: &[(&str, u64, &[&str])]) -> Dag {
        let tasks: Vec<TaskSpec> = spec
            .iter()
            .map(|(id, d, deps)| TaskSpec {
                id: id.to_string(),
                duration_ms: *d,
                deps: deps.iter().map(|s| s.to_string()).collect(),
            })
            .collect();
        Dag::new(&tasks).unwrap()
    }

    /// The textbook network: a(3) -> b(2) -> d(4); a -> c(1) -> d; e(1) alone.
    fn example() -> Dag {
        dag(&[
            ("a", 3, &[]),
            ("b", 2, &["a"]),
            ("c", 1, &["a"]),
            ("d", 4, &["b", "c"]),
            ("e", 1, &[]),
        ])
    }

    #[test]
    fn cpm_computes_earliest_latest_and_slack() {
        let cpm = critical_path(&example());
        assert_eq!(cpm.makespan, 9);
        assert_eq!(cpm.earliest_start, vec![0, 3, 3, 5, 0]);
        assert_eq!(cpm.latest_start, vec![0, 3, 4, 5, 8]);
        assert_eq!(cpm.slack, vec![0, 0, 1, 0, 8]);
        assert_eq!(cpm.critical_path, vec![0, 1, 3]);
        assert_eq!(cpm.earliest_finish[3], 9);
        assert_eq!(cpm.latest_finish[2], 5);
    }

    #[test]
    fn unlimited_schedule_starts_every_task_at_its_earliest_start() {
        let d = example();
        let s = schedule(&d, 0, &[]);
        assert_eq!(s.start, vec![0, 3, 3, 5, 0]);
        assert_eq!(s.end, vec![3, 5, 4, 9, 1]);
        assert_eq!(s.slack, s.cpm.slack);
        assert_eq!(s.parallel_limit, 0);
        let ids: Vec<&str> = s.timeline(&d).iter().map(|&v| d.id(v)).collect();
        assert_eq!(ids, vec!["a", "e", "b", "c", "d"]);
        // A limit at or above the task count changes nothing.
        assert_eq!(schedule(&d, 5, &[]).start, s.start);
    }

    #[test]
    fn one_slot_serialises_by_least_slack() {
        let d = example();
        let s = schedule(&d, 1, &[]);
        // a (slack 0), b (0), c (1), d (0), e (8) last.
        assert_eq!(s.start, vec![0, 3, 5, 6, 10]);
        assert_eq!(s.makespan, 11);
        assert_eq!(s.parallel_limit, 1);
        assert_eq!(s.slack, vec![0, 0, 0, 0, 0]);
        for v in 0..d.len() {
            for &p in d.preds(v) {
                assert!(s.start[v] >= s.end[p], "dependency order broken");
            }
        }
    }

    #[test]
    fn two_slots_give_slack_only_where_a_task_can_really_slip() {
        let d = example();
        let s = schedule(&d, 2, &[]);
        // t=0: a, e; t=1: e done, nothing ready; t=3: b, c; t=5: d.
        assert_eq!(s.start, vec![0, 3, 3, 5, 0]);
        assert_eq!(s.makespan, 9);
        // c took e's slot at 3 and may itself slip 1, so e has 3; c has 1 before d.
        assert_eq!(s.slack, vec![0, 0, 1, 0, 3]);
    }

    #[test]
    fn parallel_limit_is_never_exceeded_and_priority_breaks_ties() {
        let d = dag(&[("x", 5, &[]), ("y", 5, &[]), ("z", 5, &[])]);
        let s = schedule(&d, 2, &[1, 10, 5]);
        assert_eq!(s.start, vec![5, 0, 0]);
        assert_eq!(s.makespan, 10);
        for t in [0, 4, 5, 9] {
            let running = (0..3).filter(|&v| s.start[v] <= t && t < s.end[v]).count();
            assert!(running <= 2);
        }
    }

    #[test]
    fn zero_durations_and_empty_graphs() {
        let d = dag(&[("a", 0, &[]), ("b", 0, &["a"])]);
        let s = schedule(&d, 1, &[]);
        assert_eq!((s.makespan, s.start.clone()), (0, vec![0, 0]));
        assert_eq!(s.cpm.critical_path, vec![0, 1]);
        let e = dag(&[]);
        let s = schedule(&e, 3, &[]);
        assert_eq!(s.makespan, 0);
        assert!(s.cpm.critical_path.is_empty());
        assert!(s.timeline(&e).is_empty());
    }

    #[test]
    fn critical_path_follows_the_longest_branch() {
        let d = dag(&[
            ("start", 1, &[]),
            ("short", 2, &["start"]),
            ("long1", 5, &["start"]),
            ("long2", 5, &["long1"]),
            ("join", 1, &["short", "long2"]),
        ]);
        let cpm = critical_path(&d);
        let ids: Vec<&str> = cpm.critical_path.iter().map(|&v| d.id(v)).collect();
        assert_eq!(ids, vec!["start", "long1", "long2", "join"]);
        assert_eq!(cpm.makespan, 12);
        assert_eq!(cpm.slack[1], 8);
    }
}
