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

    /// Top-k over many batches of an integer key without nulls (the path that drops the
    /// rows that cannot beat the current k-th by one comparison): equal to the first `k` of
    /// a stable sort, ties in input order, in both directions.
    #[test]
    fn top_k_over_many_integer_batches_matches_a_stable_sort(
        values in proptest::collection::vec(0i64..40, 0..3000),
        cuts in proptest::collection::vec(1usize..400, 1..30),
        k in 1usize..25, desc in any::<bool>(),
    ) {
        use std::sync::Arc;
        use lightning_columnar::{Column, DataType, Field, Schema};
        let schema = Arc::new(Schema::new(vec![
            Field::new("v", DataType::Int64, false),
            Field::new("pos", DataType::Int64, false),
        ]).unwrap());
        let mut batches = Vec::new();
        let (mut at, mut cut) = (0, cuts.iter().cycle());
        while at < values.len() {
            let n = (*cut.next().unwrap()).min(values.len() - at);
            batches.push(Batch::new(schema.clone(), vec![
                Column::from_i64(DataType::Int64, values[at..at + n].to_vec(), None).unwrap(),
                Column::from_i64(DataType::Int64, (at as i64..(at + n) as i64).collect(), None).unwrap(),
            ]).unwrap());
            at += n;
        }
        let key = if desc { SortKey::desc(col("v")) } else { SortKey::asc(col("v")) };
        let got = sort(&schema, &batches, &[key], Some(k)).unwrap().rows();
        let mut want: Vec<Vec<Scalar>> = values
            .iter()
            .enumerate()
            .map(|(i, v)| vec![Scalar::Int64(*v), Scalar::Int64(i as i64)])
            .collect();
        want.sort_by(|x, y| if desc { y[0].total_cmp(&x[0]) } else { x[0].total_cmp(&y[0]) });
        want.truncate(k);
        prop_assert_eq!(got, want);
    }
}
