//! Querying published data over HTTP: the rows API (filters, search, sort, paging, totals),
//! aggregates, read-only SQL with its refusals and limits, and DuckDB reading the same version.

// A test crate: its helpers unwrap too, and a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashSet};

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

const ROWS: usize = 1200;
const NAMES: [&str; 3] = ["Cửa hàng Hà Nội", "Tạp hóa Hòa Bình", "Quán Sơn La"];
const PROVINCES: [&str; 4] = ["01", "14", "22", "46"];

struct Row {
    ma: String,
    ten: &'static str,
    tinh: &'static str,
    so_lao_dong: i64,
    doanh_thu: f64,
    ngay: String,
    ghi_chu: Option<String>,
}

fn rows(n: usize, salt: i64) -> Vec<Row> {
    (0..n)
        .map(|i| Row {
            ma: format!("H{i:05}"),
            ten: NAMES[i % 3],
            tinh: PROVINCES[i % 4],
            so_lao_dong: (i as i64 * 7 + salt) % 50,
            doanh_thu: i as f64 * 1.5,
            ngay: format!("2024-{:02}-{:02}", i % 12 + 1, i % 28 + 1),
            ghi_chu: (i % 5 != 0).then(|| format!("ghi chú {i}")),
        })
        .collect()
}

fn csv_of(rows: &[Row]) -> String {
    let mut s = String::from("ma,ten,tinh,so_lao_dong,doanh_thu,ngay_dang_ky,ghi_chu\n");
    for r in rows {
        s.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            r.ma,
            r.ten,
            r.tinh,
            r.so_lao_dong,
            r.doanh_thu,
            r.ngay,
            r.ghi_chu.as_deref().unwrap_or("")
        ));
    }
    s
}

