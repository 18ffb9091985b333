//! A draft Table Schema from the data itself, for the steward to review: types (integers,
//! decimals in either notation, booleans, dates and date-times in the forms used in Vietnam),
//! codes with leading zeros kept as text, missing-value markers, and dictionary terms suggested
//! by column name and confirmed by content.

use std::collections::HashSet;

use regex::Regex;
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

use crate::read::CsvSource;
use crate::validate::References;
use crate::vn;

/// Markers that mean "no value" in files people send.
const MISSING: &[&str] = &["NA", "N/A", "n/a", "null", "NULL", "-999", "-999.0", "-9999"];

#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TermSuggestion {
    pub field: String,
    pub term: String,
    /// Why: "name", "content", or both.
    pub reason: String,
    /// Applied to the draft (the content agrees), or only proposed.
    pub applied: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Inferred {
    /// The draft Table Schema.
    #[schema(value_type = Object)]
    pub schema: Value,
    pub suggestions: Vec<TermSuggestion>,
    pub rows_sampled: u64,
}

/// Whether a column mixes ISO dates, day-first dates and Excel serial days (1910–2099), with
/// written dates the majority: the serials are then dates Excel did not format.
fn mixed_dates(vals: &[String], p: &Patterns) -> bool {
    let written = vals.iter().filter(|v| p.date_iso.is_match(v) || p.date_vn.is_match(v)).count();
    let serials = vals
        .iter()
        .filter(|v| p.int.is_match(v) && v.parse::<i64>().is_ok_and(|n| (3653..=73050).contains(&n)))
        .count();
    written > 0 && written >= serials && written + serials == vals.len()
}

struct Patterns {
    int: Regex,
    num: Regex,
    num_vn: Regex,
    date_iso: Regex,
    date_vn: Regex,
    dt_iso: Regex,
    dt_ampm: Regex,
}

