//! Morsel-driven parallel execution over a segment's row groups: worker threads take row
//! groups from a shared counter, scan them (zone maps, encoded predicates, residual
//! predicates) and fold the survivors into per-thread aggregation states, merged at the end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::aggregate::{Aggregate, HashAggregate};
use crate::batch::Batch;
use crate::expr::Expr;
use crate::scan::{Scan, ScanStats};
use crate::segment::{ByteSource, SegmentReader};
use crate::{Error, Result};

/// `SELECT group_by, aggs FROM segment WHERE predicate GROUP BY group_by` on `threads`
/// threads (at least 1). `columns` are the segment columns the group-by and aggregate
/// expressions read. Returns the result (groups in unspecified order) and the scan's
/// statistics summed over threads.
pub fn parallel_aggregate<S: ByteSource + Sync>(
    reader: &SegmentReader<S>,
    columns: &[&str],
    predicate: Option<&Expr>,
    group_by: Vec<(String, Expr)>,
    aggs: Vec<Aggregate>,
    threads: usize,
) -> Result<(Batch, ScanStats)> {
    if threads == 0 {
        return Err(Error::InvalidArgument {
            reason: "threads must be at least 1".into(),
        });
    }
    // The scan's output schema, and a template aggregation (checks types up front).
    let probe = Scan::new(reader, columns, predicate.cloned())?;
    drop(probe);
    let schema = std::sync::Arc::new(
        reader.schema().project(
            &columns
                .iter()
                .map(|c| reader.schema().index_of(c))
                .collect::<Result<Vec<_>>>()?,
        )?,
    );
    let template = HashAggregate::new(schema, group_by, aggs)?;
    let next = AtomicUsize::new(0);
    let groups = reader.row_groups().len();
    let results: Mutex<Vec<Result<(HashAggregate, ScanStats)>>> = Mutex::new(Vec::new());
    let work = || -> Result<(HashAggregate, ScanStats)> {
        let mut scan = Scan::new(reader, columns, predicate.cloned())?;
        let mut state = template.clone();
        loop {
            let g = next.fetch_add(1, Ordering::Relaxed);
            if g >= groups {
                break;
            }
            if let Some(b) = scan.row_group(g)? {
                state.push(&b)?;
            }
        }
        Ok((state, scan.stats().clone()))
    };
    std::thread::scope(|s| {
        for _ in 0..threads.min(groups.max(1)) {
            s.spawn(|| {
                let r = work();
                if let Ok(mut v) = results.lock() {
                    v.push(r);
                }
            });
        }
    });
    let results = results.into_inner().map_err(|_| Error::InvalidArgument {
        reason: "a worker thread panicked".into(),
    })?;
    let mut total: Option<HashAggregate> = None;
    let mut stats = ScanStats::default();
    for r in results {
        let (part, s) = r?;
        stats.row_groups = s.row_groups;
        stats.pushed_conjuncts = s.pushed_conjuncts;
        stats.residual_conjuncts = s.residual_conjuncts;
        stats.skipped_by_zone_maps += s.skipped_by_zone_maps;
        stats.emptied_by_encoded_predicates += s.emptied_by_encoded_predicates;
        stats.rows += s.rows;
        stats.chunks_decoded += s.chunks_decoded;
        match &mut total {
            None => total = Some(part),
            Some(t) => t.merge(part)?,
        }
    }
    Ok((total.unwrap_or(template).finish()?, stats))
}
