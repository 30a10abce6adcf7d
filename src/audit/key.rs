//! Secret files: the fingerprint key (and the admin token, which shares the rule). A secret
//! readable by group or others is refused, like the CA key: whoever reads the fingerprint key
//! and the audit log together can test every BSN against the log.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bytes of a generated fingerprint key.
const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: readable by group or others (mode {mode:o}); chmod 600 it")]
    Exposed { path: String, mode: u32 },
    #[error("{path}: empty")]
    Empty { path: String },
}

/// Reads a secret file, refusing it when group or others may read or write it. Trailing
/// whitespace (a newline from an editor) is not part of the secret.
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretError::Exposed {
            path: path.display().to_string(),
            mode,
        });
    }
    let mut bytes = fs::read(path).map_err(io)?;
    while bytes.last().is_some_and(u8::is_ascii_whitespace) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(SecretError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok(bytes)
}

/// The fingerprint key at `path`, generated (32 random bytes, hex, mode 0600, directory 0700)
/// when the file does not exist yet.
pub fn load_or_create_key(path: &Path) -> Result<Vec<u8>, SecretError> {
    let io = |source| SecretError::Io {
        path: path.display().to_string(),
        source,
    };
    if !path.exists() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let mut raw = [0u8; KEY_LEN];
        rand::fill(&mut raw);
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(io)?;
        f.write_all(format!("{}\n", hex::encode(raw)).as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        tracing::info!(file = %path.display(), "created the audit fingerprint key");
    }
    read_secret_file(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secrets/fp.key");
        let a = load_or_create_key(&path).unwrap();
        assert_eq!(a.len(), 64, "32 bytes, hex");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dir_mode = fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        assert_eq!(
            load_or_create_key(&path).unwrap(),
            a,
            "kept, not regenerated"
        );
    }

    #[test]
    fn refuses_exposed_or_empty_secrets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        fs::write(&path, "s3cret\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = read_secret_file(&path).unwrap_err();
        assert!(
            matches!(err, SecretError::Exposed { mode: 0o640, .. }),
            "{err}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_secret_file(&path).unwrap(), b"s3cret");
        fs::write(&path, "\n").unwrap();
        assert!(matches!(
            read_secret_file(&path),
            Err(SecretError::Empty { .. })
        ));
    }
}
