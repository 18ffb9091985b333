//! The `kho` command itself: help, a second server on the same folder, users and tokens from
//! the command line, and audit verification catching a tampered log.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;

use common::*;
use reqwest::StatusCode;
use serde_json::json;

fn kho(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    kho_cli(data, args)
}

fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["demo", "load", "--help"],
        vec!["user", "--help"],
        vec!["user", "create", "--help"],
        vec!["user", "list", "--help"],
        vec!["user", "set-password", "--help"],
        vec!["token", "--help"],
        vec!["token", "create", "--help"],
        vec!["token", "revoke", "--help"],
        vec!["agency", "--help"],
        vec!["agency", "create", "--help"],
        vec!["audit", "--help"],
        vec!["audit", "verify", "--help"],
        vec!["config", "--help"],
    ] {
        let o = kho(dir.path(), &args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
        assert!(text(&o).contains("Usage:"), "{args:?}");
    }
    let o = kho(dir.path(), &["no-such-command"]);
    assert!(!o.status.success());
}

#[tokio::test]
async fn second_server_on_the_same_folder_is_refused() {
    let s = Server::start(true);
    let before = s.admin().await.get("/api/v1/datasets").await.body["total"].clone();
    let o = Command::new(kho_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(s.data_dir())
        .env("KHO_LOG", "warn")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let out = text(&o);
    assert!(out.contains("another kho server") && out.contains("already using the data folder"), "{out}");
    // The running server and its data are untouched.
    assert_eq!(s.admin().await.get("/api/v1/datasets").await.body["total"], before);
    assert_eq!(s.client().get("/health").await.status, StatusCode::OK);
}

#[tokio::test]
async fn users_and_tokens_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let o = kho(
        &data,
        &["user", "create", "--username", "nguyenvana", "--display-name", "Nguyễn Văn A", "--role", "viewer"],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("password: "), "a generated password is printed once");
    let generated = text(&o).split("password: ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    let o = kho(&data, &["user", "create", "--username", "nguyenvana", "--role", "viewer"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("username_taken"), "{}", text(&o));
    let o = kho(&data, &["user", "create", "--username", "x", "--role", "king"]);
    assert!(text(&o).contains("not a valid Role"), "{}", text(&o));
    let o = kho(&data, &["token", "create", "--user", "nguyenvana", "--name", "etl"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("password_change_required"), "the operator is told the token waits: {}", text(&o));
    let secret = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(secret.starts_with("kho_"));
    let o = kho(&data, &["agency", "create", "--code", "so-xay-dung", "--name", "Sở Xây dựng"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = kho(&data, &["agency", "list"]);
    assert!(text(&o).contains("Sở Xây dựng [so-xay-dung]"));
    let o = kho(&data, &["user", "list"]);
    assert!(text(&o).contains("nguyenvana"));

    let s = Server::start_in(dir, false, &[]);
    let c = Client::with_token(&s.base, &secret);
    // The password was set on the command line, so the token waits until its owner picks one.
    assert_eq!(c.get("/api/v1/me").await.code(), "password_change_required");
    let owner = Client::signed_in(&s.base, "nguyenvana", &generated).await;
    let r = owner
        .post("/api/v1/me/password", json!({"current_password": generated, "new_password": "mat-khau-cua-a-2026"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let me = c.get("/api/v1/me").await;
    assert_eq!((me.body["user"]["username"].as_str(), me.body["role"].as_str()), (Some("nguyenvana"), Some("viewer")));
    let id = s.admin().await.get("/api/v1/tokens").await.body[0]["id"].as_i64().unwrap();
    let o = kho(&s.data_dir(), &["token", "revoke", &id.to_string()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(c.get("/api/v1/me").await.code(), "token_revoked");
}

#[tokio::test]
async fn audit_verify_names_the_first_tampered_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // It edits the SQLite file behind kho's back (PostgreSQL refuses such edits itself).
    pin_embedded(&data);
    let o = kho(&data, &["demo", "load"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = kho(&data, &["audit", "verify"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("audit log intact"), "{}", text(&o));

    // The database refuses to change the log…
    let url = format!("sqlite://{}", db_path(&data).display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let refused = sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5").execute(&pool).await;
    assert!(refused.unwrap_err().to_string().contains("append-only"));
    // …but someone with the file can drop the guard; verification still catches it.
    sqlx::query("DROP TRIGGER audit_log_no_update").execute(&pool).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'mallory' WHERE seq = 5").execute(&pool).await.unwrap();
    pool.close().await;
    let o = kho(&data, &["audit", "verify"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("BROKEN at entry 5"), "{}", text(&o));
}

/// Ask until `done` holds (the server takes in changes made beside it every few seconds).
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if done().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not seen within 10 s");
}

#[tokio::test]
async fn changes_made_from_the_command_line_beside_a_running_server_reach_search_and_harvesters() {
    let s = Server::start(true);
    let anon = s.client();
    let before = anon.get("/api/3/action/package_search?rows=0").await.body["result"]["count"].as_i64().unwrap();
    let since = time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap();

    // A new agency, an open dataset it owns and a published table, all from the command line.
    let o = kho(&s.data_dir(), &["agency", "create", "--code", "so-xay-dung", "--name", "Sở Xây dựng"]);
    assert!(o.status.success(), "{}", text(&o));
    let mut d = dataset("cong-trinh-xay-dung", "open");
    d["owner_agency_code"] = "so-xay-dung".into();
    let file = s.data_dir().join("cong-trinh.json");
    std::fs::write(&file, d.to_string()).unwrap();
    let o = kho(&s.data_dir(), &["dataset", "create", "--file", file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let csv = s.data_dir().join("cong-trinh.csv");
    std::fs::write(&csv, "ma_xa,so_luong\n03646,5\n04000,7\n").unwrap();
    let o = kho(&s.data_dir(), &["import", csv.to_str().unwrap(), "--dataset", "cong-trinh-xay-dung"]);
    assert!(o.status.success(), "{}", text(&o));

    let search = "/api/3/action/package_search?q=cong+trinh+xay+dung";
    eventually("the published dataset in search", async || {
        let r = anon.get(search).await;
        r.body["result"]["count"] == 1 && r.body["result"]["results"][0]["resources"][0]["datastore_active"] == true
    })
    .await;
    let found = anon.get(search).await.body["result"]["results"][0].clone();
    assert_eq!(found["organization"]["title"], "Sở Xây dựng", "{found}");
    assert_eq!(found["resources"][0]["kho_rows"], 2, "{found}");
    // A harvester's incremental query finds it; the catalog grew by one.
    let fq = format!("/api/3/action/package_search?fq=metadata_modified:[{since}%20TO%20*]&sort=id+asc&rows=1000");
    let r = anon.get(&fq).await;
    let names: Vec<&str> =
        r.body["result"]["results"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(names.contains(&"cong-trinh-xay-dung"), "{}", r.text);
    let after = anon.get("/api/3/action/package_search?rows=0").await.body["result"]["count"].as_i64().unwrap();
    assert_eq!(after, before + 1);
    let ttl = anon.get("/catalog.ttl?q=cong+trinh+xay+dung").await;
    assert!(ttl.text.contains("Sở Xây dựng"), "{}", ttl.text);
}

/// The cluster deployment files in `deploy/` stay true: kho accepts the example configuration as
/// it is, and nginx the example balancer.
#[test]
fn the_deployment_examples_are_accepted_by_kho_and_nginx() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let out = std::process::Command::new(kho_bin())
        .arg("--config")
        .arg(deploy.join("kho.toml.example"))
        .arg("config")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("\"object_store_url\": \"s3://kho-son-la/prod\""), "{said}");
    assert!(said.contains("postgres://kho:***@"), "the password is not printed: {said}");

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("nginx.conf");
    let d = dir.path().display();
    std::fs::write(
        &conf,
        format!(
            "user root;\nerror_log {d}/error.log;\npid {d}/nginx.pid;\nevents {{}}\nhttp {{\n client_body_temp_path {d}/body;\n proxy_temp_path {d}/proxy;\n include {};\n}}\n",
            deploy.join("nginx-kho.conf").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new("nginx")
        .args(["-t", "-p"])
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .output()
        .expect("nginx (Debian: apt-get install nginx)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
