//! Small filesystem helpers shared by the file formats.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::error::{Error, Result};
use super::time;

/// Reads a whole file as text; invalid UTF-8 becomes U+FFFD, as Node's `readFile(…, "utf-8")`.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = fs::read(path).map_err(|e| Error::io(path.display().to_string(), e))?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Writes `path` through `<path>.tmp`, fsyncs it, renames it into place and fsyncs the
/// directory: readers see the old or the new file, and once this returns the new one survives a
/// crash or power loss.
pub fn write_replace(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let tmp = path.with_file_name(format!(
        "{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let display = tmp.display().to_string();
    let file = File::create(&tmp).map_err(|e| Error::io(&display, e))?;
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let written = fill(&mut w).and_then(|_| w.flush());
    let file = w
        .into_inner()
        .map_err(|e| Error::io(&display, e.into_error()))?;
    if let Err(e) = written.and_then(|_| file.sync_all()) {
        drop(file);
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&display, e));
    }
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))?;
    sync_dir(path)
}

/// Fsyncs the directory holding `path`, so a file created or renamed there stays after a crash.
pub fn sync_dir(path: &Path) -> Result<()> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io(dir.display().to_string(), e))?;
    }
    Ok(())
}

/// Removes files a newer checkpoint superseded; one already gone is fine.
pub fn remove_files(dir: &Path, rels: &[String]) {
    for rel in rels {
        if let Ok(path) = super::paths::inside(dir, rel) {
            let _ = fs::remove_file(path);
        }
    }
}

/// A file name `<prefix><ms>.<ext>` under `dir` that does not exist yet: the reference names
/// files by `Date.now()`; two in one millisecond would overwrite each other, so take the next ms.
pub fn fresh_name(dir: &Path, prefix: &str, ext: &str) -> String {
    let mut ms = time::now_ms();
    loop {
        let name = format!("{prefix}{ms}.{ext}");
        if !dir.join(&name).exists() && !dir.join(format!("{name}.tmp")).exists() {
            return name;
        }
        ms += 1;
    }
}
