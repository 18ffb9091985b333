//! Where dataset versions live: immutable objects written through `object_store`, so the same
//! code serves the local data folder of one server and an S3-compatible store shared by several
//! (chosen by `object_store_url`, see [`ObjectsConfig`]).
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Clone)]
pub struct BlobStore {
    /// The store as kho's keys address it (under the configured prefix).
    inner: Arc<dyn ObjectStore>,
    /// The bucket itself and the prefix of kho's keys in it, for readers that must see the
    /// store's own paths (see [`BlobStore::for_readers`]).
    root: Arc<dyn ObjectStore>,
    prefix: String,
    /// The folder of a local store, for what `object_store` does not list (see
    /// [`BlobStore::remove_unfinished_uploads`]).
    local_root: Option<std::path::PathBuf>,
    /// The S3-compatible store's address, when it is not Amazon's: with [`BlobStore::uri_of`]'s
    /// base it tells two stores apart (see [`BlobStore::same_place`]).
    endpoint: Option<String>,
    /// The address of the store's root as other programs name it (`s3://bucket/prefix`,
    /// `file:///srv/kho/objects`), see [`BlobStore::uri_of`].
    uri_base: String,
}

/// Where the objects live, as configured.
#[derive(Debug, Clone, Default)]
pub struct ObjectsConfig {
    /// None (or empty) for the local folder; `s3://bucket` or `s3://bucket/prefix` for an
    /// S3-compatible store.
    pub url: Option<String>,
    /// The store's address when it is not Amazon's (`https://s3.example.vn`, `http://minio:9000`).
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Credentials; when absent, the standard `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`
    /// environment variables (or the machine's role) are used.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
}

/// Where the objects go, from an [`ObjectsConfig`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectsLocation {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl ObjectsConfig {
    /// The location this configuration names; `local` is the folder used when it names none.
    pub fn location(&self, local: &Path) -> Result<ObjectsLocation> {
        let Some(url) = self.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(ObjectsLocation::Local(local.to_path_buf()));
        };
        let Some(rest) = url.strip_prefix("s3://") else {
            return Err(Error::new(
                kho_core::ErrorCode::BadRequest,
                format!(
                    "'{url}' is not an object store kho can use: write s3://bucket or s3://bucket/prefix, or leave it empty for the data folder"
                ),
            ));
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::new(kho_core::ErrorCode::BadRequest, format!("'{url}' names no bucket")));
        }
        Ok(ObjectsLocation::S3 { bucket: bucket.to_string(), prefix: prefix.trim_matches('/').to_string() })
    }
}

impl BlobStore {
    /// The store an [`ObjectsConfig`] names, `local` being the folder used when it names none.
    pub fn open(config: &ObjectsConfig, local: &Path) -> Result<BlobStore> {
        match config.location(local)? {
            ObjectsLocation::Local(root) => BlobStore::local(&root),
            ObjectsLocation::S3 { bucket, prefix } => BlobStore::s3(config, &bucket, &prefix),
        }
    }

