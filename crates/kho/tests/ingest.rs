//! Checking uploaded files over HTTP and from the command line.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;

async fn upload(c: &Client, path: &str, body: Vec<u8>) -> Resp {
    c.post_file(path, body).await
}

const URL: &str = "/api/v1/datasets/co-so-y-te/resources/co-so/validate";

#[tokio::test]
async fn a_steward_checks_a_file_before_loading_it() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let csv = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n\
               BV01,Bệnh viện Đa khoa tỉnh,03979,500,02123852345\n\
               BV01,Trùng mã,03979,-5,0912345678\n\
               TYT02,Trạm y tế,00001,mười,123\n\
               ,Thiếu mã,99999,10,0912345678\n";
    let r = upload(&steward, URL, csv.as_bytes().to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        (r.body["rows"].as_u64(), r.body["valid_rows"].as_u64(), r.body["invalid_rows"].as_u64()),
        (Some(4), Some(1), Some(3))
    );
    let got: Vec<(u64, &str, &str)> = r.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["row"].as_u64().unwrap(), p["column"].as_str().unwrap_or(""), p["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![
            (3, "ma_co_so", "unique"),
            (3, "so_giuong", "minimum"),
            (4, "ma_xa", "abolished_code"),
            (4, "so_giuong", "type"),
            (4, "dien_thoai", "phone"),
            (5, "ma_co_so", "required"),
            (5, "ma_xa", "admin_unit"),
        ]
    );
    let abolished = &r.body["problems"][2];
    assert_eq!(abolished["value"], "00001");
    assert!(abolished["message_vi"].as_str().unwrap().contains("mã mới: 00097"));

    // The same report as a CSV file to download.
    let r = upload(&steward, &format!("{URL}?format=csv"), csv.as_bytes().to_vec()).await;
    assert_eq!(r.headers["content-type"], "text/csv; charset=utf-8");
    assert!(r.text.contains("dong,cot,gia_tri,quy_tac,mo_ta,description"));
    assert_eq!(r.text.lines().count(), 8, "a header and the 7 problems");

    // UTF-16 with a semicolon delimiter is read as well.
    let semi = "ma_co_so;ten_co_so;ma_xa;so_giuong;dien_thoai\nBV09;Bệnh viện;03979;10;0912345678\n";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(semi.encode_utf16().flat_map(u16::to_le_bytes));
    let r = upload(&steward, URL, utf16).await;
    assert_eq!(
        (r.body["encoding"].as_str(), r.body["delimiter"].as_str(), r.body["problems_total"].as_u64()),
        (Some("UTF-16LE"), Some(";"), Some(0))
    );

    // Columns that do not match the schema are named.
    let r = upload(&steward, URL, b"ma_co_so,ten,so_giuong\nBV1,x,1\n".to_vec()).await;
    assert_eq!(r.body["header_mismatch"], true);
    let cols: Vec<(&str, &str)> = r.body["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["row"] == 1)
        .map(|p| (p["column"].as_str().unwrap(), p["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        cols,
        vec![
            ("ten_co_so", "missing_column"),
            ("ma_xa", "missing_column"),
            ("dien_thoai", "missing_column"),
            ("ten", "extra_column")
        ]
    );

    // Files that are not tables at all.
    for (body, what) in [
        (b"".to_vec(), "empty"),
        (b"ma_co_so,ten_co_so\n".to_vec(), "no data rows"),
        (b"ten\nH\xe0 N\xf4i\n".to_vec(), "not UTF-8"),
        (b"a,,b\n1,2,3\n".to_vec(), "no name"),
    ] {
        let r = upload(&steward, URL, body).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file"), "{what}: {}", r.text);
        assert!(r.body["message"].as_str().unwrap().contains(what), "{what}: {}", r.text);
    }
    let r = upload(&steward, URL, b"ten\nH\xe0 N\xf4i\n".to_vec()).await;
    assert_eq!(r.body["details"][0]["path"], "file:line 2");

    // Only those who may change the dataset may check uploads for it.
    let other = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    assert_eq!(upload(&other, URL, csv.as_bytes().to_vec()).await.code(), "forbidden");
    assert_eq!(upload(&s.client(), URL, csv.as_bytes().to_vec()).await.code(), "authentication_required");
    assert_eq!(
        upload(&steward, "/api/v1/datasets/co-so-y-te/resources/khong-co/validate", csv.as_bytes().to_vec())
            .await
            .code(),
        "not_found"
    );

    // Every check is in the audit log.
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let audit = admin.get("/api/v1/audit?action=resource.validate").await;
    assert!(audit.body.as_array().unwrap().len() >= 4);
}

#[tokio::test]
async fn uploads_over_the_limit_are_refused() {
    let s = Server::start_with(true, &[("KHO_MAX_UPLOAD_BYTES", "1000")]);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let mut big = b"ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n".to_vec();
    while big.len() < 5000 {
        big.extend_from_slice(b"BV1,x,03979,1,0912345678\n");
    }
    let r = upload(&steward, URL, big).await;
    assert_eq!((r.status, r.code()), (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"));
    // Nothing is left behind in the upload folder.
    let left = std::fs::read_dir(s.data_dir().join("uploads").join("incoming")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left, 0);
}

#[test]
fn the_command_line_checks_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |args: &[&str]| kho_cli(&data, args);
    assert!(run(&["demo", "load"]).status.success());
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV1,Bệnh viện,03979,10,0912345678\n")
        .unwrap();
    let o = run(&["check", good.to_str().unwrap(), "--dataset", "co-so-y-te"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV1,Bệnh viện,00001,x,0912345678\n").unwrap();
    let report = dir.path().join("report.csv");
    let o = run(&["check", bad.to_str().unwrap(), "--dataset", "co-so-y-te", "--report", report.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("1 rows, 0 valid, 1 with problems") && out.contains("abolished_code"), "{out}");
    assert!(std::fs::read_to_string(&report).unwrap().contains("00097"));
}

/// An Excel workbook as stewards send them: a notes sheet first, a merged title above the
/// header, a name written on two lines in its cell, a formula error in a cell.
fn workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet().set_name("Hướng dẫn").unwrap().write_string(0, 0, "Điền số liệu ở trang sau").unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("Số liệu").unwrap();
    sheet.merge_range(0, 0, 0, 4, "Cơ sở y tế quý 3/2025", &rust_xlsxwriter::Format::new()).unwrap();
    for (c, h) in ["ma_co_so", "ten_co_so", "ma_xa", "so_giuong", "dien_thoai"].iter().enumerate() {
        sheet.write_string(1, c as u16, *h).unwrap();
    }
    let rows = [
        ("BV02", "Trạm y tế\nxã Chiềng Cơi", "04045", Some(15.0), "0912345678"),
        ("BV01", "Bệnh viện tỉnh", "03979", None, "02123852345"),
    ];
    for (r, (a, b, c, d, e)) in rows.iter().enumerate() {
        let r = r as u32 + 2;
        sheet.write_string(r, 0, *a).unwrap();
        sheet.write_string(r, 1, *b).unwrap();
        sheet.write_string(r, 2, *c).unwrap();
        match d {
            Some(n) => sheet.write_number(r, 3, *n).unwrap(),
            None => sheet.write_formula(r, 3, rust_xlsxwriter::Formula::new("=1/0").set_result("#DIV/0!")).unwrap(),
        };
        sheet.write_string(r, 4, *e).unwrap();
    }
    book.save_to_buffer().unwrap()
}

#[tokio::test]
async fn spreadsheets_and_json_go_through_the_same_checks() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let xlsx = workbook();
    // Without choosing the sheet, the first (notes) sheet is read: it has no data rows.
    let r = upload(&steward, URL, xlsx.clone()).await;
    assert_eq!(r.code(), "invalid_file", "{}", r.text);
    assert!(r.body["message"].as_str().unwrap().contains("no data rows"));
    // "Số liệu", header on row 2 (below the merged title).
    let url = format!("{URL}?sheet=S%E1%BB%91%20li%E1%BB%87u&header_row=2");
    let r = upload(&steward, &url, xlsx.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!((r.body["rows"].as_u64(), r.body["valid_rows"].as_u64()), (Some(2), Some(1)), "{}", r.text);
    let p = &r.body["problems"][0];
    // Sheet row 4 (title, header, BV02 on row 3 even though its name spans two lines).
    assert_eq!(
        (p["row"].as_u64(), p["column"].as_str(), p["value"].as_str(), p["rule"].as_str()),
        (Some(4), Some("so_giuong"), Some("#DIV/0!"), Some("type"))
    );
    let r = upload(&steward, &format!("{URL}?sheet=Kh%C3%B4ng%20c%C3%B3"), xlsx).await;
    assert_eq!(r.code(), "invalid_file");
    assert!(r.body["message"].as_str().unwrap().contains("Hướng dẫn, Số liệu"), "{}", r.text);

    // JSON rows (one object per line) load like a CSV.
    let ndjson = "{\"ma_co_so\": \"BV9\", \"ten_co_so\": \"Bệnh viện\", \"ma_xa\": \"03979\", \"so_giuong\": 40, \"dien_thoai\": \"0912345678\"}\n";
    let r = upload(&steward, URL, ndjson.as_bytes().to_vec()).await;
    assert_eq!((r.body["rows"].as_u64(), r.body["problems_total"].as_u64()), (Some(1), Some(0)), "{}", r.text);
    let r = upload(&steward, URL, b"[{\"ma_co_so\": 1}, 2]".to_vec()).await;
    assert_eq!(r.code(), "invalid_file");
}
