//! Inputs made to stop or exhaust the server, sent to a real one: each is refused with a 4xx
//! naming the bound it passed, nothing stored changes, and the server goes on answering.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use kho_ingest::hostile;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// The server still runs and answers, both a plain request and a query.
async fn alive(s: &mut Server) {
    assert!(s.child.try_wait().unwrap().is_none(), "the server process ended");
    let c = s.client();
    assert_eq!(c.get("/health").await.status, StatusCode::OK);
    let r = c.post("/api/v1/sql", json!({"sql": "SELECT 40 + 2 AS x"})).await;
    assert_eq!(r.body["records"][0]["x"], 42, "{}", r.text);
}

fn chain(term: &str, op: &str, n: usize) -> String {
    vec![term; n].join(op)
}

#[tokio::test]
async fn anonymous_sql_cannot_overflow_the_stack_or_build_huge_values() {
    let mut s = Server::start(true);
    let anon = s.client();
    let attacks = [
        format!("SELECT {}", chain("1", "+", 300)),
        format!("SELECT {}", chain("1", "+", 30_000)),
        format!("SELECT 1 WHERE {}", chain("1=1", " OR ", 1500)),
        format!("SELECT {}", chain("'a'", " || ", 600)),
        chain("SELECT 1", " UNION ALL ", 2000),
        "SELECT length(repeat('x', 1000000000))".to_string(),
        "SELECT length(repeat('x', 2000000000))".to_string(),
        "SELECT length(lpad('', 2000000000, 'x'))".to_string(),
        "WITH a AS (SELECT repeat('x', 4000000) s), b AS (SELECT s || s || s || s AS s FROM a) \
         SELECT length(b.s || b.s || b.s) FROM b"
            .to_string(),
        // An allocation sized by the caller, made before any limit could see it.
        r#"SELECT approx_percentile_cont(dan_so, 0.5, 10000000000) FROM "dan-so-dien-tich-xa""#.to_string(),
        r#"SELECT approx_percentile_cont(dan_so, 0.5, 9223372036854775807) FROM "dan-so-dien-tich-xa""#.to_string(),
        // An aggregate growing one value out of many small ones.
        r#"SELECT length(string_agg(repeat('x', 1000000), ',')) FROM "dan-so-dien-tich-xa" a, "dan-so-dien-tich-xa" b"#
            .to_string(),
        "SELECT length(overlay(overlay(repeat('x', 3000000) placing repeat('x', 3000000) from 1 for 0) placing repeat('x', 3000000) from 1 for 0))".to_string(),
    ];
    for sql in &attacks {
        let started = Instant::now();
        let r = anon.post("/api/v1/sql", json!({ "sql": sql })).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {}", &sql[..40], r.text);
        assert_eq!(r.code(), "query_limit", "{}", r.text);
        assert!(started.elapsed() < Duration::from_secs(10), "{}: {:?}", &sql[..40], started.elapsed());
        // The same through CKAN's datastore_search_sql.
        let r = anon.post("/api/3/action/datastore_search_sql", json!({ "sql": sql })).await;
        assert!(r.status.is_client_error(), "{}: {}", r.status, &r.text[..r.text.len().min(300)]);
        alive(&mut s).await;
    }
    // Overflowing arithmetic is the caller's mistake, not the server's.
    for sql in [
        "SELECT -(-9223372036854775807-1)",
        "SELECT cast(-9223372036854775808 as bigint) / -1",
        "SELECT cast(1e30 as decimal(38,0)) * cast(1e30 as decimal(38,0))",
        "SELECT interval '2147483647 months' + interval '2147483647 months'",
    ] {
        let r = anon.post("/api/v1/sql", json!({ "sql": sql })).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"), "{sql}: {}", r.text);
    }
    // The message says which bound, in words a caller can act on.
    let r = anon.post("/api/v1/sql", json!({ "sql": attacks[0] })).await;
    assert!(r.body["message"].as_str().unwrap().contains("128 levels"), "{}", r.text);
    let r = anon.post("/api/v1/sql", json!({ "sql": attacks[5] })).await;
    assert!(r.body["message"].as_str().unwrap().contains("repeat()"), "{}", r.text);
    // A statement within the bounds answers.
    let r = anon.post("/api/v1/sql", json!({"sql": format!("SELECT {} AS n", chain("1", "+", 100))})).await;
    assert_eq!(r.body["records"][0]["n"], 100, "{}", r.text);
}

