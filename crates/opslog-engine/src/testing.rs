//! What the unit tests share: a fresh directory per test, removed when the test ends (also when
//! it fails).

use std::fmt;
use std::ops::Deref;
use std::path::Path;

pub(crate) struct TestDir {
    dir: tempfile::TempDir,
    text: String,
}

/// A new empty directory, named after the test for whoever looks at a failure's paths.
pub(crate) fn test_dir(name: &str) -> TestDir {
    let dir = tempfile::Builder::new()
        .prefix(&format!("opslog-{name}-"))
        .tempdir()
        .expect("a temporary directory");
    let text = dir.path().display().to_string();
    TestDir { dir, text }
}

impl TestDir {
    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// The path as text: the form `FsBackend` and the store take.
impl Deref for TestDir {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl AsRef<Path> for TestDir {
    fn as_ref(&self) -> &Path {
        self.path()
    }
}

impl fmt::Display for TestDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}
