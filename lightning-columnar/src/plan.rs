//! Logical plans: a tree of operators built step by step, checked as it is built (an
//! unknown column or a type mismatch is an [`Error`] naming it, never a panic), run by the
//! crate's operators, and explained.
//!
//! A plan starts at [`PlanBuilder::scan`] of a segment (projection and pushed-down
//! predicate), then [`filter`](PlanBuilder::filter), [`project`](PlanBuilder::project),
//! [`aggregate`](PlanBuilder::aggregate), [`join`](PlanBuilder::join) with another plan and
//! [`sort`](PlanBuilder::sort) (with a limit: top-k), in any order; [`PlanBuilder::build`]
//! gives the [`Plan`], whose [`execute`](Plan::execute) collects the result into batches.
//!
//! **Estimates.** Every node carries an estimated row count: a scan's is the rows of the
//! row groups its zone maps do not rule out; a filter or projection keeps its input's (no
//! selectivity is guessed); an aggregation without group-by gives 1 and with one its
//! input's; an inner join the larger side's (a foreign-key join yields about one row per
//! row of the referencing side); left, semi and anti joins their left side's; a sort with a
//! limit the smaller of input and limit.
//!
//! **Build side.** An inner join builds its hash table on the side with the smaller
//! estimate (the right one on a tie) and probes with the other; the output columns are
//! always the left side's, then the right side's. Left, semi and anti joins keep the left
//! side's rows, so they always build on the right. The choice and the two estimates are
//! recorded in the plan and shown by [`Plan::explain`].

use std::fmt::{self, Write as _};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::aggregate::{Aggregate, HashAggregate};
use crate::batch::Batch;
use crate::expr::{Expr, filter, project};
use crate::join::{HashJoin, JoinType};
use crate::scan::{Scan, ScanStats, columns_of};
use crate::segment::{ByteSource, Encoding, SegmentId, SegmentReader};
use crate::sort::{SortKey, sort};
use crate::types::{DataType, Schema};
use crate::{Error, Result};

/// What the planner needs of a segment, with the byte source's type erased so that one
/// plan can join segments held in different sources.
trait Table {
    fn id(&self) -> SegmentId;
    fn rows(&self) -> u64;
    fn prepare(&self, projection: &[&str], predicate: Option<&Expr>) -> Result<Prepared>;
    fn run(&self, projection: &[&str], predicate: Option<&Expr>) -> Result<ScanOutput>;
}

/// A scan checked against the segment, before it runs.
struct Prepared {
    pushed: Vec<String>,
    residual: Option<String>,
    row_groups: usize,
    survivors: usize,
    estimated_rows: u64,
}

struct ScanOutput {
    batches: Vec<Batch>,
    stats: ScanStats,
    encodings: Vec<(String, Vec<Encoding>)>,
}

impl<S: ByteSource> Table for SegmentReader<S> {
    fn id(&self) -> SegmentId {
        SegmentReader::id(self)
    }

    fn rows(&self) -> u64 {
        self.num_rows()
    }

    fn prepare(&self, projection: &[&str], predicate: Option<&Expr>) -> Result<Prepared> {
        let scan = Scan::new(self, projection, predicate.cloned())?;
        let survivors = scan.zone_map_survivors();
        let estimated_rows = survivors
            .iter()
            .filter_map(|g| self.row_groups().get(*g))
            .map(|m| u64::from(m.rows()))
            .sum();
        Ok(Prepared {
            pushed: scan.pushed_text().to_vec(),
            residual: scan.residual().map(ToString::to_string),
            row_groups: self.row_groups().len(),
            survivors: survivors.len(),
            estimated_rows,
        })
    }

    fn run(&self, projection: &[&str], predicate: Option<&Expr>) -> Result<ScanOutput> {
        let mut scan = Scan::new(self, projection, predicate.cloned())?;
        let survivors = scan.zone_map_survivors();
        let batches = scan.collect()?;
        // The columns the scan reads: projected, then those of the predicate.
        let schema = self.schema();
        let mut read = projection
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<Result<Vec<_>>>()?;
        if let Some(p) = predicate {
            columns_of(p, schema, &mut read)?;
        }
        let mut encodings = Vec::with_capacity(read.len());
        for c in read {
            let mut seen: Vec<Encoding> = Vec::new();
            for g in &survivors {
                if let Some(e) = self
                    .row_groups()
                    .get(*g)
                    .and_then(|m| m.chunk(c))
                    .map(crate::segment::ChunkMeta::encoding)
                    && !seen.contains(&e)
                {
                    seen.push(e);
                }
            }
            let name = schema.field(c).map_or("?", |f| f.name()).to_owned();
            encodings.push((name, seen));
        }
        Ok(ScanOutput {
            batches,
            stats: scan.stats().clone(),
            encodings,
        })
    }
}

