//! Batches: the in-memory unit operators pass to one another.

use std::sync::Arc;

use crate::column::Column;
use crate::types::{Scalar, Schema};
use crate::{Error, Result};

/// Rows per batch that scans produce by default (kernels see at least 1024 at a time).
pub const DEFAULT_BATCH_ROWS: usize = 2048;

/// Columns of equal length under a schema, and an optional selection vector: the rows
/// (ascending indices) that are part of the batch. Without a selection every row is.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    schema: Arc<Schema>,
    columns: Vec<Column>,
    rows: usize,
    selection: Option<Vec<u32>>,
}

impl Batch {
    /// A batch; the columns must match the schema's types and nullability and have one
    /// length.
    pub fn new(schema: Arc<Schema>, columns: Vec<Column>) -> Result<Batch> {
        if columns.len() != schema.len() {
            return Err(Error::SchemaMismatch {
                reason: format!(
                    "{} columns given for a schema of {}",
                    columns.len(),
                    schema.len()
                ),
            });
        }
        let rows = columns.first().map_or(0, Column::len);
        for (c, f) in columns.iter().zip(schema.fields()) {
            if c.data_type() != f.data_type() {
                return Err(Error::SchemaMismatch {
                    reason: format!(
                        "column `{}` is {} in the schema but {} was given",
                        f.name(),
                        f.data_type(),
                        c.data_type()
                    ),
                });
            }
            if c.len() != rows {
                return Err(Error::SchemaMismatch {
                    reason: format!(
                        "column `{}` has {} values, the first column {rows}",
                        f.name(),
                        c.len()
                    ),
                });
            }
            if !f.nullable() && c.null_count() > 0 {
                return Err(Error::SchemaMismatch {
                    reason: format!(
                        "column `{}` is not nullable but holds {} nulls",
                        f.name(),
                        c.null_count()
                    ),
                });
            }
        }
        Ok(Batch {
            schema,
            columns,
            rows,
            selection: None,
        })
    }

    /// An empty batch of `schema`.
    pub fn empty(schema: Arc<Schema>) -> Batch {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column::nulls(f.data_type(), 0))
            .collect();
        Batch {
            schema,
            columns,
            rows: 0,
            selection: None,
        }
    }

    /// The same batch restricted to the rows `selection` lists (ascending, in range).
    pub fn with_selection(mut self, selection: Vec<u32>) -> Result<Batch> {
        let sorted = selection.is_sorted_by(|a, b| a < b);
        if !sorted || selection.last().is_some_and(|l| *l as usize >= self.rows) {
            return Err(Error::InvalidArgument {
                reason: format!(
                    "a selection must list ascending row indices below {}",
                    self.rows
                ),
            });
        }
        self.selection = Some(selection);
        Ok(self)
    }

    /// The schema, the columns and the selection, moved out.
    pub(crate) fn into_parts(self) -> (Arc<Schema>, Vec<Column>, Option<Vec<u32>>) {
        (self.schema, self.columns, self.selection)
    }

    /// The schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The columns (all rows, selected or not).
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Column `i`.
    pub fn column(&self, i: usize) -> Option<&Column> {
        self.columns.get(i)
    }

    /// The selection vector, if any.
    pub fn selection(&self) -> Option<&[u32]> {
        self.selection.as_deref()
    }

    /// Rows in the columns, selected or not.
    pub fn physical_rows(&self) -> usize {
        self.rows
    }

    /// Rows of the batch (the selected ones).
    pub fn num_rows(&self) -> usize {
        self.selection.as_ref().map_or(self.rows, Vec::len)
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.num_rows() == 0
    }

    /// The batch with its selection applied: only the selected rows, no selection vector.
    #[must_use]
    pub fn compact(&self) -> Batch {
        match &self.selection {
            None => self.clone(),
            Some(sel) => Batch {
                schema: self.schema.clone(),
                columns: self.columns.iter().map(|c| c.gather(sel)).collect(),
                rows: sel.len(),
                selection: None,
            },
        }
    }

    /// Row `i` of the batch (counting selected rows only), as scalars.
    pub fn row(&self, i: usize) -> Vec<Scalar> {
        let physical = match &self.selection {
            Some(sel) => sel.get(i).map_or(usize::MAX, |r| *r as usize),
            None => i,
        };
        self.columns.iter().map(|c| c.value(physical)).collect()
    }

    /// Every row of the batch, as scalars (for tests and small results).
    pub fn rows(&self) -> Vec<Vec<Scalar>> {
        (0..self.num_rows()).map(|i| self.row(i)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{DataType, Field};

    #[test]
    fn selection_and_compact() {
        let schema = Arc::new(
            Schema::new(vec![
                Field::new("a", DataType::Int64, false),
                Field::new("b", DataType::Bool, true),
            ])
            .unwrap(),
        );
        let a = Column::from_i64(DataType::Int64, vec![1, 2, 3], None).unwrap();
        let b = Column::from_scalars(
            DataType::Bool,
            &[Scalar::Bool(true), Scalar::Null, Scalar::Bool(false)],
        )
        .unwrap();
        let batch = Batch::new(schema.clone(), vec![a.clone(), b]).unwrap();
        assert!(batch.clone().with_selection(vec![2, 1]).is_err());
        assert!(batch.clone().with_selection(vec![3]).is_err());
        let sel = batch.with_selection(vec![1, 2]).unwrap();
        assert_eq!(sel.num_rows(), 2);
        assert_eq!(sel.row(0), vec![Scalar::Int64(2), Scalar::Null]);
        assert_eq!(sel.compact().rows(), sel.rows());
        let nulls = Column::nulls(DataType::Bool, 3);
        assert!(Batch::new(schema.clone(), vec![a.clone()]).is_err());
        let short = Column::nulls(DataType::Bool, 2);
        assert!(Batch::new(schema.clone(), vec![a.clone(), short]).is_err());
        let s2 = Arc::new(Schema::new(vec![Field::new("b", DataType::Bool, false)]).unwrap());
        assert!(Batch::new(s2, vec![nulls]).is_err());
        assert_eq!(Batch::empty(schema).num_rows(), 0);
    }
}
