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
#[cfg(unix)]
fn is_alive(pid: i64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Whether a process with this pid exists and has not exited. One we may not open still exists.
#[cfg(windows)]
fn is_alive(pid: i64) -> bool {
    use windows_sys::Win32::Foundation::{CloseHandle, ERROR_ACCESS_DENIED, STILL_ACTIVE};
    use windows_sys::Win32::System::Threading::{
        GetExitCodeProcess, OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION,
    };
    let Ok(pid) = u32::try_from(pid) else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // SAFETY: the handle is checked before use and closed once; the exit code is written to a
    // local.
    unsafe {
        let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
        if handle.is_null() {
            return std::io::Error::last_os_error().raw_os_error()
                == Some(ERROR_ACCESS_DENIED as i32);
        }
        let mut code = 0u32;
        let queried = GetExitCodeProcess(handle, &mut code) != 0;
        CloseHandle(handle);
        !queried || code == STILL_ACTIVE as u32
    }
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

/// Runs `attempt` on the lock file `name` of `dir` (its path and the name shown in messages)
/// until it settles: `None` means the file changed under it (removed, replaced, just created by
/// another process), which is worth another try, but only so many: a file that never settles is
/// an error (`churn` says how it kept changing), not a spin.
fn settle<T>(
    dir: &Path,
    dir_display: &str,
    name: &str,
    churn: &str,
    mut attempt: impl FnMut(&Path, &str) -> Result<Option<T>>,
) -> Result<T> {
    let path = dir.join(name);
    let shown = display_join(dir_display, name);
    for _ in 0..200 {
        if let Some(v) = attempt(&path, &shown)? {
            return Ok(v);
        }
    }
    Err(Error::Invalid(format!(
        "Could not acquire {shown}: {churn}"
    )))
}

/// Opens the lock file to read and write, creating it when `create`; with whether this call
/// created it (which decides whether an empty file is ours or another's about to write its pid).
fn open_lock_file(path: &Path, create: bool) -> std::io::Result<(File, bool)> {
    let rw = || OpenOptions::new().read(true).write(true).clone();
    if create {
        match rw().create_new(true).open(path) {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.kind() != ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {}
        }
    }
    rw().open(path).map(|f| (f, false))
}

/// Writes our pid into a lock file we hold, at its start.
fn write_pid(file: &mut File, shown: &str) -> Result<()> {
    file.write_all(std::process::id().to_string().as_bytes())
        .map_err(|e| Error::io("write", shown, e))
}

/// Takes the lock file `name` of `dir` (created exclusively, holding our pid), taking over one
/// whose pid is dead. `Ok(Err(pid))` when the live process `pid` holds it.
pub fn try_acquire(
    dir: &Path,
    dir_display: &str,
    name: &str,
) -> Result<std::result::Result<LockHandle, i64>> {
    settle(
        dir,
        dir_display,
        name,
        "it keeps reappearing",
        |path, shown| {
            match OpenOptions::new().write(true).create_new(true).open(path) {
                Ok(mut file) => {
                    write_pid(&mut file, shown)?;
                    let path = path.to_path_buf();
                    return Ok(Some(Ok(LockHandle { _file: file, path })));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => return Err(Error::io("open", shown, e)),
            }
            let content = match read_text(path) {
                Ok(c) => c,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("open", shown, e)),
            };
            match parse_pid(&content) {
                Some(pid) if is_alive(pid) => return Ok(Some(Err(pid))),
                None if content.trim().is_empty() && is_fresh(path) => {
                    // Its owner has just created it and is about to write its pid.
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    return Ok(None);
                }
                _ => {}
            }
            let _ = fs::remove_file(path);
            Ok(None)
        },
    )
}

/// Takes a lock file that is also held with `flock` for as long as its holder lives: a crashed
/// holder's flock is gone with it, so taking over its file needs no unlink, and two agents can
/// never both take over one stale lock. The file keeps the holder's pid (what the reference reads:
/// it sees the lock as held while the file exists). `Ok(Err(pid))` when a live process holds it.
pub fn try_acquire_flocked(
    dir: &Path,
    dir_display: &str,
    name: &str,
) -> Result<std::result::Result<LockHandle, i64>> {
    settle(
        dir,
        dir_display,
        name,
        "it keeps being replaced",
        |path, shown| {
            let (mut file, created) = match open_lock_file(path, true) {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(Error::io("open", shown, e)),
            };
            if file.try_lock().is_err() {
                let holder = read_text(path)
                    .ok()
                    .and_then(|c| parse_pid(&c))
                    .unwrap_or(0);
                return Ok(Some(Err(holder)));
            }
            // The file may have been unlinked (released) between our open and our lock.
            if !still_linked(&file, path) {
                return Ok(None);
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut file, &mut bytes)
                .map_err(|e| Error::io("read", shown, e))?;
            let (content, _) = super::fsutil::lossy_text(bytes);
            // A live pid with no flock behind it: a process of the reference (which only creates the
            // file) holds it. A dead pid is a holder that crashed. An empty file just created is a
            // reference process between creating it and writing its pid.
            match parse_pid(&content) {
                Some(pid) if is_alive(pid) => return Ok(Some(Err(pid))),
                None if !created && content.trim().is_empty() && is_fresh(path) => {
                    return Ok(Some(Err(0)));
                }
                _ => {}
            }
            file.set_len(0)
                .map_err(|e| Error::io("ftruncate", shown, e))?;
            std::io::Seek::rewind(&mut file).map_err(|e| Error::io("lseek", shown, e))?;
            write_pid(&mut file, shown)?;
            let path = path.to_path_buf();
            Ok(Some(Ok(LockHandle { _file: file, path })))
        },
    )
}

/// The lock file of a multi-writer agent, in the store directory (beside `.lock` and
/// `.compact-lock`: `ops/` holds op files only, as readers of the reference expect).
pub fn agent_lock_name(agent: &str) -> String {
    format!(".agent-{agent}.lock")
}

/// The agent whose lock file `name` is (see `agent_lock_name`).
pub fn agent_of_lock_name(name: &str) -> Option<&str> {
    name.strip_prefix(".agent-")?.strip_suffix(".lock")
}

/// What `try_acquire_agent` found.
#[derive(Debug)]
pub enum AgentLock {
    /// Taken; `created`: the file did not exist before.
    Taken { handle: LockHandle, created: bool },
    /// A live process holds it; its pid as the file says (0 when it cannot be read).
    Held(i64),
    /// No lock file, and `create` was false.
    Absent,
}

/// Takes a multi-writer agent's lock file, held with an OS file lock (`File::try_lock`) for as
/// long as the agent is open: a process that ends, however it ends, releases it, so liveness
/// needs no pid check and a pid reused by another program cannot fool it. The file holds the
/// holder's pid (for messages) and stays when the agent closes: it marks an agent of ours, one
/// that locks while open (a reference agent never makes one). `create`: make the file if it is
/// missing (the agent's own open); a compaction checking another agent passes false.
pub fn try_acquire_agent(
    dir: &Path,
    dir_display: &str,
    name: &str,
    create: bool,
) -> Result<AgentLock> {
    settle(
        dir,
        dir_display,
        name,
        "it keeps being replaced",
        |path, shown| {
            let (mut file, created) = match open_lock_file(path, create) {
                Ok(v) => v,
                Err(e) if e.kind() == ErrorKind::NotFound && create => return Ok(None),
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Some(AgentLock::Absent)),
                Err(e) => return Err(Error::io("open", shown, e)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => {
                    let pid = read_text(path).ok().and_then(|c| parse_pid(&c));
                    return Ok(Some(AgentLock::Held(pid.unwrap_or(0))));
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("flock", shown, e)),
            }
            // A compaction retiring the agent removes the file while holding it: ours is then gone.
            if !still_linked(&file, path) {
                return Ok((!create).then_some(AgentLock::Absent));
            }
            if create {
                file.set_len(0)
                    .map_err(|e| Error::io("ftruncate", shown, e))?;
                write_pid(&mut file, shown)?;
            }
            let handle = LockHandle {
                _file: file,
                path: path.to_path_buf(),
            };
            Ok(Some(AgentLock::Taken { handle, created }))
        },
    )
}

/// Whether the open `file` is still the one at `path`.
#[cfg(unix)]
fn still_linked(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// (Elsewhere a file that is open cannot be removed.)
#[cfg(not(unix))]
fn still_linked(_file: &File, path: &Path) -> bool {
    path.exists()
}

/// Releases an agent's lock and keeps its file (see `try_acquire_agent`).
pub fn release_agent(handle: LockHandle) {
    drop(handle);
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
    use crate::testing::test_dir;

    #[test]
    fn parses_like_parse_int() {
        assert_eq!(parse_pid(" 123abc"), Some(123));
        assert_eq!(parse_pid("-5"), Some(-5));
        assert_eq!(parse_pid("abc"), None);
        assert_eq!(parse_pid(""), None);
    }

    #[test]
    fn an_agent_lock_is_held_while_its_handle_lives_and_its_file_stays() {
        let tmp = test_dir("agent-lock");
        let dir = tmp.path();
        let name = &agent_lock_name("a");
        assert_eq!(agent_of_lock_name(name), Some("a"));
        assert!(matches!(
            try_acquire_agent(dir, "d", name, false).unwrap(),
            AgentLock::Absent
        ));
        assert!(!dir.join(name).exists(), "without create, nothing is made");
        let AgentLock::Taken { handle, created } = try_acquire_agent(dir, "d", name, true).unwrap()
        else {
            panic!("free")
        };
        assert!(created);
        // Another handle in this very process does not get it: the lock is per open file.
        match try_acquire_agent(dir, "d", name, true).unwrap() {
            AgentLock::Held(pid) => assert_eq!(pid, i64::from(std::process::id())),
            other => panic!("{other:?}"),
        }
        release_agent(handle);
        assert!(
            dir.join(name).exists(),
            "a closed agent keeps its lock file"
        );
        let AgentLock::Taken { handle, created } =
            try_acquire_agent(dir, "d", name, false).unwrap()
        else {
            panic!("released")
        };
        assert!(!created);
        release(handle);
        assert!(
            !dir.join(name).exists(),
            "a retired agent's lock file is removed"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn excludes_live_owner_and_takes_stale_lock() {
        let tmp = test_dir("lock");
        let dir = tmp.path();
        let h = acquire(dir, "d").unwrap();
        let e = acquire(dir, "d").unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "Store is locked by process {}. If this is stale, delete d/.lock",
                std::process::id()
            )
        );
        release(h);
        std::fs::write(dir.join(LOCK_FILE), "999999999").unwrap();
        let h = acquire(dir, "d").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join(LOCK_FILE)).unwrap(),
            std::process::id().to_string()
        );
        release(h);
        std::fs::write(dir.join(LOCK_FILE), "junk").unwrap();
        release(acquire(dir, "d").unwrap());
        assert!(!dir.join(LOCK_FILE).exists());
        std::fs::write(dir.join(LOCK_FILE), [0xff, 0xfe, 0x00, 0x80, b'1']).unwrap();
        release(acquire(dir, "d").unwrap());
        assert!(
            !dir.join(LOCK_FILE).exists(),
            "bytes that are not UTF-8 are junk too"
        );
    }
}