/// Which input of a hash join its hash table is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BuildSide {
    /// The left input is built; the right one probes.
    Left,
    /// The right input is built; the left one probes.
    Right,
}

impl fmt::Display for BuildSide {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildSide::Left => "left",
            BuildSide::Right => "right",
        })
    }
}

struct ScanNode<'a> {
    table: String,
    source: &'a dyn Table,
    projection: Vec<String>,
    predicate: Option<Expr>,
    prepared: Prepared,
}

enum Op<'a> {
    Scan(ScanNode<'a>),
    Filter(Expr),
    Project(Vec<(String, Expr)>),
    Aggregate {
        group_by: Vec<(String, Expr)>,
        aggs: Vec<Aggregate>,
    },
    Join {
        on: Vec<(Expr, Expr)>,
        join_type: JoinType,
        build: BuildSide,
    },
    Sort {
        keys: Vec<SortKey>,
        limit: Option<usize>,
    },
}

struct Node<'a> {
    op: Op<'a>,
    inputs: Vec<Node<'a>>,
    schema: Arc<Schema>,
    estimated_rows: u64,
}

fn list<T>(items: &[T], show: impl Fn(&T) -> String) -> String {
    items.iter().map(show).collect::<Vec<_>>().join(", ")
}

fn named(name: &str, e: &Expr) -> String {
    let shown = e.to_string();
    if shown == name {
        shown
    } else {
        format!("{name} = {shown}")
    }
}

