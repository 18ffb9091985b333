//! Loading data: upload, report, quarantine, publish immutable versions, history with diffs,
//! downloads; concurrency and interrupted publishes.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn raw(
    c: &Client,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (StatusCode, Vec<u8>, reqwest::header::HeaderMap) {
    let mut req = c.http.request(method, format!("{}{}", c.base, path));
    if let Some(t) = &c.token {
        req = req.bearer_auth(t);
    }
    if let Some(x) = &c.csrf {
        req = req.header("X-CSRF-Token", x);
    }
    if let Some(b) = body {
        req = req.header("content-type", "text/csv").body(b);
    }
    let r = req.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, r.bytes().await.unwrap().to_vec(), headers)
}

async fn upload(c: &Client, csv: &str) -> Value {
    let (status, body, _) = raw(
        c,
        reqwest::Method::POST,
        "/api/v1/datasets/co-so-y-te/resources/co-so/uploads?file_name=co-so.csv",
        Some(csv.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).unwrap()
}

const HEADER: &str = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n";

#[tokio::test]
async fn upload_check_quarantine_publish_and_history() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let v1 = format!(
        "{HEADER}BV01,Bệnh viện tỉnh,03979,500,02123852345\nBV02,Bệnh viện Mai Sơn,04045,120,0912345678\nTYT03,Trạm y tế,00001,5,0912345679\nTYT04,Trạm y tế Chiềng Cơi,03979,x,0912345670\n"
    );
    let u = upload(&steward, &v1).await;
    assert_eq!(
        (u["status"].as_str(), u["rows"].as_i64(), u["valid_rows"].as_i64(), u["invalid_rows"].as_i64()),
        (Some("checked"), Some(4), Some(2), Some(2))
    );
    assert_eq!(u["report"]["by_rule"], json!([{"rule": "abolished_code", "count": 1}, {"rule": "type", "count": 1}]));
    let id = u["id"].as_str().unwrap().to_string();

    // With invalid rows, publishing everything is refused; the quarantine says why each row failed.
    let r = steward.post(&format!("/api/v1/uploads/{id}/publish"), json!({})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"));
    assert_eq!(r.body["details"][0]["path"], "skip_invalid");
    let (status, q, _) = raw(&steward, reqwest::Method::GET, &format!("/api/v1/uploads/{id}/quarantine"), None).await;
    assert_eq!(status, StatusCode::OK);
    let q = String::from_utf8(q).unwrap();
    assert_eq!(q.lines().count(), 3);
    assert!(q.starts_with("ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai,loi\n"));
    assert!(q.contains("TYT03,Trạm y tế,00001,5,0912345679,ma_xa: mã xã '00001' đã bị bãi bỏ"), "{q}");

    // The report downloads as XLSX too, Vietnamese messages and values kept as text.
    let (status, x, headers) =
        raw(&steward, reqwest::Method::GET, &format!("/api/v1/uploads/{id}/report?format=xlsx"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-disposition"].to_str().unwrap().contains("bao-cao-kiem-tra.xlsx"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(x)).unwrap();
    let mut strings = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("xl/sharedStrings.xml").unwrap(), &mut strings).unwrap();
    assert!(strings.contains("đã bị bãi bỏ") && strings.contains("00001") && strings.contains("abolished_code"));
    let (status, _, _) =
        raw(&steward, reqwest::Method::GET, &format!("/api/v1/uploads/{id}/report?format=pdf"), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Nothing is published yet.
    assert_eq!(steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await.body, json!([]));
    let r = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions/latest/data").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let r = steward.post(&format!("/api/v1/uploads/{id}/publish"), json!({"skip_invalid": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (r.body["version"].as_i64(), r.body["rows"].as_i64(), r.body["quarantined_rows"].as_i64()),
        (Some(1), Some(2), Some(2))
    );
    assert_eq!(
        (r.body["rows_added"].as_i64(), r.body["rows_removed"].as_i64(), r.body["rows_changed"].as_i64()),
        (Some(2), Some(0), Some(0))
    );
    assert_eq!(r.body["schema_hash"].as_str().unwrap().len(), 64);
    let again = steward.post(&format!("/api/v1/uploads/{id}/publish"), json!({"skip_invalid": true})).await;
    assert_eq!((again.status, again.code()), (StatusCode::CONFLICT, "conflict"));

    // The fixed file becomes version 2: one row changed, one added, one gone.
    let v2 = format!(
        "{HEADER}BV01,Bệnh viện tỉnh,03979,550,02123852345\nTYT03,Trạm y tế,00097,5,0912345679\nTYT04,Trạm y tế Chiềng Cơi,03979,8,0912345670\n"
    );
    let u2 = upload(&steward, &v2).await;
    assert_eq!(u2["invalid_rows"], 0);
    // It is the whole table: a row not in it goes, which the steward confirms.
    let publish_v2 = format!("/api/v1/uploads/{}/publish", u2["id"].as_str().unwrap());
    let r = steward.post(&publish_v2, json!({"confirm_removal": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (
            r.body["version"].as_i64(),
            r.body["rows_added"].as_i64(),
            r.body["rows_removed"].as_i64(),
            r.body["rows_changed"].as_i64()
        ),
        (Some(2), Some(2), Some(1), Some(1))
    );

    let history = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await;
    let versions: Vec<i64> = history.body.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(versions, vec![2, 1]);
    assert!(history.body[0]["published_by"].as_str().unwrap().contains("yte.canbo"));

    // Any version can be downloaded: Parquet as stored, or CSV.
    let (status, parquet, headers) =
        raw(&steward, reqwest::Method::GET, "/api/v1/datasets/co-so-y-te/resources/co-so/versions/1/data", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&parquet[..4], b"PAR1");
    assert_eq!(headers["content-type"], "application/vnd.apache.parquet");
    let (_, csv, _) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/1/data?format=csv",
        None,
    )
    .await;
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        format!("{HEADER}BV01,Bệnh viện tỉnh,03979,500,02123852345\nBV02,Bệnh viện Mai Sơn,04045,120,0912345678\n")
    );
    let (_, csv, _) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/latest/data?format=csv",
        None,
    )
    .await;
    assert_eq!(String::from_utf8(csv).unwrap(), v2);
    // JSON, JSON lines and Excel too.
    let (_, body, headers) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/2/data?format=json",
        None,
    )
    .await;
    assert_eq!(headers["content-type"], "application/json");
    let rows: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (rows.as_array().unwrap().len(), &rows[0]["ma_co_so"], &rows[0]["so_giuong"]),
        (3, &json!("BV01"), &json!(550))
    );
    let (_, body, _) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/2/data?format=ndjson",
        None,
    )
    .await;
    assert_eq!(String::from_utf8(body).unwrap().lines().count(), 3);
    let (status, body, headers) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/2/data?format=xlsx",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["content-type"].to_str().unwrap().contains("spreadsheetml"));
    assert_eq!(&body[..2], b"PK");
    // The workbook passes the table's checks again (a steward's round trip through Excel).
    let (status, report, _) =
        raw(&steward, reqwest::Method::POST, "/api/v1/datasets/co-so-y-te/resources/co-so/validate", Some(body)).await;
    assert_eq!(status, StatusCode::OK);
    let report: Value = serde_json::from_slice(&report).unwrap();
    assert_eq!((report["rows"].as_u64(), report["problems_total"].as_u64()), (Some(3), Some(0)), "{report}");
    let (status, q, _) =
        raw(&steward, reqwest::Method::GET, "/api/v1/datasets/co-so-y-te/resources/co-so/versions/1/quarantine", None)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(String::from_utf8(q).unwrap().lines().count(), 3);

    // Readers of the (shared) dataset read versions; anonymous visitors do not see it at all;
    // other agencies' stewards cannot load data into it, nor see its quarantine.
    let viewer = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    assert_eq!(viewer.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions/2").await.body["rows"], 3);
    let (status, _, _) =
        raw(&viewer, reqwest::Method::GET, "/api/v1/datasets/co-so-y-te/resources/co-so/versions/1/quarantine", None)
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        s.client().get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await.status,
        StatusCode::NOT_FOUND
    );
    let other = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let (status, _, _) = raw(
        &other,
        reqwest::Method::POST,
        "/api/v1/datasets/co-so-y-te/resources/co-so/uploads",
        Some(v2.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Rejecting an upload: it can no longer be published.
    let u3 = upload(&steward, &v2).await;
    let id3 = u3["id"].as_str().unwrap();
    assert_eq!(steward.post(&format!("/api/v1/uploads/{id3}/reject"), json!({})).await.body["status"], "rejected");
    assert_eq!(steward.post(&format!("/api/v1/uploads/{id3}/publish"), json!({})).await.code(), "conflict");

    // A file whose columns do not match cannot be published.
    let u4 = upload(&steward, "ma_co_so,ten\nBV9,x\n").await;
    let r = steward
        .post(&format!("/api/v1/uploads/{}/publish", u4["id"].as_str().unwrap()), json!({"skip_invalid": true}))
        .await;
    assert_eq!(r.code(), "validation_failed");
    assert!(r.body["details"][0]["message"].as_str().unwrap().contains("columns do not match"));

    // Reads of the non-open data were audited.
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let audit = admin.get("/api/v1/audit?action=version.read&limit=100").await;
    assert!(audit.body.as_array().unwrap().iter().any(|e| e["actor"].as_str().unwrap().contains("congthuong.xem")));
    let published = admin.get("/api/v1/audit?action=version.publish&limit=500").await;
    let by_steward = published
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().unwrap().contains("yte.canbo"))
        .count();
    assert_eq!(by_steward, 2);
}

