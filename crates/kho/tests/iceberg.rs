//! kho's warehouse read through its Iceberg REST catalog by the real PyIceberg client (PyPI
//! `pyiceberg[pyarrow]`): namespaces, tables, the latest rows, time travel to an earlier
//! version, the caller's rights, a read-only catalog; with the objects in the local folder and
//! in an S3-compatible bucket.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What PyIceberg sees of the catalog at `base`, as JSON: the namespaces, the tables of
/// `namespace`, and for `table` every snapshot with its rows (sorted), or the error it met.
fn pyiceberg(base: &str, token: Option<&str>, namespace: &str, table: &str, s3: Option<&S3Server>) -> Value {
    let script = r#"
import json, sys
from pyiceberg.catalog.rest import RestCatalog
base, token, ns, table, endpoint = sys.argv[1:6]
props = {"uri": base + "/iceberg"}
if token:
    props["token"] = token
if endpoint:
    props.update({"s3.endpoint": endpoint, "s3.access-key-id": "kho-test",
                  "s3.secret-access-key": "kho-test-secret", "s3.region": "us-east-1"})
cat = RestCatalog("kho", **props)
out = {"namespaces": [list(n) for n in cat.list_namespaces()]}
try:
    out["tables"] = [t[-1] for t in cat.list_tables(ns)]
    t = cat.load_table((ns, table))
    out["current"] = t.metadata.current_snapshot_id
    out["snapshots"] = {}
    for s in t.metadata.snapshots:
        rows = t.scan(snapshot_id=s.snapshot_id).to_arrow().to_pylist()
        out["snapshots"][str(s.snapshot_id)] = sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))
    out["columns"] = [f.name for f in t.schema().fields]
except Exception as e:
    out["error"] = type(e).__name__ + ": " + str(e)
print(json.dumps(out, default=str))
"#;
    let endpoint = s3.map(|s| s.endpoint.clone()).unwrap_or_default();
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args([base, token.unwrap_or(""), namespace, table, &endpoint])
        .output()
        .expect("python3 with pyiceberg (pip install 'pyiceberg[pyarrow]')");
    assert!(out.status.success(), "pyiceberg failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A dataset with a table published twice, the second time with one more row.
async fn two_versions(s: &Server, slug: &str, level: &str) -> Client {
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset(slug, level)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    publish_csv(&steward, slug, "bang-chinh", "ma_xa,so_luong\n03979,12\n".into()).await;
    publish_csv(&steward, slug, "bang-chinh", "ma_xa,so_luong\n03979,12\n03982,7\n".into()).await;
    steward
}

fn read_both_versions(seen: &Value) {
    assert_eq!(seen["error"], Value::Null, "{seen}");
    assert_eq!(seen["tables"], json!(["bang-chinh"]), "{seen}");
    assert_eq!(seen["current"], 2, "{seen}");
    assert_eq!(seen["columns"], json!(["ma_xa", "so_luong"]), "{seen}");
    assert_eq!(seen["snapshots"]["1"], json!([{"ma_xa": "03979", "so_luong": 12}]), "{seen}");
    assert_eq!(
        seen["snapshots"]["2"],
        json!([{"ma_xa": "03979", "so_luong": 12}, {"ma_xa": "03982", "so_luong": 7}]),
        "{seen}"
    );
}

#[tokio::test]
async fn pyiceberg_reads_every_version_through_the_catalog_with_the_callers_rights() {
    // The objects in the local folder, which PyIceberg reads itself (the bucket: below).
    let s = Server::embedded(true);
    let steward = two_versions(&s, "iceberg-mo", "open").await;
    two_versions(&s, "iceberg-chung", "shared").await;

    // Anyone reads open data, at each version.
    let seen = pyiceberg(&s.base, None, "iceberg-mo", "bang-chinh", None);
    assert!(seen["namespaces"].as_array().unwrap().contains(&json!(["iceberg-mo"])), "{seen}");
    assert!(!seen["namespaces"].as_array().unwrap().contains(&json!(["iceberg-chung"])), "{seen}");
    read_both_versions(&seen);

    // Shared data needs a token of an agency that may read it.
    let seen = pyiceberg(&s.base, None, "iceberg-chung", "bang-chinh", None);
    assert!(seen["error"].as_str().unwrap().starts_with("NoSuchNamespaceError"), "{seen}");
    let token = steward.post("/api/v1/tokens", json!({"name": "iceberg", "role": "viewer"})).await;
    let secret = token.body["secret"].as_str().unwrap().to_string();
    let seen = pyiceberg(&s.base, Some(&secret), "iceberg-chung", "bang-chinh", None);
    read_both_versions(&seen);

    // Read-only, in the catalog's own error shape.
    let r = reqwest::Client::new()
        .post(s.url("/iceberg/v1/namespaces"))
        .bearer_auth(&secret)
        .json(&json!({"namespace": ["moi"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "ForbiddenException", "{body}");
    // An Iceberg reader reads the stored files whole: a table whose personal fields would be
    // masked for the caller is refused, unless the caller declares a purpose (recorded).
    let yte = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut d = dataset("iceberg-ca-nhan", "shared");
    d["resources"][0]["schema"]["fields"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "so_cccd", "title": "Số CCCD", "dictionaryTerm": "cccd"}));
    assert_eq!(yte.post("/api/v1/datasets", d).await.status, StatusCode::CREATED);
    publish_csv(&yte, "iceberg-ca-nhan", "bang-chinh", "ma_xa,so_luong,so_cccd\n03979,1,001099012345\n".into()).await;
    let path = "/iceberg/v1/namespaces/iceberg-ca-nhan/tables/bang-chinh";
    let reader = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    let refused = reader.get(path).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text);
    assert_eq!(refused.body["error"]["type"], "ForbiddenException", "{}", refused.text);
    assert!(refused.text.contains("rows API"), "{}", refused.text);
    assert_eq!(yte.get(path).await.status, StatusCode::OK, "the owning agency reads it");
    let purpose: String = form_urlencoded::byte_serialize("Đối soát hồ sơ trợ cấp 2026".as_bytes()).collect();
    let with_purpose = reader.send(reqwest::Method::GET, path, None, &[("X-Kho-Purpose", &purpose)]).await;
    assert_eq!(with_purpose.status, StatusCode::OK, "{}", with_purpose.text);

    let missing = reqwest::get(s.url("/iceberg/v1/namespaces/iceberg-mo/tables/khong-co")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"]["type"], "NoSuchTableException", "{body}");
}

#[tokio::test]
async fn pyiceberg_reads_the_versions_from_the_bucket() {
    let s3 = S3Server::start();
    s3.bucket("kho-iceberg").await;
    let env = s3.env("s3://kho-iceberg/son-la");
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let s = Server::start_with(true, &env);
    two_versions(&s, "iceberg-s3", "open").await;
    let seen = pyiceberg(&s.base, None, "iceberg-s3", "bang-chinh", Some(&s3));
    read_both_versions(&seen);
    let keys = s3.keys("kho-iceberg", "son-la/iceberg/").await;
    assert!(keys.iter().any(|k| k.ends_with("v2.metadata.json")), "{keys:?}");
}