    /// Objects in an S3-compatible bucket, under `prefix`. Addresses are path-style
    /// (`endpoint/bucket/key`), which every S3-compatible store understands; settings not given
    /// come from the standard `AWS_*` environment variables.
    pub fn s3(config: &ObjectsConfig, bucket: &str, prefix: &str) -> Result<BlobStore> {
        let mut builder = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_virtual_hosted_style_request(false);
        if let Some(endpoint) = config.endpoint.as_deref().filter(|e| !e.is_empty()) {
            // A store inside the data centre's network may be reached over plain HTTP.
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(region) = config.region.as_deref().filter(|r| !r.is_empty()) {
            builder = builder.with_region(region);
        }
        if let (Some(id), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            builder = builder.with_access_key_id(id).with_secret_access_key(secret);
        }
        let s3: Arc<dyn ObjectStore> =
            Arc::new(builder.build().map_err(|e| store_err(&format!("opening the bucket {bucket}"), e))?);
        let inner: Arc<dyn ObjectStore> = if prefix.is_empty() {
            s3.clone()
        } else {
            Arc::new(object_store::prefix::PrefixStore::new(s3.clone(), prefix))
        };
        let uri_base = if prefix.is_empty() { format!("s3://{bucket}") } else { format!("s3://{bucket}/{prefix}") };
        let endpoint = config.endpoint.clone().filter(|e| !e.is_empty());
        Ok(BlobStore { inner, root: s3, prefix: prefix.to_string(), local_root: None, endpoint, uri_base })
    }

    /// Whether two stores keep their objects in the same place (the same folder, or the same
    /// bucket and prefix at the same address).
    pub fn same_place(&self, other: &BlobStore) -> bool {
        self.uri_base == other.uri_base && self.endpoint == other.endpoint
    }

    /// Whether the objects are in the local folder (then one server owns them).
    pub fn is_local(&self) -> bool {
        self.local_root.is_some()
    }

    /// Objects under a folder of the local file system (created if needed).
    pub fn local(root: &Path) -> Result<BlobStore> {
        std::fs::create_dir_all(root).map_err(|e| store_err(&format!("creating {}", root.display()), e))?;
        let fs = LocalFileSystem::new_with_prefix(root).map_err(|e| store_err("opening", e))?;
        let fs: Arc<dyn ObjectStore> = Arc::new(fs);
        // Other programs are given absolute addresses, whatever folder kho was started in.
        let absolute = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Ok(BlobStore {
            inner: fs.clone(),
            root: fs,
            prefix: String::new(),
            local_root: Some(root.to_path_buf()),
            endpoint: None,
            uri_base: format!("file://{}", absolute.display()),
        })
    }

    /// The store and the prefix to put before a key, for readers such as the query engine that
    /// compare the paths the store reports with the ones they asked for (a prefixing wrapper
    /// reports some paths with the prefix and some without).
    pub fn for_readers(&self) -> (Arc<dyn ObjectStore>, String) {
        (self.root.clone(), self.prefix.clone())
    }

    /// The address of object `key` for other programs that read the store themselves (Iceberg
    /// readers): `s3://bucket/prefix/key`, or `file:///…/objects/key` for the local folder.
    pub fn uri_of(&self, key: &str) -> String {
        format!("{}/{key}", self.uri_base)
    }

    /// Copy an object inside the store (on S3 a server-side copy: nothing passes through kho).
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        self.inner.copy(&ObjectPath::from(from), &ObjectPath::from(to)).await.map_err(|e| store_err(to, e))
    }

    /// Write a small object whole (metadata files).
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.inner.put(&ObjectPath::from(key), bytes.into()).await.map_err(|e| store_err(key, e))?;
        Ok(())
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

    /// Every object key under `prefix`, with how long ago it was last written.
    pub async fn list_with_age(&self, prefix: &str) -> Result<Vec<(String, std::time::Duration)>> {
        let now = unix_now();
        let prefix = ObjectPath::from(prefix);
        self.inner
            .list(Some(&prefix))
            .map_ok(|m| {
                let age = u64::try_from(now - m.last_modified.timestamp()).unwrap_or(0);
                (m.location.to_string(), std::time::Duration::from_secs(age))
            })
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
    /// committed versions): leftovers of publishes that were interrupted. In a store shared by
    /// several servers another one may be publishing right now, its objects written and its
    /// version not yet committed: there only objects older than an hour count.
    pub async fn orphans(&self, known: &std::collections::HashSet<String>) -> Result<Vec<String>> {
        const SHARED_GRACE_SECS: i64 = 3600;
        let now = unix_now();
        let shared = !self.is_local();
        let prefix = ObjectPath::from("datasets");
        let all: Vec<object_store::ObjectMeta> =
            self.inner.list(Some(&prefix)).try_collect().await.map_err(|e| store_err("listing", e))?;
        Ok(all
            .into_iter()
            .filter(|m| !shared || now - m.last_modified.timestamp() > SHARED_GRACE_SECS)
            .map(|m| m.location.to_string())
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

    #[test]
    fn the_object_store_is_chosen_by_its_address() {
        let local = Path::new("/srv/kho/objects");
        let at = |url: Option<&str>| ObjectsConfig { url: url.map(String::from), ..Default::default() }.location(local);
        assert_eq!(at(None).unwrap(), ObjectsLocation::Local(local.into()));
        assert_eq!(at(Some(" ")).unwrap(), ObjectsLocation::Local(local.into()));
        assert_eq!(at(Some("s3://kho")).unwrap(), ObjectsLocation::S3 { bucket: "kho".into(), prefix: String::new() });
        assert_eq!(
            at(Some("s3://kho/son-la/")).unwrap(),
            ObjectsLocation::S3 { bucket: "kho".into(), prefix: "son-la".into() }
        );
        assert!(at(Some("gs://kho")).unwrap_err().message.contains("s3://bucket"));
        assert!(at(Some("s3:///x")).unwrap_err().message.contains("no bucket"));
    }

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