impl Node<'_> {
    /// One line describing the operator (no estimates, no run-time figures).
    fn label(&self) -> String {
        match &self.op {
            Op::Scan(s) => {
                let mut l = format!(
                    "Scan {} (segment {}) [{}]",
                    s.table,
                    s.source.id(),
                    s.projection.join(", ")
                );
                if !s.prepared.pushed.is_empty() {
                    let _ = write!(l, " pushed [{}]", s.prepared.pushed.join(", "));
                }
                if let Some(r) = &s.prepared.residual {
                    let _ = write!(l, " residual {r}");
                }
                let _ = write!(
                    l,
                    ", {} of {} row groups left by zone maps",
                    s.prepared.survivors, s.prepared.row_groups
                );
                l
            }
            Op::Filter(p) => format!("Filter {p}"),
            Op::Project(exprs) => format!("Project [{}]", list(exprs, |(n, e)| named(n, e))),
            Op::Aggregate { group_by, aggs } => format!(
                "HashAggregate group by [{}] aggregates [{}]",
                list(group_by, |(n, e)| named(n, e)),
                list(aggs, |a| match a.expr() {
                    Some(e) => format!("{} = {:?}({e})", a.name(), a.func()),
                    None => format!("{} = CountStar", a.name()),
                })
            ),
            Op::Join {
                on,
                join_type,
                build,
            } => {
                let est = |i: usize| self.inputs.get(i).map_or(0, |n| n.estimated_rows);
                format!(
                    "HashJoin {join_type:?} on [{}], build {build} (est. left {} rows, right {} rows)",
                    list(on, |(l, r)| format!("{l} = {r}")),
                    est(0),
                    est(1)
                )
            }
            Op::Sort { keys, limit } => {
                let keys = list(keys, |k| {
                    let dir = if k.is_descending() { "DESC" } else { "ASC" };
                    let nulls = if k.is_nulls_first() { "FIRST" } else { "LAST" };
                    format!("{} {dir} NULLS {nulls}", k.expr())
                });
                match limit {
                    Some(n) => format!("TopK {n} by [{keys}]"),
                    None => format!("Sort by [{keys}]"),
                }
            }
        }
    }

    fn explain(&self, depth: usize, out: &mut String) {
        let _ = writeln!(
            out,
            "{:indent$}{}  (est. {} rows)",
            "",
            self.label(),
            self.estimated_rows,
            indent = 2 * depth
        );
        for i in &self.inputs {
            i.explain(depth + 1, out);
        }
    }

    fn run(&self, depth: usize, metrics: &mut Vec<OperatorMetrics>) -> Result<Vec<Batch>> {
        let slot = metrics.len();
        metrics.push(OperatorMetrics {
            depth,
            operator: self.label(),
            rows_in: 0,
            rows_out: 0,
            elapsed: Duration::ZERO,
            scan: None,
        });
        let mut inputs = Vec::with_capacity(self.inputs.len());
        for i in &self.inputs {
            inputs.push(i.run(depth + 1, metrics)?);
        }
        let rows = |bs: &[Batch]| bs.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        let mut rows_in: u64 = inputs.iter().map(|bs| rows(bs)).sum();
        let mut scan_metrics = None;
        let start = Instant::now();
        let mut inputs = inputs.into_iter();
        let mut next_input = || inputs.next().unwrap_or_default();
        let out = match &self.op {
            Op::Scan(s) => {
                let projection: Vec<&str> = s.projection.iter().map(String::as_str).collect();
                let o = s.source.run(&projection, s.predicate.as_ref())?;
                rows_in = s.source.rows();
                scan_metrics = Some(ScanMetrics {
                    stats: o.stats,
                    encodings: o.encodings,
                });
                o.batches
            }
            Op::Filter(p) => next_input()
                .iter()
                .map(|b| filter(b, p))
                .collect::<Result<Vec<_>>>()?,
            Op::Project(exprs) => next_input()
                .iter()
                .map(|b| project(b, exprs))
                .collect::<Result<Vec<_>>>()?,
            Op::Aggregate { group_by, aggs } => {
                let input = self.inputs.first().map(|n| n.schema.clone());
                let input = input.ok_or_else(|| missing_input("an aggregation"))?;
                let mut h = HashAggregate::new(input, group_by.clone(), aggs.clone())?;
                for b in &next_input() {
                    h.push(b)?;
                }
                vec![h.finish()?]
            }
            Op::Join {
                on,
                join_type,
                build,
            } => {
                let (left, right) = (next_input(), next_input());
                self.run_join(on, *join_type, *build, &left, &right)?
            }
            Op::Sort { keys, limit } => {
                let input = next_input();
                vec![sort(&self.schema, &input, keys, *limit)?]
            }
        };
        let elapsed = start.elapsed();
        if let Some(m) = metrics.get_mut(slot) {
            m.rows_in = rows_in;
            m.rows_out = rows(&out);
            m.elapsed = elapsed;
            m.scan = scan_metrics;
        }
        Ok(out)
    }
    /// Builds a hash table on the `build` side and probes it with the other; the output is
    /// the left columns, then the right ones, whichever side was built.
    fn run_join(
        &self,
        on: &[(Expr, Expr)],
        join_type: JoinType,
        build: BuildSide,
        left: &[Batch],
        right: &[Batch],
    ) -> Result<Vec<Batch>> {
        let (Some(ln), Some(rn)) = (self.inputs.first(), self.inputs.get(1)) else {
            return Err(missing_input("a join"));
        };
        let lk: Vec<Expr> = on.iter().map(|(l, _)| l.clone()).collect();
        let rk: Vec<Expr> = on.iter().map(|(_, r)| r.clone()).collect();
        match build {
            BuildSide::Right => {
                let j = HashJoin::new(&rn.schema, right, &rk, ln.schema.clone(), lk, join_type)?;
                left.iter().map(|b| j.probe(b)).collect()
            }
            BuildSide::Left => {
                let j = HashJoin::new(&ln.schema, left, &lk, rn.schema.clone(), rk, join_type)?;
                // The probe output is the right columns, then the left ones: left first.
                let width = rn.schema.len();
                let mut out = Vec::with_capacity(right.len());
                for b in right {
                    let p = j.probe(b)?;
                    let (r, l) = p.columns().split_at(width.min(p.columns().len()));
                    let columns = l.iter().chain(r).cloned().collect();
                    out.push(Batch::new(self.schema.clone(), columns)?);
                }
                Ok(out)
            }
        }
    }
}

fn missing_input(what: &str) -> Error {
    Error::InvalidArgument {
        reason: format!("{what} in a plan has lost its input"),
    }
}

/// A plan under construction; every step checks its columns and types at once.
pub struct PlanBuilder<'a> {
    node: Node<'a>,
}

impl fmt::Debug for PlanBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.node.explain(0, &mut s);
        f.write_str(&s)
    }
}

