//! `cairn inventory --format parquet -o PATH [--level image|layer|file|chunk]`: the store's
//! images, layers, files or chunk references as Parquet tables (stable column names and types,
//! listed in `columns`), for DuckDB, Athena or Spark. `-o FILE.parquet` writes one file;
//! `-o DIR/` a Hive-style tree of one file per level and image (`write`), so that
//! `read_parquet('DIR/level=chunk/*/*.parquet', hive_partitioning = true)` reads one level of
//! every image. Rows are written in groups of `ROWS_PER_GROUP`, so memory holds one group,
//! not the table.

use crate::args::InventoryLevel;
use arrow_array::builder::{Int64Builder, StringBuilder, UInt32Builder, UInt64Builder};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use cairn_engine::Store;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Rows buffered before a row group is written.
const ROWS_PER_GROUP: usize = 65_536;

/// A column of the table being written.
enum Column {
    Text(StringBuilder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    I64(Int64Builder),
}

/// The columns of a level: name and type; text columns may be null.
fn columns(level: InventoryLevel) -> Vec<(&'static str, DataType)> {
    use DataType::{Int64, UInt32, UInt64, Utf8};
    let platform = [
        ("architecture", Utf8),
        ("os", Utf8),
        ("variant", Utf8),
        ("os_version", Utf8),
    ];
    match level {
        InventoryLevel::Image => [
            vec![
                ("image", Utf8),
                ("image_id", Utf8),
                ("manifest_digest", Utf8),
            ],
            platform.to_vec(),
            vec![
                ("layers", UInt64),
                ("files", UInt64),
                ("logical_bytes", UInt64),
                ("new_chunks", UInt64),
                ("added_stored_bytes", UInt64),
                ("created", Int64),
            ],
        ]
        .concat(),
        InventoryLevel::Layer => [
            vec![("image", Utf8), ("manifest_digest", Utf8)],
            platform.to_vec(),
            vec![
                ("layer_index", UInt32),
                ("layer_digest", Utf8),
                ("layer_size", UInt64),
                ("diff_id", Utf8),
                ("uncompressed_size", UInt64),
                ("files", UInt64),
                ("unique_stored_bytes", UInt64),
            ],
        ]
        .concat(),
        InventoryLevel::File => vec![
            ("image", Utf8),
            ("layer_index", UInt32),
            ("path", Utf8),
            ("kind", Utf8),
            ("size", UInt64),
            ("mode", UInt32),
            ("uid", UInt64),
            ("gid", UInt64),
            ("mtime", Int64),
            ("link_target", Utf8),
            ("content_id", Utf8),
            ("chunks", UInt32),
        ],
        InventoryLevel::Chunk => vec![
            ("image", Utf8),
            ("layer_index", UInt32),
            ("path", Utf8),
            ("chunk_index", UInt32),
            ("file_offset", UInt64),
            ("chunk_id", Utf8),
            ("length", UInt32),
            ("stored_bytes", UInt64),
            ("codec", Utf8),
        ],
    }
}

/// One Parquet file being written.
struct Table {
    schema: SchemaRef,
    columns: Vec<Column>,
    rows: usize,
    writer: ArrowWriter<std::fs::File>,
    path: PathBuf,
}

impl Table {
    fn create(path: &Path, level: InventoryLevel) -> anyhow::Result<Table> {
        let fields: Vec<Field> = columns(level)
            .into_iter()
            .map(|(name, ty)| {
                let nullable = ty == DataType::Utf8;
                Field::new(name, ty, nullable)
            })
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let file = std::fs::File::create(path)
            .map_err(|e| anyhow::anyhow!("create {}: {e}", path.display()))?;
        let properties = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_size(ROWS_PER_GROUP)
            .build();
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))?;
        let mut table = Table {
            schema,
            columns: Vec::new(),
            rows: 0,
            writer,
            path: path.to_path_buf(),
        };
        table.columns = table.new_columns();
        Ok(table)
    }

    fn new_columns(&self) -> Vec<Column> {
        self.schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::UInt32 => Column::U32(UInt32Builder::new()),
                DataType::UInt64 => Column::U64(UInt64Builder::new()),
                DataType::Int64 => Column::I64(Int64Builder::new()),
                _ => Column::Text(StringBuilder::new()),
            })
            .collect()
    }

    /// Appends one row: `values` in column order.
    fn row(&mut self, values: &[Value]) -> anyhow::Result<()> {
        for (column, value) in self.columns.iter_mut().zip(values) {
            match (column, value) {
                (Column::Text(b), Value::Text(v)) => b.append_option(*v),
                (Column::U32(b), Value::U32(v)) => b.append_value(*v),
                (Column::U64(b), Value::U64(v)) => b.append_value(*v),
                (Column::I64(b), Value::I64(v)) => b.append_value(*v),
                _ => anyhow::bail!("internal: a value of the wrong type for a column"),
            }
        }
        self.rows += 1;
        if self.rows >= ROWS_PER_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> anyhow::Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|c| -> ArrayRef {
                match c {
                    Column::Text(b) => Arc::new(b.finish()),
                    Column::U32(b) => Arc::new(b.finish()),
                    Column::U64(b) => Arc::new(b.finish()),
                    Column::I64(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        self.rows = 0;
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<PathBuf> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.path)
    }
}

/// A cell.
enum Value<'a> {
    Text(Option<&'a str>),
    U32(u32),
    U64(u64),
    I64(i64),
}

fn text(s: &str) -> Value<'_> {
    Value::Text(Some(s))
}

