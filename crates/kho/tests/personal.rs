//! Personal data stays out of open data (Law 91/2025/QH15): a field whose dictionary term is
//! personal (CCCD, phone, e-mail, date of birth, names, addresses) or that is marked personal
//! cannot be in an open dataset, however it would get there.

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
