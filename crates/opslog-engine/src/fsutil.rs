//! Small filesystem helpers shared by the file formats.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};
use super::time;

/// Reads into `buf` from byte `pos` of `file` without moving a shared file position (Unix);
/// may read less than `buf` holds, as `read` may.
#[cfg(unix)]
pub fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, pos)
}

#[cfg(windows)]
pub fn read_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, pos)
}

/// Writes all of `bytes` at byte `pos` of `file`.
#[cfg(unix)]
pub fn write_all_at(file: &File, bytes: &[u8], pos: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, pos)
}

#[cfg(windows)]
pub fn write_all_at(file: &File, mut bytes: &[u8], mut pos: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, bytes, pos)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                bytes = &bytes[n..];
                pos += n as u64;
            }
        }
    }
    Ok(())
}

/// Bytes as text, invalid UTF-8 replaced by U+FFFD as Node's `readFile(…, "utf-8")` does;
/// with whether any was.
pub fn lossy_text(bytes: Vec<u8>) -> (String, bool) {
    match String::from_utf8(bytes) {
        Ok(s) => (s, false),
        Err(e) => (String::from_utf8_lossy(e.as_bytes()).into_owned(), true),
    }
}

/// A whole file's bytes. A failure names the call that failed, `open` or `read`, as Node's
/// `readFile` does.
pub fn read_file(path: &Path, shown: &str) -> Result<Vec<u8>> {
    let mut file = File::open(path).map_err(|e| Error::io("open", shown, e))?;
    let mut bytes = Vec::with_capacity(file.metadata().map_or(0, |m| m.len() as usize));
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", shown, e))?;
    Ok(bytes)
}

/// Creates or replaces a file with `content` (`open` or `write` failing, as in Node's `writeFile`).
pub fn write_file(path: &Path, shown: &str, content: &[u8]) -> Result<()> {
    let mut file = File::create(path).map_err(|e| Error::io("open", shown, e))?;
    file.write_all(content)
        .map_err(|e| Error::io("write", shown, e))
}

/// Reads a whole file as text (see `lossy_text`).
pub fn read_text(path: &Path) -> Result<String> {
    Ok(lossy_text(read_file(path, &path.display().to_string())?).0)
}

/// `read_text` of a data file, saying on stderr when bytes that are not UTF-8 were replaced
/// (the text read is then not what was written).
pub fn read_data_text(path: &Path, shown: &str) -> Result<String> {
    let (text, replaced) = lossy_text(read_file(path, shown)?);
    if replaced {
        warn_not_utf8(1, shown);
    }
    Ok(text)
}

pub fn warn_not_utf8(lines: usize, shown: &str) {
    if lines > 0 {
        eprintln!("opslog: {shown} holds bytes that are not UTF-8 (in {lines} line(s)); read with U+FFFD in their place");
    }
}

/// Writes `path` through `<path>.tmp`, fsyncs it, renames it into place and fsyncs the
/// directory: readers see the old or the new file, and once this returns the new one survives a
/// crash or power loss.
pub fn write_replace(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    write_replace_with(path, true, fill)
}

/// `write_replace`; without `sync` nothing is fsynced: the new file is durable once
/// `sync_all_at_once` ran on it.
pub fn write_replace_with(
    path: &Path,
    sync: bool,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let tmp = write_tmp(path, fill, sync)?;
    if sync {
        return rename_into_place(&tmp, path);
    }
    rename(&tmp, path)
}

/// Renames `tmp` over `path`; on failure `tmp` is removed (what it held was not published).
pub fn rename(tmp: &Path, path: &Path) -> Result<()> {
    fs::rename(tmp, path).map_err(|e| {
        let _ = fs::remove_file(tmp);
        Error::rename(tmp.display().to_string(), path.display().to_string(), e)
    })
}

/// Writes `<path>.tmp` (fsynced when `sync`) and returns its path; removes it on failure (a
/// full disk leaves no partial file behind). An error of `fill` is a failed `write`.
pub fn write_tmp(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    sync: bool,
) -> Result<PathBuf> {
    let tmp = tmp_path(path);
    let display = tmp.display().to_string();
    let file = File::create(&tmp).map_err(|e| Error::io("open", &display, e))?;
    let write = |e| Error::io("write", &display, e);
    let mut w = io::BufWriter::with_capacity(1 << 20, file);
    let written = fill(&mut w)
        .and_then(|_| w.flush())
        .map_err(write)
        .and_then(|_| w.into_inner().map_err(|e| write(e.into_error())))
        .and_then(|file| match sync {
            true => file.sync_all().map_err(|e| Error::io("fsync", &display, e)),
            false => Ok(()),
        });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(tmp)
}

/// `<path>.tmp`, where `write_tmp` writes.
pub fn tmp_path(path: &Path) -> PathBuf {
    path.with_file_name(format!(
        "{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ))
}

/// Renames `tmp` over `path` and fsyncs the directory: the new file is current and stays so.
pub fn rename_into_place(tmp: &Path, path: &Path) -> Result<()> {
    rename(tmp, path)?;
    sync_dir(path)
}

/// Fsyncs `files` (their data) and `dirs` (the entries of files created or renamed there), all
/// at once on threads of their own: the device can then serve them with fewer cache flushes.
pub fn sync_all_at_once(files: &[PathBuf], dirs: &[PathBuf]) -> Result<()> {
    let sync = |path: &PathBuf| fsync(path);
    std::thread::scope(|scope| {
        let running: Vec<_> = files
            .iter()
            .chain(dirs)
            .skip(1)
            .map(|path| scope.spawn(move || sync(path)))
            .collect();
        let first = files.iter().chain(dirs).next().map_or(Ok(()), sync);
        running
            .into_iter()
            .map(|t| {
                t.join()
                    .unwrap_or_else(|_| Err(Error::Invalid("fsync thread panicked".into())))
            })
            .fold(first, |acc, r| acc.and(r))
    })
}

/// Fsyncs the directory holding `path`, so a file created or renamed there stays after a crash.
/// (Windows has no directory handle to sync; its metadata journal keeps the entry.)
#[cfg(not(unix))]
pub fn sync_dir(_path: &Path) -> Result<()> {
    Ok(())
}

/// Fsyncs the directory holding `path`, so a file created or renamed there stays after a crash.
#[cfg(unix)]
pub fn sync_dir(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        fsync(dir)?;
    }
    Ok(())
}

/// Opens `path` (a file or a directory) and fsyncs it.
fn fsync(path: &Path) -> Result<()> {
    let shown = || path.display().to_string();
    File::open(path)
        .map_err(|e| Error::io("open", shown(), e))?
        .sync_all()
        .map_err(|e| Error::io("fsync", shown(), e))
}

/// Removes files a newer checkpoint superseded; one already gone is fine.
pub fn remove_files(dir: &Path, rels: &[String]) {
    for rel in rels {
        if let Ok(path) = super::paths::inside(dir, rel) {
            let _ = fs::remove_file(path);
        }
    }
}

/// `<sub>/<name>` of the files in `dir/sub` named `<prefix>...<ext>`, or `<prefix>...<ext>.tmp`.
pub fn files_named(dir: &Path, sub: &str, prefix: &str, ext: &str) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir.join(sub)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| {
            let base = name.strip_suffix(".tmp").unwrap_or(name);
            base.starts_with(prefix) && base.ends_with(ext)
        })
        .map(|name| format!("{sub}/{name}"))
        .collect()
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