fn patterns() -> Patterns {
    // The expressions are constants; a failure here is a programming error caught by the tests.
    let re = |p: &str| Regex::new(p).unwrap_or_else(|_| Regex::new("^$").unwrap_or_else(|_| unreachable!()));
    Patterns {
        int: re(r"^-?\d+$"),
        num: re(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$"),
        // 1.234.567,5 — dots group thousands, a comma marks decimals.
        num_vn: re(r"^-?(\d{1,3}(\.\d{3})+(,\d+)?|\d+,\d+)$"),
        date_iso: re(r"^\d{4}-\d{2}-\d{2}$"),
        date_vn: re(r"^\d{1,2}/\d{1,2}/\d{4}$"),
        dt_iso: re(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$"),
        dt_ampm: re(r"^\d{4}-\d{2}-\d{2} \d{1,2}:\d{2} (AM|PM)$"),
    }
}

/// Day, month, hour… are written zero-padded ("07") but are numbers, not codes.
fn is_calendar_part(name: &str) -> bool {
    let n = kho_core::text::fold(name);
    matches!(n.as_str(), "day" | "month" | "hour" | "minute" | "ngay" | "thang" | "gio" | "phut")
}

/// Which term a column name points to (folded, snake or spaced).
fn term_by_name(name: &str) -> Option<&'static str> {
    let n = kho_core::text::fold(name).replace([' ', '-', '.'], "_");
    let t = match n.as_str() {
        "cccd" | "so_cccd" | "so_dinh_danh" | "cmnd" | "so_cmnd" => "cccd",
        "mst" | "ma_so_thue" => "mst",
        "dien_thoai" | "so_dien_thoai" | "sdt" | "phone" => "phone",
        "email" | "thu_dien_tu" => "email",
        "ngay_sinh" | "date_of_birth" | "dob" => "date_of_birth",
        "gioi_tinh" | "gender" => "gender",
        "ho_ten" | "ho_va_ten" | "full_name" => "full_name",
        "ma_tinh" | "province_code" => "province_code",
        "ma_xa" | "ma_phuong" | "ward_code" | "commune_code" => "commune_code",
        "dan_so" | "population" => "population",
        "dien_tich" | "area_km2" | "dien_tich_km2" => "area_km2",
        "nam" | "year" => "year",
        "dia_chi" | "address" => "address_detail",
        _ => return None,
    };
    Some(t)
}

/// Infer from the first `max_rows` rows.
pub fn infer(source: &CsvSource, refs: &References, max_rows: usize) -> Inferred {
    let p = patterns();
    let n = source.headers.len();
    let mut samples: Vec<Vec<String>> = vec![Vec::new(); n];
    let mut empty = vec![0u64; n];
    let mut missing_seen: HashSet<String> = HashSet::new();
    let mut rows = 0u64;
    for (_, row) in source.rows().take(max_rows) {
        let Ok(cells) = row else { continue };
        rows += 1;
        for (i, v) in cells.iter().enumerate().take(n) {
            let v = v.trim();
            if v.is_empty() {
                empty[i] += 1;
            } else if MISSING.contains(&v) {
                // A marked missing value is still a missing value: the column is not required.
                empty[i] += 1;
                missing_seen.insert(v.to_string());
            } else {
                samples[i].push(v.to_string());
            }
        }
    }
    let mut fields = Vec::new();
    let mut suggestions = Vec::new();
    let names = field_names(&source.headers);
    for (i, header) in source.headers.iter().enumerate() {
        let vals = &samples[i];
        let all = |re: &Regex| !vals.is_empty() && vals.iter().all(|v| re.is_match(v));
        let leading_zero = vals.iter().any(|v| v.len() > 1 && v.starts_with('0') && !v.contains(['.', ',']));
        let name = &names[i];
        let mut f = json!({"name": name});
        // The header as people wrote it stays as the field's title.
        if header.trim() != name.as_str() && !header.trim().is_empty() {
            f["title"] = json!(header.trim());
        }
        if vals.is_empty() {
            f["type"] = json!("string");
        } else if all(&p.int) && leading_zero && !is_calendar_part(name) {
            // Codes such as "01" or "00004": numbers would lose the zeros.
            f["type"] = json!("string");
        } else if all(&p.int) {
            f["type"] = json!("integer");
        } else if vals.iter().all(|v| p.int.is_match(v) || vn::integer(v).is_some_and(|_| v.contains('.'))) {
            // Whole numbers, some written with thousands grouped ("1.200"): read as such.
            f["type"] = json!("integer");
        } else if all(&p.num) {
            f["type"] = json!("number");
        } else if vals.iter().all(|v| p.num_vn.is_match(v) || p.int.is_match(v))
            && vals.iter().any(|v| p.num_vn.is_match(v))
        {
            f["type"] = json!("number");
            f["decimalChar"] = json!(",");
            f["groupChar"] = json!(".");
        } else if vals.iter().all(|v| matches!(v.as_str(), "true" | "false" | "True" | "False" | "TRUE" | "FALSE")) {
            f["type"] = json!("boolean");
        } else if all(&p.date_iso) {
            f["type"] = json!("date");
        } else if all(&p.date_vn) {
            f["type"] = json!("date");
            f["format"] = json!("%d/%m/%Y");
        } else if mixed_dates(vals, &p) {
            // Date cells, dates typed day-first and dates Excel kept as serial numbers, in one
            // column, as offices' sheets have them: a date field reads them all.
            f["type"] = json!("date");
        } else if all(&p.dt_iso) {
            f["type"] = json!("datetime");
            let sep = if vals[0].contains('T') { 'T' } else { ' ' };
            let secs = vals[0].matches(':').count() == 2;
            f["format"] = json!(format!("%Y-%m-%d{sep}%H:%M{}", if secs { ":%S" } else { "" }));
        } else if all(&p.dt_ampm) {
            f["type"] = json!("datetime");
            f["format"] = json!("%Y-%m-%d %I:%M %p");
        } else {
            f["type"] = json!("string");
        }
        if empty[i] == 0 && !vals.is_empty() && rows > 0 {
            f["constraints"] = json!({"required": true});
        }
        // Dictionary terms: a name hint, confirmed (or found) by the content.
        let by_name = term_by_name(name).or_else(|| term_by_name(header));
        let by_content = term_by_content(vals, refs, by_name);
        let (term, reason, applied) = match (by_name, by_content) {
            (Some(a), Some(b)) if a == b => (Some(a), "name and content", true),
            (_, Some(b)) => (Some(b), "content", true),
            (Some(a), None) => (Some(a), "name", name_fits(a, &f)),
            (None, None) => (None, "", false),
        };
        if let Some(term) = term {
            suggestions.push(TermSuggestion { field: name.clone(), term: term.into(), reason: reason.into(), applied });
            if applied {
                f["dictionaryTerm"] = json!(term);
                // The term brings its own type; drop ours when they might disagree.
                if let Some(o) = f.as_object_mut() {
                    o.remove("type");
                    o.remove("format");
                }
            }
        }
        fields.push(f);
    }
    let key = primary_key(&names, &samples, &empty, &fields, rows);
    let mut schema = json!({"fields": fields});
    if let Some(k) = key {
        schema["primaryKey"] = json!(k);
    }
    if !missing_seen.is_empty() {
        let mut mv: Vec<String> = vec![String::new()];
        let mut seen: Vec<String> = missing_seen.into_iter().collect();
        seen.sort();
        mv.extend(seen);
        schema["missingValues"] = json!(mv);
    }
    Inferred { schema, suggestions, rows_sampled: rows }
}

/// Field names made from the headers: ASCII `snake_case` ("Số giường bệnh" → `so_giuong_benh`;
/// of a heading joined with its sub-column, "Thông tin cơ sở - Mã cơ sở", the sub-column),
/// starting with a letter, each used once.
pub fn field_names(headers: &[String]) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::new();
    headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let part = h.rsplit(" - ").next().unwrap_or(h);
            let mut name = snake(part);
            if name.is_empty() {
                name = snake(h);
            }
            if name.is_empty() {
                name = format!("cot_{}", i + 1);
            } else if name.starts_with(|c: char| c.is_ascii_digit()) {
                name = format!("cot_{name}");
            }
            let mut unique = name.clone();
            let mut n = 2;
            while !used.insert(unique.clone()) {
                unique = format!("{name}_{n}");
                n += 1;
            }
            unique
        })
        .collect()
}

