//! The single-writer `.lock` file, compatible with the reference: created exclusively, holding
//! the owner's pid; a lock whose pid is not alive is stale and taken over.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use super::error::{display_join, Error, Result};

pub const LOCK_FILE: &str = ".lock";

#[derive(Debug)]
pub struct LockHandle {
    _file: File,
    path: PathBuf,
}

/// `parseInt(text, 10)`: optional leading whitespace and sign, then digits.
fn parse_pid(text: &str) -> Option<i64> {
    let t = text.trim_start();
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let end = digits
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    let n: i64 = digits[..end].parse().ok()?;
    Some(if neg { -n } else { n })
}

/// A lock file's text as the reference reads it (UTF-8, invalid bytes replaced): junk that is
/// not UTF-8 is no pid, so the lock is stale, as with junk text.
fn read_text(path: &Path) -> std::io::Result<String> {
    Ok(super::fsutil::lossy_text(fs::read(path)?).0)
}

/// Whether a process with this pid exists. A process we may not signal still exists.
fn is_alive(pid: i64) -> bool {
    if pid <= 0 || pid > i32::MAX as i64 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid as libc::pid_t, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Takes the store's `.lock`; `Error::Locked` when a live process holds it.
pub fn acquire(dir: &Path, dir_display: &str) -> Result<LockHandle> {
    match try_acquire(dir, dir_display, LOCK_FILE)? {
        Ok(handle) => Ok(handle),
        Err(pid) => Err(Error::Locked {
            pid,
            lock_path: display_join(dir_display, LOCK_FILE),
        }),
    }
}

/// Takes the lock file `name` of `dir` (created exclusively, holding our pid), taking over one
/// whose pid is dead. `Ok(Err(pid))` when the live process `pid` holds it.
pub fn try_acquire(
    dir: &Path,
    dir_display: &str,
    name: &str,
) -> Result<std::result::Result<LockHandle, i64>> {
    let path = dir.join(name);
    let shown = display_join(dir_display, name);
    for _ in 0..200 {
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(std::process::id().to_string().as_bytes())
                    .map_err(|e| Error::io(&shown, e))?;
                return Ok(Ok(LockHandle { _file: file, path }));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::io(&shown, e)),
        }
        let content = match read_text(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&shown, e)),
        };
        match parse_pid(&content) {
            Some(pid) if is_alive(pid) => return Ok(Err(pid)),
            None if content.trim().is_empty() && is_fresh(&path) => {
                // Its owner has just created it and is about to write its pid.
                std::thread::sleep(std::time::Duration::from_millis(5));
                continue;
            }
            _ => {}
        }
        let _ = fs::remove_file(&path);
    }
    Err(Error::Invalid(format!(
        "Could not acquire {shown}: it keeps reappearing"
    )))
}

/// Takes a lock file that is also held with `flock` for as long as its holder lives: a crashed
/// holder's flock is gone with it, so taking over its file needs no unlink, and two agents can
/// never both take over one stale lock. The file keeps the holder's pid (what the reference reads:
/// it sees the lock as held while the file exists). `Ok(Err(pid))` when a live process holds it.
#[cfg(unix)]
pub fn try_acquire_flocked(
    dir: &Path,
    dir_display: &str,
    name: &str,
) -> Result<std::result::Result<LockHandle, i64>> {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::io::AsRawFd;
    let path = dir.join(name);
    let shown = display_join(dir_display, name);
    for _ in 0..200 {
        // Whether we create the file decides whether an empty one is ours or a reference
        // process's that has not written its pid yet.
        let (mut file, created) = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => (f, true),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                match OpenOptions::new().read(true).write(true).open(&path) {
                    Ok(f) => (f, false),
                    Err(e) if e.kind() == ErrorKind::NotFound => continue,
                    Err(e) => return Err(Error::io(&shown, e)),
                }
            }
            Err(e) => return Err(Error::io(&shown, e)),
        }; // SAFETY: flock on a file descriptor we own.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let holder = read_text(&path)
                .ok()
                .and_then(|c| parse_pid(&c))
                .unwrap_or(0);
            return Ok(Err(holder));
        }
        // The file may have been unlinked (released) between our open and our flock.
        let same = match (file.metadata(), fs::metadata(&path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut file, &mut bytes).map_err(|e| Error::io(&shown, e))?;
        let (content, _) = super::fsutil::lossy_text(bytes);
        // A live pid with no flock behind it: a process of the reference (which only creates the
        // file) holds it. A dead pid is a holder that crashed. An empty file just created is a
        // reference process between creating it and writing its pid.
        match parse_pid(&content) {
            Some(pid) if is_alive(pid) => return Ok(Err(pid)),
            None if !created && content.trim().is_empty() && is_fresh(&path) => {
                return Ok(Err(0));
            }
            _ => {}
        }
        file.set_len(0).map_err(|e| Error::io(&shown, e))?;
        std::io::Seek::rewind(&mut file).map_err(|e| Error::io(&shown, e))?;
        file.write_all(std::process::id().to_string().as_bytes())
            .map_err(|e| Error::io(&shown, e))?;
        return Ok(Ok(LockHandle { _file: file, path }));
    }
    Err(Error::Invalid(format!(
        "Could not acquire {shown}: it keeps being replaced"
    )))
}

#[cfg(not(unix))]
pub fn try_acquire_flocked(
    dir: &Path,
    dir_display: &str,
    name: &str,
) -> Result<std::result::Result<LockHandle, i64>> {
    try_acquire(dir, dir_display, name)
}

/// Who holds the lock file `name` of `dir`, read without taking or changing it (for inspection):
/// `None` when there is no such file, else the pid it holds (if any) and whether that process lives.
pub fn holder(dir: &Path, name: &str) -> std::io::Result<Option<(Option<i64>, bool)>> {
    match read_text(&dir.join(name)) {
        Ok(text) => {
            let pid = parse_pid(&text);
            Ok(Some((pid, pid.is_some_and(is_alive))))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether a file was modified within the last second.
fn is_fresh(path: &Path) -> bool {
    fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(1))
}

/// Releases a lock: removes the file while still holding it (so no one takes the old file
/// over in between), then closes it.
pub fn release(handle: LockHandle) {
    let LockHandle { _file, path } = handle;
    let _ = fs::remove_file(path);
    drop(_file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_parse_int() {
        assert_eq!(parse_pid(" 123abc"), Some(123));
        assert_eq!(parse_pid("-5"), Some(-5));
        assert_eq!(parse_pid("abc"), None);
        assert_eq!(parse_pid(""), None);
    }

    #[test]
    fn excludes_live_owner_and_takes_stale_lock() {
        let dir = std::env::temp_dir().join(format!("opslog-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        let h = acquire(&dir, "d").unwrap();
        let e = acquire(&dir, "d").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "Store is locked by process {}. If this is stale, delete d/.lock",
                std::process::id()
            )
        );
        release(h);
        std::fs::write(dir.join(LOCK_FILE), "999999999").unwrap();
        let h = acquire(&dir, "d").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        release(h);
        std::fs::write(dir.join(LOCK_FILE), "junk").unwrap();
        release(acquire(&dir, "d").unwrap());
        assert!(!dir.join(LOCK_FILE).exists());
        std::fs::write(dir.join(LOCK_FILE), [0xff, 0xfe, 0x00, 0x80, b'1']).unwrap();
        release(acquire(&dir, "d").unwrap());
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "bytes that are not UTF-8 are junk too"
        );
    }
}