#[tokio::test]
async fn concurrent_publishes_get_distinct_versions() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        let u = upload(&steward, &format!("{HEADER}BV{i},Bệnh viện {i},03979,{i},0912345678\n")).await;
        ids.push(u["id"].as_str().unwrap().to_string());
    }
    let paths: Vec<String> = ids.iter().map(|id| format!("/api/v1/uploads/{id}/publish")).collect();
    let posts = paths.iter().map(|p| steward.post(p, json!({"confirm_removal": true})));
    let results = futures_join_all(posts).await;
    let mut versions: Vec<i64> = results
        .iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
            r.body["version"].as_i64().unwrap()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, vec![1, 2, 3, 4]);
    let history = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await;
    assert_eq!(history.body.as_array().unwrap().len(), 4);
}

async fn futures_join_all<F: std::future::Future<Output = Resp>>(futs: impl Iterator<Item = F>) -> Vec<Resp> {
    let handles: Vec<_> = futs.collect();
    let mut out = Vec::new();
    // Drive them concurrently on this task.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<Resp>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(r) => done[i] = Some(r),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    for d in done {
        out.push(d.unwrap());
    }
    out
}

#[tokio::test]
async fn objects_of_an_interrupted_publish_are_removed_at_start() {
    // It leaves files in the objects folder as a killed publish would.
    let s = Server::embedded(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let u = upload(&steward, &format!("{HEADER}BV1,Bệnh viện,03979,1,0912345678\n")).await;
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let key = r.body["object_key"].as_str().unwrap().to_string();
    // What a publish killed between writing its objects and committing looks like: a v2
    // folder no version row points to.
    let objects = s.data_dir().join("objects");
    let orphan = objects.join(key.replace("/v1/", "/v2/"));
    std::fs::create_dir_all(orphan.parent().unwrap()).unwrap();
    std::fs::write(&orphan, b"partial").unwrap();
    let dir = s.stop();
    let s = Server::start_in(dir, false, &[]);
    assert!(
        s.stdout.iter().any(|l| l.contains("removed 1 object(s) left by an interrupted publish")),
        "{:?}",
        s.stdout
    );
    assert!(!orphan.exists());
    assert!(objects.join(&key).exists());
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let history = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await;
    assert_eq!(history.body.as_array().unwrap().len(), 1);
    let (status, body, _) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/latest/data?format=csv",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(body).unwrap().contains("BV1,Bệnh viện,03979,1,0912345678"));
}

#[test]
fn kho_import_loads_a_file_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| kho_cli(&data, args);
    assert!(run(&["demo", "load"]).status.success());
    let file = dir.path().join("co-so.csv");
    std::fs::write(&file, format!("{HEADER}BV1,Bệnh viện,03979,10,0912345678\nBV2,Sai,00001,1,0912345678\n")).unwrap();
    let o = run(&["import", file.to_str().unwrap(), "--dataset", "co-so-y-te"]);
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stdout));
    assert!(String::from_utf8_lossy(&o.stdout).contains("not published"));
    let o = run(&["import", file.to_str().unwrap(), "--dataset", "co-so-y-te", "--skip-invalid"]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("published version 1 of co-so-y-te/co-so: 1 rows (1 added, 0 removed, 0 changed; 1 quarantined)")
    );
}

