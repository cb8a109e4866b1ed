//! The shared test vectors (`layers/layer6_evolution/core_vectors.json`): the
//! Python tests run the same cases through the WASM module, so both sides
//! agree on the UCB1 choice and the restart rule.

use crate::api::{arms_request, choose_arm_op, restart_request, restart_rule_op};
use crate::restart::RestartPolicy;
use crate::wire::json::Json;
use crate::wire::Reader;

fn vectors() -> Json {
    Json::parse(include_str!("../../core_vectors.json")).expect("core_vectors.json")
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || a == b || (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn bandit_vectors() {
    for case in vectors().get("bandit").arr() {
        let arms: Vec<(u32, f64)> = case
            .get("arms")
            .arr()
            .iter()
            .map(|a| (a.arr()[0].num() as u32, a.arr()[1].num()))
            .collect();
        let name = case.get("name").str();
        let result = choose_arm_op(&arms_request(case.get("c").num(), &arms));
        match case.get("arm") {
            Json::Num(arm) => {
                let out = result.expect(name);
                let mut r = Reader::new(&out);
                assert_eq!(f64::from(r.u32().unwrap()), *arm, "{name}");
                let exploration = matches!(case.get("exploration"), Json::Bool(true));
                assert_eq!(r.u8().unwrap() == 1, exploration, "{name}");
                let want = case.get("indices").nums();
                assert_eq!(r.u32().unwrap() as usize, want.len(), "{name}");
                for w in want {
                    let got = r.f64().unwrap();
                    assert!(same(got, w), "{name}: {got} != {w}");
                }
            }
            _ => {
                let e = result.expect_err(name);
                assert_eq!(e.details[0], case.get("error_arm").str(), "{name}");
            }
        }
    }
}

#[test]
fn restart_vectors() {
    for case in vectors().get("restart").arr() {
        let p = case.get("policy");
        let policy = RestartPolicy {
            maximize: matches!(p.get("maximize"), Json::Bool(true)),
            tolerance: p.get("tolerance").num(),
            patience: p.get("patience").num() as u32,
            max_population: p.get("max_population").num() as u32,
        };
        let population = case.get("population").num() as u32;
        let name = case.get("name").str();
        let result = restart_rule_op(&restart_request(
            &policy,
            population,
            &case.get("history").nums(),
        ));
        match case.get("decision") {
            Json::Str(decision) => {
                let out = result.expect(name);
                let mut r = Reader::new(&out);
                let code = ["continue", "restart", "stop"][r.u8().unwrap() as usize];
                assert_eq!(code, decision, "{name}");
                assert_eq!(
                    f64::from(r.u32().unwrap()),
                    case.get("stagnant_generations").num(),
                    "{name}"
                );
                let best = match case.get("best") {
                    Json::Null => f64::NAN,
                    v => v.num(),
                };
                assert!(same(r.f64().unwrap(), best), "{name}");
                assert_eq!(
                    f64::from(r.u32().unwrap()),
                    case.get("next_population").num(),
                    "{name}"
                );
            }
            _ => {
                let e = result.expect_err(name);
                assert_eq!(e.details[0], case.get("error_field").str(), "{name}");
            }
        }
    }
}
