//! kho with its objects in an S3-compatible store (a real one: moto's S3 server, from PyPI):
//! `object_store_url` chooses it, versions are written to the bucket in parts and read back by
//! the query engine and the downloads; with the metadata in PostgreSQL too, two kho nodes that
//! share nothing but the database and the bucket serve the same data.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use kho_meta_postgres::testing::TempPostgres;
use reqwest::StatusCode;

/// An S3-compatible server on a free port, stopped when dropped.
struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server, an S3-compatible server (pip install 'moto[server]')");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the S3 server did not start within 30 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        S3Server { child, endpoint: format!("http://127.0.0.1:{port}") }
    }

    async fn bucket(&self, name: &str) {
        let r = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(r.status().is_success(), "creating the bucket: {}", r.status());
    }

    /// The keys in a bucket under a prefix.
    async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
        let xml = reqwest::get(url).await.unwrap().text().await.unwrap();
        xml.split("<Key>").skip(1).filter_map(|k| k.split("</Key>").next()).map(str::to_string).collect()
    }

    fn env(&self, url: &str) -> Vec<(&'static str, String)> {
        vec![
            ("KHO_OBJECT_STORE_URL", url.to_string()),
            ("KHO_S3_ENDPOINT", self.endpoint.clone()),
            ("KHO_S3_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "kho-test".into()),
            ("AWS_SECRET_ACCESS_KEY", "kho-test-secret".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
