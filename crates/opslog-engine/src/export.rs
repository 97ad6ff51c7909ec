//! The current state of a store written out as text (the CLI's `export`), read-only and in
//! bounded memory: the op files are replayed first into the records they change (as many as the
//! ops since the last checkpoint touch), then the snapshot is streamed with those substituted or
//! skipped, then the records the ops created follow. The order is the store's: a record keeps
//! its place when set again, and goes to the end when created, or deleted and set again.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::archive;
use super::error::{Error, Result};
use super::fs_backend::{FsBackend, MANIFEST_FILE};
use super::inspect::Progress;
use super::json;
use super::manifest::Manifest;
use super::merge::MergedOps;
use super::op::OpKind;
use super::paths;
use super::record_line;
use super::records::FxHasher;
use super::snapshot::RecordLines;
use super::wal::{OpIter, OpReader};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One `{"id":...,"data":...}` line per record.
    Jsonl,
    /// The same objects as one JSON array, one per line.
    Json,
}

/// What the ops since the last checkpoint did to one record.
struct Changed {
    /// The record's last text; `None` when the ops leave it deleted.
    data: Option<String>,
    /// Where the record goes when it is not in the snapshot (or left its place there): the
    /// op that put it back last, or the first op on it.
    at: u64,
    /// Deleted and set again: it left its place in the snapshot, if it had one.
    moved: bool,
}

type ChangedMap = HashMap<String, Changed, BuildHasherDefault<FxHasher>>;

enum Stage {
    Snapshot(RecordLines),
    Created(std::vec::IntoIter<(String, String)>),
    Archive(String, std::vec::IntoIter<(String, String)>),
    Done,
}

pub struct Export {
    dir: PathBuf,
    format: Format,
    changed: ChangedMap,
    stage: Stage,
    segments: std::vec::IntoIter<String>,
    written: u64,
    /// The JSON array's closing bracket is out.
    closed: bool,
    snapshot_shown: String,
    progress: Arc<Progress>,
}

fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = super::fsutil::read_text(&path)?;
    Manifest::parse(&text).map_err(|m| Error::Corrupt(format!("{m} ({})", path.display())))
}

/// The ops since the last checkpoint, in the order the store applies them.
fn ops_of(dir: &Path, manifest: &Manifest) -> Result<OpIter> {
    if manifest.active_agent_ops.is_some() {
        let backend = FsBackend::new(&dir.display().to_string());
        return Ok(Box::new(MergedOps::open(&backend)?));
    }
    Ok(Box::new(OpReader::open(&paths::inside(
        dir,
        &manifest.active_ops,
    )?)?))
}

fn replay(ops: OpIter) -> Result<ChangedMap> {
    let mut changed = ChangedMap::default();
    for (seq, logged) in ops.enumerate() {
        let op = logged?.op;
        let seq = seq as u64;
        let data = match op.kind {
            OpKind::Set => op.data,
            OpKind::Delete => None,
        };
        match changed.get_mut(&op.id) {
            Some(c) => {
                if c.data.is_none() && data.is_some() {
                    c.at = seq;
                    c.moved = true;
                }
                c.data = data;
            }
            None => {
                // A delete first: whatever set follows puts the record at the end.
                let moved = data.is_none();
                changed.insert(
                    op.id,
                    Changed {
                        data,
                        at: seq,
                        moved,
                    },
                );
            }
        }
    }
    Ok(changed)
}

impl Export {
    /// Reads the manifest and replays the op files; `with_archive`: the archived records follow
    /// the live ones.
    pub fn open(
        dir: &str,
        format: Format,
        with_archive: bool,
        progress: Arc<Progress>,
    ) -> Result<Export> {
        let dir = PathBuf::from(dir);
        let manifest = read_manifest(&dir)?;
        let changed = replay(ops_of(&dir, &manifest)?)?;
        let rel = &manifest.current_snapshot;
        let path = paths::inside(&dir, rel)?;
        let snapshot = RecordLines::open(&path, &path.display().to_string())
            .map_err(|e| super::store::snapshot_error(e, rel))?;
        let segments = if with_archive {
            manifest.archive_segments.clone()
        } else {
            Vec::new()
        };
        progress.total.store(
            manifest.stats.active_records + changed.len() as u64,
            Ordering::Relaxed,
        );
        Ok(Export {
            dir,
            format,
            changed,
            stage: Stage::Snapshot(snapshot),
            segments: segments.into_iter(),
            written: 0,
            closed: false,
            snapshot_shown: path.display().to_string(),
            progress,
        })
    }

    fn push(&mut self, out: &mut String, id: &str, data: &str, segment: Option<&str>) {
        out.push_str(match (self.format, self.written) {
            (Format::Json, 0) => "[\n",
            (Format::Json, _) => ",\n",
            (Format::Jsonl, _) => "",
        });
        out.push_str(record_line::ID_MEMBER);
        out.push_str(id);
        out.push_str(record_line::DATA_MEMBER);
        out.push_str(data);
        if let Some(seg) = segment {
            out.push_str(",\"segment\":");
            out.push_str(&json::quote(seg));
        }
        out.push('}');
        if self.format == Format::Jsonl {
            out.push('\n');
        }
        self.written += 1;
        self.progress.done.fetch_add(1, Ordering::Relaxed);
    }

