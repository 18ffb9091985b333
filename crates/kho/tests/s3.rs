//! kho with its objects in an S3-compatible store (a real one: moto's S3 server, from PyPI):
//! `object_store_url` chooses it, versions are written to the bucket in parts and read back by
//! the query engine and the downloads; with the metadata in PostgreSQL too, two kho nodes that
//! share nothing but the database and the bucket serve the same data.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kho_meta_postgres::testing::TempPostgres;
use reqwest::StatusCode;

fn start(demo: bool, env: &[(&'static str, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start_with(demo, &env)
}

#[tokio::test]
async fn versions_are_written_to_and_read_from_the_bucket() {
    let s3 = S3Server::start();
    s3.bucket("kho-test").await;
    let s = start(true, &s3.env("s3://kho-test/son-la"));
    assert!(s.stdout.join("").contains("objects: s3://kho-test/son-la"), "{:?}", s.stdout);

    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("so-lieu-xa", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = publish_csv(&steward, "so-lieu-xa", "bang-chinh", "ma_xa,so_luong\n03979,12\n03982,7\n".into()).await;
    let key = v["object_key"].as_str().unwrap().to_string();
    let in_bucket = s3.keys("kho-test", "son-la/datasets/").await;
    assert!(in_bucket.contains(&format!("son-la/{key}")), "{key} not in {in_bucket:?}");
    assert!(!s.data_dir().join("objects").join(&key).exists(), "nothing of the version on the server's disk");

    // Read back by the query engine and the downloads.
    let rows = steward.get("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/rows?sort=-so_luong").await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text);
    assert_eq!(rows.body["records"][0]["so_luong"], 12, "{}", rows.text);
    let csv = steward.get("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/versions/1/data?format=csv").await;
    assert_eq!(csv.text, "ma_xa,so_luong\n03979,12\n03982,7\n");
    let parquet =
        reqwest::get(s.url("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/versions/latest/data")).await.unwrap();
    assert_eq!(parquet.status(), StatusCode::OK);
    assert_eq!(parquet.bytes().await.unwrap().len() as i64, v["bytes"].as_i64().unwrap());
    // The next version compares its rows with this one's, read from the bucket.
    let v2 = publish_csv(&steward, "so-lieu-xa", "bang-chinh", "ma_xa,so_luong\n03979,13\n03982,7\n".into()).await;
    assert_eq!((v2["version"].as_i64(), v2["rows_changed"].as_i64()), (Some(2), Some(1)), "{v2}");
}

#[tokio::test]
async fn two_nodes_sharing_a_database_and_a_bucket_serve_the_same_data() {
    let s3 = S3Server::start();
    s3.bucket("kho-cluster").await;
    let pg = TempPostgres::start();
    let mut env = s3.env("s3://kho-cluster");
    env.push(("KHO_DATABASE_URL", pg.database().await));
    let a = start(true, &env);
    let b = start(false, &env);

    let on_a = Client::signed_in(&a.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = on_a.post("/api/v1/datasets", dataset("chung-hai-nut", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&on_a, "chung-hai-nut", "bang-chinh", "ma_xa,so_luong\n03979,5\n".into()).await;

    // Published through node A, read through node B, with a session made on B.
    let on_b = Client::signed_in(&b.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let rows = on_b.get("/api/v1/datasets/chung-hai-nut/resources/bang-chinh/rows").await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text);
    assert_eq!(rows.body["records"][0]["so_luong"], 5, "{}", rows.text);
    let zip = on_b.get("/api/v1/datasets/chung-hai-nut/datapackage").await;
    assert_eq!(zip.status, StatusCode::OK);
    // And what node B publishes, node A serves.
    publish_csv(&on_b, "chung-hai-nut", "bang-chinh", "ma_xa,so_luong\n03979,6\n".into()).await;
    let rows = on_a.get("/api/v1/datasets/chung-hai-nut/resources/bang-chinh/rows").await;
    assert_eq!((rows.body["version"].as_i64(), &rows.body["records"][0]["so_luong"]), (Some(2), &serde_json::json!(6)));
    // Node B's search follows node A's catalog within seconds.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let found = on_b.get("/api/3/action/package_search?q=chung-hai-nut").await;
        if found.body["result"]["count"].as_i64() == Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "node B's search never found it: {}", found.text);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn two_nodes_publishing_one_table_at_once_make_two_versions_and_lose_nothing() {
    let s3 = S3Server::start();
    s3.bucket("kho-race").await;
    let pg = TempPostgres::start();
    let mut env = s3.env("s3://kho-race");
    env.push(("KHO_DATABASE_URL", pg.database().await));
    let a = start(true, &env);
    let b = start(false, &env);
    let on_a = Client::signed_in(&a.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let on_b = Client::signed_in(&b.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = on_a.post("/api/v1/datasets", dataset("dua-hai-nut", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Each node checks its own file; both are published at the same moment, appending rows.
    let (sa, ua) = upload_file(&on_a, "dua-hai-nut", "bang-chinh", b"ma_xa,so_luong\n03979,1\n".to_vec()).await;
    let (sb, ub) = upload_file(&on_b, "dua-hai-nut", "bang-chinh", b"ma_xa,so_luong\n03982,2\n".to_vec()).await;
    assert_eq!((sa, sb), (StatusCode::CREATED, StatusCode::CREATED), "{ua} {ub}");
    let body = serde_json::json!({"mode": "append"});
    let (path_a, path_b) = (
        format!("/api/v1/uploads/{}/publish", ua["id"].as_str().unwrap()),
        format!("/api/v1/uploads/{}/publish", ub["id"].as_str().unwrap()),
    );
    let (pa, pb) = tokio::join!(on_a.post(&path_a, body.clone()), on_b.post(&path_b, body.clone()));
    assert_eq!((pa.status, pb.status), (StatusCode::CREATED, StatusCode::CREATED), "{} / {}", pa.text, pb.text);
    let mut versions = [pa.body["version"].as_i64().unwrap(), pb.body["version"].as_i64().unwrap()];
    versions.sort();
    assert_eq!(versions, [1, 2], "one after the other, never both the same number");

    // Both versions are whole in the bucket: the first one's rows, then both files' rows.
    let path = "/api/v1/datasets/dua-hai-nut/resources/bang-chinh/versions";
    let first = on_b.get(&format!("{path}/1/data?format=csv")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    assert_eq!(first.text.lines().count(), 2, "{}", first.text);
    let second = on_a.get(&format!("{path}/2/data?format=csv")).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.text);
    let mut rows: Vec<&str> = second.text.lines().skip(1).collect();
    rows.sort();
    assert_eq!(rows, ["03979,1", "03982,2"], "{}", second.text);
    // And the audit log is still one chain.
    let verify = a.admin().await.get("/api/v1/audit/verify").await;
    assert_eq!(verify.status, StatusCode::OK, "{}", verify.text);
    assert_eq!(verify.body["broken_at"], serde_json::Value::Null, "{}", verify.text);
}

#[tokio::test]
async fn a_file_checked_on_one_node_is_reviewed_and_published_on_another() {
    let s3 = S3Server::start();
    s3.bucket("kho-handoff").await;
    let pg = TempPostgres::start();
    let mut env = s3.env("s3://kho-handoff");
    env.push(("KHO_DATABASE_URL", pg.database().await));
    let a = start(true, &env);
    let b = start(false, &env);
    let on_a = Client::signed_in(&a.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let on_b = Client::signed_in(&b.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = on_a.post("/api/v1/datasets", dataset("chuyen-nut", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&on_a, "chuyen-nut", "bang-chinh", "ma_xa,so_luong\n03979,1\n".into()).await;

    // Checked on A, with one bad row…
    let (status, u) =
        upload_file(&on_a, "chuyen-nut", "bang-chinh", b"ma_xa,so_luong\n03982,2\n03985,hai\n".to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    assert_eq!(u["invalid_rows"], 1, "{u}");
    let id = u["id"].as_str().unwrap();
    let staged = s3.keys("kho-handoff", &format!("uploads/{id}/")).await;
    assert!(staged.iter().any(|k| k.ends_with("/data.parquet")), "the checked rows are in the bucket: {staged:?}");

    // …its left-out rows and what it would change are seen on B, and B publishes it.
    let quarantine = on_b.get(&format!("/api/v1/uploads/{id}/quarantine")).await;
    assert_eq!(quarantine.status, StatusCode::OK, "{}", quarantine.text);
    assert!(quarantine.text.contains("hai"), "{}", quarantine.text);
    let changes = on_b.get(&format!("/api/v1/uploads/{id}/changes?mode=append")).await;
    assert_eq!(changes.status, StatusCode::OK, "{}", changes.text);
    assert_eq!(changes.body["added"], 1, "{}", changes.text);
    let published = on_b
        .post(&format!("/api/v1/uploads/{id}/publish"), serde_json::json!({"mode": "append", "skip_invalid": true}))
        .await;
    assert_eq!(published.status, StatusCode::CREATED, "{}", published.text);
    assert_eq!((published.body["version"].as_i64(), published.body["rows"].as_i64()), (Some(2), Some(2)));
    let csv = on_a.get("/api/v1/datasets/chuyen-nut/resources/bang-chinh/versions/2/data?format=csv").await;
    assert_eq!(csv.text, "ma_xa,so_luong\n03979,1\n03982,2\n", "{}", csv.text);
    // Once decided, the checked files leave the bucket.
    assert_eq!(s3.keys("kho-handoff", &format!("uploads/{id}/")).await, Vec::<String>::new());
}
