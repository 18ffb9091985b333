//! The server-rendered pages, driven as a browser without JavaScript would: forms, cookies,
//! CSRF tokens and redirects.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use reqwest::StatusCode;

async fn signed_in_browser(s: &Server, user: &str, password: &str) -> Client {
    let c = s.client();
    let (status, html) = c.page("/sign-in").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"vi\">") && html.contains("Đăng nhập"));
    let csrf = csrf_of(&html);
    assert_eq!(csrf.len(), 32);
    let r = c
        .form("/sign-in", &[("_csrf", &csrf), ("username", user), ("password", password), ("next", "/datasets")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap_or_default());
    assert_eq!(r.headers()["location"], "/datasets");
    c
}

#[tokio::test]
async fn pages_render_in_both_languages() {
    let s = Server::start(true);
    let c = s.client();
    for path in [
        "/",
        "/datasets",
        "/dictionary",
        "/dictionary/cccd",
        "/agencies",
        "/admin-units",
        "/admin-units?q=son+la",
        "/datasets/dan-so-dien-tich-tinh",
        "/sign-in",
    ] {
        let (status, html) = c.page(path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(html.contains("lang=\"vi\""), "{path}");
        assert!(!html.contains("⟨?⟩"), "{path} shows a missing text");
    }
    let (_, html) = c.page("/?lang=en").await;
    assert!(html.contains("lang=\"en\"") && html.contains("shared data warehouse"));
    // The choice is remembered.
    let (_, html) = c.page("/dictionary").await;
    assert!(html.contains("Shared data dictionary"));
    // Non-open datasets do not exist for anonymous visitors; admin pages send to sign-in.
    assert_eq!(c.page("/datasets/co-so-y-te").await.0, StatusCode::NOT_FOUND);
    let r = c.http.get(s.url("/admin/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/sign-in?next="));
}

#[tokio::test]
async fn steward_creates_a_dataset_through_the_form() {
    let s = Server::start(true);
    let c = signed_in_browser(&s, "yte.canbo", "demo-yte-canbo").await;
    let (status, html) = c.page("/datasets/new").await;
    assert_eq!(status, StatusCode::OK);
    let csrf = csrf_of(&html);

    // Without the CSRF token the form is refused and nothing is created.
    let r = c
        .form("/datasets/new", &[("title", "Trạm y tế xã"), ("access_level", "shared"), ("frequency", "annual")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A schema that references an unknown type comes back with the problem named.
    let fields = |ty: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("title", "Trạm y tế xã".to_string()),
            ("access_level", "shared".to_string()),
            ("frequency", "annual".to_string()),
            ("spatial", "14".to_string()),
            ("resource_title", "Danh sách trạm".to_string()),
            ("field_name", "ma_xa".to_string()),
            ("field_title", "Mã xã".to_string()),
            ("field_type", String::new()),
            ("field_term", "commune_code".to_string()),
            ("field_required", "yes".to_string()),
            ("field_name", "so_bac_si".to_string()),
            ("field_title", "Số bác sĩ".to_string()),
            ("field_type", ty.to_string()),
            ("field_term", String::new()),
            ("field_required", "no".to_string()),
            ("field_name", String::new()),
            ("field_title", String::new()),
            ("field_type", String::new()),
            ("field_term", String::new()),
            ("field_required", "no".to_string()),
        ]
    };
    let bad: Vec<(&str, String)> = fields("so-nguyen");
    let r = c.http.post(s.url("/datasets/new")).form(&bad).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(html.contains("Lược đồ bảng (Table Schema) không hợp lệ"), "{html}");
    assert!(html.contains("resources[0].schema.fields[1].type"));
    assert!(html.contains("value=\"Trạm y tế xã\""), "the form keeps what was typed");

    let good = fields("integer");
    let r = c.http.post(s.url("/datasets/new")).form(&good).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/datasets/tram-y-te-xa");
    let (status, html) = c.page("/datasets/tram-y-te-xa").await;
    assert_eq!(status, StatusCode::OK);
    // The field's term by its title, its type in words; the term's code only in the link.
    assert!(html.contains("Mã đơn vị hành chính cấp xã") && html.contains("so_bac_si"), "{html}");
    assert!(html.contains("Số nguyên") && !html.contains("commune_code@1"), "{html}");
    let (_, list) = c.page("/").await;
    assert!(list.contains("Trạm y tế xã"));

    // The API sees the same dataset, with the schema as built by the form.
    let api = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let d = api.get("/api/v1/datasets/tram-y-te-xa").await;
    assert_eq!(d.body["resources"][0]["schema"]["fields"][0]["constraints"]["required"], true);
    assert_eq!(d.body["resources"][0]["schema"]["fields"][1]["type"], "integer");

    // Another agency's steward cannot open the edit form.
    let other = signed_in_browser(&s, "taichinh.canbo", "demo-taichinh-canbo").await;
    assert_eq!(other.page("/datasets/tram-y-te-xa/edit").await.0, StatusCode::FORBIDDEN);

    // A table and then the dataset can be deleted from the pages; the history stays.
    let (_, html) = c.page("/datasets/tram-y-te-xa").await;
    let csrf = csrf_of(&html);
    let r = c.form("/datasets/tram-y-te-xa/resources/danh-sach-tram/delete", &[("_csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/datasets/tram-y-te-xa").await.body["resources"].as_array().unwrap().len(), 0);
    let refused = other
        .form("/datasets/tram-y-te-xa/delete", &[("_csrf", &csrf_of(&other.page("/").await.1)), ("revision", "2")])
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let r = c.form("/datasets/tram-y-te-xa/delete", &[("_csrf", &csrf), ("revision", "2")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(api.get("/api/v1/datasets/tram-y-te-xa").await.status, StatusCode::NOT_FOUND);

    // Sign-out needs the token too, then the session is gone.
    let (_, html) = c.page("/").await;
    let r = c.form("/sign-out", &[("_csrf", &csrf_of(&html))]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(c.http.get(s.url("/datasets/new")).send().await.unwrap().status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn wrong_password_on_the_form_says_so_in_vietnamese() {
    let s = Server::start(false);
    let c = s.client();
    let (_, html) = c.page("/sign-in").await;
    let r =
        c.form("/sign-in", &[("_csrf", &csrf_of(&html)), ("username", "admin"), ("password", "sai-mat-khau")]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.text().await.unwrap().contains("Tên đăng nhập hoặc mật khẩu không đúng"));
    let r = c.form("/sign-in", &[("_csrf", "forged"), ("username", "admin"), ("password", ADMIN_PASSWORD)]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_password_set_by_someone_else_must_be_changed_first() {
    let s = Server::start(true);
    let admin = Client::signed_in(&s.base, "admin", ADMIN_PASSWORD).await;
    let agency = admin.get("/api/v1/agencies/so-y-te").await.body["id"].as_i64().unwrap();
    let r = admin
        .post(
            "/api/v1/users",
            serde_json::json!({"username": "moi.vao", "display_name": "Người mới", "agency_id": agency, "role": "steward", "password": "mat-khau-tam-thoi"}),
        )
        .await;
    assert_eq!(r.body["must_change_password"], true);
    let c = signed_in_browser_to(&s, "moi.vao", "mat-khau-tam-thoi", "/account").await;
    // Every other page sends the user back to the account page.
    let r = c.http.get(s.url("/datasets")).send().await.unwrap();
    assert_eq!((r.status(), r.headers()["location"].to_str().unwrap()), (StatusCode::SEE_OTHER, "/account"));
    let (_, html) = c.page("/account").await;
    assert!(html.contains("Mật khẩu này do người khác đặt"));
    let csrf = csrf_of(&html);
    let r = c
        .form(
            "/account",
            &[
                ("_csrf", &csrf),
                ("action", "password"),
                ("current_password", "mat-khau-tam-thoi"),
                ("new_password", "mat-khau-cua-toi-2026"),
                ("confirm_password", "mat-khau-cua-toi-2026"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (status, html) = c.page("/datasets").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Bộ dữ liệu"));
}

async fn signed_in_browser_to(s: &Server, user: &str, password: &str, expect: &str) -> Client {
    let c = s.client();
    let (_, html) = c.page("/sign-in").await;
    let r = c.form("/sign-in", &[("_csrf", &csrf_of(&html)), ("username", user), ("password", password)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let next = r.headers()["location"].to_str().unwrap().to_string();
    let r = c.http.get(s.url(&next)).send().await.unwrap();
    let landed =
        if r.status() == StatusCode::SEE_OTHER { r.headers()["location"].to_str().unwrap().to_string() } else { next };
    assert_eq!(landed, expect);
    c
}

#[tokio::test]
async fn a_steward_uploads_fixes_and_publishes_through_the_pages() {
    let s = Server::start(true);
    let c = signed_in_browser(&s, "yte.canbo", "demo-yte-canbo").await;
    let (status, html) = c.page("/datasets/co-so-y-te/resources/co-so/upload").await;
    assert_eq!(status, StatusCode::OK);
    // The columns it expects, by their titles, with their names.
    assert!(
        html.contains("Tải dữ liệu lên") && html.contains("Mã cơ sở <code class=\"muted\">ma_co_so</code>"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let send = |csv: &'static str, csrf: String| {
        let form = reqwest::multipart::Form::new().text("_csrf", csrf).part(
            "file",
            reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
                .file_name("co-so.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
        c.http.post(s.url("/datasets/co-so-y-te/resources/co-so/upload")).multipart(form).send()
    };
    // Without the token nothing is stored.
    let r = send("ma_co_so\n1\n", "forged".into()).await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // A file that is not UTF-8 is explained on the form.
    let form = reqwest::multipart::Form::new()
        .text("_csrf", csrf.clone())
        .part("file", reqwest::multipart::Part::bytes(b"ten\nH\xe0 N\xf4i\n".to_vec()).file_name("x.csv"));
    let r = c.http.post(s.url("/datasets/co-so-y-te/resources/co-so/upload")).multipart(form).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("tệp không phải UTF-8"));

    let bad = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV1,Bệnh viện,03979,10,0912345678\nBV2,Trạm,00001,x,0912345678\n";
    let r = send(bad, csrf.clone()).await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let report_url = r.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = c.page(&report_url).await;
    assert!(html.contains("Kết quả kiểm tra") && html.contains("đã bị bãi bỏ"), "{html}");
    assert!(html.contains("Chỉ xuất bản các dòng hợp lệ"));
    let (status, report_csv) = c.page(&format!("{report_url}/report.csv")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(report_csv.contains("abolished_code"));
    // Discard it, then upload the fixed file and publish.
    let r = c.form(&report_url, &[("_csrf", &csrf), ("action", "reject")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let good = "ma_co_so,ten_co_so,ma_xa,so_giuong,dien_thoai\nBV1,Bệnh viện,03979,10,0912345678\nBV2,Trạm,00097,5,0912345678\n";
    let r = send(good, csrf.clone()).await.unwrap();
    let report_url = r.headers()["location"].to_str().unwrap().to_string();
    let (_, html) = c.page(&report_url).await;
    assert!(html.contains("Tất cả các dòng đều hợp lệ"));
    let r = c.form(&report_url, &[("_csrf", &csrf), ("action", "publish")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = c.page("/datasets/co-so-y-te").await;
    assert!(html.contains("Các phiên bản dữ liệu") && html.contains("+2 −0 ~0"), "{html}");
    assert!(html.contains("/versions/1/data?format=csv"));
}

fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    html.split(&marker).nth(1).and_then(|s| s.split('"').next()).unwrap_or("").to_string()
}

#[tokio::test]
async fn a_steward_reviews_a_schema_inferred_from_a_file_before_saving() {
    let s = Server::start(true);
    let c = signed_in_browser(&s, "yte.canbo", "demo-yte-canbo").await;
    let (status, html) = c.page("/datasets/co-so-y-te/resources/new").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Gợi ý lược đồ từ một tệp dữ liệu"), "{html}");
    let csrf = csrf_of(&html);
    let csv = "ma_xa,ten_tram,so_tien,ngay_lap,so_nhan_vien\n03979,Trạm y tế Chiềng Cơi,\"1.234.567,5\",05/01/2024,12\n04045,Trạm y tế Mai Sơn,\"987,25\",31/12/2023,7\n";
    let infer = |csrf: String, body: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("_csrf", csrf)
            .part("file", reqwest::multipart::Part::bytes(body.as_bytes().to_vec()).file_name("tram-y-te.csv"));
        c.http.post(s.url("/datasets/co-so-y-te/resources/new/infer")).multipart(form).send()
    };
    let r = infer(csrf.clone(), csv).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    // The draft: a code column recognised by its values, numbers, Vietnamese dates.
    assert!(html.contains("Lược đồ nháp") && html.contains("tram-y-te.csv"), "{html}");
    assert!(html.contains("ma_xa → commune_code"), "{html}");
    assert!(html.contains("<option value=\"commune_code\" selected>"), "{html}");
    assert!(html.contains("<option value=\"integer\" selected>"), "{html}");
    assert!(html.contains("<option value=\"date\" selected>"), "{html}");
    assert!(html.contains("value=\"tram-y-te\""), "name suggested from the file");
    let draft = hidden_value(&html, "draft_schema")
        .replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    let draft: serde_json::Value = serde_json::from_str(&draft).expect("draft schema in the form");
    assert_eq!(draft["fields"][3]["format"], "%d/%m/%Y");

    // The steward reviews: renames a label, leaves the rest, and saves.
    let revision = hidden_value(&html, "revision");
    let rows = [
        ("ma_xa", "Mã xã", "", "commune_code", "yes"),
        ("ten_tram", "Tên trạm", "string", "", "yes"),
        ("so_tien", "Kinh phí (đồng)", "number", "", "yes"),
        ("ngay_lap", "Ngày thành lập", "date", "", "yes"),
        ("so_nhan_vien", "Số nhân viên", "integer", "", "yes"),
    ];
    let draft_text = draft.to_string();
    let mut fields: Vec<(&str, &str)> = vec![
        ("_csrf", &csrf),
        ("revision", &revision),
        ("resource_title", "Trạm y tế"),
        ("resource_name", "tram-y-te"),
        ("schema_json", ""),
        ("draft_schema", &draft_text),
    ];
    for (n, t, ty, term, req) in &rows {
        fields.extend([
            ("field_name", *n),
            ("field_title", *t),
            ("field_type", *ty),
            ("field_term", *term),
            ("field_required", *req),
        ]);
    }
    let r = c.form("/datasets/co-so-y-te/resources/new", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "{}", r.text().await.unwrap_or_default());
    let admin = s.admin().await;
    let d = admin.get("/api/v1/datasets/co-so-y-te").await.body;
    let table = d["resources"].as_array().unwrap().iter().find(|r| r["name"] == "tram-y-te").expect("saved").clone();
    let f = &table["schema"]["fields"];
    assert_eq!((f[0]["dictionaryTerm"].as_str(), f[0]["title"].as_str()), (Some("commune_code"), Some("Mã xã")));
    // What the rows do not show was kept from the draft: the date format and the decimal marks.
    assert_eq!(f[3]["format"], "%d/%m/%Y");
    assert_eq!((f[2]["decimalChar"].as_str(), f[2]["groupChar"].as_str()), (Some(","), Some(".")));
    assert_eq!(f[2]["title"], "Kinh phí (đồng)");

    // A file that cannot be read is explained on the form; nothing is saved.
    let r = infer(csrf, "").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("Không gợi ý được lược đồ từ tệp này"));
}
