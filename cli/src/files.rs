//! Writing what the client keeps: private files (keys, config) readable by
//! their owner only, created with that mode rather than narrowed afterwards.

use std::io::Write as _;
use std::path::Path;

use crate::error::Error;

/// Creates or replaces `path` with mode 0600, making its directory (0700) if needed.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder
            .create(dir)
            .map_err(|e| Error::local(&format!("cannot create {}", dir.display()), e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| Error::local(&format!("cannot write {}", path.display()), e))?;
    // An existing file keeps its old mode through open(): narrow it too.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::local(&format!("cannot restrict {}", path.display()), e))?;
    }
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::local(&format!("cannot write {}", path.display()), e))
}

/// Writes a file anyone may read (downloaded content), replacing it.
pub fn write_public(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    std::fs::write(path, bytes)
        .map_err(|e| Error::local(&format!("cannot write {}", path.display()), e))
}

/// Content that is safe to print to a terminal: UTF-8 text without control
/// characters other than newline, carriage return and tab (an escape sequence in
/// a paste must not be able to drive the user's terminal).
pub fn is_terminal_safe(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| {
        text.chars()
            .all(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_text_is_terminal_safe() {
        assert!(is_terminal_safe(b"hello\nworld\r\n\ttabbed"));
        assert!(is_terminal_safe("gr\u{fc}\u{df}e \u{1f600}".as_bytes()));
        assert!(is_terminal_safe(b""));
        assert!(!is_terminal_safe(b"\x1b[2Jcleared"));
        assert!(!is_terminal_safe(b"nul\0byte"));
        assert!(!is_terminal_safe(b"\x89PNG\r\n\x1a\n"));
        assert!(!is_terminal_safe(&[0xff, 0xfe, 0x41]));
        assert!(!is_terminal_safe("c1 \u{9b}31m".as_bytes()));
    }

    #[cfg(unix)]
    #[test]
    fn private_files_are_owner_only_even_when_they_existed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("a").join("b").join("key.pem");
        write_private(&path, b"one").expect("writes");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_private(&path, b"two").expect("rewrites");
        let meta = std::fs::metadata(&path).expect("exists");
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read(&path).expect("reads"), b"two");
        let parent = std::fs::metadata(path.parent().expect("dir")).expect("dir");
        assert_eq!(parent.permissions().mode() & 0o777, 0o700);
    }
}