/// A stored version is plain Parquet: DuckDB (the PyPI package) reads the object file directly
/// and finds the same rows and column sums as kho's own CSV download.
#[tokio::test]
async fn duckdb_reads_a_stored_version() {
    // DuckDB reads the version's file in the objects folder.
    let s = Server::embedded(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut csv = String::from(HEADER);
    for i in 0..500 {
        csv.push_str(&format!("BV{i:04},Cơ sở {i},03979,{},0912345678\n", i * 3 % 97));
    }
    let u = upload(&steward, &csv).await;
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({})).await;
    let object = s.data_dir().join("objects").join(r.body["object_key"].as_str().unwrap());
    let (_, body, _) = raw(
        &steward,
        reqwest::Method::GET,
        "/api/v1/datasets/co-so-y-te/resources/co-so/versions/latest/data?format=csv",
        None,
    )
    .await;
    let text = String::from_utf8(body).unwrap();
    let lines: Vec<&str> = text.lines().skip(1).collect();
    let sum: i64 = lines.iter().map(|l| l.split(',').nth(3).unwrap().parse::<i64>().unwrap()).sum();
    let got = duckdb(&format!(
        "select count(*), sum(so_giuong), count(distinct ma_co_so), typeof(any_value(so_giuong)) from read_parquet('{}')",
        object.display()
    ));
    assert_eq!(got, json!([lines.len(), sum, 500, "BIGINT"]));
}