fn business_dataset(slug: &str, level: &str) -> Value {
    json!({
        "slug": slug,
        "title": "Hộ kinh doanh",
        "access_level": level,
        "frequency": "annual",
        "resources": [{
            "name": "ho",
            "schema": {"fields": [
                {"name": "ma", "type": "string"},
                {"name": "ten", "type": "string"},
                {"name": "tinh", "type": "string"},
                {"name": "so_lao_dong", "type": "integer"},
                {"name": "doanh_thu", "type": "number"},
                {"name": "ngay_dang_ky", "type": "date"},
                {"name": "ghi_chu", "type": "string"}
            ], "primaryKey": "ma"}
        }]
    })
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

const BASE: &str = "/api/v1/datasets/ho-kinh-doanh/resources/ho";

#[tokio::test]
async fn rows_api_filters_searches_sorts_and_pages() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", business_dataset("ho-kinh-doanh", "shared")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let data = rows(ROWS, 0);
    publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&data)).await;

    // The first page, in the order the rows were loaded, with the total.
    let r = steward.get(&format!("{BASE}/rows?limit=3")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["total"], ROWS);
    assert_eq!(r.body["version"], 1);
    let first = &r.body["records"][0];
    assert_eq!(
        first,
        &json!({"ma": "H00000", "ten": NAMES[0], "tinh": "01", "so_lao_dong": 0, "doanh_thu": 0.0,
                "ngay_dang_ky": "2024-01-01", "ghi_chu": null})
    );
    let types: Vec<(String, String)> = r.body["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap().into(), f["type"].as_str().unwrap().into()))
        .collect();
    assert_eq!(types[3], ("so_lao_dong".into(), "integer".into()));
    assert_eq!(types[5], ("ngay_dang_ky".into(), "date".into()));

    // Filters: each total checked against the generated data.
    let count = |f: &dyn Fn(&Row) -> bool| data.iter().filter(|r| f(r)).count();
    let cases: Vec<(String, usize)> = vec![
        ("filter=tinh:14".into(), count(&|r| r.tinh == "14")),
        ("filter=tinh:in:01,22".into(), count(&|r| r.tinh == "01" || r.tinh == "22")),
        ("filter=so_lao_dong:gte:10&filter=so_lao_dong:lt:20".into(), count(&|r| (10..20).contains(&r.so_lao_dong))),
        ("filter=doanh_thu:gt:1000,5".into(), count(&|r| r.doanh_thu > 1000.5)),
        ("filter=ngay_dang_ky:gte:01/06/2024".into(), count(&|r| r.ngay.as_str() >= "2024-06-01")),
        ("filter=ghi_chu:null:true".into(), count(&|r| r.ghi_chu.is_none())),
        ("filter=ten:contains:hoa binh".into(), count(&|r| r.ten.contains("Hòa Bình"))),
        (format!("q={}", enc("ha noi")), count(&|r| r.ten.contains("Hà Nội"))),
        (format!("q={}", enc("HÀ NỘI")), count(&|r| r.ten.contains("Hà Nội"))),
        (format!("q={}", enc("hoà bình")), count(&|r| r.ten.contains("Hòa Bình"))),
        (format!("q={}&filter=tinh:01", enc("quan son")), count(&|r| r.ten.contains("Sơn La") && r.tinh == "01")),
    ];
    for (query, expected) in cases {
        let r = steward.get(&format!("{BASE}/rows?{query}&limit=5")).await;
        assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text);
        assert!(expected > 0, "{query} matches nothing in the generated data");
        assert_eq!(r.body["total"], expected, "{query}");
    }

    // Sort, then keyset paging visits every row exactly once, in order; offset agrees.
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let r = steward
            .get(&format!("{BASE}/rows?sort=-so_lao_dong&fields=ma,so_lao_dong&limit=250&total=false{after}"))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        assert!(r.body.get("total").is_none());
        for rec in r.body["records"].as_array().unwrap() {
            assert_eq!(rec.as_object().unwrap().len(), 2, "only the asked fields: {rec}");
            seen.push((rec["so_lao_dong"].as_i64().unwrap(), rec["ma"].as_str().unwrap().to_string()));
        }
        match r.body["next"].as_str() {
            Some(n) => after = format!("&after={n}"),
            None => break,
        }
    }
    let mut expected: Vec<(i64, String)> = data.iter().map(|r| (r.so_lao_dong, r.ma.clone())).collect();
    expected.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    assert_eq!(seen, expected);
    let r = steward.get(&format!("{BASE}/rows?sort=-so_lao_dong&fields=ma&limit=2&offset=500")).await;
    let got: Vec<&str> = r.body["records"].as_array().unwrap().iter().map(|x| x["ma"].as_str().unwrap()).collect();
    assert_eq!(got, vec![expected[500].1.as_str(), expected[501].1.as_str()]);

    // Aggregates agree with the data.
    let r = steward
        .get(&format!("{BASE}/aggregate?group_by=tinh&measure=count&measure=sum:so_lao_dong&measure=max:doanh_thu"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut by: BTreeMap<&str, (i64, i64, f64)> = BTreeMap::new();
    for d in &data {
        let e = by.entry(d.tinh).or_default();
        e.0 += 1;
        e.1 += d.so_lao_dong;
        e.2 = e.2.max(d.doanh_thu);
    }
    let want: Vec<Value> = by
        .iter()
        .map(|(t, (n, s, m))| json!({"tinh": t, "count": n, "sum_so_lao_dong": s, "max_doanh_thu": m}))
        .collect();
    assert_eq!(r.body["records"], json!(want));

    // The API description documents the records of each answer.
    let api = s.client().get("/openapi.json").await.body;
    for answer in ["RowsAnswer", "AggregateAnswer", "SqlAnswer"] {
        let parts = api["components"]["schemas"][answer]["allOf"].as_array().unwrap();
        assert!(parts.iter().any(|p| p["properties"]["records"]["type"] == "array"), "{answer}");
    }

    // A second version; the first stays readable.
    publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&rows(ROWS / 2, 3))).await;
    assert_eq!(steward.get(&format!("{BASE}/rows?limit=1")).await.body["total"], ROWS / 2);
    let r = steward.get(&format!("{BASE}/rows?limit=1&version=1")).await;
    assert_eq!((r.body["total"].as_u64(), r.body["version"].as_i64()), (Some(ROWS as u64), Some(1)));

    // Bad input: a clear error naming the part at fault.
    for (query, code, needle) in [
        ("filter=khong_co:1", "invalid_query", "no field 'khong_co'"),
        ("filter=so_lao_dong:gt:nhieu", "invalid_query", "'nhieu' is not a whole number"),
        ("filter=ngay_dang_ky:eq:32/13/2024", "invalid_query", "is not a date, e.g. 15/03/2026"),
        ("filter=so_lao_dong:contains:1", "invalid_query", "text fields only"),
        ("filter=khong-dau-hai-cham", "invalid_query", "field:op:value"),
        ("sort=-", "invalid_query", "followed by a field"),
        ("sort=khong_co", "invalid_query", "no field 'khong_co'"),
        ("fields=ma,khong_co", "invalid_query", "no field 'khong_co'"),
        ("limit=100000", "invalid_query", "at most 10000"),
        ("limit=-1", "bad_request", "limit"),
        ("offset=abc", "bad_request", "offset"),
        ("after=xyz", "invalid_query", "not a cursor"),
        ("after=5b5d&offset=3", "invalid_query", "either after"),
        ("version=99", "not_found", "no such version"),
        ("version=abc", "bad_request", "version"),
        ("loc=1", "bad_request", "unknown parameter 'loc'"),
    ] {
        let r = steward.get(&format!("{BASE}/rows?{query}")).await;
        assert_eq!(r.code(), code, "{query}: {}", r.text);
        assert!(r.body["message"].as_str().unwrap().contains(needle), "{query}: {}", r.text);
    }
    for (query, needle) in [
        ("group_by=tinh", "at least one aggregate"),
        ("measure=sum:ten", "not a number"),
        ("measure=median:so_lao_dong", "count|sum|avg|min|max"),
        ("measure=count&sort=khong_co", "not in the answer"),
    ] {
        let r = steward.get(&format!("{BASE}/aggregate?{query}")).await;
        assert_eq!(r.code(), "invalid_query", "{query}: {}", r.text);
        assert!(r.body["message"].as_str().unwrap().contains(needle), "{query}: {}", r.text);
    }

    // Shared data: invisible to anonymous callers (exactly like a table that does not exist),
    // and every read by a member is audited.
    let anon = s.client();
    let hidden = anon.get(&format!("{BASE}/rows")).await;
    let missing = anon.get("/api/v1/datasets/khong-ton-tai/resources/ho/rows").await;
    assert_eq!((hidden.status, hidden.code()), (StatusCode::NOT_FOUND, "not_found"));
    assert_eq!(hidden.text, missing.text);
    let admin = s.admin().await;
    let audit = admin.get("/api/v1/audit?action=version.read&limit=500").await;
    let reads = audit
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"].as_str().unwrap_or("").ends_with(":taichinh.canbo"))
        .count();
    assert!(reads >= 20, "{reads} audited reads");
}

