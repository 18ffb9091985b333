//! Sheets as Vietnamese offices write them (`tests/sheets/`, made with openpyxl by
//! `tests/sheets/make.py`): a report around the table, a two-row header, a running number, a
//! total, signatures, and text in Unicode, TCVN3 or VNI. kho finds the table, says what it left
//! out, and loads the same rows from each.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn sheet(name: &str) -> Vec<u8> {
    // The folder `cargo test` runs this test for (a shared build cache may have built it in
    // another checkout).
    let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    std::fs::read(std::path::Path::new(&here).join("../../tests/sheets").join(name)).expect(name)
}

fn kinds(report: &Value) -> Vec<String> {
    report["notes"].as_array().unwrap().iter().map(|n| n["kind"].as_str().unwrap().to_string()).collect()
}

fn note<'a>(report: &'a Value, kind: &str) -> &'a str {
    report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == kind)
        .and_then(|n| n["message_vi"].as_str())
        .unwrap_or("")
}

const VALIDATE: &str = "/api/v1/datasets/co-so-y-te/resources/co-so/validate";

#[tokio::test]
async fn a_report_sheet_loads_as_its_table_in_any_encoding() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    for (file, legacy) in
        [("co-so-y-te.xlsx", None), ("co-so-y-te-tcvn3.xlsx", Some("TCVN3")), ("co-so-y-te-vni.xlsx", Some("VNI"))]
    {
        let r = steward.post_file(VALIDATE, sheet(file)).await;
        assert_eq!(r.status, StatusCode::OK, "{file}: {}", r.text);
        let report = &r.body;
        assert_eq!((report["rows"].as_u64(), report["valid_rows"].as_u64()), (Some(5), Some(5)), "{file}: {report}");
        assert_eq!(report["header_mismatch"], false, "{file}: {report}");
        let k = kinds(report);
        for expected in
            ["title_rows", "header_rows", "column_numbers", "stt_column", "total_row", "signature", "column_matched"]
        {
            assert!(k.iter().any(|x| x == expected), "{file}: no {expected} note in {k:?}");
        }
        assert_eq!(k.iter().any(|x| x == "legacy_encoding"), legacy.is_some(), "{file}: {k:?}");
        if let Some(name) = legacy {
            assert!(note(report, "legacy_encoding").contains(name), "{file}: {report}");
        }
        // Each note names the sheet rows as the steward sees them.
        assert!(note(report, "title_rows").contains("dòng 1–6"), "{file}: {}", note(report, "title_rows"));
        assert!(note(report, "header_rows").contains("dòng 7–8"), "{file}: {}", note(report, "header_rows"));
        assert!(note(report, "column_numbers").contains("dòng 9"), "{file}");
        assert!(
            note(report, "total_row").contains("dòng 15") && note(report, "total_row").contains("Tổng cộng"),
            "{file}: {}",
            note(report, "total_row")
        );
        assert!(note(report, "signature").contains("dòng 17"), "{file}: {}", note(report, "signature"));
        assert!(note(report, "stt_column").contains("cột A 'STT'"), "{file}: {}", note(report, "stt_column"));
    }

    // Published, the three give the same rows, in Unicode, with numbers as numbers.
    let mut tables = Vec::new();
    for file in ["co-so-y-te.xlsx", "co-so-y-te-tcvn3.xlsx", "co-so-y-te-vni.xlsx"] {
        publish_file(&steward, "co-so-y-te", "co-so", sheet(file)).await;
        let rows = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/rows?limit=10").await;
        assert_eq!(rows.status, StatusCode::OK, "{}", rows.text);
        tables.push(rows.body["records"].clone());
    }
    assert_eq!(tables[0], tables[1]);
    assert_eq!(tables[0], tables[2]);
    let records = tables[0].as_array().unwrap();
    assert_eq!(records.len(), 5);
    let find = |code: &str| records.iter().find(|r| r["ma_co_so"] == code).unwrap().clone();
    assert_eq!(find("BV01")["ten_co_so"], "Bệnh viện Đa khoa tỉnh Sơn La");
    // Phone numbers written with spaces or dots are kept as their digits.
    assert_eq!(find("BV01")["dien_thoai"], "02123852345");
    assert_eq!(find("BV02")["dien_thoai"], "02123856789");
    assert_eq!(find("BV02")["ten_co_so"], "Bệnh viện Y dược cổ truyền");
    // "1.200" typed as text is one thousand two hundred beds.
    assert_eq!(find("TTYT03")["so_giuong"], 1200);
}

