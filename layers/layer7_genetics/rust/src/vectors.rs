//! The shared test vectors (`layers/layer7_genetics/core_vectors.json`): the
//! Python tests run the same cases through the WASM module, so both sides
//! agree on the formula and the validation rules.

use crate::api::{check_population_op, fitness_op, population_request};
use crate::wire::json::Json;
use crate::wire::{Reader, Writer};

fn vectors() -> Json {
    Json::parse(include_str!("../../core_vectors.json")).expect("core_vectors.json")
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1.0)
}

#[test]
fn fitness_vectors() {
    for case in vectors().get("fitness").arr() {
        let i = case.get("inputs").nums();
        let mut w = Writer::new();
        w.count(1).f64(i[0]).f64(i[1]).f64(i[2]).f64(i[3]);
        let result = fitness_op(&w.into_bytes());
        match case.get("fitness") {
            Json::Num(want) => {
                let out = result.expect("accepted");
                let mut r = Reader::new(&out);
                assert_eq!(r.u32().unwrap(), 1);
                let got = r.f64().unwrap();
                assert!(close(got, *want), "{i:?}: {got} != {want}");
            }
            _ => {
                let e = result.expect_err("rejected");
                assert_eq!(e.details[1], case.get("field").str(), "{i:?}");
            }
        }
    }
}

#[test]
fn population_vectors() {
    for case in vectors().get("populations").arr() {
        let bounds: Vec<(f64, f64)> = case
            .get("bounds")
            .arr()
            .iter()
            .map(|b| (b.arr()[0].num(), b.arr()[1].num()))
            .collect();
        let population: Vec<Vec<f64>> = case
            .get("population")
            .arr()
            .iter()
            .map(Json::nums)
            .collect();
        let result = check_population_op(&population_request(&bounds, &population));
        let name = case.get("name").str();
        match case.get("error") {
            Json::Null => {
                let out = result.expect(name);
                let mut r = Reader::new(&out);
                let want = case.get("diversity").nums();
                assert!(close(r.f64().unwrap(), want[0]), "{name}");
                assert!(close(r.f64().unwrap(), want[1]), "{name}");
            }
            want => {
                let e = result.expect_err(name);
                let want: Vec<&str> = want.arr().iter().map(Json::str).collect();
                assert_eq!(e.details, want, "{name}");
            }
        }
    }
}
