//! Backups, restores and moving up: `kho backup` while the server runs, `kho backup verify`
//! naming what was changed in an archive, `kho restore` into PostgreSQL with a bucket and into
//! the embedded store, and `kho migrate` from the embedded store to PostgreSQL and a bucket;
//! each time the restored instance serves the same data, sessions and audit chain.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::*;
use kho_meta_postgres::testing::TempPostgres;
use reqwest::StatusCode;
use serde_json::Value;

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn env_of<'a>(pairs: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    pairs.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// An instance with two versions of a table, a file checked and waiting, and its audit count.
async fn with_content(s: &Server) -> (String, i64) {
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("sao-luu", "shared")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&steward, "sao-luu", "bang-chinh", "ma_xa,so_luong\n03979,1\n".into()).await;
    publish_csv(&steward, "sao-luu", "bang-chinh", "ma_xa,so_luong\n03979,1\n03982,2\n".into()).await;
    let (status, u) =
        upload_file(&steward, "sao-luu", "bang-chinh", b"ma_xa,so_luong\n03985,3\n03988,ba\n".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let verify = s.admin().await.get("/api/v1/audit/verify").await;
    (u["id"].as_str().unwrap().to_string(), verify.body["entries_checked"].as_i64().unwrap())
}

/// What a restored instance must serve: the table's second version, the waiting upload (which
/// it publishes as the third), sign-in with the old password, and an audit chain at least as
/// long as the original's.
async fn serves_the_same(s: &Server, upload: &str, entries: i64) {
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let rows = steward.get("/api/v1/datasets/sao-luu/resources/bang-chinh/rows?sort=ma_xa").await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text);
    assert_eq!(rows.body["version"], 2, "{}", rows.text);
    assert_eq!(rows.body["records"].as_array().unwrap().len(), 2, "{}", rows.text);
    let v1 = steward.get("/api/v1/datasets/sao-luu/resources/bang-chinh/versions/1/data?format=csv").await;
    assert_eq!(v1.text, "ma_xa,so_luong\n03979,1\n");
    let quarantine = steward.get(&format!("/api/v1/uploads/{upload}/quarantine")).await;
    assert_eq!(quarantine.status, StatusCode::OK, "{}", quarantine.text);
    let body = serde_json::json!({"mode": "append", "skip_invalid": true});
    let published = steward.post(&format!("/api/v1/uploads/{upload}/publish"), body).await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text);
    assert_eq!(published.body["version"], 3, "{}", published.text);
    let verify = s.admin().await.get("/api/v1/audit/verify").await;
    assert_eq!(verify.body["broken_at"], Value::Null, "{}", verify.text);
    assert!(verify.body["entries_checked"].as_i64().unwrap() > entries, "{}", verify.text);
    // New rows are numbered after the restored ones.
    let agency = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD)
        .await
        .post("/api/v1/agencies", serde_json::json!({"code": "so-moi", "name": "Sở mới", "kind": "department"}))
        .await;
    assert_eq!(agency.status, StatusCode::CREATED, "{}", agency.text);
}

