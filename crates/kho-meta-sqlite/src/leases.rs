//! Leases as locked files in a folder beside the database (`kho.db-leases/`). Every process
//! that opens the database file meets the same folder, the operating system releases a lock when
//! its process dies, and a file lock also excludes a second opening in the same process, so one
//! mechanism covers tasks, commands run beside the server and a crashed holder.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use kho_core::{Error, Result};
use kho_meta::{Lease, LeaseStore};

use crate::SqliteStore;

/// The lock file of `name`: letters, digits, `-` and `.` kept, every other byte written as
/// `_xx`, so that two names never share a file and the folder stays readable.
fn file_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 5);
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'.' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("_{b:02x}"));
        }
    }
    out.push_str(".lock");
    out
}

fn open(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
    let path = dir.join(file_name(name));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::internal(format!("opening {}: {e}", path.display())))?;
    Ok((file, path))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| Error::internal(format!("lease task: {e}")))?
}

#[async_trait]
impl LeaseStore for SqliteStore {
    async fn lease(&self, name: &str) -> Result<Lease> {
        let (dir, name) = (self.leases.clone(), name.to_string());
        blocking(move || {
            let (file, path) = open(&dir, &name)?;
            file.lock().map_err(|e| Error::internal(format!("locking {}: {e}", path.display())))?;
            Ok(Lease::new(file))
        })
        .await
    }

    async fn try_lease(&self, name: &str) -> Result<Option<Lease>> {
        let (dir, name) = (self.leases.clone(), name.to_string());
        blocking(move || {
            let (file, path) = open(&dir, &name)?;
            match file.try_lock() {
                Ok(()) => Ok(Some(Lease::new(file))),
                Err(TryLockError::WouldBlock) => Ok(None),
                Err(TryLockError::Error(e)) => Err(Error::internal(format!("locking {}: {e}", path.display()))),
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::file_name;

    #[test]
    fn every_name_has_its_own_readable_file() {
        assert_eq!(file_name("publish-0190"), "publish-0190.lock");
        assert_eq!(file_name("publish:a/b"), "publish_3aa_2fb.lock");
        assert_ne!(file_name("a:b"), file_name("a_3ab"));
        assert_eq!(file_name("../x"), ".._2fx.lock");
    }
}