#[tokio::test]
async fn a_long_query_is_stopped_at_its_limit_and_others_are_answered_meanwhile() {
    let mut s = Server::start_with(true, &[("KHO_SQL_TIMEOUT_SECS", "2")]);
    let base = s.base.clone();
    let slow = tokio::spawn(async move {
        let c = Client::new(&base);
        let started = Instant::now();
        // 75 communes, six times over: 75^6 rows to count.
        let t = r#""dan-so-dien-tich-xa""#;
        let sql =
            format!("SELECT count(*) FROM {t} a, {t} b, {t} c, {t} d, {t} e WHERE a.dan_so + e.dan_so > b.dan_so");
        let r = c.post("/api/v1/sql", json!({ "sql": sql })).await;
        (r, started.elapsed())
    });
    // While it runs, pages and the API answer.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = s.client();
    let started = Instant::now();
    assert_eq!(c.page("/").await.0, StatusCode::OK);
    assert_eq!(c.get("/api/3/action/package_list").await.status, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    let (r, took) = slow.await.unwrap();
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "query_limit"), "{}", r.text);
    assert!(took < Duration::from_secs(6), "{took:?}");
    alive(&mut s).await;
}

const VALIDATE: &str = "/api/v1/datasets/co-so-y-te/resources/co-so/validate";
const UPLOADS: &str = "/api/v1/datasets/co-so-y-te/resources/co-so/uploads?file_name=data";

/// The versions of the demo health facilities table and the uploads staged on disk, to show
/// that nothing changed.
async fn stored(s: &Server, c: &Client) -> (Value, Vec<String>) {
    let versions = c.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await;
    let mut staged: Vec<String> = std::fs::read_dir(s.data_dir().join("uploads"))
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().to_string()).filter(|n| n != "incoming").collect())
        .unwrap_or_default();
    staged.sort();
    (versions.body, staged)
}

#[tokio::test]
async fn hostile_spreadsheets_are_refused_by_their_bounds_before_they_are_read() {
    let mut s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let before = stored(&s, &steward).await;
    let header = ["ma_co_so", "ten_co_so", "ma_xa", "so_giuong", "dien_thoai"];
    let head_row: String = header
        .iter()
        .enumerate()
        .map(|(i, h)| hostile::xlsx_cell(&format!("{}2", (b'A' + i as u8) as char), h))
        .collect();
    let far = format!(
        "<row r=\"1\">{}</row><row r=\"1048576\">{}</row>",
        hostile::xlsx_cell("A1", "x"),
        hostile::xlsx_cell("XFD1048576", "y")
    );
    let wide_ods = format!(
        "<table:table-row table:number-rows-repeated=\"1000000\">{}</table:table-row>",
        hostile::ods_cell("x", 16384)
    );
    let spaces = "<table:table-row><table:table-cell office:value-type=\"string\"><text:p><text:s text:c=\"2000000000\"/></text:p></table:table-cell></table:table-row>";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("xlsx A1…XFD1048576", hostile::xlsx(&far, &[]), "XFD1048576"),
        ("ods cell × 16384 × 1e6", hostile::ods(&wide_ods), "1000000"),
        ("ods text:s ×2e9", hostile::ods(spaces), "KB"),
        (
            "xls declaring 4e9 rows",
            hostile::xls(&[hostile::xls_dimensions(0, 4_000_000_000, 0, 60_000), hostile::xls_number(0, 0, 1.0)]),
            "",
        ),
        (
            "xls A1 and far",
            hostile::xls(&[hostile::xls_number(0, 0, 1.0), hostile::xls_number(65_535, 65_535, 1.0)]),
            "",
        ),
    ];
    let one_cell = hostile::xlsx(&format!("<row r=\"1\">{}</row>", hostile::xlsx_cell("A1", "x")), &[]);
    let long = "y".repeat(500_000);
    let long_merge = format!(
        "<row r=\"1\">{}</row><row r=\"3000\"><c r=\"A3000\"><v>1</v></c><c r=\"ZZ3000\"><v>2</v></c></row>",
        hostile::xlsx_cell("A1", &long)
    );
    let mut cases = cases;
    cases.push((
        "xlsx declaring 4e9 shared strings",
        hostile::with_part(
            &one_cell,
            "xl/sharedStrings.xml",
            "<sst xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\" count=\"4000000000\" uniqueCount=\"4000000000\"><si><t>a</t></si></sst>",
        ),
        "",
    ));
    cases.push(("xlsx merging 500 KB over 2 million cells", hostile::xlsx(&long_merge, &["A1:ZZ3000"]), ""));
    cases.push((
        "xlsx cell ZZZZZZZZ1",
        hostile::xlsx(&format!("<row r=\"1\">{}</row>", hostile::xlsx_cell("ZZZZZZZZ1", "x")), &[]),
        "",
    ));
    for (what, bytes, names) in cases {
        assert!(bytes.len() < 32_000 || what.contains("500 KB"), "{what}: {} bytes", bytes.len());
        for url in [VALIDATE, UPLOADS] {
            let started = Instant::now();
            let r = steward.post_file(url, bytes.clone()).await;
            assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file"), "{what}: {}", r.text);
            assert!(r.text.contains(names), "{what}: {}", r.text);
            assert!(started.elapsed() < Duration::from_secs(10), "{what}: {:?}", started.elapsed());
        }
        alive(&mut s).await;
    }
    // Any steward can merge the whole sheet: that is one cell over all the data, answered at once.
    let rows = format!(
        "<row r=\"1\">{}</row><row r=\"2\">{head_row}</row><row r=\"3\">{}{}{}{}{}</row>",
        hostile::xlsx_cell("A1", "Cơ sở y tế quý 3/2025"),
        hostile::xlsx_cell("A3", "BV77"),
        hostile::xlsx_cell("B3", "Trạm y tế"),
        hostile::xlsx_cell("C3", "04045"),
        hostile::xlsx_cell("D3", "12"),
        hostile::xlsx_cell("E3", "0912345678"),
    );
    let started = Instant::now();
    let r = steward.post_file(&format!("{VALIDATE}?header_row=2"), hostile::xlsx(&rows, &["A1:XFD1048576"])).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_file"), "{}", r.text);
    // A title merged over the whole first row covers the columns the data has.
    let started = Instant::now();
    let r = steward.post_file(&format!("{VALIDATE}?header_row=2"), hostile::xlsx(&rows, &["A1:XFD1"])).await;
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["rows"], 1, "{}", r.text);
    assert_eq!(stored(&s, &steward).await, before, "nothing was stored");
    alive(&mut s).await;
}

