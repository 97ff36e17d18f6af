//! The rows measured so far, each written to `OUT/rows.jsonl` (one JSON object a line) as it
//! completes: an interrupted run leaves what it measured, and a long one can be watched.
//! The whole report (`report.json`, `report.md`, the chart) is written once all rows are in.

use super::report::Row;
use anyhow::{Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(super) struct Rows {
    rows: Vec<Row>,
    log: std::fs::File,
    path: PathBuf,
}

impl Rows {
    /// Starts `out/rows.jsonl` afresh (a run's rows, never an earlier run's).
    pub(super) fn create(out: &Path) -> Result<Rows> {
        std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
        let path = out.join("rows.jsonl");
        let log =
            std::fs::File::create(&path).with_context(|| format!("create {}", path.display()))?;
        Ok(Rows {
            rows: Vec::new(),
            log,
            path,
        })
    }

    /// Keeps `row` and appends it to the file at once.
    pub(super) fn push(&mut self, row: Row) -> Result<()> {
        let mut line = serde_json::to_vec(&row)?;
        line.push(b'\n');
        self.log
            .write_all(&line)
            .with_context(|| format!("write {}", self.path.display()))?;
        eprintln!("footprint: row {} done ({})", row.id, self.path.display());
        self.rows.push(row);
        Ok(())
    }

    pub(super) fn as_slice(&self) -> &[Row] {
        &self.rows
    }

    pub(super) fn into_vec(self) -> Vec<Row> {
        self.rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_is_on_disk_as_soon_as_it_is_pushed() {
        let dir = tempfile::tempdir().unwrap();
        let mut rows = Rows::create(dir.path()).unwrap();
        for id in ["layers", "cairn"] {
            rows.push(Row::sizes_only(
                id,
                "test".into(),
                "everything",
                1,
                2,
                "n".into(),
            ))
            .unwrap();
            let text = std::fs::read_to_string(dir.path().join("rows.jsonl")).unwrap();
            let last: serde_json::Value =
                serde_json::from_str(text.lines().last().unwrap()).unwrap();
            assert_eq!(last["id"], id);
        }
        assert_eq!(rows.into_vec().len(), 2);
    }
}