/// Folded, letters and digits kept, every other run made one '_', at most 64 characters.
fn snake(s: &str) -> String {
    let mut out = String::new();
    for c in kho_core::text::fold(s).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_end_matches('_');
    out.chars().take(64).collect::<String>().trim_end_matches('_').to_string()
}

/// A column to propose as the table's key: complete and unique over the rows read, holding
/// identifiers (codes kept as text, whole numbers, or a term that identifies: CCCD, tax code,
/// administrative codes), a running number ("STT") never. Named codes ("ma_…", "…_id") first.
fn primary_key(
    names: &[String],
    samples: &[Vec<String>],
    empty: &[u64],
    fields: &[Value],
    rows: u64,
) -> Option<String> {
    if rows < 2 {
        return None;
    }
    let named =
        |n: &str| n.starts_with("ma_") || n == "ma" || n.ends_with("_id") || n == "id" || n.starts_with("so_hieu");
    let candidate = |i: usize| -> bool {
        let f = &fields[i];
        let term = f.get("dictionaryTerm").and_then(Value::as_str);
        let ty = f.get("type").and_then(Value::as_str);
        let vals = &samples[i];
        // Codes have no spaces ("BV01", "03646"); counts and names are not keys.
        let code_like = vals.iter().all(|v| v.len() <= 32 && !v.contains(char::is_whitespace));
        let identifying = matches!(term, Some("cccd" | "mst" | "commune_code" | "province_code"))
            || (ty == Some("string") && code_like)
            || (ty == Some("integer") && named(&names[i]));
        let unique = vals.iter().collect::<HashSet<_>>().len() == vals.len();
        let running = matches!(names[i].as_str(), "stt" | "tt" | "so_tt" | "so_thu_tu");
        identifying && empty[i] == 0 && vals.len() as u64 == rows && unique && !running
    };
    let ordered = (0..names.len()).filter(|&i| named(&names[i])).chain((0..names.len()).filter(|&i| !named(&names[i])));
    ordered.into_iter().find(|&i| candidate(i)).map(|i| names[i].clone())
}

/// A name-only hint is applied when the inferred type is compatible with the term's.
fn name_fits(term: &str, f: &Value) -> bool {
    let ty = f.get("type").and_then(Value::as_str).unwrap_or("string");
    match term {
        "population" | "year" => ty == "integer",
        "area_km2" => ty == "number" || ty == "integer",
        "date_of_birth" => ty == "date",
        "full_name" | "address_detail" | "gender" | "email" => ty == "string",
        _ => false,
    }
}

