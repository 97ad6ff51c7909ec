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

/// Writes `path` through `<path>.tmp` and a rename, so readers see the old or the new file.
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
    fill(&mut w)
        .and_then(|_| w.flush())
        .map_err(|e| Error::io(&display, e))?;
    drop(w);
    fs::rename(&tmp, path).map_err(|e| Error::io(path.display().to_string(), e))
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