#[tokio::test]
async fn csv_bounds_name_the_line_and_the_bound() {
    let mut s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let viewer = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    let before = stored(&s, &steward).await;
    let head = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n";
    // A quote opened on line 3 and never closed.
    let unclosed = format!(
        "{head}BV01,Bệnh viện,03979,5,0912345678\nBV02,\"Trạm y tế,04045,5,0912345678\nBV03,x,04045,5,0912345678\n"
    );
    let r = steward.post_file(UPLOADS, unclosed.into_bytes()).await;
    assert_eq!(r.code(), "invalid_file", "{}", r.text);
    assert_eq!(r.body["details"][0]["path"], "file:line 3", "{}", r.text);
    assert!(r.body["details"][0]["message"].as_str().unwrap().contains("ngoặc kép"), "{}", r.text);
    // A NUL character in a text cell.
    let nul = format!("{head}BV01,Bệnh\0viện,03979,5,0912345678\n");
    let r = steward.post_file(UPLOADS, nul.into_bytes()).await;
    assert_eq!((r.code(), &r.body["details"][0]["path"]), ("invalid_file", &json!("file:line 2")), "{}", r.text);
    // 100,000 columns: refused at once, to a steward uploading and to a viewer inferring.
    let wide: String = (0..100_000).map(|i| format!("c{i}")).collect::<Vec<_>>().join(",");
    let wide = format!("{wide}\n{}\n", vec!["1"; 100_000].join(","));
    for (who, url) in [(&steward, UPLOADS), (&viewer, "/api/v1/schema/infer")] {
        let started = Instant::now();
        let r = who.post_file(url, wide.clone().into_bytes()).await;
        assert_eq!(r.code(), "invalid_file", "{url}: {}", r.text);
        assert!(r.text.contains("2,000"), "{}", r.text);
        assert!(started.elapsed() < Duration::from_secs(5), "{url}: {:?}", started.elapsed());
    }
    assert_eq!(stored(&s, &steward).await, before, "nothing was stored");
    alive(&mut s).await;
}

