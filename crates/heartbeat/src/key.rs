//! The cluster key: loading it from its file, and keeping it out of logs.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Refuse key files larger than this: a key file is a secret of a few dozen bytes, not a
/// blob, and a typo'd path to a large file should fail rather than be read whole.
pub const MAX_KEY_FILE_LEN: u64 = 64 * 1024;

/// The shared secret every heartbeat frame is authenticated with (HMAC-SHA256).
///
/// `Debug` never shows the bytes; the memory is overwritten with zeros when the key is
/// dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterKey(Vec<u8>);

impl ClusterKey {
    /// A key from bytes; `None` if empty.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Option<ClusterKey> {
        let bytes = bytes.into();
        (!bytes.is_empty()).then_some(ClusterKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey(<redacted, {} bytes>)", self.0.len())
    }
}

impl Drop for ClusterKey {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: `b` is a valid, aligned, exclusive reference into our own buffer.
            // A volatile write keeps the compiler from eliding the wipe of memory that is
            // about to be freed.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

/// Why a key file was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read cluster key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cluster key file {path} is not a regular file")]
    NotAFile { path: PathBuf },
    #[error(
        "cluster key file {path} has mode {mode:04o}: it must not be readable or writable by \
         group or others (chmod 600 {path})"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("cluster key file {path} is empty")]
    Empty { path: PathBuf },
    #[error("cluster key file {path} is larger than {max} bytes", max = MAX_KEY_FILE_LEN)]
    TooLarge { path: PathBuf },
}

impl KeyError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            KeyError::Unreadable { path, .. }
            | KeyError::NotAFile { path }
            | KeyError::Permissions { path, .. }
            | KeyError::Empty { path }
            | KeyError::TooLarge { path } => path,
        }
    }
}

/// Load the cluster key: the file's bytes with trailing newline characters (`\n`, `\r`)
/// removed.
///
/// Refused with a typed [`KeyError`]: a file that cannot be opened or read, anything but a
/// regular file (symlinks are followed), a mode with any group or other bit set
/// (`mode & 0o077 != 0`), an empty key, a file over [`MAX_KEY_FILE_LEN`]. The mode is
/// checked on the opened file, so a swap between the check and the read cannot slip
/// through.
pub fn load_key(path: impl AsRef<Path>) -> Result<ClusterKey, KeyError> {
    let path = path.as_ref();
    let unreadable = |source| KeyError::Unreadable {
        path: path.to_owned(),
        source,
    };
    // Look before opening: opening a FIFO would block.
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() {
        return Err(KeyError::NotAFile {
            path: path.to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    if meta.len() > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_KEY_FILE_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    // Wrap at once so the buffer is wiped whatever happens next.
    let mut key = ClusterKey(bytes);
    if key.0.len() as u64 > MAX_KEY_FILE_LEN {
        return Err(KeyError::TooLarge {
            path: path.to_owned(),
        });
    }
    while matches!(key.0.last(), Some(b'\n' | b'\r')) {
        if let Some(b) = key.0.last_mut() {
            *b = 0;
        }
        key.0.pop();
    }
    if key.0.is_empty() {
        return Err(KeyError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir =
                std::env::temp_dir().join(format!("tandem-hb-key-{}-{tag}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create temp dir");
            TempDir(dir)
        }

        fn file(&self, name: &str, content: &[u8], mode: u32) -> PathBuf {
            let path = self.0.join(name);
            let mut f = std::fs::File::create(&path).expect("create");
            f.write_all(content).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn loads_and_trims_trailing_newlines() {
        let d = TempDir::new("ok");
        let p = d.file("k", b"s3cret\n", 0o600);
        assert_eq!(load_key(&p).unwrap().as_bytes(), b"s3cret");
        let p = d.file("k2", b"s3cret\r\n\n", 0o400);
        assert_eq!(load_key(&p).unwrap().as_bytes(), b"s3cret");
        // Only trailing newlines go: inner ones and other whitespace stay.
        let p = d.file("k3", b"a\nb \n", 0o600);
        assert_eq!(load_key(&p).unwrap().as_bytes(), b"a\nb ");
        // Binary keys are fine.
        let p = d.file("k4", &[0, 1, 2, 255], 0o600);
        assert_eq!(load_key(&p).unwrap().as_bytes(), &[0, 1, 2, 255]);
    }

    #[test]
    fn refuses_group_or_other_bits() {
        let d = TempDir::new("mode");
        for mode in [
            0o640, 0o604, 0o620, 0o602, 0o644, 0o660, 0o606, 0o610, 0o601, 0o777,
        ] {
            let p = d.file(&format!("k{mode:o}"), b"key", mode);
            match load_key(&p) {
                Err(KeyError::Permissions { mode: m, .. }) => assert_eq!(m, mode),
                other => panic!("mode {mode:o}: {other:?}"),
            }
        }
        let err = load_key(d.file("k", b"key", 0o644)).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    #[test]
    fn refuses_empty() {
        let d = TempDir::new("empty");
        for content in [&b""[..], b"\n", b"\r\n\n"] {
            let p = d.file("k", content, 0o600);
            assert!(
                matches!(load_key(&p), Err(KeyError::Empty { .. })),
                "{content:?}"
            );
        }
    }

    #[test]
    fn refuses_missing_unreadable_and_non_files() {
        let d = TempDir::new("missing");
        assert!(matches!(
            load_key(d.0.join("nope")),
            Err(KeyError::Unreadable { .. })
        ));
        assert!(matches!(load_key(&d.0), Err(KeyError::NotAFile { .. })));
        let big = d.file("big", &vec![b'x'; MAX_KEY_FILE_LEN as usize + 1], 0o600);
        assert!(matches!(load_key(&big), Err(KeyError::TooLarge { .. })));
        // Mode 000: root reads it anyway (CAP_DAC_OVERRIDE); anyone else gets Unreadable.
        let p = d.file("k000", b"key", 0o000);
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(matches!(load_key(&p), Err(KeyError::Unreadable { .. })));
        } else {
            assert_eq!(load_key(&p).unwrap().as_bytes(), b"key");
        }
    }

    #[test]
    fn debug_redacts() {
        let k = ClusterKey::new(b"topsecret".to_vec()).unwrap();
        let s = format!("{k:?}");
        assert!(!s.contains("topsecret"), "{s}");
        assert!(s.contains("9 bytes"));
        assert!(ClusterKey::new(Vec::new()).is_none());
    }
}
