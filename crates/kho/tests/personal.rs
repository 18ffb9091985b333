//! Personal data stays out of open data (Law 91/2025/QH15): a field whose dictionary term is
//! personal (CCCD, phone, e-mail, date of birth, names, addresses) or that is marked personal
//! cannot be in an open dataset, however it would get there.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

fn with_cccd(mut d: Value) -> Value {
    d["resources"][0]["title"] = json!("Hộ gia đình");
    d["resources"][0]["schema"] = json!({"fields": [
        {"name": "ma_xa", "dictionaryTerm": "commune_code"},
        {"name": "so_cccd", "title": "Số CCCD chủ hộ", "dictionaryTerm": "cccd"},
        {"name": "so_luong", "type": "integer"}
    ], "primaryKey": "ma_xa"});
    d
}

fn refused(r: &Resp, field: &str) {
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "personal_data_in_open_dataset"), "{}", r.text);
    let d = &r.body["details"][0];
    assert!(d["message"].as_str().unwrap().contains(&format!("field '{field}'")), "{}", r.text);
    assert!(d["message_vi"].as_str().unwrap().contains("là dữ liệu cá nhân"), "{}", r.text);
}

#[tokio::test]
async fn a_personal_field_keeps_its_dataset_out_of_open_data_by_every_way_in() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;

    // The dictionary says which terms are personal.
    let terms = steward.get("/api/v1/dictionary/terms").await;
    let personal: Vec<&str> = terms
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["personal"] == true)
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for t in ["cccd", "phone", "email", "date_of_birth", "full_name", "address_detail"] {
        assert!(personal.contains(&t), "{t} in {personal:?}");
    }
    assert!(!personal.contains(&"commune_code"));

    // Created open with a CCCD column: refused, naming the field, in both languages.
    let r = steward.post("/api/v1/datasets", with_cccd(dataset("ho-gia-dinh", "open"))).await;
    refused(&r, "so_cccd");
    assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("trường 'Số CCCD chủ hộ'"), "{}", r.text);
    // Shared, it is accepted; made open afterwards, refused again.
    let r = steward.post("/api/v1/datasets", with_cccd(dataset("ho-gia-dinh", "shared"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let mut input = r.body.clone();
    for k in ["id", "revision", "created_at", "modified_at", "resources"] {
        input.as_object_mut().unwrap().remove(k);
    }
    input["access_level"] = json!("open");
    input["license"] = json!("CC-BY-4.0");
    let r = steward.put("/api/v1/datasets/ho-gia-dinh", input).await;
    refused(&r, "so_cccd");
    assert_eq!(steward.get("/api/v1/datasets/ho-gia-dinh").await.body["access_level"], "shared");

    // An open dataset's table cannot take a personal field through a schema change, marked by
    // term or by hand.
    let r = steward.post("/api/v1/datasets", dataset("so-lieu-mo", "open")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let schema = json!({"fields": [
        {"name": "ma_xa", "dictionaryTerm": "commune_code"},
        {"name": "dien_thoai_lien_he", "dictionaryTerm": "phone"}
    ]});
    let r = steward.put("/api/v1/datasets/so-lieu-mo/resources/bang-chinh", json!({"schema": schema})).await;
    refused(&r, "dien_thoai_lien_he");
    let schema = json!({"fields": [{"name": "ma_xa", "dictionaryTerm": "commune_code"}, {"name": "ghi_chu_ca_nhan", "type": "string", "personal": true}]});
    let r = steward.put("/api/v1/datasets/so-lieu-mo/resources/bang-chinh", json!({"schema": schema})).await;
    refused(&r, "ghi_chu_ca_nhan");
}

#[test]
fn the_command_line_refuses_it_too() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    assert!(kho_cli(&data, &["demo", "load"]).status.success());
    let file = dir.path().join("ho.json");
    let mut d = with_cccd(dataset("ho-gia-dinh", "open"));
    d["owner_agency_code"] = json!("so-y-te");
    std::fs::write(&file, d.to_string()).unwrap();
    let o = kho_cli(&data, &["dataset", "create", "--file", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("personal data") && err.contains("so_cccd"), "{err}");
}

#[tokio::test]
async fn personal_looking_columns_the_schema_does_not_mark_are_flagged_on_upload() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "noivu.canbo", "demo-noivu-canbo").await;
    let table = |level: &str, slug: &str| {
        json!({
            "slug": slug, "title": format!("Danh sách liên hệ {slug}"), "access_level": level, "frequency": "annual",
            "resources": [{"name": "lien-he", "schema": {"fields": [
                {"name": "ma", "type": "string"},
                {"name": "giay_to", "title": "Số giấy tờ", "type": "string"},
                {"name": "so_may", "title": "Số máy", "type": "string"},
                {"name": "tong_dai", "title": "Tổng đài", "dictionaryTerm": "phone", "personal": false},
                {"name": "cccd", "dictionaryTerm": "cccd"}
            ], "primaryKey": "ma"}}]
        })
    };
    let csv = "ma,Số giấy tờ,Số máy,Tổng đài,cccd\n\
               1,014085001234,0912345671,02123852345,014085001234\n\
               2,014190002345,0987654322,02123852346,014190002345\n\
               3,014078003456,0978123453,02123852347,014078003456\n\
               4,014201004567,0356789014,02123852348,014201004567\n";
    let r = steward.post("/api/v1/datasets", table("shared", "lien-he-noi-bo")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (status, u) = upload_file(&steward, "lien-he-noi-bo", "lien-he", csv.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let flagged: Vec<&str> = u["report"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] == "personal_unmarked")
        .map(|n| n["message_vi"].as_str().unwrap())
        .collect();
    // The unmarked CCCD and mobile numbers are flagged by their headers; the field with the CCCD
    // term, and the switchboard its steward marked not personal, are not.
    assert_eq!(flagged.len(), 2, "{flagged:?}");
    assert!(flagged[0].contains("'Số giấy tờ'") && flagged[0].contains("CCCD"), "{flagged:?}");
    assert!(flagged[1].contains("'Số máy'") && flagged[1].contains("lược đồ"), "{flagged:?}");
    assert!(flagged.iter().all(|m| !m.contains("Tổng đài") && !m.contains("'cccd'")), "{flagged:?}");
}

/// Shared personal data is masked for readers who declare no purpose, in every way of reading
/// it; a declared purpose reads it whole, and that read is audited with the purpose.
#[tokio::test]
async fn personal_fields_are_masked_unless_a_purpose_is_declared() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let d = with_cccd(dataset("ho-gia-dinh-chia-se", "shared"));
    let r = steward.post("/api/v1/datasets", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let table = r.body["resources"][0]["name"].as_str().unwrap().to_string();
    publish_csv(
        &steward,
        "ho-gia-dinh-chia-se",
        &table,
        "ma_xa,so_cccd,so_luong\n03979,001099012345,4\n04045,034198007654,6\n".into(),
    )
    .await;
    // The owning department reads its own data whole.
    let own = steward.get(&format!("/api/v1/datasets/ho-gia-dinh-chia-se/resources/{table}/rows")).await;
    assert_eq!(own.body["records"][0]["so_cccd"], "001099012345", "{}", own.text);
    // An official of another department, with no purpose.
    let reader = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    let rows_path = format!("/api/v1/datasets/ho-gia-dinh-chia-se/resources/{table}/rows");
    let r = reader.get(&rows_path).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["records"][0]["so_cccd"], "0010******45", "{}", r.text);
    assert_eq!(r.body["records"][0]["so_luong"], 4);
    // A filter on a hidden value finds nothing; SQL sees the masked values only.
    let r = reader.get(&format!("{rows_path}?filter=so_cccd:eq:001099012345")).await;
    assert_eq!(r.body["total"], 0, "{}", r.text);
    let sql = json!({"sql": "SELECT so_cccd FROM \"ho-gia-dinh-chia-se\" WHERE so_cccd LIKE '0341%'"});
    let r = reader.post("/api/v1/sql", sql.clone()).await;
    assert_eq!(r.body["records"][0]["so_cccd"], "0341******54", "{}", r.text);
    // Downloads, whole or filtered, are masked too.
    let data = format!("/api/v1/datasets/ho-gia-dinh-chia-se/resources/{table}/versions/latest/data?format=csv");
    let csv = reader.get(&data).await.text;
    assert!(csv.contains("0010******45") && !csv.contains("001099012345"), "{csv}");
    let csv = reader.get(&format!("{data}&filter=so_luong:gte:5")).await.text;
    assert!(csv.contains("0341******54") && !csv.contains("034198007654"), "{csv}");
    // A purpose too short to say anything is refused, in both languages.
    let r = reader.get(&format!("{rows_path}?purpose=xem")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("mục đích"), "{}", r.text);
    // With a purpose (in the address, or in the X-Kho-Purpose header, percent-encoded), the
    // values are read whole.
    let purpose = "Xác minh hồ sơ trợ cấp số 123";
    let encoded: String = form_urlencoded::byte_serialize(purpose.as_bytes()).collect();
    let r = reader.get(&format!("{rows_path}?purpose={encoded}")).await;
    assert_eq!(r.body["records"][0]["so_cccd"], "001099012345", "{}", r.text);
    // No shared cache keeps what a signed-in reader received.
    assert_eq!(r.headers.get("cache-control").and_then(|v| v.to_str().ok()), Some("private, no-store"));
    let r = reader.send(reqwest::Method::POST, "/api/v1/sql", Some(sql), &[("X-Kho-Purpose", &encoded)]).await;
    assert_eq!(r.body["records"][0]["so_cccd"], "034198007654", "{}", r.text);
    let csv = reader.get(&format!("{data}&purpose={encoded}")).await.text;
    assert!(csv.contains("001099012345"), "{csv}");
    // Each such read is in the audit log, with who, what and why.
    let admin = s.admin().await;
    let audit = admin.get("/api/v1/audit?action=personal.read&limit=50").await;
    let entries = audit.body.as_array().or(audit.body["entries"].as_array()).unwrap().clone();
    assert_eq!(entries.len(), 3, "{}", audit.text);
    let text = audit.text.clone();
    assert!(text.contains(purpose) && text.contains("so_cccd") && text.contains("congthuong.xem"), "{text}");
}

/// The ways around a mask are closed: a verbose plan's statistics, a foreign key used as an
/// existence check, and an administrator's look at an upload's raw rows.
#[tokio::test]
async fn masks_cannot_be_gone_around() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let r = steward.post("/api/v1/datasets", with_cccd(dataset("ho-gia-dinh-rieng", "shared"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let table = r.body["resources"][0]["name"].as_str().unwrap().to_string();
    publish_csv(&steward, "ho-gia-dinh-rieng", &table, "ma_xa,so_cccd,so_luong\n03979,001099012345,4\n".into()).await;
    // The owner reads whole, whatever it sends as a purpose.
    let own = steward.get(&format!("/api/v1/datasets/ho-gia-dinh-rieng/resources/{table}/rows?purpose=x")).await;
    assert_eq!(own.body["records"][0]["so_cccd"], "001099012345", "{}", own.text);

    // A verbose plan would print the stored minimum and maximum of the masked column.
    let other = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let explain = json!({"sql": "EXPLAIN VERBOSE SELECT * FROM \"ho-gia-dinh-rieng\""});
    let r = other.post("/api/v1/sql", explain.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(!r.text.contains("001099012345"), "{}", r.text);
    assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("EXPLAIN VERBOSE"), "{}", r.text);
    assert_eq!(steward.post("/api/v1/sql", explain).await.status, StatusCode::OK);

    // A foreign key to the hidden column would tell which guessed numbers the table holds.
    let guess = json!({
        "slug": "tro-cap-thu", "title": "Trợ cấp", "access_level": "shared", "frequency": "annual",
        "resources": [{"name": "tro-cap", "schema": {
            "fields": [{"name": "cccd_chu_ho", "type": "string"}, {"name": "so_tien", "type": "integer"}],
            "foreignKeys": [{"fields": "cccd_chu_ho", "reference": {"resource": format!("ho-gia-dinh-rieng/{table}"), "fields": "so_cccd"}}]
        }}]
    });
    let r = other.post("/api/v1/datasets", guess).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let (status, body) = upload_file(
        &other,
        "tro-cap-thu",
        "tro-cap",
        b"cccd_chu_ho,so_tien\n001099012345,100\n001099012346,100\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let text = body.to_string();
    assert!(text.contains("khóa ngoại không được trỏ tới") && !text.contains("001099012346"), "{text}");

    // An administrator looking at an upload's rows (its report quotes the cells) says why.
    let (_, u) =
        upload_file(&steward, "ho-gia-dinh-rieng", &table, b"ma_xa,so_cccd,so_luong\n03979,001099012399,x\n".to_vec())
            .await;
    let id = u["id"].as_str().unwrap();
    let admin = s.admin().await;
    let r = admin.get(&format!("/api/v1/uploads/{id}")).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    assert!(!r.text.contains("001099012399"), "{}", r.text);
    let r = admin
        .get(&format!(
            "/api/v1/uploads/{id}?purpose=H%E1%BB%97%20tr%E1%BB%A3%20s%E1%BB%ADa%20t%E1%BB%87p%20l%E1%BB%97i"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let audit = admin.get("/api/v1/audit?action=personal.read&limit=50").await;
    assert!(audit.text.contains("Hỗ trợ sửa tệp lỗi") && audit.text.contains("upload"), "{}", audit.text);
}
