//! Morsel-driven parallel execution over a segment's row groups: worker threads take row
//! groups from a shared counter, scan them (zone maps, encoded predicates, residual
//! predicates) and fold the survivors into per-thread aggregation states, merged at the end.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::aggregate::{Aggregate, HashAggregate};
use crate::batch::Batch;
use crate::bitmap::Bitmap;
use crate::expr::Expr;
use crate::scan::{Scan, ScanStats, Survivors};
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
    // Sums and counts of bare columns, with no predicate or one pushed down whole: taken
    // from the encoded chunks (of the rows the encoded predicates select).
    let encoded = encoded_columns(&template, reader, columns)?;
    let next = AtomicUsize::new(0);
    let groups = reader.row_groups().len();
    let results: Mutex<Vec<Result<(HashAggregate, ScanStats)>>> = Mutex::new(Vec::new());
    let work = || -> Result<(HashAggregate, ScanStats)> {
        let mut scan = Scan::new(reader, columns, predicate.cloned())?;
        let mut state = template.clone();
        let mut on_encoded = ScanStats::default();
        loop {
            let g = next.fetch_add(1, Ordering::Relaxed);
            if g >= groups {
                break;
            }
            if let Some(inputs) = &encoded
                && !scan.has_residual()
            {
                let mask = match scan.pushed_mask(g)? {
                    Survivors::None => continue,
                    Survivors::All => None,
                    Survivors::Some(m) => Some(m),
                };
                if let Some(partials) = encoded_partials(reader, g, inputs, mask.as_ref())? {
                    on_encoded.rows += mask.as_ref().map_or_else(
                        // INVARIANT: `g < groups == reader.row_groups().len()`, checked above.
                        || u64::from(reader.row_groups()[g].rows()),
                        |m| m.count_ones() as u64,
                    );
                    for (agg, (sum, rows)) in partials.into_iter().enumerate() {
                        state.add_partial(agg, sum, rows);
                    }
                    on_encoded.aggregated_on_encoded += 1;
                    continue;
                }
            }
            if let Some(b) = scan.row_group(g)? {
                state.push(&b)?;
            }
        }
        let mut scanned = scan.stats().clone();
        scanned.aggregated_on_encoded = on_encoded.aggregated_on_encoded;
        scanned.rows += on_encoded.rows;
        Ok((state, scanned))
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
        stats.aggregated_on_encoded += s.aggregated_on_encoded;
        match &mut total {
            None => total = Some(part),
            Some(t) => t.merge(part)?,
        }
    }
    Ok((total.unwrap_or(template).finish()?, stats))
}

/// The segment column of each aggregate [`HashAggregate::encoded_inputs`] finds (`None`
/// for `COUNT(*)`); `None` when an aggregate cannot be taken from encoded chunks.
fn encoded_columns<S: ByteSource>(
    template: &HashAggregate,
    reader: &SegmentReader<S>,
    columns: &[&str],
) -> Result<Option<Vec<Option<usize>>>> {
    template
        .encoded_inputs()
        .map(|inputs| {
            inputs
                .into_iter()
                .map(|i| {
                    i.map(|i| {
                        reader
                            .schema()
                            .index_of(columns.get(i).copied().unwrap_or(""))
                    })
                    .transpose()
                })
                .collect::<Result<Vec<_>>>()
        })
        .transpose()
}

/// The sum and count of each aggregate's input in row group `g` (its rows `mask` selects;
/// `None`: all), from the encoded chunks (`inputs`: the segment column of each aggregate,
/// `None` for `COUNT(*)`); `None` when a chunk holds nulls (the row group is then scanned
/// as usual).
fn encoded_partials<S: ByteSource>(
    reader: &SegmentReader<S>,
    g: usize,
    inputs: &[Option<usize>],
    mask: Option<&Bitmap>,
) -> Result<Option<Vec<(i128, usize)>>> {
    // INVARIANT: the one caller passes `g < reader.row_groups().len()` (checked at the top
    // of its loop).
    let rows = reader.row_groups()[g].rows() as usize;
    let selected = mask.map_or(rows, Bitmap::count_ones);
    let mut out = Vec::with_capacity(inputs.len());
    for input in inputs {
        let Some(column) = *input else {
            out.push((0, selected));
            continue;
        };
        let chunk = reader.chunk(g, column)?;
        if !chunk.no_nulls() {
            return Ok(None);
        }
        let block = chunk.data_block();
        let (keys, n) = match mask {
            None => lightning_compress::sum(block),
            Some(m) => lightning_compress::sum_selected(block, m.words()),
        }
        .map_err(|e| chunk.decode_error(e))?;
        if n != selected {
            return Err(chunk.corrupt_error("the data block's length disagrees with the rows"));
        }
        // Keys are the values with the sign bit flipped: each is its value plus 2^63.
        let sum = i128::try_from(keys).unwrap_or(i128::MAX) - ((n as i128) << 63);
        out.push((sum, n));
    }
    Ok(Some(out))
}