async fn sql(c: &Client, statement: &str) -> Resp {
    c.post("/api/v1/sql", json!({ "sql": statement })).await
}

#[tokio::test]
async fn sql_reads_only_what_the_caller_may_read_within_limits() {
    let s = Server::start_with(true, &[("KHO_SQL_TIMEOUT_SECS", "1"), ("KHO_SQL_MAX_ROWS", "500")]);
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let r = steward.post("/api/v1/datasets", business_dataset("ho-kinh-doanh", "restricted")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let data = rows(ROWS, 0);
    publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&data)).await;
    publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&rows(10, 0))).await;

    // Group-by over the restricted table, joined with an open demo table, version pinned.
    let r = sql(
        &steward,
        r#"SELECT h.tinh, t.ten_tinh, count(*) AS n, sum(h.so_lao_dong) AS lao_dong
           FROM "ho-kinh-doanh"."ho@1" h JOIN "dan-so-dien-tich-tinh"."tinh-thanh" t ON t.ma_tinh = h.tinh
           WHERE kho_fold(h.ten) LIKE '%ha noi%'
           GROUP BY h.tinh, t.ten_tinh ORDER BY h.tinh"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let mut want: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for d in data.iter().filter(|d| d.ten.contains("Hà Nội")) {
        let e = want.entry(d.tinh).or_default();
        e.0 += 1;
        e.1 += d.so_lao_dong;
    }
    let got: Vec<(String, i64, i64)> = r.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["tinh"].as_str().unwrap().into(), x["n"].as_i64().unwrap(), x["lao_dong"].as_i64().unwrap()))
        .collect();
    let want: Vec<(String, i64, i64)> = want.into_iter().map(|(t, (n, s))| (t.to_string(), n, s)).collect();
    assert_eq!(got, want);
    assert_eq!(r.body["records"][0]["ten_tinh"], "Thủ đô Hà Nội");
    assert_eq!(sql(&steward, r#"SELECT count(*) AS n FROM "ho-kinh-doanh""#).await.body["records"][0]["n"], 10);

    // The row limit cuts and says so.
    let r = sql(&steward, r#"SELECT ma FROM "ho-kinh-doanh"."ho@1""#).await;
    assert_eq!((r.body["records"].as_array().unwrap().len(), &r.body["truncated"]), (500, &json!(true)));

    // A plan can be explained, and explained with the figures of a real run.
    for statement in [
        r#"EXPLAIN SELECT tinh, count(*) FROM "ho-kinh-doanh" GROUP BY tinh"#,
        r#"EXPLAIN ANALYZE SELECT tinh, count(*) FROM "ho-kinh-doanh" GROUP BY tinh"#,
    ] {
        let r = sql(&steward, statement).await;
        assert_eq!(r.status, StatusCode::OK, "{statement}: {}", r.text);
        let plan = r.body["records"].to_string();
        assert!(plan.contains("AggregateExec"), "{statement}: {plan}");
        assert_eq!(plan.contains("output_rows"), statement.contains("ANALYZE"), "{plan}");
    }

    // Statements that write are refused before they run, and nothing changes.
    for statement in [
        r#"INSERT INTO "ho-kinh-doanh".ho VALUES ('x')"#,
        r#"DELETE FROM "ho-kinh-doanh".ho"#,
        r#"DROP TABLE "ho-kinh-doanh".ho"#,
        r#"CREATE TABLE x AS SELECT * FROM "ho-kinh-doanh".ho"#,
        r#"COPY (SELECT * FROM "ho-kinh-doanh".ho) TO '/tmp/kho-leak.csv'"#,
        "SET datafusion.execution.batch_size = 1",
        r#"SELECT 1; DELETE FROM "ho-kinh-doanh".ho"#,
    ] {
        let r = sql(&steward, statement).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "sql_not_read_only"), "{statement}: {}", r.text);
    }
    assert!(!std::path::Path::new("/tmp/kho-leak.csv").exists());
    assert_eq!(sql(&steward, r#"SELECT count(*) AS n FROM "ho-kinh-doanh""#).await.body["records"][0]["n"], 10);

    // Tables the caller may not read look exactly like tables that do not exist; files by path
    // are not tables.
    let other = Client::signed_in(&s.base, "yte.canbo", "demo-yte-canbo").await;
    let hidden = sql(&other, r#"SELECT * FROM "ho-kinh-doanh"."ho""#).await;
    assert_eq!((hidden.status, hidden.code()), (StatusCode::NOT_FOUND, "not_found"), "{}", hidden.text);
    let missing = sql(&other, r#"SELECT * FROM "ho-kinh-doanh"."khong""#).await;
    assert_eq!(missing.code(), "not_found");
    assert_eq!(
        hidden.body["message"].as_str().unwrap().replace("\"ho\"", "\"khong\""),
        missing.body["message"].as_str().unwrap()
    );
    let anon = s.client();
    assert_eq!(sql(&anon, r#"SELECT * FROM "ho-kinh-doanh""#).await.code(), "not_found");
    let r = sql(&other, "SELECT * FROM '/etc/passwd'").await;
    assert_eq!(r.code(), "not_found", "{}", r.text);
    // Hiding a restricted table inside a subquery or CTE does not help.
    let r = sql(&other, r#"WITH x AS (SELECT * FROM "ho-kinh-doanh".ho) SELECT count(*) FROM x"#).await;
    assert_eq!(r.code(), "not_found", "{}", r.text);

    // Mistakes name what is wrong.
    let r = sql(&steward, r#"SELECT khong_co FROM "ho-kinh-doanh""#).await;
    assert_eq!(r.code(), "invalid_query");
    assert!(r.body["message"].as_str().unwrap().contains("khong_co"), "{}", r.text);
    assert_eq!(sql(&steward, "SELEC 1").await.code(), "invalid_query");
    assert_eq!(steward.post("/api/v1/sql", json!({"query": "SELECT 1"})).await.code(), "invalid_json");

    // A statement past the time limit is stopped.
    let r = sql(
        &steward,
        r#"SELECT sum(a.so_lao_dong * b.so_lao_dong + c.so_lao_dong) FROM "ho-kinh-doanh"."ho@1" a,
           "ho-kinh-doanh"."ho@1" b, "ho-kinh-doanh"."ho@1" c"#,
    )
    .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNPROCESSABLE_ENTITY, "query_limit"), "{}", r.text);
    // …and the server goes on answering.
    assert_eq!(sql(&steward, r#"SELECT count(*) AS n FROM "ho-kinh-doanh""#).await.status, StatusCode::OK);

    // Reads of the restricted table were audited.
    let admin = s.admin().await;
    let audit = admin.get("/api/v1/audit?action=version.read&limit=500").await;
    assert!(
        audit.body.as_array().unwrap().iter().any(|e| e["actor"].as_str().unwrap_or("").ends_with(":taichinh.canbo"))
    );
}

#[tokio::test]
async fn duckdb_reads_the_same_version_as_the_rows_api() {
    // DuckDB reads the version's file in the objects folder.
    let s = Server::embedded(true);
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    steward.post("/api/v1/datasets", business_dataset("ho-kinh-doanh", "open")).await;
    let v = publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&rows(ROWS, 5))).await;
    let object = s.data_dir().join("objects").join(v["object_key"].as_str().unwrap());

    let api = steward
        .get(&format!(
            "{BASE}/aggregate?measure=count&measure=sum:so_lao_dong&measure=sum:doanh_thu&measure=count:ghi_chu"
        ))
        .await;
    assert_eq!(api.status, StatusCode::OK, "{}", api.text);
    let api = &api.body["records"][0];
    let total = steward.get(&format!("{BASE}/rows?limit=0")).await.body["total"].clone();

    let duck = duckdb(&format!(
        "select count(*), sum(so_lao_dong), sum(doanh_thu), count(ghi_chu), count(distinct ma) from read_parquet('{}')",
        object.display()
    ));
    assert_eq!(duck[0], total);
    assert_eq!(duck[0], api["count"]);
    assert_eq!(duck[1], api["sum_so_lao_dong"]);
    assert!((duck[2].as_f64().unwrap() - api["sum_doanh_thu"].as_f64().unwrap()).abs() < 1e-6);
    assert_eq!(duck[3], api["count_ghi_chu"]);
    assert_eq!(duck[4], ROWS);
    let distinct: HashSet<String> = rows(ROWS, 5).into_iter().map(|r| r.ma).collect();
    assert_eq!(distinct.len(), ROWS);

    // Parquet loads too: DuckDB rewrites the version with one column changed (its own types:
    // INTEGER, VARCHAR, DATE), and kho sees every row changed and nothing else.
    let dir = tempfile::tempdir().unwrap();
    let changed = dir.path().join("changed.parquet");
    duckdb(&format!(
        "COPY (SELECT ma, ten, tinh, CAST(so_lao_dong + 1 AS INTEGER) AS so_lao_dong, doanh_thu, ngay_dang_ky, ghi_chu \
         FROM read_parquet('{}')) TO '{}' (FORMAT parquet)",
        object.display(),
        changed.display()
    ));
    let v2 = publish_file(&steward, "ho-kinh-doanh", "ho", std::fs::read(&changed).unwrap()).await;
    assert_eq!(
        (v2["version"].as_i64(), v2["rows"].as_u64(), v2["rows_changed"].as_u64(), v2["rows_added"].as_u64()),
        (Some(2), Some(ROWS as u64), Some(ROWS as u64), Some(0))
    );
    let sum = steward.get(&format!("{BASE}/aggregate?measure=sum:so_lao_dong")).await;
    assert_eq!(sum.body["records"][0]["sum_so_lao_dong"], api["sum_so_lao_dong"].as_i64().unwrap() + ROWS as i64);

    // A Parquet file with a nested column, or a broken one, is refused with its reason.
    let nested = dir.path().join("nested.parquet");
    duckdb(&format!("COPY (SELECT 'H1' AS ma, [1, 2] AS ds) TO '{}' (FORMAT parquet)", nested.display()));
    let (status, e) = upload_file(&steward, "ho-kinh-doanh", "ho", std::fs::read(&nested).unwrap()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_file")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("'ds'"), "{e}");
    let (status, e) = upload_file(&steward, "ho-kinh-doanh", "ho", b"PAR1 cut short".to_vec()).await;
    assert_eq!((status, e["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_file")), "{e}");
    assert_eq!(steward.get(&format!("{BASE}/rows?limit=0")).await.body["version"], 2, "nothing else was published");
}

/// Python (openpyxl, the peer spreadsheet library) reads a workbook: its header cells, whether
/// they are bold, the frozen pane, the number of data rows, the first data row and the
/// number format of a date column.
fn read_xlsx(path: &std::path::Path) -> Value {
    let script = "import openpyxl, json, sys\n\
                  ws = openpyxl.load_workbook(sys.argv[1]).active\n\
                  rows = list(ws.iter_rows(values_only=True))\n\
                  print(json.dumps({'header': list(rows[0]), 'bold': all(c.font.b for c in ws[1]), 'freeze': ws.freeze_panes,\n\
                  'rows': len(rows) - 1, 'first': [str(v) for v in rows[1]] if len(rows) > 1 else [],\n\
                  'date_format': ws.cell(row=2, column=6).number_format, 'width_a': ws.column_dimensions['A'].width}))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(path)
        .output()
        .expect("python3 with openpyxl (pip install openpyxl)");
    assert!(out.status.success(), "openpyxl failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn filters_as_people_type_them_and_downloads_of_what_is_in_view() {
    let s = Server::start(true);
    let steward = Client::signed_in(&s.base, "taichinh.canbo", "demo-taichinh-canbo").await;
    let mut d = business_dataset("ho-kinh-doanh", "open");
    d["resources"][0]["schema"]["fields"][0]["title"] = json!("Mã hộ");
    d["resources"][0]["schema"]["fields"][4]["title"] = json!("Doanh thu (triệu đồng)");
    let r = steward.post("/api/v1/datasets", d).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let data = rows(ROWS, 0);
    publish_csv(&steward, "ho-kinh-doanh", "ho", csv_of(&data)).await;
    let visitor = Client::new(&s.base);

    // Numbers and dates as the table shows them.
    let count = |f: &dyn Fn(&Row) -> bool| data.iter().filter(|r| f(r)).count();
    let big = count(&|r| r.doanh_thu >= 1000.5);
    for (filter, expected) in [
        ("doanh_thu:gte:1.000,5", big),
        ("doanh_thu:gte:1000.5", big),
        ("so_lao_dong:lt:1.0", 0),
        ("so_lao_dong:gte:4.0", 0),
        ("ngay_dang_ky:gte:15/03/2024", count(&|r| r.ngay.as_str() >= "2024-03-15")),
    ] {
        let r = visitor.get(&format!("{BASE}/rows?filter={}&limit=1", enc(filter))).await;
        if filter.starts_with("so_lao_dong") {
            // "1.0" is neither a grouped whole number nor a plain one: refused, in Vietnamese too.
            assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"), "{filter}: {}", r.text);
            assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("2.000.000"), "{}", r.text);
            continue;
        }
        assert_eq!(r.status, StatusCode::OK, "{filter}: {}", r.text);
        assert!(expected > 0);
        assert_eq!(r.body["total"], expected, "{filter}");
    }
    let r = visitor.get(&format!("{BASE}/rows?filter={}", enc("ngay_dang_ky:gte:31/02/2024"))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(r.body["details"][0]["message_vi"].as_str().unwrap().contains("15/03/2026"), "{}", r.text);

    // Keyset paging without a sort (the README's example): the key orders the pages, each
    // row comes once.
    let (mut seen, mut after) = (HashSet::new(), String::new());
    loop {
        let r = visitor.get(&format!("{BASE}/rows?limit=500&fields=ma&total=false{after}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        for rec in r.body["records"].as_array().unwrap() {
            assert!(seen.insert(rec["ma"].as_str().unwrap().to_string()), "{rec} twice");
        }
        match r.body["next"].as_str() {
            Some(next) => after = format!("&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), ROWS);

    // A CSV for Excel of the rows in view: the filter, the search and the order, with a BOM;
    // DuckDB (the peer) reads back exactly those rows.
    let dir = tempfile::tempdir().unwrap();
    let selection = format!("filter={}&q={}&sort=-doanh_thu", enc("doanh_thu:gte:1.000,5"), enc("ha noi"));
    let expected: Vec<&Row> = {
        let mut v: Vec<&Row> = data.iter().filter(|r| r.doanh_thu >= 1000.5 && r.ten.contains("Hà Nội")).collect();
        v.sort_by(|a, b| b.doanh_thu.total_cmp(&a.doanh_thu));
        v
    };
    assert!(expected.len() > 10);
    let resp = visitor
        .http
        .get(s.url(&format!("{BASE}/versions/latest/data?format=csv&bom=true&{selection}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains("ho-v1-loc.csv"), "{disposition}");
    let bytes = resp.bytes().await.unwrap();
    assert!(bytes.starts_with("\u{feff}ma,ten,".as_bytes()), "{:?}", &bytes[..20]);
    let csv = dir.path().join("loc.csv");
    std::fs::write(&csv, &bytes).unwrap();
    let duck = duckdb(&format!(
        "select count(*), min(doanh_thu), list(ma)[1], count(*) filter (where ten <> 'Cửa hàng Hà Nội') from read_csv('{}')",
        csv.display()
    ));
    assert_eq!(duck[0], expected.len());
    let least = expected.iter().map(|r| r.doanh_thu).fold(f64::INFINITY, f64::min);
    assert!((duck[1].as_f64().unwrap() - least).abs() < 1e-9, "{duck}");
    assert_eq!(duck[2], expected[0].ma.as_str(), "in the order asked for");
    assert_eq!(duck[3], 0);
    // Without the BOM unless asked: other programs read plain UTF-8.
    let plain = visitor.http.get(s.url(&format!("{BASE}/versions/latest/data?format=csv&{selection}"))).send().await;
    assert!(plain.unwrap().bytes().await.unwrap().starts_with(b"ma,ten,"));

    // The same selection as an Excel workbook: titled, bold, frozen header; dates as dates
    // shown dd/mm/yyyy; read back by openpyxl.
    let resp =
        visitor.http.get(s.url(&format!("{BASE}/versions/latest/data?format=xlsx&{selection}"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let xlsx = dir.path().join("loc.xlsx");
    std::fs::write(&xlsx, resp.bytes().await.unwrap()).unwrap();
    let book = read_xlsx(&xlsx);
    assert_eq!(book["header"][0], "Mã hộ");
    assert_eq!(book["header"][1], "ten", "a field without a title keeps its name");
    assert_eq!(book["header"][4], "Doanh thu (triệu đồng)");
    assert_eq!(book["bold"], true);
    assert_eq!(book["freeze"], "A2");
    assert_eq!(book["rows"], expected.len());
    assert_eq!(book["first"][0], expected[0].ma.as_str());
    assert_eq!(book["date_format"], "dd/mm/yyyy");
    assert!(book["width_a"].as_f64().unwrap() >= 8.0, "{book}");

    // A selection the table cannot answer is refused before anything is written.
    let r = visitor.get(&format!("{BASE}/versions/latest/data?format=csv&filter=khong_co:1")).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "invalid_query"), "{}", r.text);
    let r = visitor.get(&format!("{BASE}/versions/latest/data?format=csv&limit=3")).await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"), "{}", r.text);

    // The Data Package is named after its dataset, found by id or by slug.
    let id = steward.get("/api/v1/datasets/ho-kinh-doanh").await.body["id"].as_str().unwrap().to_string();
    for key in [id.as_str(), "ho-kinh-doanh"] {
        let resp = visitor.http.get(s.url(&format!("/api/v1/datasets/{key}/datapackage"))).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
        assert!(disposition.contains("\"ho-kinh-doanh-datapackage.zip\""), "{disposition}");
    }
}
