//! Hash joins and sorts against the reference: nested loops and a stable sort of rows.

use std::cmp::Ordering;

use lightning_columnar::{Batch, Expr, HashJoin, JoinType, Scalar, SortKey, col, sort};
use proptest::prelude::*;

use crate::operators::batch;

fn split(b: &Batch, at: usize) -> Vec<Batch> {
    let n = b.physical_rows();
    let at = at.min(n) as u32;
    vec![
        b.clone().with_selection((0..at).collect()).unwrap(),
        b.clone().with_selection((at..n as u32).collect()).unwrap(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    /// Skewed and duplicate keys (`k`), nullable keys (`i`), empty sides.
    #[test]
    fn joins_match_nested_loops(
        seeds in any::<(u64, u64)>(), sizes in (0usize..200, 0usize..200),
        keys in 0usize..3, kind in 0usize..4, at in 0usize..200,
    ) {
        let probe = batch(seeds.0, sizes.0);
        let build = batch(seeds.1, sizes.1);
        let key_names: &[&str] = [&["k"][..], &["i"][..], &["k", "i"][..]][keys];
        let key_idx: Vec<usize> = key_names.iter().map(|k| probe.schema().index_of(k).unwrap()).collect();
        let join_type = [JoinType::Inner, JoinType::Left, JoinType::Semi, JoinType::Anti][kind];
        let exprs: Vec<Expr> = key_names.iter().map(|k| col(*k)).collect();
        let join = HashJoin::new(build.schema(), &split(&build, at), &exprs, probe.schema().clone(), exprs.clone(), join_type).unwrap();
        prop_assert_eq!(join.build_rows(), sizes.1);
        let mut got = Vec::new();
        for p in split(&probe, at / 2) {
            got.extend(join.probe(&p).unwrap().rows());
        }
        let build_rows = build.rows();
        let width = build.schema().len();
        let mut want = Vec::new();
        for p in probe.rows() {
            let matches: Vec<&Vec<Scalar>> = build_rows
                .iter()
                .filter(|b| key_idx.iter().all(|i| !p[*i].is_null() && p[*i] == b[*i]))
                .collect();
            match join_type {
                JoinType::Inner | JoinType::Left => {
                    for m in &matches {
                        want.push(p.iter().chain(m.iter()).cloned().collect::<Vec<_>>());
                    }
                    if matches.is_empty() && join_type == JoinType::Left {
                        want.push(p.iter().cloned().chain(std::iter::repeat_n(Scalar::Null, width)).collect());
                    }
                }
                JoinType::Semi if !matches.is_empty() => want.push(p.clone()),
                JoinType::Anti if matches.is_empty() => want.push(p.clone()),
                _ => {}
            }
        }
        prop_assert_eq!(got, want);
    }

    #[test]
    fn sorts_match_a_stable_sort(
        seed in any::<u64>(), rows in 0usize..400,
        keys in proptest::collection::vec((0usize..9, any::<bool>(), any::<bool>()), 1..4),
        limit in proptest::option::of(0usize..50), at in 0usize..400,
    ) {
        let b = batch(seed, rows);
        let names = ["i", "j", "f", "d", "s", "b", "dt", "ts", "k"];
        let sort_keys: Vec<SortKey> = keys
            .iter()
            .map(|(c, desc, nf)| {
                let k = if *desc { SortKey::desc(col(names[*c])) } else { SortKey::asc(col(names[*c])) };
                k.nulls_first(*nf)
            })
            .collect();
        let got = sort(b.schema(), &split(&b, at), &sort_keys, limit).unwrap().rows();
        let mut want = b.rows();
        want.sort_by(|x, y| {
            keys.iter()
                .map(|(c, desc, nf)| {
                    let i = b.schema().index_of(names[*c]).unwrap();
                    match (x[i].is_null(), y[i].is_null()) {
                        (true, true) => Ordering::Equal,
                        (true, false) => if *nf { Ordering::Less } else { Ordering::Greater },
                        (false, true) => if *nf { Ordering::Greater } else { Ordering::Less },
                        _ => {
                            let o = x[i].total_cmp(&y[i]);
                            if *desc { o.reverse() } else { o }
                        }
                    }
                })
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
        });
        if let Some(l) = limit {
            want.truncate(l);
        }
        prop_assert_eq!(got, want);
    }
}