#[tokio::test]
async fn date_cells_serial_days_and_written_dates_meet_a_day_first_schema() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut d = dataset("co-so-hoat-dong", "shared");
    d["resources"][0]["schema"] = json!({"fields": [
        {"name": "ma_co_so", "title": "Mã cơ sở", "type": "string"},
        {"name": "ten_co_so", "title": "Tên cơ sở", "type": "string"},
        {"name": "ma_xa", "title": "Mã xã", "dictionaryTerm": "commune_code"},
        {"name": "so_giuong", "title": "Số giường bệnh", "type": "integer", "constraints": {"maximum": 1000}},
        {"name": "dien_thoai", "title": "Điện thoại", "dictionaryTerm": "phone"},
        {"name": "ngay_hoat_dong", "title": "Ngày hoạt động", "type": "date", "format": "%d/%m/%Y"}
    ], "primaryKey": "ma_co_so"});
    let r = steward.post("/api/v1/datasets", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let url = "/api/v1/datasets/co-so-hoat-dong/resources/bang-chinh/validate";
    let r = steward.post_file(url, sheet("co-so-y-te-ngay.xlsx")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Only the centre over the table's bound is refused, named by its sheet row (12).
    assert_eq!((r.body["rows"].as_u64(), r.body["invalid_rows"].as_u64()), (Some(5), Some(1)), "{}", r.body);
    let p = &r.body["problems"][0];
    assert_eq!(
        (p["row"].as_u64(), p["column"].as_str(), p["rule"].as_str()),
        (Some(12), Some("so_giuong"), Some("maximum")),
        "{p}"
    );

    let (status, u) = upload_file(&steward, "co-so-hoat-dong", "bang-chinh", sheet("co-so-y-te-ngay.xlsx")).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let r = steward
        .post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({"skip_invalid": true}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let rows = steward.get("/api/v1/datasets/co-so-hoat-dong/resources/bang-chinh/rows?limit=10").await;
    let got: Vec<(String, String)> = rows.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["ma_co_so"].as_str().unwrap().to_string(), r["ngay_hoat_dong"].as_str().unwrap_or("").to_string()))
        .collect();
    // A date cell, a date typed as text, an Excel serial day left as a number, a date cell.
    assert_eq!(
        got,
        [
            ("BV01".to_string(), "1965-05-19".to_string()),
            ("BV02".to_string(), "1998-01-02".to_string()),
            ("TYT04".to_string(), "2010-01-01".to_string()),
            ("TYT05".to_string(), "2016-10-08".to_string()),
        ]
    );
}

#[test]
fn the_command_line_reads_an_old_office_sheet_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(kho_cli(&data, &["demo", "load"]).status.success());
    let file = dir.path().join("bao-cao.xlsx");
    std::fs::write(&file, sheet("co-so-y-te-vni.xlsx")).unwrap();
    let o = kho_cli(&data, &["check", file.to_str().unwrap(), "--dataset", "co-so-y-te"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("5 rows, 5 valid") && out.contains("bảng mã cũ VNI") && out.contains("Bỏ dòng 15"), "{out}");
    let o = kho_cli(&data, &["import", file.to_str().unwrap(), "--dataset", "co-so-y-te"]);
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

#[tokio::test]
async fn a_csv_saved_in_tcvn3_is_read_as_vietnamese() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    // "Bệnh viện Đa khoa" and "Trạm y tế xã" in TCVN3 bytes, sent as a plain CSV: not UTF-8.
    let mut csv = b"ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV01,B".to_vec();
    csv.extend_from_slice(&[
        0xD6, b'n', b'h', b' ', b'v', b'i', 0xD6, b'n', b' ', 0xA7, b'a', b' ', b'k', b'h', b'o', b'a',
    ]);
    csv.extend_from_slice(b",03646,800,0212 3852 345\nTYT02,Tr");
    csv.extend_from_slice(&[0xB9, b'm', b' ', b'y', b' ', b't', 0xD5, b' ', b'x', 0xB7]);
    csv.extend_from_slice(b",03670,5,0987654321\n");
    assert!(std::str::from_utf8(&csv).is_err());
    let r = steward.post_file(VALIDATE, csv.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["valid_rows"], 2, "{}", r.body);
    assert!(note(&r.body, "legacy_encoding").contains("TCVN3"), "{}", r.body);
    publish_file(&steward, "co-so-y-te", "co-so", csv).await;
    let rows = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/rows?limit=10").await;
    let names: Vec<&str> =
        rows.body["records"].as_array().unwrap().iter().map(|r| r["ten_co_so"].as_str().unwrap()).collect();
    assert_eq!(names, ["Bệnh viện Đa khoa", "Trạm y tế xã"]);
}