/// Change one byte of a file.
fn flip_a_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() / 2;
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_backup_taken_while_kho_runs_is_checked_and_restored_into_either_backend() {
    let s = Server::start(true);
    let (upload, entries) = with_content(&s).await;
    let work = tempfile::tempdir().unwrap();
    let archive = work.path().join("kho-backup");

    // Taken while the server runs, then checked.
    let out = kho_cli(&s.data_dir(), &["backup", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("chain verified"), "{}", text(&out));
    let out = kho_cli(&s.data_dir(), &["backup", "verify", archive.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("archive intact"), "{}", text(&out));
    let again = kho_cli(&s.data_dir(), &["backup", archive.to_str().unwrap()]);
    assert!(!again.status.success() && text(&again).contains("not empty"), "{}", text(&again));

    // A changed file is named; so is an altered audit entry.
    let tampered = work.path().join("tampered");
    copy_dir(&archive, &tampered);
    let parquet = find_file(&tampered.join("objects"), "data.parquet").unwrap();
    flip_a_byte(&parquet);
    let audit = tampered.join("metadata/audit_log.jsonl");
    let altered = std::fs::read_to_string(&audit).unwrap().replacen("taichinh.canbo", "taichinh.canbx", 1);
    std::fs::write(&audit, altered).unwrap();
    let out = kho_cli(&s.data_dir(), &["backup", "verify", tampered.to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    let inside = parquet.strip_prefix(&tampered).unwrap().to_string_lossy().to_string();
    assert!(said.contains(&format!("{inside}: its content changed")), "{said}");
    assert!(said.contains("metadata/audit_log.jsonl: its content changed"), "{said}");
    assert!(said.contains("was altered"), "{said}");
    // And it is not restored.
    let target = tempfile::tempdir().unwrap();
    let out = kho_cli(&target.path().join("data"), &["restore", tampered.to_str().unwrap()]);
    assert!(!out.status.success() && text(&out).contains("its content changed"), "{}", text(&out));

    // Into PostgreSQL and a bucket…
    let s3 = S3Server::start();
    s3.bucket("kho-restore").await;
    let pg = TempPostgres::start();
    let mut cluster = s3.env("s3://kho-restore/tinh");
    cluster.push(("KHO_DATABASE_URL", pg.database().await));
    let node_dir = tempfile::tempdir().unwrap();
    let out = kho_cli_with(&node_dir.path().join("data"), &["restore", archive.to_str().unwrap()], &cluster);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("restored into PostgreSQL"), "{}", text(&out));
    let into_full = kho_cli_with(&node_dir.path().join("other"), &["restore", archive.to_str().unwrap()], &cluster);
    assert!(!into_full.status.success() && text(&into_full).contains("not empty"), "{}", text(&into_full));
    let node = Server::start_in(node_dir, false, &env_of(&cluster));
    serves_the_same(&node, &upload, entries).await;

    // …and from there back into the embedded store.
    let from_pg = work.path().join("from-postgres");
    let out = kho_cli_with(&node.data_dir(), &["backup", from_pg.to_str().unwrap()], &cluster);
    assert!(out.status.success(), "{}", text(&out));
    let embedded = tempfile::tempdir().unwrap();
    let out = kho_cli(&embedded.path().join("data"), &["restore", from_pg.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let back = Server::start_in(embedded, false, &[]);
    let steward = Client::signed_in(&back.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let rows = steward.get("/api/v1/datasets/sao-luu/resources/bang-chinh/rows").await;
    assert_eq!((rows.status, &rows.body["version"]), (StatusCode::OK, &serde_json::json!(3)), "{}", rows.text);
    let verify = back.admin().await.get("/api/v1/audit/verify").await;
    assert_eq!(verify.body["broken_at"], Value::Null, "{}", verify.text);
}

#[tokio::test]
async fn migrate_moves_an_embedded_instance_to_postgres_and_a_bucket() {
    let s = Server::embedded(true);
    let (upload, entries) = with_content(&s).await;
    let s3 = S3Server::start();
    s3.bucket("kho-migrate").await;
    let pg = TempPostgres::start();
    let url = pg.database().await;
    let args = vec!["migrate", "--to", &url, "--objects", "s3://kho-migrate/son-la"];
    let s3_env = s3.env("");
    let s3_env: Vec<(&'static str, String)> =
        s3_env.into_iter().filter(|(k, _)| *k != "KHO_OBJECT_STORE_URL").collect();

    // Not while the server writes to it.
    let out = kho_cli_with(&s.data_dir(), &args, &s3_env);
    assert!(!out.status.success() && text(&out).contains("another kho server"), "{}", text(&out));
    let dir = s.stop();
    let data = dir.path().join("data");
    let out = kho_cli_with(&data, &args, &s3_env);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("copied to PostgreSQL") && said.contains("chain verified"), "{said}");
    assert!(!said.contains("PROBLEM"), "{said}");
    assert!(!said.contains("password"), "the database password is never printed: {said}");
    let keys = s3.keys("kho-migrate", "son-la/datasets/").await;
    assert!(keys.iter().any(|k| k.ends_with("/data.parquet")), "{keys:?}");
    assert!(
        std::fs::read_dir(&data).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().starts_with("migrate-")),
        "the scratch archive is removed"
    );

    // Twice is refused: the target is no longer empty.
    let out = kho_cli_with(&data, &args, &s3_env);
    assert!(!out.status.success() && text(&out).contains("not empty"), "{}", text(&out));

    let mut cluster = s3.env("s3://kho-migrate/son-la");
    cluster.push(("KHO_DATABASE_URL", url.clone()));
    let node = Server::start_with(false, &env_of(&cluster));
    serves_the_same(&node, &upload, entries).await;
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn find_file(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if let Some(found) = find_file(&path, name) {
                return Some(found);
            }
        } else if path.file_name().is_some_and(|n| n == name) {
            return Some(path);
        }
    }
    None
}