    /// The next piece of output, about `max_bytes` long (one record more at most), or `None` once
    /// everything was returned.
    pub fn next_chunk(&mut self, max_bytes: usize) -> Result<Option<String>> {
        let mut out = String::with_capacity(max_bytes + 1024);
        while out.len() < max_bytes {
            match &mut self.stage {
                Stage::Done => {
                    if self.format == Format::Json && !self.closed {
                        out.push_str(if self.written == 0 { "[]\n" } else { "\n]\n" });
                        self.closed = true;
                    }
                    if out.is_empty() {
                        return Ok(None);
                    }
                    break;
                }
                Stage::Snapshot(lines) => match lines.next_record()? {
                    Some((line, Err(e))) => {
                        return Err(Error::Corrupt(format!(
                            "Corrupt snapshot {}: line {line}: {e}",
                            self.snapshot_shown
                        )))
                    }
                    Some((_, Ok((id, data)))) => match self.changed.remove(&id) {
                        None => self.push(&mut out, &id, &data, None),
                        Some(Changed {
                            data: Some(text),
                            moved: false,
                            ..
                        }) => self.push(&mut out, &id, &text, None),
                        Some(c @ Changed { moved: true, .. }) => {
                            self.changed.insert(id, c);
                        }
                        Some(_) => {}
                    },
                    None => {
                        let mut created: Vec<(u64, String, String)> = self
                            .changed
                            .drain()
                            .filter_map(|(id, c)| c.data.map(|d| (c.at, id, d)))
                            .collect();
                        created.sort_unstable_by_key(|(at, _, _)| *at);
                        let created: Vec<(String, String)> =
                            created.into_iter().map(|(_, id, d)| (id, d)).collect();
                        self.stage = Stage::Created(created.into_iter());
                    }
                },
                Stage::Created(it) => match it.next() {
                    Some((id, data)) => self.push(&mut out, &id, &data, None),
                    None => self.next_segment()?,
                },
                Stage::Archive(rel, it) => match it.next() {
                    Some((id, data)) => {
                        let rel = rel.clone();
                        self.push(&mut out, &id, &data, Some(&rel));
                    }
                    None => self.next_segment()?,
                },
            }
        }
        Ok(Some(out))
    }

    /// Moves to the next archive segment (read whole: a segment is one JSON value), or to the end.
    fn next_segment(&mut self) -> Result<()> {
        self.stage = match self.segments.next() {
            Some(rel) => {
                paths::inside(&self.dir, &rel)?;
                let recs = archive::load(&self.dir, &self.dir.display().to_string(), &rel)?;
                Stage::Archive(rel, recs.into_iter())
            }
            None => Stage::Done,
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_dir;

    fn export_all(dir: &Path, format: Format, archive: bool) -> String {
        let mut e = Export::open(
            &dir.display().to_string(),
            format,
            archive,
            Arc::new(Progress::default()),
        )
        .unwrap();
        let mut out = String::new();
        while let Some(chunk) = e.next_chunk(16).unwrap() {
            out.push_str(&chunk);
        }
        out
    }

    #[test]
    fn replays_ops_in_the_stores_order() {
        let tmp = test_dir("export");
        let d = tmp.path();
        std::fs::create_dir_all(d.join("snapshots")).unwrap();
        std::fs::create_dir_all(d.join("ops")).unwrap();
        let m = Manifest::fresh("snapshots/s.jsonl".into(), "ops/o.jsonl".into(), "T".into());
        std::fs::write(d.join(MANIFEST_FILE), m.encode()).unwrap();
        std::fs::write(
            d.join("snapshots/s.jsonl"),
            "{\"version\":1,\"timestamp\":\"T\"}\n{\"id\":\"a\",\"data\":{\"n\":1}}\n{\"id\":\"b\",\"data\":{\"n\": 2}}\n{\"id\":\"c\",\"data\":{}}\n",
        )
        .unwrap();
        let op = |kind: &str, id: &str, data: &str| {
            let data = if data.is_empty() {
                String::new()
            } else {
                format!(",\"data\":{data}")
            };
            let prev = if kind == "delete" { "{}" } else { "null" };
            format!("{{\"ts\":\"t\",\"op\":\"{kind}\",\"id\":\"{id}\",\"prev\":{prev}{data}}}\n")
        };
        let ops = [
            op("set", "b", "{\"n\":3}"),
            op("delete", "a", ""),
            op("set", "a", "{\"n\":4}"),
            op("set", "d", "{}"),
            op("delete", "c", ""),
            op("set", "e", "{}"),
            op("delete", "e", ""),
        ];
        std::fs::write(d.join("ops/o.jsonl"), ops.concat()).unwrap();
        assert_eq!(
            export_all(d, Format::Jsonl, false),
            "{\"id\":\"b\",\"data\":{\"n\":3}}\n{\"id\":\"a\",\"data\":{\"n\":4}}\n{\"id\":\"d\",\"data\":{}}\n"
        );
        assert_eq!(
            export_all(d, Format::Json, false),
            "[\n{\"id\":\"b\",\"data\":{\"n\":3}}\n,{\"id\":\"a\",\"data\":{\"n\":4}}\n,{\"id\":\"d\",\"data\":{}}\n]\n"
                .replace("}\n,", "},\n")
        );
        std::fs::write(d.join("ops/o.jsonl"), op("delete", "a", "")).unwrap();
        assert_eq!(
            export_all(d, Format::Jsonl, false),
            "{\"id\":\"b\",\"data\":{\"n\":2}}\n{\"id\":\"c\",\"data\":{}}\n",
            "record text comes out canonical"
        );
        std::fs::write(
            d.join("snapshots/s.jsonl"),
            "{\"version\":1,\"timestamp\":\"T\"}\n",
        )
        .unwrap();
        std::fs::write(d.join("ops/o.jsonl"), "").unwrap();
        assert_eq!(export_all(d, Format::Json, false), "[]\n");
        assert_eq!(export_all(d, Format::Jsonl, true), "");
    }
}