impl<'a> PlanBuilder<'a> {
    /// A scan of the segment `reader` (shown as `table`) producing the columns named in
    /// `columns`, in that order, of the rows where `predicate` is true. The predicate may
    /// read columns that are not produced; it is pushed down as [`Scan`] describes.
    pub fn scan<S: ByteSource + 'a>(
        table: impl Into<String>,
        reader: &'a SegmentReader<S>,
        columns: &[&str],
        predicate: Option<Expr>,
    ) -> Result<PlanBuilder<'a>> {
        let schema = reader.schema();
        let indices = columns
            .iter()
            .map(|c| schema.index_of(c))
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(schema.project(&indices)?);
        let prepared = Table::prepare(reader, columns, predicate.as_ref())?;
        let estimated_rows = prepared.estimated_rows;
        Ok(PlanBuilder {
            node: Node {
                op: Op::Scan(ScanNode {
                    table: table.into(),
                    source: reader,
                    projection: columns.iter().map(|c| (*c).to_owned()).collect(),
                    predicate,
                    prepared,
                }),
                inputs: Vec::new(),
                schema,
                estimated_rows,
            },
        })
    }

    /// The output schema so far.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.node.schema
    }

    fn then(self, op: Op<'a>, schema: Arc<Schema>, estimated_rows: u64) -> PlanBuilder<'a> {
        PlanBuilder {
            node: Node {
                op,
                inputs: vec![self.node],
                schema,
                estimated_rows,
            },
        }
    }

    /// Keeps the rows where `predicate` (a bool) is true.
    pub fn filter(self, predicate: Expr) -> Result<PlanBuilder<'a>> {
        let t = predicate.data_type(&self.node.schema)?;
        if t != DataType::Bool {
            return Err(Error::Type {
                expr: predicate.to_string(),
                reason: format!("a filter needs a bool, not {t}"),
            });
        }
        let (schema, est) = (self.node.schema.clone(), self.node.estimated_rows);
        Ok(self.then(Op::Filter(predicate), schema, est))
    }

    /// Replaces the columns by `exprs`, each with its output name (distinct names).
    pub fn project(self, exprs: Vec<(String, Expr)>) -> Result<PlanBuilder<'a>> {
        let fields = exprs
            .iter()
            .map(|(n, e)| e.field(n, &self.node.schema))
            .collect::<Result<Vec<_>>>()?;
        let schema = Arc::new(Schema::new(fields)?);
        let est = self.node.estimated_rows;
        Ok(self.then(Op::Project(exprs), schema, est))
    }

    /// Groups by `group_by` (named expressions; none: one group) and computes `aggs`.
    pub fn aggregate(
        self,
        group_by: Vec<(String, Expr)>,
        aggs: Vec<Aggregate>,
    ) -> Result<PlanBuilder<'a>> {
        let h = HashAggregate::new(self.node.schema.clone(), group_by.clone(), aggs.clone())?;
        let schema = h.schema().clone();
        let est = if group_by.is_empty() {
            1
        } else {
            self.node.estimated_rows
        };
        Ok(self.then(Op::Aggregate { group_by, aggs }, schema, est))
    }

    /// Joins with `right` where each pair of `on` (an expression over this plan's columns,
    /// one over `right`'s) is equal. Inner and left joins produce this plan's columns, then
    /// `right`'s (a name on both sides is [`Error::AmbiguousColumn`]: project one side to
    /// rename it); semi and anti joins this plan's columns only.
    pub fn join(
        self,
        right: PlanBuilder<'a>,
        on: Vec<(Expr, Expr)>,
        join_type: JoinType,
    ) -> Result<PlanBuilder<'a>> {
        let (ls, rs) = (self.node.schema.clone(), right.node.schema.clone());
        let keeps_right = matches!(join_type, JoinType::Inner | JoinType::Left);
        if keeps_right
            && let Some(f) = ls
                .fields()
                .iter()
                .find(|f| rs.fields().iter().any(|g| g.name() == f.name()))
        {
            return Err(Error::AmbiguousColumn {
                name: f.name().to_owned(),
            });
        }
        let lk: Vec<Expr> = on.iter().map(|(l, _)| l.clone()).collect();
        let rk: Vec<Expr> = on.iter().map(|(_, r)| r.clone()).collect();
        // Checks the keys (count, columns, types) and gives the output schema.
        let checked = HashJoin::new(&rs, &[], &rk, ls.clone(), lk, join_type)?;
        let (le, re) = (self.node.estimated_rows, right.node.estimated_rows);
        let build = if join_type == JoinType::Inner && le < re {
            BuildSide::Left
        } else {
            BuildSide::Right
        };
        let est = if join_type == JoinType::Inner {
            le.max(re)
        } else {
            le
        };
        Ok(PlanBuilder {
            node: Node {
                op: Op::Join {
                    on,
                    join_type,
                    build,
                },
                inputs: vec![self.node, right.node],
                schema: checked.schema().clone(),
                estimated_rows: est,
            },
        })
    }

    /// Orders the rows by `keys`; with `limit`, keeps the first `limit` (top-k).
    pub fn sort(self, keys: Vec<SortKey>, limit: Option<usize>) -> Result<PlanBuilder<'a>> {
        for k in &keys {
            k.expr().data_type(&self.node.schema)?;
        }
        let schema = self.node.schema.clone();
        let est = match limit {
            Some(n) => self.node.estimated_rows.min(n as u64),
            None => self.node.estimated_rows,
        };
        Ok(self.then(Op::Sort { keys, limit }, schema, est))
    }

    /// The finished plan.
    pub fn build(self) -> Plan<'a> {
        Plan { root: self.node }
    }
}