/// The triples of a Turtle document, or why it does not parse.
fn turtle(text: &str) -> Result<Vec<oxrdf::Quad>, String> {
    oxrdfio::RdfParser::from_format(oxrdfio::RdfFormat::Turtle)
        .for_slice(text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn fields_with_a_format_are_checked_and_nothing_injects_into_the_catalog() {
    // It writes into the SQLite file what kho itself would refuse.
    let s = Server::embedded(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let evil = "x@y.vn> . <http://kho.example/dataset/other> <http://purl.org/dc/terms/title> \"pwned\" . <mailto:a";
    let mut d = dataset("dich-benh", "open");
    d["contact_email"] = json!(evil);
    d["license"] = json!("X> <http://purl.org/dc/terms/title> \"pwned\" ; <http://e");
    d["title"] = json!("Dịch bệnh\u{0}\u{FFFE}");
    let r = steward.post("/api/v1/datasets", d.clone()).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{}", r.text);
    let fields: Vec<&str> = r.body["details"].as_array().unwrap().iter().map(|d| d["path"].as_str().unwrap()).collect();
    assert_eq!(fields, ["contact_email", "license", "title"], "{}", r.text);
    d["title"] = json!("Dịch bệnh");
    // Written properly, they are taken, the licence in its canonical spelling.
    d["contact_email"] = json!("yte@sonla.gov.vn");
    d["license"] = json!("cc-by-4.0");
    let r = steward.post("/api/v1/datasets", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["license"], "CC-BY-4.0");
    let id = r.body["id"].as_str().unwrap().to_string();

    // A value stored before these checks existed reaches the writers as it is.
    let dir = s.stop();
    let url = format!("sqlite://{}", db_path(&dir.path().join("data")).display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query(
        "UPDATE datasets SET body = json_set(body, '$.contact_email', ?, '$.license', ?, '$.title', ?) WHERE id = ?",
    )
    .bind(evil)
    .bind("X> <http://purl.org/dc/terms/title> \"pwned\" ; <http://e")
    .bind("Dịch bệnh\u{0}\u{1}\u{FFFE}")
    .bind(&id)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let s = Server::start_in(dir, false, &[]);
    let ttl = s.client().get("/catalog.ttl").await.text;
    let quads = turtle(&ttl).unwrap_or_else(|e| panic!("the catalog does not parse: {e}\n{ttl}"));
    assert!(quads.iter().all(|q| q.object.to_string() != "\"pwned\""), "{ttl}");
    assert!(quads.iter().all(|q| !q.subject.to_string().contains("/dataset/other")), "{ttl}");
    let ttl = s.client().get("/dataset/dich-benh.ttl").await.text;
    assert!(turtle(&ttl).is_ok(), "{ttl}");
    // RDF/XML cannot carry a NUL at all, escaped or not: the catalog leaves it out.
    let xml = s.client().get("/catalog.rdf").await.text;
    let parsed = oxrdfio::RdfParser::from_format(oxrdfio::RdfFormat::RdfXml)
        .for_slice(xml.as_bytes())
        .collect::<Result<Vec<_>, _>>();
    assert!(parsed.is_ok(), "{parsed:?}");
}

#[tokio::test]
async fn the_account_rules_hold_on_the_api_too() {
    let s = Server::start(true);
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let center = admin.get("/api/v1/agencies").await.body.as_array().unwrap()[0]["id"].as_i64().unwrap();
    // Common, patterned or personal passwords are refused, in Vietnamese too; nothing is created.
    for weak in ["1111111111", "matkhau123", "quantrimoi2026", "Password123!", "ngan"] {
        let r = admin
            .post(
                "/api/v1/users",
                json!({"username": "qtv.moi", "display_name": "Quản trị mới", "agency_id": center, "role": "admin", "password": weak}),
            )
            .await;
        assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{weak}: {}", r.text);
        assert_eq!(r.body["details"][0]["path"], "password", "{}", r.text);
        let vi = r.body["details"][0]["message_vi"].as_str().unwrap();
        assert!(vi.contains("dễ đoán") || vi.contains("10 ký tự"), "{weak}: {vi}");
    }
    assert!(!admin.get("/api/v1/users").await.text.contains("qtv.moi"));
    // A new administrator with a one-time password.
    let r = admin
        .post(
            "/api/v1/users",
            json!({"username": "qtv.moi", "display_name": "Quản trị mới", "agency_id": center, "role": "admin", "password": "mot-lan-duy-nhat"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let new_id = r.body["id"].as_i64().unwrap();
    let pending = Client::signed_in(&s.base, "qtv.moi", "mot-lan-duy-nhat").await;
    let me = pending.get("/api/v1/me").await;
    assert_eq!(me.body["user"]["must_change_password"], true, "{}", me.text);
    for (method, path, body) in [
        (reqwest::Method::POST, "/api/v1/tokens", Some(json!({"name": "mãi mãi"}))),
        (reqwest::Method::GET, "/api/v1/audit", None),
        (reqwest::Method::GET, "/api/v1/users", None),
        (reqwest::Method::GET, "/api/v1/datasets", None),
    ] {
        let r = pending.send(method, path, body, &[]).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "password_change_required"), "{path}: {}", r.text);
    }
    // A token someone else issued for the account does not work until the password is changed.
    let r = admin.post("/api/v1/tokens", json!({"name": "cho qtv.moi", "user_id": new_id})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let issued = Client::with_token(&s.base, r.body["secret"].as_str().unwrap());
    let r = issued.get("/api/v1/audit").await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "password_change_required"), "{}", r.text);
    // The new password is held to the same rules.
    let r = pending
        .post("/api/v1/me/password", json!({"current_password": "mot-lan-duy-nhat", "new_password": "qtv.moi.2026"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{}", r.text);
    assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("tên tài khoản"), "{}", r.text);
    // Changing it through the API works and lifts both.
    let r = pending
        .post(
            "/api/v1/me/password",
            json!({"current_password": "mot-lan-duy-nhat", "new_password": "mat-khau-rieng-2026"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut pending = pending;
    pending.csrf = r.body["csrf_token"].as_str().map(str::to_string);
    assert_eq!(pending.get("/api/v1/audit").await.status, StatusCode::OK);
    assert_eq!(issued.get("/api/v1/audit").await.status, StatusCode::OK);

    // A forgotten password: the administrator resets it to a one-time password, which signs
    // in once and must be replaced; the audit log finds the reset by person, kind and day.
    let r = admin.post(&format!("/api/v1/users/{new_id}/password-reset"), json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let one_time = r.body["password"].as_str().unwrap().to_string();
    assert_eq!(r.body["user"]["must_change_password"], true);
    assert_eq!(pending.get("/api/v1/me").await.body["user"], Value::Null, "the old session ended");
    let again = Client::signed_in(&s.base, "qtv.moi", &one_time).await;
    assert_eq!(again.get("/api/v1/audit").await.code(), "password_change_required");
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let me = admin.get("/api/v1/me").await.body["user"]["id"].as_i64().unwrap();
    let log = admin
        .get(&format!("/api/v1/audit?user_id={me}&object_type=user&action=user.update&since={today}&until={today}"))
        .await;
    assert_eq!(log.status, StatusCode::OK, "{}", log.text);
    let entries = log.body.as_array().unwrap();
    assert!(!entries.is_empty() && entries.iter().all(|e| e["action"] == "user.update" && e["object_type"] == "user"));
    let object = new_id.to_string();
    assert!(entries.iter().any(|e| e["object_id"].as_str() == Some(object.as_str())));
    let r = admin.get("/api/v1/audit?since=hom-qua").await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"), "{}", r.text);
    let tomorrow = time::OffsetDateTime::now_utc().date().next_day().unwrap().to_string();
    assert_eq!(admin.get(&format!("/api/v1/audit?since={tomorrow}")).await.body, json!([]));

    // A steward with two sessions and two tokens, one of them read-only.
    let a = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let b = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let viewer_token = a.post("/api/v1/tokens", json!({"name": "chỉ đọc", "role": "viewer"})).await;
    let viewer_token = Client::with_token(&s.base, viewer_token.body["secret"].as_str().unwrap());
    let full_token = a.post("/api/v1/tokens", json!({"name": "đồng bộ"})).await;
    let full_token = Client::with_token(&s.base, full_token.body["secret"].as_str().unwrap());
    // A token, even of the account, cannot change the password.
    let r = viewer_token
        .post("/api/v1/me/password", json!({"current_password": "demo-yte-canbo", "new_password": "chiem-quyen-2026"}))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.text);
    let r = a
        .post(
            "/api/v1/me/password",
            json!({"current_password": "demo-yte-canbo", "new_password": "mat-khau-moi-yte-2026", "revoke_tokens": true}),
        )
        .await;
    assert_eq!((r.status, &r.body["tokens_revoked"]), (StatusCode::OK, &json!(2)), "{}", r.text);
    // The other session has ended; so have the tokens; this one goes on in a renewed session.
    assert_eq!(b.get("/api/v1/me").await.body["user"], Value::Null);
    assert_eq!(viewer_token.get("/api/v1/me").await.code(), "token_revoked");
    assert_eq!(full_token.get("/api/v1/me").await.code(), "token_revoked");
    assert_eq!(a.get("/api/v1/me").await.body["user"]["username"], "yte.canbo");

    // Guessing the current password from a stolen session is throttled like signing in.
    let c = Client::signed_in(&s.base, "noivu.canbo", "demo-noivu-canbo").await;
    let mut codes = Vec::new();
    for i in 0..6 {
        let r = c
            .post(
                "/api/v1/me/password",
                json!({"current_password": format!("doan-{i}-sai"), "new_password": "chiem-quyen-2026"}),
            )
            .await;
        codes.push(r.code().to_string());
    }
    assert_eq!(codes[..5], ["invalid_credentials"; 5], "{codes:?}");
    assert_eq!(codes[5], "too_many_attempts");
    // Even the right password waits now, and the password did not change.
    let r = c
        .post(
            "/api/v1/me/password",
            json!({"current_password": "demo-noivu-canbo", "new_password": "chiem-quyen-2026"}),
        )
        .await;
    assert_eq!(r.code(), "too_many_attempts", "{}", r.text);
    assert!(r.headers.contains_key("retry-after"));
    let r = s.client().sign_in("noivu.canbo", "chiem-quyen-2026").await;
    assert_ne!(r.status, StatusCode::OK);
}

/// The CSV data rows of a download (after the header), as text.
fn data_lines(text: &str) -> Vec<String> {
    text.trim_start_matches('\u{feff}').lines().skip(1).map(str::to_string).collect()
}

#[tokio::test]
async fn cells_that_would_run_as_formulas_are_neutralised_in_every_csv_people_open() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    // The demo's health facilities are shared data: read as a signed-in user.
    let reader = Client::signed_in(&s.base, "congthuong.xem", "demo-congthuong-xem").await;
    let csv = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n\
               BV01,\"=HYPERLINK(\"\"http://lua.example\"\",\"\"Bấm vào đây\"\")\",04045,10,0912345678\n\
               BV02,+cmd|' /C calc'!A0,04045,8,0912345678\n\
               BV03,@SUM(1+1),04045,12,0912345678\n\
               BV04,-2+3+cmd|' /C calc'!A0,04045,7,0912345678\n\
               BV05,Trạm y tế,04045,=1+1,0912345678\n";
    let (status, u) = upload_file(&steward, "co-so-y-te", "co-so", csv.as_bytes().to_vec()).await;
    assert_eq!(status, StatusCode::CREATED, "{u}");
    let id = u["id"].as_str().unwrap();
    // The problems report quotes the bad cell: neutralised.
    let report = steward.get(&format!("/api/v1/uploads/{id}/report?format=csv")).await.text;
    assert!(report.contains(",'=1+1,"), "{report}");
    // The quarantine file the steward fixes in Excel.
    let q = steward.get(&format!("/api/v1/uploads/{id}/quarantine")).await.text;
    assert!(q.contains("BV05,Trạm y tế,04045,'=1+1,"), "{q}");
    let r = steward.post(&format!("/api/v1/uploads/{id}/publish"), json!({"skip_invalid": true})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);

    let base = "/api/v1/datasets/co-so-y-te/resources/co-so/versions/latest/data?format=csv";
    let safe = data_lines(&reader.get(base).await.text);
    assert!(safe.iter().any(|l| l.starts_with("BV01,\"'=HYPERLINK(")), "{safe:?}");
    assert!(safe.iter().any(|l| l.starts_with("BV02,'+cmd|")), "{safe:?}");
    assert!(safe.iter().any(|l| l.starts_with("BV03,'@SUM(1+1)")), "{safe:?}");
    assert!(safe.iter().any(|l| l.starts_with("BV04,'-2+3")), "{safe:?}");
    let raw = data_lines(&reader.get(&format!("{base}&raw=true")).await.text);
    assert!(raw.iter().any(|l| l.starts_with("BV02,+cmd|")), "{raw:?}");
    // The same in CKAN's datastore_search as CSV (CKAN's API takes keys, not cookies).
    let key = reader.post("/api/v1/tokens", json!({"name": "ckan"})).await.body["secret"].as_str().unwrap().to_string();
    let reader = Client::with_token(&s.base, &key);
    let resource = reader.get("/api/3/action/package_show?id=co-so-y-te").await.body["result"]["resources"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let ckan = reader.get(&format!("/api/3/action/datastore_search?resource_id={resource}&records_format=csv")).await;
    let records = ckan.body["result"]["records"].as_str().unwrap_or_default().to_string();
    assert!(records.contains("'@SUM(1+1)") && !records.contains(",@SUM"), "{}", ckan.text);
    let ckan =
        reader.get(&format!("/api/3/action/datastore_search?resource_id={resource}&records_format=csv&raw=true")).await;
    assert!(ckan.body["result"]["records"].as_str().unwrap_or_default().contains(",@SUM(1+1)"), "{}", ckan.text);

    // A column may not be named like a formula; an extra column in a file is neutralised in
    // the quarantine file that repeats the file's header.
    let r = steward
        .put(
            "/api/v1/datasets/co-so-y-te/resources/t1",
            json!({"title": "x", "schema": {"fields": [{"name": "=HYPERLINK(\"http://e\")", "type": "string"}]}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text);
    let extra = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai,@cmd\nBV09,x,04045,-1,0912345678,1\n";
    let (_, u) = upload_file(&steward, "co-so-y-te", "co-so", extra.as_bytes().to_vec()).await;
    let q = steward.get(&format!("/api/v1/uploads/{}/quarantine", u["id"].as_str().unwrap())).await.text;
    assert!(q.starts_with("ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai,'@cmd,"), "{q}");
    let _ = steward.post(&format!("/api/v1/uploads/{}/reject", u["id"].as_str().unwrap()), json!({})).await;
    // kho's own neutralised file loads back unchanged: a new version with nothing changed.
    let safe_file = reader.get(base).await.text;
    let (status, u) = upload_file(&steward, "co-so-y-te", "co-so", safe_file.into_bytes()).await;
    assert_eq!((status, &u["invalid_rows"]), (StatusCode::CREATED, &json!(0)), "{u}");
    let r = steward.post(&format!("/api/v1/uploads/{}/publish", u["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(
        (&r.body["rows_changed"], &r.body["rows_added"], &r.body["rows_removed"]),
        (&json!(0), &json!(0), &json!(0)),
        "{}",
        r.text
    );
    assert_eq!(data_lines(&reader.get(&format!("{base}&raw=true")).await.text), raw);
}

#[tokio::test]
async fn behind_a_proxy_the_client_is_who_the_proxy_saw_not_who_it_says_it_is() {
    let s = Server::start_with(
        true,
        &[("KHO_TRUST_PROXY", "true"), ("KHO_TRUSTED_PROXIES", "127.0.0.2"), ("KHO_ANONYMOUS_API_PER_MINUTE", "5")],
    );
    let nginx = Nginx::start(&[&s.base]);
    // The visitor reaches nginx from 127.0.0.3.
    let visitor =
        reqwest::Client::builder().local_address("127.0.0.3".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let mut statuses = Vec::new();
    for i in 0..8 {
        let r = visitor
            .get(format!("{}/api/3/action/package_list", nginx.base))
            .header("x-forwarded-for", format!("10.9.8.{i}"))
            .send()
            .await
            .unwrap();
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429, 429], "a new made-up address each time changes nothing");
    // An address that is not one still counts, against the proxy's last hop.
    let r = visitor
        .get(format!("{}/api/3/action/package_list", nginx.base))
        .header("x-forwarded-for", "ồ không")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Straight to kho (not through the proxy), the header is not believed either.
    let direct =
        reqwest::Client::builder().local_address("127.0.0.4".parse::<std::net::IpAddr>().unwrap()).build().unwrap();
    let r =
        direct.get(s.url("/api/3/action/package_list")).header("x-forwarded-for", "127.0.0.3").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "127.0.0.4 has its own allowance");
    // The audit log records where a failed sign-in came from: the visitor, not the claim.
    let r = visitor
        .post(format!("{}/api/v1/auth/sign-in", nginx.base))
        .header("x-forwarded-for", "6.6.6.6")
        .json(&json!({"username": "admin", "password": "sai-mat-khau"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let admin = s.admin().await;
    let audit = admin.get("/api/v1/audit?limit=20").await;
    let failed =
        audit.body.as_array().unwrap().iter().find(|e| e["action"] == "auth.sign_in" && e["outcome"] == "failed");
    assert_eq!(failed.map(|e| e["ip"].clone()), Some(json!("127.0.0.3")), "{}", audit.text);
}

#[tokio::test]
async fn links_use_the_public_address_and_a_restart_clears_what_a_stopped_check_left() {
    let s = Server::start_with(true, &[("KHO_PUBLIC_URL", "https://dulieu.sonla.gov.vn/")]);
    let anon = s.client();
    let r = anon.send(reqwest::Method::GET, "/catalog.ttl", None, &[("host", "lua-dao.example")]).await;
    assert!(r.text.contains("<https://dulieu.sonla.gov.vn/dataset/"), "{}", &r.text[..r.text.len().min(2000)]);
    assert!(!r.text.contains("lua-dao"));
    let r = anon
        .send(
            reqwest::Method::GET,
            "/api/3/action/package_show?id=dan-so-dien-tich-tinh",
            None,
            &[("host", "lua-dao.example")],
        )
        .await;
    assert!(!r.text.contains("lua-dao") && r.text.contains("https://dulieu.sonla.gov.vn/"), "{}", r.text);

    // An upload waiting for a decision survives a restart; what a stopped check left does not.
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let (status, waiting) = upload_file(
        &steward,
        "co-so-y-te",
        "co-so",
        b"ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV09,Tr\xe1\xba\xa1m,04045,3,0912345678\n".to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{waiting}");
    let waiting = waiting["id"].as_str().unwrap().to_string();
    let dir = s.stop();
    let uploads = dir.path().join("data").join("uploads");
    let half = uploads.join("0195a0c0-0000-7000-8000-00000000beef");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("source.csv"), "ma_co_so\nBV1\n").unwrap();
    let scratch = uploads.join("convert-0195a0c0-0000-7000-8000-000000000001.csv");
    std::fs::write(&scratch, "x").unwrap();
    let s = Server::start_in(dir, false, &[]);
    assert!(!half.exists() && !scratch.exists());
    assert!(uploads.join(&waiting).exists());
    assert!(s.stdout.iter().any(|l| l.contains("removed")), "{:?}", s.stdout);
    let r = s.admin().await.get(&format!("/api/v1/uploads/{waiting}")).await;
    assert_eq!(r.body["status"], "checked", "{}", r.text);
}

#[tokio::test]
async fn a_backup_of_the_database_and_the_objects_restores_a_serving_instance() {
    // The file-by-file backup of the embedded layout.
    let s = Server::embedded(true);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let head = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\n";
    publish_csv(&steward, "co-so-y-te", "co-so", format!("{head}BV01,Bệnh viện tỉnh,04045,500,0912345678\n")).await;
    let rows = "/api/v1/datasets/co-so-y-te/resources/co-so/rows";
    let backed_up = steward.get(rows).await.body["records"].clone();
    // As the README says, while kho runs: the database first, then the objects.
    let backup = tempfile::tempdir().unwrap();
    let db = s.data_dir().join("kho.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(".backup {}", backup.path().join("kho.db").display()))
        .output()
        .expect("sqlite3 (Debian: apt-get install sqlite3)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(s.data_dir().join("objects"))
        .arg(backup.path().join("objects"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // A version published after the backup is not in it.
    publish_csv(&steward, "co-so-y-te", "co-so", format!("{head}BV02,Trạm y tế,04045,5,0912345678\n")).await;
    drop(s);

    let restored = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(restored.path().join("data")).unwrap();
    std::fs::rename(backup.path().join("kho.db"), restored.path().join("data").join("kho.db")).unwrap();
    std::fs::rename(backup.path().join("objects"), restored.path().join("data").join("objects")).unwrap();
    pin_embedded(&restored.path().join("data"));
    let s = Server::start_in(restored, false, &[]);
    let steward = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let r = steward.get(rows).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["records"], backed_up);
    let versions = steward.get("/api/v1/datasets/co-so-y-te/resources/co-so/versions").await;
    assert_eq!(versions.body.as_array().map(Vec::len), Some(1), "{}", versions.text);
}