/// Writes the level's table(s) for the named images (all when `names` is empty); returns the
/// files written and their row counts. `output` is one file, or (a directory, or a path ending
/// in `/`) a Hive-style tree of one file per level and image,
/// `DIR/level=LEVEL/image=NAME/part-0.parquet`, so that every level sits side by side and
/// `read_parquet('DIR/**/*.parquet', hive_partitioning = true)` reads them. An existing file is
/// replaced only with `force`; nothing is written if any would be.
pub fn write(
    store: &Store,
    level: InventoryLevel,
    output: &Path,
    names: &[String],
    force: bool,
) -> anyhow::Result<Vec<(PathBuf, u64)>> {
    let mut images: Vec<String> = store.images()?.into_iter().map(|i| i.name).collect();
    if !names.is_empty() {
        images.retain(|n| names.contains(n));
    }
    let per_image = output.is_dir() || output.as_os_str().to_string_lossy().ends_with('/');
    let targets: Vec<(PathBuf, &[String])> = if per_image {
        images
            .iter()
            .map(|name| {
                (
                    partition_file(output, level, name),
                    std::slice::from_ref(name),
                )
            })
            .collect()
    } else {
        vec![(output.to_path_buf(), &images[..])]
    };
    if !force {
        if let Some((taken, _)) = targets.iter().find(|(f, _)| f.symlink_metadata().is_ok()) {
            anyhow::bail!(
                "{} exists; give --force to replace it (or another -o)",
                taken.display()
            );
        }
    }
    let mut written = Vec::new();
    for (file, images) in targets {
        if let Some(dir) = file.parent().filter(|_| per_image) {
            std::fs::create_dir_all(dir)
                .map_err(|e| anyhow::anyhow!("create {}: {e}", dir.display()))?;
        }
        let mut table = Table::create(&file, level)?;
        let rows = write_rows(store, level, images, &mut table)?;
        written.push((table.finish()?, rows));
    }
    Ok(written)
}