/// A checked plan over segments borrowed for `'a`: run it, or explain it.
pub struct Plan<'a> {
    root: Node<'a>,
}

impl fmt::Debug for Plan<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explain())
    }
}

impl Plan<'_> {
    /// The schema of the result.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.root.schema
    }

    /// The estimated rows of the result.
    pub fn estimated_rows(&self) -> u64 {
        self.root.estimated_rows
    }

    /// The build side of each hash join, in pre-order (outermost join first).
    pub fn build_sides(&self) -> Vec<BuildSide> {
        fn walk(n: &Node<'_>, out: &mut Vec<BuildSide>) {
            if let Op::Join { build, .. } = &n.op {
                out.push(*build);
            }
            for i in &n.inputs {
                walk(i, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut out);
        out
    }

    /// The plan as indented text, one operator a line (inputs below, indented), each with
    /// its estimated rows; joins show their build side.
    pub fn explain(&self) -> String {
        let mut s = String::new();
        self.root.explain(0, &mut s);
        s
    }

    /// Runs the plan: the result, as batches (possibly with selection vectors).
    pub fn execute(&self) -> Result<Vec<Batch>> {
        self.root.run(0, &mut Vec::new())
    }

    /// Runs the plan and reports, per operator, rows in and out and the time it took
    /// (its inputs' time excluded), and per scan the row groups zone maps skipped and the
    /// encodings of the columns it read.
    pub fn explain_analyze(&self) -> Result<Analyzed> {
        let mut operators = Vec::new();
        let batches = self.root.run(0, &mut operators)?;
        Ok(Analyzed { batches, operators })
    }
}

/// What one scan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanMetrics {
    /// The scan's statistics (row groups, zone-map skips, rows).
    pub stats: ScanStats,
    /// Each column read (projected, then the predicate's), with the encodings of its chunks
    /// in the row groups the zone maps left, in order of first appearance.
    pub encodings: Vec<(String, Vec<Encoding>)>,
}

/// What one operator of a plan did when it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorMetrics {
    /// Depth in the plan (0: the root).
    pub depth: usize,
    /// The operator, as [`Plan::explain`] shows it (without the estimate).
    pub operator: String,
    /// Rows it consumed: a scan's segment rows; otherwise its inputs' rows.
    pub rows_in: u64,
    /// Rows it produced.
    pub rows_out: u64,
    /// Time it took, its inputs' excluded.
    pub elapsed: Duration,
    /// For a scan, what it did.
    pub scan: Option<ScanMetrics>,
}

/// The result of [`Plan::explain_analyze`]: the batches and what each operator did.
#[derive(Debug, Clone)]
pub struct Analyzed {
    batches: Vec<Batch>,
    operators: Vec<OperatorMetrics>,
}

impl Analyzed {
    /// The result batches.
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }

    /// The operators in pre-order (the root first, each followed by its inputs).
    pub fn operators(&self) -> &[OperatorMetrics] {
        &self.operators
    }

    /// The report as indented text; `with_times: false` leaves out elapsed times (for
    /// output that must not change from run to run).
    pub fn render(&self, with_times: bool) -> String {
        let mut s = String::new();
        for m in &self.operators {
            let pad = 2 * m.depth;
            let _ = write!(
                s,
                "{:pad$}{}  (rows in {}, out {}",
                "", m.operator, m.rows_in, m.rows_out
            );
            if with_times {
                let _ = write!(s, ", {:.3} ms", m.elapsed.as_secs_f64() * 1000.0);
            }
            s.push_str(")\n");
            if let Some(sc) = &m.scan {
                let _ = writeln!(
                    s,
                    "{:pad$}  row groups: {}, skipped by zone maps {}, emptied by encoded predicates {}",
                    "",
                    sc.stats.row_groups,
                    sc.stats.skipped_by_zone_maps,
                    sc.stats.emptied_by_encoded_predicates
                );
                let enc = list(&sc.encodings, |(c, e)| {
                    let e = list(e, ToString::to_string);
                    format!("{c}: {}", if e.is_empty() { "-".into() } else { e })
                });
                let _ = writeln!(s, "{:pad$}  encodings: {enc}", "");
            }
        }
        s
    }
}

impl fmt::Display for Analyzed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(true))
    }
}