/// A term every sampled value satisfies (only for identifier-like terms).
fn term_by_content(vals: &[String], refs: &References, hint: Option<&'static str>) -> Option<&'static str> {
    if vals.is_empty() {
        return None;
    }
    let all = |f: &dyn Fn(&str) -> bool| vals.iter().all(|v| f(v));
    // A name that says "code" is confirmed when every value is such a code.
    let code_set = |t: &str| match t {
        "commune_code" => Some(&refs.communes),
        "province_code" => Some(&refs.provinces),
        "province_code_pre2025" => Some(&refs.legacy_provinces),
        _ => None,
    };
    if let Some(set) = hint.and_then(code_set) {
        if !set.is_empty() && all(&|v| set.contains(v)) {
            return hint;
        }
        // Codes of the other catalogue (old data under a "ma_tinh" heading).
        if hint == Some("province_code")
            && !refs.legacy_provinces.is_empty()
            && all(&|v| refs.legacy_provinces.contains(v))
        {
            return Some("province_code_pre2025");
        }
    }
    if vals.len() < 2 {
        return None;
    }
    if all(&|v| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit()))
        && all(&|v| vn::cccd_problem(v, |p| refs.cccd_prefixes.is_empty() || refs.cccd_prefixes.contains(p)).is_none())
    {
        return Some("cccd");
    }
    if all(&|v| vn::mst_problem(v).is_none()) {
        return Some("mst");
    }
    if all(&|v| v.len() >= 10 && vn::phone_problem(v).is_none()) {
        return Some("phone");
    }
    // Short codes collide with other small numbers (months, grades): content alone counts only
    // with enough distinct values to rule that out.
    let distinct = vals.iter().collect::<HashSet<_>>().len();
    if distinct < 10 {
        return None;
    }
    if !refs.communes.is_empty() && all(&|v| v.len() == 5 && refs.communes.contains(v)) {
        return Some("commune_code");
    }
    if !refs.provinces.is_empty() && all(&|v| v.len() == 2 && refs.provinces.contains(v)) {
        return Some("province_code");
    }
    if !refs.legacy_provinces.is_empty() && all(&|v| v.len() == 2 && refs.legacy_provinces.contains(v)) {
        return Some("province_code_pre2025");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs() -> References {
        References {
            provinces: ["01", "14"].map(String::from).into(),
            legacy_provinces: ["01", "14", "28"].map(String::from).into(),
            communes: ["03979", "04045"].map(String::from).into(),
            cccd_prefixes: ["001", "014"].map(String::from).into(),
            ..Default::default()
        }
    }

    #[test]
    fn types_codes_terms_and_missing_markers() {
        let csv = "ma_xa,Tên xã,dan_so,tien,ngay,luc,co,cccd,so_khac,ma_tinh_cu,ghi_chu\n\
                   03979,Chiềng Cơi,12000,\"1.234.567,5\",17/05/2020,2019-10-07 09:00 PM,true,014095001234,007,28,\n\
                   04045,Mai Sơn,NA,\"12,5\",01/01/2021,2019-10-07 10:00 PM,false,001195001234,12,14,x\n";
        let src = CsvSource::from_bytes(csv.as_bytes()).unwrap();
        let inf = infer(&src, &refs(), 1000);
        let f = &inf.schema["fields"];
        assert_eq!(f[0], json!({"name": "ma_xa", "dictionaryTerm": "commune_code", "constraints": {"required": true}}));
        assert_eq!(f[1]["type"], "string");
        // "NA" is a missing value: the column is not required.
        assert_eq!(f[2], json!({"name": "dan_so", "dictionaryTerm": "population"}));
        assert_eq!(
            (f[3]["type"].as_str(), f[3]["decimalChar"].as_str(), f[3]["groupChar"].as_str()),
            (Some("number"), Some(","), Some("."))
        );
        assert_eq!((f[4]["type"].as_str(), f[4]["format"].as_str()), (Some("date"), Some("%d/%m/%Y")));
        assert_eq!((f[5]["type"].as_str(), f[5]["format"].as_str()), (Some("datetime"), Some("%Y-%m-%d %I:%M %p")));
        assert_eq!(f[6]["type"], "boolean");
        assert_eq!(f[7]["dictionaryTerm"], "cccd");
        assert_eq!(f[8]["type"], "string", "a leading zero keeps a code as text");
        // Two distinct values are not enough to call a column province codes by content alone.
        assert!(f[9].get("dictionaryTerm").is_none());
        assert!(f[10].get("constraints").is_none());
        assert_eq!(inf.schema["missingValues"], json!(["", "NA"]));
        assert_eq!(inf.rows_sampled, 2);
        let s: Vec<(&str, &str, bool)> =
            inf.suggestions.iter().map(|s| (s.field.as_str(), s.term.as_str(), s.applied)).collect();
        assert_eq!(s, vec![("ma_xa", "commune_code", true), ("dan_so", "population", true), ("cccd", "cccd", true)]);
        // The draft is a valid Table Schema.
        assert_eq!(kho_core::table_schema::check(&inf.schema), vec![]);
    }

    #[test]
    fn dates_as_offices_sheets_mix_them() {
        let csv = "ngay,so\n1965-05-19,1\n02/01/1998,2\n40179,3\n2016-10-08,4\n";
        let inf = infer(&CsvSource::from_bytes(csv.as_bytes()).unwrap(), &refs(), 1000);
        assert_eq!(inf.schema["fields"][0]["type"], "date");
        assert!(inf.schema["fields"][0].get("format").is_none());
        // Mostly numbers: a number column with a stray date stays text, not a date.
        let csv = "ma,so\n1,40179\n2,40180\n3,2016-10-08\n";
        let inf = infer(&CsvSource::from_bytes(csv.as_bytes()).unwrap(), &refs(), 1000);
        assert_eq!(inf.schema["fields"][1]["type"], "string");
    }

    #[test]
    fn calendar_parts_missing_markers_and_many_province_codes() {
        let mut csv = String::from("Month,Hour,ma_tinh_cu,pm25\n");
        let codes = ["01", "02", "04", "06", "08", "10", "11", "12", "14", "28"];
        for (i, c) in codes.iter().enumerate() {
            csv.push_str(&format!(
                "{:02},{:02},{c},{}\n",
                i % 3 + 10,
                i,
                if i == 3 { "-999".to_string() } else { format!("{i}.5") }
            ));
        }
        let mut refs = refs();
        refs.legacy_provinces.extend(codes.iter().map(|c| c.to_string()));
        let inf = infer(&CsvSource::from_bytes(csv.as_bytes()).unwrap(), &refs, 1000);
        let f = &inf.schema["fields"];
        assert_eq!((f[0]["type"].as_str(), f[1]["type"].as_str()), (Some("integer"), Some("integer")));
        assert_eq!(f[2]["dictionaryTerm"], "province_code_pre2025");
        assert_eq!(f[3]["type"], "number");
        assert!(f[3].get("constraints").is_none(), "a column with -999 markers is not required");
        assert_eq!(inf.schema["missingValues"], json!(["", "-999"]));
    }

    #[test]
    fn names_are_snake_case_with_the_header_as_title_and_a_key_is_proposed() {
        let csv = "STT,Thông tin cơ sở - Mã cơ sở,Tên cơ sở,Số giường bệnh,Số CCCD người đứng đầu,2024\n\
                   1,BV01,Bệnh viện tỉnh,\"1.200\",014095001234,1\n\
                   2,TYT02,Trạm y tế,5,014095001235,2\n";
        let src = CsvSource::from_bytes(csv.as_bytes()).unwrap();
        let inf = infer(&src, &refs(), 100);
        let f = inf.schema["fields"].as_array().unwrap();
        let names: Vec<&str> = f.iter().map(|x| x["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["stt", "ma_co_so", "ten_co_so", "so_giuong_benh", "so_cccd_nguoi_dung_dau", "cot_2024"]);
        assert_eq!(f[1]["title"], "Thông tin cơ sở - Mã cơ sở");
        assert_eq!(f[3]["title"], "Số giường bệnh");
        // "1.200" beside 5 is one thousand two hundred: whole numbers.
        assert_eq!(f[3]["type"], "integer");
        assert!(f[0].get("title").is_some());
        // The CCCD column is recognised by its content and given the term.
        assert_eq!(f[4]["dictionaryTerm"], "cccd");
        // The named code is the key, not the running number.
        assert_eq!(inf.schema["primaryKey"], "ma_co_so");
        // Two columns with the same header get distinct names.
        assert_eq!(field_names(&["Mã".into(), "Mã".into(), "".into()]), ["ma", "ma_2", "cot_3"]);
    }
}