/// `DIR/level=LEVEL/image=NAME/part-0.parquet`, NAME percent-encoded (all but letters, digits
/// and `-._`): Hive readers decode it back, so the partition column equals the `image` column.
fn partition_file(dir: &Path, level: InventoryLevel, name: &str) -> PathBuf {
    let level = match level {
        InventoryLevel::Image => "image",
        InventoryLevel::Layer => "layer",
        InventoryLevel::File => "file",
        InventoryLevel::Chunk => "chunk",
    };
    dir.join(format!("level={level}"))
        .join(format!("image={}", escape(name)))
        .join("part-0.parquet")
}

/// A name as one path component: every byte but `[A-Za-z0-9._-]` as `%XX`.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._".contains(&byte) {
            out.push(byte as char);
        } else {
            out += &format!("%{byte:02X}");
        }
    }
    out
}

fn write_rows(
    store: &Store,
    level: InventoryLevel,
    images: &[String],
    table: &mut Table,
) -> anyhow::Result<u64> {
    let mut rows = 0u64;
    match level {
        InventoryLevel::Image => {
            for image in store.images()?.iter().filter(|i| images.contains(&i.name)) {
                let r = &image.record;
                let p = r.platform.clone().unwrap_or_default();
                let id = r.image_id.to_hex();
                table.row(&[
                    text(&image.name),
                    text(&id),
                    Value::Text(r.manifest_digest.as_deref()),
                    text(&p.architecture),
                    text(&p.os),
                    Value::Text(p.variant.as_deref()),
                    Value::Text(p.os_version.as_deref()),
                    Value::U64(r.layers),
                    Value::U64(r.files),
                    Value::U64(r.logical_bytes),
                    Value::U64(r.new_chunks),
                    Value::U64(r.added_stored_bytes),
                    Value::I64(r.created as i64),
                ])?;
                rows += 1;
            }
        }
        InventoryLevel::Layer => {
            for r in store
                .inventory()?
                .iter()
                .filter(|r| images.contains(&r.name))
            {
                let optional = |s: &str| s.to_string();
                let (variant, os_version) = (optional(&r.variant), optional(&r.os_version));
                table.row(&[
                    text(&r.name),
                    text(&r.manifest_digest),
                    text(&r.architecture),
                    text(&r.os),
                    Value::Text((!variant.is_empty()).then_some(variant.as_str())),
                    Value::Text((!os_version.is_empty()).then_some(os_version.as_str())),
                    Value::U32(r.layer_index as u32),
                    text(&r.layer_digest),
                    Value::U64(r.layer_size),
                    text(&r.diff_id),
                    Value::U64(r.uncompressed_size),
                    Value::U64(r.files),
                    Value::U64(r.unique_stored_bytes),
                ])?;
                rows += 1;
            }
        }
        InventoryLevel::File => {
            for name in images {
                store.for_each_file(name, |f| {
                    table
                        .row(&[
                            text(name),
                            Value::U32(f.layer_index),
                            text(f.path),
                            text(f.kind),
                            Value::U64(f.size),
                            Value::U32(f.mode),
                            Value::U64(f.uid),
                            Value::U64(f.gid),
                            Value::I64(f.mtime),
                            Value::Text(f.link_target),
                            Value::Text(f.content_id.as_deref()),
                            Value::U32(f.chunks),
                        ])
                        .map_err(|e| cairn_engine::Error::Usage(e.to_string()))?;
                    rows += 1;
                    Ok(())
                })?;
            }
        }
        InventoryLevel::Chunk => {
            for name in images {
                store.for_each_chunk(name, |c| {
                    table
                        .row(&[
                            text(name),
                            Value::U32(c.layer_index),
                            text(c.path),
                            Value::U32(c.chunk_index),
                            Value::U64(c.file_offset),
                            text(&c.chunk_id),
                            Value::U32(c.length),
                            Value::U64(c.stored_bytes),
                            text(c.codec),
                        ])
                        .map_err(|e| cairn_engine::Error::Usage(e.to_string()))?;
                    rows += 1;
                    Ok(())
                })?;
            }
        }
    }
    Ok(rows)
}