#[tokio::test]
async fn a_dataset_starts_from_a_report_sheet_through_the_api() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let start = |q: &str| format!("/api/v1/datasets/from-file?{q}&file_name=bao-cao-quy-3.xlsx");

    // One call: the dataset, its table with the proposed schema, and the file checked.
    let r = steward
        .post_file(
            &start("title=C%C6%A1%20s%E1%BB%9F%20y%20t%E1%BA%BF%20qu%C3%BD&access_level=shared&frequency=quarterly"),
            sheet("co-so-y-te-ngay.xlsx"),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (d, u) = (&r.body["dataset"], &r.body["upload"]);
    assert_eq!(d["slug"], "co-so-y-te-quy");
    let table = &d["resources"][0];
    assert_eq!((table["name"].as_str(), table["title"].as_str()), (Some("co-so-y-te-quy"), Some("Cơ sở y tế quý")));
    let names: Vec<&str> =
        table["schema"]["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ma_co_so", "ten_co_so", "ma_xa", "so_giuong_benh", "dien_thoai", "ngay_hoat_dong"]);
    assert_eq!(table["schema"]["primaryKey"], "ma_co_so");
    assert_eq!(
        (u["rows"].as_i64(), u["invalid_rows"].as_i64(), u["status"].as_str()),
        (Some(5), Some(0), Some("checked"))
    );
    // A draft until published: not in the public catalogue.
    let anon = s.client();
    let found = anon.get("/api/3/action/package_search?q=co+so+y+te+quy").await;
    assert_eq!(found.body["result"]["count"], 0, "{}", found.text);
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["rows"], 5);
    // The same title again gets its own slug.
    let again = steward
        .post_file(
            &start("title=C%C6%A1%20s%E1%BB%9F%20y%20t%E1%BA%BF%20qu%C3%BD&access_level=shared&frequency=quarterly"),
            sheet("co-so-y-te-ngay.xlsx"),
        )
        .await;
    assert_eq!((again.status, again.body["dataset"]["slug"].as_str()), (StatusCode::CREATED, Some("co-so-y-te-quy-2")));

    // Personal columns keep it from being open; nothing is created.
    let r = steward
        .post_file(&start("title=Ch%E1%BB%A7%20h%E1%BB%99&access_level=open&frequency=annual"), sheet("chu-ho.xlsx"))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "personal_data_in_open_dataset"), "{}", r.text);
    let said: Vec<&str> =
        r.body["details"].as_array().unwrap().iter().filter_map(|d| d["message_vi"].as_str()).collect();
    assert!(said.iter().any(|m| m.contains("Số CCCD")), "{said:?}");
    assert_eq!(steward.get("/api/v1/datasets/chu-ho").await.status, StatusCode::NOT_FOUND);
    // No title, or a viewer: refused.
    let r = steward.post_file(&start("title=%20&access_level=shared&frequency=annual"), sheet("chu-ho.xlsx")).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{}", r.text);
    let viewer = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    let r = viewer.post_file(&start("title=X&access_level=shared&frequency=annual"), sheet("chu-ho.xlsx")).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text);
}
