//! kho on PostgreSQL, through the real server: `database_url` chooses the backend, and the
//! steward's whole path (sign in, describe a dataset, upload, publish, query, download) works on
//! it as on the embedded SQLite file; sessions made on one node are honoured by another node on
//! the same database; the audit chain verifies.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::OnceLock;

use common::*;
use kho_meta_postgres::testing::TempPostgres;
use reqwest::{Method, StatusCode};
use serde_json::json;

fn server() -> &'static TempPostgres {
    static SERVER: OnceLock<TempPostgres> = OnceLock::new();
    SERVER.get_or_init(TempPostgres::start)
}

#[tokio::test]
async fn a_steward_publishes_and_queries_with_the_metadata_in_postgres() {
    let url = server().database().await;
    let s = Server::start_with(true, &[("KHO_DATABASE_URL", &url)]);
    let said = s.stdout.join("");
    assert!(said.contains("metadata: PostgreSQL 127.0.0.1:"), "{said}");
    assert!(!s.data_dir().join("kho.db").exists(), "no SQLite file when the metadata is in PostgreSQL");

    // The demo loaded through the service: its datasets are listed and searchable.
    let visitor = s.client();
    let listed = visitor.get("/api/3/action/package_search?rows=5").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
    assert!(listed.body["result"]["count"].as_i64().unwrap() > 0, "{}", listed.text);

    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("so-lieu-xa", "shared")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let v = publish_csv(&steward, "so-lieu-xa", "bang-chinh", "ma_xa,so_luong\n03979,12\n03982,7\n".into()).await;
    assert_eq!(v["version"], 1, "{v}");
    let v = publish_csv(&steward, "so-lieu-xa", "bang-chinh", "ma_xa,so_luong\n03979,13\n03982,7\n".into()).await;
    assert_eq!((v["version"].as_i64(), v["rows_changed"].as_i64()), (Some(2), Some(1)), "{v}");

    let rows = steward.get("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/rows?sort=ma_xa").await;
    assert_eq!(rows.status, StatusCode::OK, "{}", rows.text);
    assert_eq!(rows.body["records"][0]["so_luong"], 13, "{}", rows.text);
    let old = steward.get("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/versions/1/data?format=csv").await;
    assert_eq!(old.text, "ma_xa,so_luong\n03979,12\n03982,7\n");

    // A second writer holding an old revision loses.
    let revision = steward.get("/api/v1/datasets/so-lieu-xa").await.body["revision"].to_string();
    let etag = format!("\"{revision}\"");
    let mut edit = dataset("so-lieu-xa", "shared");
    edit.as_object_mut().unwrap().remove("resources");
    edit["title"] = json!("Số liệu xã (sửa)");
    let first =
        steward.send(Method::PUT, "/api/v1/datasets/so-lieu-xa", Some(edit.clone()), &[("If-Match", &etag)]).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    edit["title"] = json!("Ghi đè");
    let second = steward.send(Method::PUT, "/api/v1/datasets/so-lieu-xa", Some(edit), &[("If-Match", &etag)]).await;
    assert_eq!((second.status, second.code()), (StatusCode::CONFLICT, "conflict"), "{}", second.text);

    // The audit chain, kept in PostgreSQL, verifies from the command line too.
    let out = std::process::Command::new(kho_bin())
        .args(["audit", "verify", "--data-dir"])
        .arg(s.data_dir())
        .env("KHO_DATABASE_URL", &url)
        .env("KHO_LOG", "warn")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("verified"), "{said}{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn a_session_made_on_one_node_is_honoured_by_another() {
    let url = server().database().await;
    let env = [("KHO_DATABASE_URL", url.as_str())];
    let a = Server::start_with(false, &env);
    let b = Server::start_with(false, &env);
    // Signed in on node A; the browser's cookie and CSRF token, sent as they are to either node.
    let signed = a.client().sign_in("admin", ADMIN_PASSWORD).await;
    assert_eq!(signed.status, StatusCode::OK, "{}", signed.text);
    let cookie = signed.headers[reqwest::header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    let csrf = signed.body["csrf_token"].as_str().unwrap().to_string();
    let http = reqwest::Client::new();
    let me = |base: String| {
        let (http, cookie) = (http.clone(), cookie.clone());
        async move {
            let r = http.get(format!("{base}/api/v1/me")).header("Cookie", cookie).send().await.unwrap();
            r.json::<serde_json::Value>().await.unwrap()["user"]["username"].as_str().map(str::to_string)
        }
    };
    assert_eq!(me(b.base.clone()).await.as_deref(), Some("admin"), "node B knows node A's session");

    // A change made through node B, with the session and CSRF token from node A, is seen on A.
    let created = http
        .post(format!("{}/api/v1/datasets", b.base))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .json(&dataset("tao-o-nut-b", "shared"))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text().await.unwrap());
    let seen = http.get(format!("{}/api/v1/datasets/tao-o-nut-b", a.base)).header("Cookie", &cookie).send().await;
    assert_eq!(seen.unwrap().status(), StatusCode::OK);

    // Signing out on node B ends the session on node A too.
    let out = http
        .post(format!("{}/api/v1/auth/sign-out", b.base))
        .header("Cookie", &cookie)
        .header("X-CSRF-Token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_success(), "{}", out.status());
    assert_eq!(me(a.base.clone()).await, None, "the session ended on node A");
}