#[tokio::test]
async fn quality_scores_follow_the_data_and_the_calendar() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    // 4 rows: one with an invalid cell, one with a variant spelling, one repeated key.
    let csv = format!(
        "{HEADER}BV1,Bệnh viện Tỉnh,03979,10,0912345678\nBV2,BỆNH VIỆN TỈNH,03979,12,0912345678\nBV3,Trạm,03979,x,0912345678\nBV1,Khác,03979,11,0912345678\n"
    );
    let u = upload(&steward, &csv).await;
    let r = steward
        .post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({"skip_invalid": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let q = steward.get("/api/v1/datasets/co-so-y-te/quality").await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    let scores = &q.body["resources"][0]["scores"];
    // 20 cells checked, 2 invalid (the bad number and the repeated key).
    assert_eq!(scores["dung"]["score"], 90.0, "{scores}");
    assert_eq!(scores["dung"]["evidence_en"], "18 of 20 cells valid");
    assert_eq!(scores["du"]["score"], 100.0);
    assert!(scores["sach"]["score"].as_f64().unwrap() < 100.0);
    assert!(scores["sach"]["evidence_vi"].as_str().unwrap().contains("1 nhóm viết không thống nhất"), "{scores}");
    assert_eq!((scores["song"]["score"].as_f64(), scores["overdue"].as_bool()), (Some(100.0), Some(false)));
    // A dataset with nothing published is a draft: not late, and not ranked.
    let empty = steward.get("/api/v1/datasets/co-so-luu-tru-du-lich/quality").await;
    assert_eq!((empty.body["draft"].as_bool(), empty.body["overdue"].as_bool()), (Some(true), Some(false)));
    // The overview ranks datasets worst first, drafts after them, and averages per agency
    // over the published ones.
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let o = admin.get("/api/v1/quality").await;
    let datasets = o.body["datasets"].as_array().unwrap();
    let drafts = datasets.iter().position(|d| d["draft"] == true).unwrap_or(datasets.len());
    assert!(datasets[drafts..].iter().all(|d| d["draft"] == true && d["overdue"] == false), "{datasets:?}");
    let overall: Vec<f64> = datasets[..drafts].iter().map(|d| d["overall"].as_f64().unwrap()).collect();
    assert!(!overall.is_empty() && overall.windows(2).all(|w| w[0] <= w[1]), "{overall:?}");
    assert!(o.body["agencies"].as_array().unwrap().iter().any(|a| a["agency"] == "Sở Y tế"));
    let (status, html) = {
        let c = Client::new(&s.base);
        let (_, page) = c.page("/sign-in").await;
        let r = c
            .form("/sign-in", &[("_csrf", &csrf_of(&page)), ("username", "yte.canbo"), ("password", "demo-yte-canbo")])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        c.page("/quality").await
    };
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Chất lượng dữ liệu") && html.contains("Cơ sở khám bệnh"));
}

#[tokio::test]
async fn the_clean_score_lists_the_rows_behind_its_outliers() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let facilities = json!({
        "slug": "giuong-theo-co-so", "title": "Giường bệnh theo cơ sở", "access_level": "shared",
        "frequency": "annual",
        "resources": [{"name": "co-so", "schema": {
            "fields": [
                {"name": "ma", "type": "string", "title": "Mã cơ sở"},
                {"name": "loai", "type": "string", "title": "Loại cơ sở"},
                {"name": "so_giuong", "type": "integer", "title": "Số giường bệnh"}
            ],
            "primaryKey": "ma"
        }}]
    });
    let r = steward.post("/api/v1/datasets", facilities).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    // Thirty commune health stations, a provincial hospital with far more beds (ordinary for a
    // hospital), and a station whose beds were typed with three zeros too many.
    let mut csv = String::from("ma,loai,so_giuong\n");
    for i in 0..30 {
        csv.push_str(&format!("TYT{i:02},Trạm y tế,{}\n", 5 + i % 10));
    }
    csv.push_str("BV01,Bệnh viện,500\nTYT99,Trạm y tế,8000\n");
    publish_csv(&steward, "giuong-theo-co-so", "co-so", csv).await;
    let q = steward.get("/api/v1/datasets/giuong-theo-co-so/quality").await;
    assert_eq!(q.status, StatusCode::OK, "{}", q.text);
    let r = &q.body["resources"][0];
    assert!(r["scores"]["sach"]["evidence_vi"].as_str().unwrap().contains("1 giá trị bất thường"), "{r}");
    let rows = r["outliers"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{r}");
    assert_eq!((&rows[0]["row"], rows[0]["line"].as_u64()), (&json!([["ma", "TYT99"]]), Some(33)));
    assert_eq!(rows[0]["value"], 8000.0);
    assert_eq!(r["outlier_groupings"], json!([{"column": "so_giuong", "by": "loai", "excused": 1}]));
    // The dataset page lists the row by its line and key, columns by their titles.
    let (status, html) = steward.page("/datasets/giuong-theo-co-so").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Giá trị bất thường: các dòng cần kiểm tra"), "{html}");
    assert!(html.contains("dòng 33 · TYT99") && html.contains("8.000"), "{html}");
    assert!(html.contains("«Số giường bệnh» được so trong từng nhóm của cột «Loại cơ sở»"), "{html}");
}

#[tokio::test]
async fn a_dataset_downloads_as_a_data_package() {
    let s = Server::start(true);
    let anon = s.client();
    let (status, body, headers) =
        raw(&anon, reqwest::Method::GET, "/api/v1/datasets/bui-min-pm25-ha-noi/datapackage", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body)).unwrap();
    let descriptor: Value = {
        let f = zip.by_name("datapackage.json").unwrap();
        serde_json::from_reader(f).unwrap()
    };
    assert_eq!(descriptor["profile"], "tabular-data-package");
    assert_eq!(descriptor["name"], "bui-min-pm25-ha-noi");
    let r = &descriptor["resources"][0];
    assert_eq!(
        (r["path"].as_str(), r["version"].as_i64(), r["rows"].as_i64()),
        (Some("data/pm25.csv"), Some(2), Some(7009))
    );
    assert!(r["schema"]["fields"].as_array().unwrap().len() >= 10);
    let mut csv = String::new();
    std::io::Read::read_to_string(&mut zip.by_name("data/pm25.csv").unwrap(), &mut csv).unwrap();
    assert_eq!(csv.lines().count(), 7010);
    // Non-open datasets do not exist for anonymous visitors, in this form either.
    let (status, _, _) = raw(&anon, reqwest::Method::GET, "/api/v1/datasets/co-so-y-te/datapackage", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn foreign_keys_are_checked_against_published_tables() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let u = upload(
        &steward,
        &format!("{HEADER}BV01,Bệnh viện tỉnh,03979,500,02123852345\nBV02,Bệnh viện Mai Sơn,04045,120,0912345678\n"),
    )
    .await;
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    // Beds by facility and commune: the facility must exist in the health department's table,
    // the commune in the published table of administrative units.
    let beds = json!({
        "slug": "giuong-benh", "title": "Giường bệnh theo khoa", "access_level": "shared", "frequency": "annual",
        "resources": [{"name": "giuong", "schema": {
            "fields": [
                {"name": "ma_co_so", "type": "string"}, {"name": "khoa", "type": "string"},
                {"name": "ma_xa", "type": "string"}, {"name": "so_giuong", "type": "integer"}
            ],
            "foreignKeys": [
                {"fields": "ma_co_so", "reference": {"resource": "co-so-y-te/co-so", "fields": "ma_co_so"}},
                {"fields": "ma_xa", "reference": {"resource": "don-vi-hanh-chinh-cap-xa/xa-phuong", "fields": "ma_xa"}}
            ]
        }}]
    });
    let r = steward.post("/api/v1/datasets", beds.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let csv =
        "ma_co_so,khoa,ma_xa,so_giuong\nBV01,Nội,03979,40\nBV09,Ngoại,03979,30\nBV02,Nhi,99999,20\nBV02,Sản,,10\n";
    let (status, body, _) = raw(
        &steward,
        reqwest::Method::POST,
        "/api/v1/datasets/giuong-benh/resources/giuong/uploads",
        Some(csv.as_bytes().to_vec()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let u: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((u["valid_rows"].as_i64(), u["invalid_rows"].as_i64()), (Some(2), Some(2)), "{u}");
    let problems: Vec<(i64, &str, &str)> = u["report"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_i64().unwrap(), p["column"].as_str().unwrap(), p["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(problems, vec![(3, "ma_co_so", "foreign_key"), (4, "ma_xa", "foreign_key")]);
    assert_eq!(
        u["report"]["problems"][0]["message_vi"],
        "giá trị 'BV09' không có trong cột ma_co_so của bảng co-so-y-te/co-so"
    );

    // A reference to a table that is not published (or not readable) is refused, naming it.
    let mut bad = beds.clone();
    bad["slug"] = json!("giuong-benh-2");
    bad["resources"][0]["schema"]["foreignKeys"][0]["reference"]["resource"] = json!("khong-co/bang");
    assert_eq!(steward.post("/api/v1/datasets", bad).await.status, StatusCode::CREATED);
    let (status, body, _) = raw(
        &steward,
        reqwest::Method::POST,
        "/api/v1/datasets/giuong-benh-2/resources/giuong/uploads",
        Some(csv.as_bytes().to_vec()),
    )
    .await;
    let e: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed")), "{e}");
    assert_eq!(e["details"][0]["path"], "foreignKeys[0].reference.resource");
}

/// Files under a resource's folder of the object store, relative to the store's root.
fn objects_under(root: &std::path::Path, dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn publishing_survives_kill_9_at_any_moment() {
    // It looks into the objects folder after each kill.
    let mut s = Server::embedded(true);
    let mut steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let first = upload(&steward, &format!("{HEADER}BV1,Bệnh viện,03979,1,0912345678\n")).await;
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", first["id"].as_str().unwrap()), json!({})).await;
    let key = r.body["object_key"].as_str().unwrap().to_string();
    let resource_dir = std::path::Path::new(&key).parent().unwrap().parent().unwrap().to_path_buf();
    let mut committed = 0;
    // Kill the server (SIGKILL) at increasing moments after the publish request left.
    for (round, delay_ms) in [0u64, 1, 3, 6, 10, 20, 40, 80, 160, 320, 2000].into_iter().enumerate() {
        let mut csv = String::from(HEADER);
        for i in 0..20_000 {
            csv.push_str(&format!("BV{i},Cơ sở {i},03979,{},0912345678\n", (i + round) % 97));
        }
        let u = upload(&steward, &csv).await;
        let before = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await.body;
        let publish = {
            let (http, url, csrf) = (steward.http.clone(), steward.base.clone(), steward.csrf.clone());
            let id = u["id"].as_str().unwrap().to_string();
            tokio::spawn(async move {
                let mut req = http.post(format!("{url}/api/v1/uploads/{id}/publish")).json(&json!({}));
                if let Some(x) = csrf {
                    req = req.header("X-CSRF-Token", x);
                }
                req.send().await.map(|r| r.status())
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        let dir = s.stop();
        let answered = publish.await.unwrap();
        s = Server::start_in(dir, false, &[]);
        steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;

        // Either the new version is there whole, or nothing of it is; earlier ones are intact.
        let after = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await.body;
        let (before, after) = (before.as_array().unwrap(), after.as_array().unwrap());
        assert!(after.len() == before.len() || after.len() == before.len() + 1, "round {round}");
        if answered.map(|st| st == StatusCode::CREATED).unwrap_or(false) {
            assert_eq!(after.len(), before.len() + 1, "round {round}: a publish that answered 201 was lost");
        }
        assert_eq!(&after[after.len() - before.len()..], before.as_slice(), "round {round}: history changed");
        if after.len() > before.len() {
            committed += 1;
            assert_eq!(after[0]["rows"], 20_000);
        }
        let mut known = Vec::new();
        for v in after {
            let n = v["version"].as_i64().unwrap();
            let page =
                steward.get(&format!("/api/v1/datasets/co-so-y-te/resources/co-so/rows?version={n}&limit=1")).await;
            assert_eq!(page.status, StatusCode::OK, "round {round}, version {n}: {}", page.text);
            assert_eq!(page.body["total"], v["rows"], "round {round}, version {n}");
            known.extend(
                [v["object_key"].as_str(), v["quarantine_key"].as_str()].into_iter().flatten().map(String::from),
            );
            // The version's key index, beside its data, for the next publish's comparison.
            let folder = v["object_key"].as_str().unwrap().rsplit_once('/').unwrap().0;
            known.push(format!("{folder}/keys.bin"));
        }
        // No object that no version points to survives the restart.
        let root = s.data_dir().join("objects");
        let on_disk = objects_under(&root, &root.join(&resource_dir));
        known.sort();
        assert_eq!(on_disk, known, "round {round}");
    }
    // The later rounds leave the publish time to finish; the earliest kill it before it commits.
    eprintln!("{committed} of 11 killed publishes had committed");
    assert!((1..11).contains(&committed), "{committed} of 11 rounds committed: the kills did not span the publish");
}

/// A file of corrections updates the rows it names and leaves the others; replacing the table
/// with fewer rows needs the steward's word; adding a key that is there is refused.
#[tokio::test]
async fn a_file_replaces_adds_to_or_updates_a_table_as_the_steward_chooses() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let r = steward.post("/api/v1/datasets", dataset("so-lieu-xa", "shared")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let first = "ma_xa,so_luong\n03646,10\n03664,20\n03670,30\n03679,40\n03979,50\n";
    let v1 = publish_csv(&steward, "so-lieu-xa", "bang-chinh", first.to_string()).await;
    assert_eq!(v1["rows"], 5);

    // Two corrected rows: one changed, one new.
    let fix = "ma_xa,so_luong\n03646,11\n03980,60\n";
    let (status, u) = upload_file(&steward, "so-lieu-xa", "bang-chinh", fix.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().unwrap().to_string();
    let changes = |mode: &'static str| {
        let (c, id) = (&steward, id.clone());
        async move { c.get(&format!("/api/v1/uploads/{id}/changes?mode={mode}")).await.body }
    };
    let replace = changes("replace").await;
    assert_eq!(
        (&replace["added"], &replace["changed"], &replace["removed"], &replace["rows_after"]),
        (&json!(1), &json!(1), &json!(4), &json!(2)),
        "{replace}"
    );
    let mut removed: Vec<&str> =
        replace["examples"]["removed"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    removed.sort();
    assert_eq!(removed, ["03664", "03670", "03679", "03979"]);
    let upsert = changes("upsert").await;
    assert_eq!(
        (&upsert["added"], &upsert["changed"], &upsert["removed"], &upsert["rows_after"]),
        (&json!(1), &json!(1), &json!(0), &json!(6)),
        "{upsert}"
    );
    assert_eq!((&upsert["examples"]["added"], &upsert["examples"]["changed"]), (&json!(["03980"]), &json!(["03646"])));
    let append = changes("append").await;
    assert_eq!(
        (&append["conflicting"], &append["examples"]["conflicting"]),
        (&json!(1), &json!(["03646"])),
        "{append}"
    );

    let publish = |body: Value| {
        let (c, id) = (&steward, id.clone());
        async move { c.post(&format!("/api/v1/uploads/{id}/publish"), body).await }
    };
    // Replacing would remove four rows: not without saying so.
    let r = publish(json!({})).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{}", r.text);
    assert_eq!(r.body["details"][0]["path"], "confirm_removal", "{}", r.text);
    assert!(r.text.contains("removes 4"), "{}", r.text);
    // Adding a key that is there: refused, naming it.
    let r = publish(json!({"mode": "append"})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    assert!(r.text.contains("03646") && r.text.contains("upsert"), "{}", r.text);
    // By key: the two rows, and the other four kept.
    let r = publish(json!({"mode": "upsert"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (&r.body["version"], &r.body["rows"], &r.body["rows_added"], &r.body["rows_changed"], &r.body["rows_removed"]),
        (&json!(2), &json!(6), &json!(1), &json!(1), &json!(0))
    );
    let rows = steward.get("/api/v1/datasets/so-lieu-xa/resources/bang-chinh/rows?limit=10").await;
    let got: Vec<(String, i64)> = rows.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ma_xa"].as_str().unwrap().to_string(), r["so_luong"].as_i64().unwrap()))
        .collect();
    assert_eq!(got.len(), 6, "{got:?}");
    assert!(
        got.contains(&("03646".into(), 11))
            && got.contains(&("03980".into(), 60))
            && got.contains(&("03979".into(), 50))
    );

    // Adding a new key; then replacing the whole table, confirmed.
    let v = {
        let (status, u) =
            upload_file(&steward, "so-lieu-xa", "bang-chinh", b"ma_xa,so_luong\n03982,70\n".to_vec()).await;
        assert_eq!(status, StatusCode::CREATED, "{u}");
        steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({"mode": "append"})).await
    };
    assert_eq!(
        (v.status, &v.body["rows"], &v.body["rows_added"]),
        (StatusCode::CREATED, &json!(7), &json!(1)),
        "{}",
        v.text
    );
    let (_, u) = upload_file(&steward, "so-lieu-xa", "bang-chinh", b"ma_xa,so_luong\n03646,1\n".to_vec()).await;
    let r = steward
        .post(
            &format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()),
            json!({"mode": "replace", "confirm_removal": true}),
        )
        .await;
    assert_eq!(
        (r.status, &r.body["rows"], &r.body["rows_removed"], &r.body["rows_changed"]),
        (StatusCode::CREATED, &json!(1), &json!(6), &json!(1)),
        "{}",
        r.text
    );
}
