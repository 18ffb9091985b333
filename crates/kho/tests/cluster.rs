//! Several kho nodes behind nginx, sharing only PostgreSQL and a bucket, as a province runs them:
//! nginx sends each request to the next node in turn, and a steward working through the pages —
//! signing in, creating a dataset, uploading a file, reading its report, publishing it — and a
//! developer using the API never notice which node answered.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kho_meta_postgres::testing::TempPostgres;
use reqwest::StatusCode;

#[tokio::test]
async fn a_steward_and_a_developer_work_through_a_balancer_over_two_nodes() {
    let s3 = S3Server::start();
    s3.bucket("kho-lb").await;
    let pg = TempPostgres::start();
    let mut env = s3.env("s3://kho-lb");
    env.push(("KHO_DATABASE_URL", pg.database().await));
    env.push(("KHO_TRUST_PROXY", "true".into()));
    env.push(("KHO_TRUSTED_PROXIES", "127.0.0.2".into()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = Server::start_with(true, &env);
    let b = Server::start_with(false, &env);
    let lb = Nginx::start(&[&a.base, &b.base]);

    // Signing in: the form comes from one node, the answer from the other.
    let c = Client::new(&lb.base);
    let (_, html) = c.page("/sign-in").await;
    let r = c
        .form(
            "/sign-in",
            &[("_csrf", &csrf_of(&html)), ("username", "taichinh.canbo"), ("password", "demo-taichinh-canbo")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());

    // A new dataset with a table, through the pages.
    let (status, html) = c.page("/datasets/new").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let csrf = csrf_of(&html);
    let api = Client::signed_in(&lb.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = api.post("/api/v1/datasets", dataset("qua-can-bang", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Upload, report, publish: three requests, never all on one node.
    let (status, html) = c.page("/datasets/qua-can-bang/resources/bang-chinh/upload").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let form = reqwest::multipart::Form::new().text("_csrf", csrf.clone()).part(
        "file",
        reqwest::multipart::Part::bytes(b"ma_xa,so_luong\n03979,4\n03982,6\n".to_vec())
            .file_name("so-lieu.csv")
            .mime_str("text/csv")
            .unwrap(),
    );
    let r = c
        .http
        .post(format!("{}/datasets/qua-can-bang/resources/bang-chinh/upload", lb.base))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    let report = r.headers()["location"].to_str().unwrap().to_string();
    let (status, html) = c.page(&report).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Tất cả các dòng đều hợp lệ"), "{html}");
    let r = c.form(&report, &[("_csrf", &csrf), ("action", "publish")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap());
    for _ in 0..4 {
        let (status, html) = c.page("/datasets/qua-can-bang").await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("/versions/1/data?format=csv"), "every node shows the version: {html}");
    }

    // The developer's API calls, on any node: rows, a download, the CKAN answer.
    for _ in 0..4 {
        let rows = api.get("/api/v1/datasets/qua-can-bang/resources/bang-chinh/rows?sort=-so_luong").await;
        assert_eq!((rows.status, &rows.body["records"][0]["so_luong"]), (StatusCode::OK, &serde_json::json!(6)));
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut found_on = 0;
    while found_on < 4 {
        let r = api.get("/api/3/action/package_search?q=qua-can-bang").await;
        if r.body["result"]["count"] == 1 {
            found_on += 1;
        } else {
            found_on = 0;
            assert!(Instant::now() < deadline, "a node's search never caught up: {}", r.text);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Signing out through one node ends the session on both.
    let r = c.form("/sign-out", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for _ in 0..2 {
        let (status, _) = c.page("/datasets/qua-can-bang/resources/bang-chinh/upload").await;
        assert_ne!(status, StatusCode::OK, "signed out on every node");
    }

    // And both nodes did answer.
    let log = lb.log();
    for node in [&a.base, &b.base] {
        let addr = node.trim_start_matches("http://");
        assert!(log.iter().filter(|l| l.ends_with(addr)).count() > 5, "{addr} answered too: {log:#?}");
    }
}

#[tokio::test]
async fn while_the_database_is_down_a_node_says_so_and_it_recovers_by_itself() {
    let mut pg = TempPostgres::start();
    let url = pg.database().await;
    let node = Server::start_with(true, &[("KHO_DATABASE_URL", url.as_str())]);
    let steward = Client::signed_in(&node.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let health = reqwest::get(node.url("/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);

    pg.stop();
    // The balancer's health check takes the node out, and its operator reads why.
    let health = reqwest::get(node.url("/health")).await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = health.json().await.unwrap();
    assert_eq!(body["reason"], "the metadata database does not answer", "{body}");
    // A developer is told to retry, not that kho broke.
    let r = steward.get("/api/v1/datasets?mine=true").await;
    assert_eq!((r.status, r.code()), (StatusCode::SERVICE_UNAVAILABLE, "unavailable"), "{}", r.text);
    assert!(r.text.contains("retry"), "{}", r.text);
    // A steward reads it in Vietnamese.
    let (status, html) = steward.page("/account").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{html}");
    assert!(html.contains("tạm thời không trả lời"), "{html}");

    // Back up: the node serves again, the session still valid, without a restart.
    pg.start_again();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reqwest::get(node.url("/health")).await.unwrap().status() != StatusCode::OK {
        assert!(Instant::now() < deadline, "the node did not recover within 30 s of the database");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = steward.get("/api/v1/datasets?mine=true").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

/// The suite runs twice, on the embedded backends and on PostgreSQL + S3
/// (`KHO_TEST_BACKENDS=postgres+s3`): each run really is on the backends it says.
#[tokio::test]
async fn the_integration_tests_run_on_the_backends_they_were_asked_for() {
    let s = Server::start(false);
    let said = s.stdout.join("");
    if on_cluster_backends() {
        assert!(said.contains("metadata: PostgreSQL") && said.contains("objects: s3://kho-tests/node-"), "{said}");
    } else {
        assert!(said.contains("metadata: SQLite") && !said.contains("objects: s3://"), "{said}");
    }
    let embedded = Server::embedded(false);
    assert!(embedded.stdout.join("").contains("metadata: SQLite"), "{:?}", embedded.stdout);
}

#[tokio::test]
async fn a_node_killed_while_publishing_loses_nothing_and_the_other_serves_on() {
    let s3 = S3Server::start();
    s3.bucket("kho-kill").await;
    let pg = TempPostgres::start();
    let mut env = s3.env("s3://kho-kill");
    env.push(("KHO_DATABASE_URL", pg.database().await));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut a = Server::start_with(true, &env);
    let b = Server::start_with(false, &env);
    let on_a = Client::signed_in(&a.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    // A table without a key, and a file long enough that publishing it takes a moment; whenever
    // the kill lands (before, during or after the publish's commit), nothing is lost.
    let mut d = dataset("bi-ngat", "open");
    d["resources"][0]["schema"].as_object_mut().unwrap().remove("primaryKey");
    let r = on_a.post("/api/v1/datasets", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    const ROWS: usize = 200_000;
    let communes = ["03979", "03982"];
    let mut csv = String::from("ma_xa,so_luong\n");
    for i in 0..ROWS {
        csv.push_str(&format!("{},{}\n", communes[i % 2], i % 1000));
    }
    let (status, u) = upload_file(&on_a, "bi-ngat", "bang-chinh", csv.into_bytes()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().unwrap().to_string();

    // Node A dies (kill -9) as it publishes.
    let publishing = {
        let on_a = Client::signed_in(&a.base, "taichinh.canbo", "demo-taichinh-canbo").await;
        let id = id.clone();
        tokio::spawn(async move { on_a.post(&format!("/api/v1/uploads/{id}/publish"), serde_json::json!({})).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let _ = publishing.await;

    // Node B serves on: the upload was published whole, or not at all and B publishes it (the
    // dead node's lease on the table ended with its connection).
    let on_b = Client::signed_in(&b.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let upload = on_b.get(&format!("/api/v1/uploads/{id}")).await;
    if upload.body["status"] == "checked" {
        let r = on_b.post(&format!("/api/v1/uploads/{id}/publish"), serde_json::json!({})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    } else {
        assert_eq!(upload.body["status"], "published", "{}", upload.text);
    }
    let versions = on_b.get("/api/v1/datasets/bi-ngat/resources/bang-chinh/versions").await;
    assert_eq!(versions.body.as_array().map(Vec::len), Some(1), "{}", versions.text);
    let rows = on_b.get("/api/v1/datasets/bi-ngat/resources/bang-chinh/rows").await;
    assert_eq!((rows.status, rows.body["total"].as_i64()), (StatusCode::OK, Some(ROWS as i64)), "{}", rows.text);
    let verify = Client::signed_in(&b.base, "admin", ADMIN_PASSWORD).await.get("/api/v1/audit/verify").await;
    assert_eq!(verify.body["broken_at"], serde_json::Value::Null, "{}", verify.text);
}
