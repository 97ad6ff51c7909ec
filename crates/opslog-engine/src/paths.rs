//! Relative paths inside the store directory: whatever names a file (manifest entries, blob
//! paths, segment names) must not lead outside it.

use std::path::{Component, Path, PathBuf};

use super::error::{Error, Result};

/// `dir` joined with `rel`, refusing absolute paths and `..` that climbs above `dir`.
pub fn inside(dir: &Path, rel: &str) -> Result<PathBuf> {
    let refuse = || {
        Err(Error::Invalid(format!(
            "opslog: path '{rel}' is outside the store directory"
        )))
    };
    if rel.contains('\0') {
        return refuse();
    }
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir => {
                if depth == 0 {
                    return refuse();
                }
                depth -= 1;
            }
            Component::RootDir | Component::Prefix(_) => return refuse(),
        }
    }
    Ok(dir.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_paths_inside() {
        let d = Path::new("/data");
        assert_eq!(
            inside(d, "ops/a.jsonl").unwrap(),
            Path::new("/data/ops/a.jsonl")
        );
        assert!(inside(d, "a/../b").is_ok());
        assert!(inside(d, "").is_ok());
        for bad in ["../x", "/etc/passwd", "a/../../x", "x\0y"] {
            assert!(inside(d, bad).is_err(), "{bad}");
        }
    }
}
