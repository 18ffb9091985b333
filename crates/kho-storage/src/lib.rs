//! Where dataset versions live: immutable objects written through `object_store`, so the same
//! code serves the local data folder today and an S3-compatible store tomorrow.
//!
//! Objects are written whole (a multipart upload becomes visible only when it completes), and a
//! version becomes part of the catalog only when its manifest row is committed in the metadata
//! store afterwards. An object without a manifest row is an orphan of an interrupted publish;
//! [`BlobStore::orphans`] finds them for clean-up at start.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use kho_core::{Error, Result};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, WriteMultipart};
use tokio::io::AsyncReadExt;

fn store_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::internal(format!("blob store, {what}: {e}"))
}

/// Where a version's files go: one folder per resource version, never written twice.
pub fn version_prefix(dataset_id: &str, resource_id: &str, version: i64) -> String {
    format!("datasets/{dataset_id}/{resource_id}/v{version}")
}

#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    /// The folder of a local store, for what `object_store` does not list (see
    /// [`BlobStore::remove_unfinished_uploads`]).
    local_root: Option<std::path::PathBuf>,
}

impl BlobStore {
    /// Objects under a folder of the local file system (created if needed).
    pub fn local(root: &Path) -> Result<BlobStore> {
        std::fs::create_dir_all(root).map_err(|e| store_err(&format!("creating {}", root.display()), e))?;
        let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| store_err("opening", e))?;
        Ok(BlobStore { inner: Arc::new(fs), local_root: Some(root.to_path_buf()) })
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    /// Upload a local file as the object `key`, in parts, so memory stays flat.
    pub async fn put_file(&self, key: &str, file: &Path) -> Result<u64> {
        let location = ObjectPath::from(key);
        let upload = self.inner.put_multipart(&location).await.map_err(|e| store_err(key, e))?;
        let mut writer = WriteMultipart::new(upload);
        let mut f =
            tokio::fs::File::open(file).await.map_err(|e| store_err(&format!("reading {}", file.display()), e))?;
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf).await.map_err(|e| store_err("reading", e))?;
            if n == 0 {
                break;
            }
            total += n as u64;
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(|e| store_err(key, e))?;
        Ok(total)
    }

    /// The object as a stream of chunks.
    pub async fn get_stream(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes>>> {
        let location = ObjectPath::from(key);
        let got = self.inner.get(&location).await.map_err(|e| store_err(key, e))?;
        let key = key.to_string();
        Ok(got.into_stream().map_err(move |e| store_err(&key, e)).boxed())
    }

    pub async fn size(&self, key: &str) -> Result<u64> {
        Ok(self.inner.head(&ObjectPath::from(key)).await.map_err(|e| store_err(key, e))?.size)
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(store_err(key, e)),
        }
    }

    /// Every object key under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = ObjectPath::from(prefix);
        self.inner
            .list(Some(&prefix))
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .map_err(|e| store_err("listing", e))
    }

    /// Delete the parts of uploads that never completed. On the local file system a multipart
    /// upload writes beside its destination (`data.parquet#1`) and renames on completion; a
    /// process killed in between leaves that file, which listings do not show. (On S3 an
    /// unfinished multipart upload is not an object; a bucket lifecycle rule expires it.)
    pub fn remove_unfinished_uploads(&self) -> Result<usize> {
        let Some(root) = &self.local_root else { return Ok(0) };
        let mut removed = 0;
        let mut stack = vec![root.join("datasets")];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if entry.file_name().to_string_lossy().contains('#') {
                    std::fs::remove_file(&path).map_err(|e| store_err(&format!("removing {}", path.display()), e))?;
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }

    /// Objects under `datasets/` whose version folder is not in `known` (the prefixes of
    /// committed versions): leftovers of publishes that were interrupted.
    pub async fn orphans(&self, known: &std::collections::HashSet<String>) -> Result<Vec<String>> {
        let all = self.list("datasets").await?;
        Ok(all
            .into_iter()
            .filter(|k| {
                let folder: String = k.rsplit_once('/').map_or(k.as_str(), |(p, _)| p).to_string();
                !known.contains(&folder)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_read_list_and_orphans() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::local(&dir.path().join("objects")).unwrap();
        let src = dir.path().join("src.bin");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&src, &data).unwrap();
        let key = format!("{}/data.parquet", version_prefix("d1", "r1", 1));
        assert_eq!(store.put_file(&key, &src).await.unwrap(), data.len() as u64);
        assert_eq!(store.size(&key).await.unwrap(), data.len() as u64);
        let mut got = Vec::new();
        let mut s = store.get_stream(&key).await.unwrap();
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, data);
        // What a publish killed in the middle of an upload leaves: a part beside the object.
        let part = dir.path().join("objects").join(version_prefix("d1", "r1", 2)).join("data.parquet#3");
        std::fs::create_dir_all(part.parent().unwrap()).unwrap();
        std::fs::write(&part, b"half").unwrap();
        assert_eq!(store.remove_unfinished_uploads().unwrap(), 1);
        assert!(!part.exists());
        assert_eq!(store.size(&key).await.unwrap(), data.len() as u64);
        let orphan = format!("{}/data.parquet", version_prefix("d1", "r1", 2));
        store.put_file(&orphan, &src).await.unwrap();
        let known = [version_prefix("d1", "r1", 1)].into_iter().collect();
        assert_eq!(store.orphans(&known).await.unwrap(), vec![orphan.clone()]);
        store.delete(&orphan).await.unwrap();
        store.delete(&orphan).await.unwrap();
        assert_eq!(store.list("datasets").await.unwrap(), vec![key]);
    }
}
