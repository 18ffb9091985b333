//! Checks that a resource schema is a valid Frictionless Table Schema (v2), and resolves the
//! shared-dictionary terms its fields reference.
//!
//! kho stores the schema exactly as submitted (a JSON object) so that any Frictionless tool can
//! read it back; this module only decides whether it is acceptable and says precisely where it is
//! not. A field references a dictionary term with the extension property `dictionaryTerm`
//! (`"cccd"` for the latest version, `"cccd@1"` for a fixed one) and then inherits the term's type,
//! format and constraints.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::error::Detail;
use crate::model::DictionaryTerm;

pub const TERM_PROPERTY: &str = "dictionaryTerm";

pub const FIELD_TYPES: &[&str] = &[
    "string",
    "number",
    "integer",
    "boolean",
    "object",
    "array",
    "list",
    "date",
    "time",
    "datetime",
    "year",
    "yearmonth",
    "duration",
    "geopoint",
    "geojson",
    "any",
];

const CONSTRAINTS: &[&str] = &[
    "required",
    "unique",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "pattern",
    "enum",
    "jsonSchema",
];

const FIELDS_MATCH: &[&str] = &["exact", "equal", "subset", "superset", "partial"];

/// A parsed `name` or `name@version` term reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TermRef {
    pub name: String,
    pub version: Option<i64>,
}

impl TermRef {
    pub fn parse(s: &str) -> Option<TermRef> {
        let (name, version) = match s.split_once('@') {
            Some((n, v)) => (n, Some(v.parse::<i64>().ok().filter(|v| *v > 0)?)),
            None => (s, None),
        };
        crate::text::is_valid_term_name(name).then(|| TermRef { name: name.to_string(), version })
    }
}

/// Structural check. Returns every problem found, each with its path inside the schema.
pub fn check(schema: &Value) -> Vec<Detail> {
    let mut out = Vec::new();
    let Some(obj) = schema.as_object() else {
        out.push(Detail::new("", "a Table Schema must be a JSON object"));
        return out;
    };
    let mut names: Vec<String> = Vec::new();
    match obj.get("fields") {
        None => out.push(Detail::new("fields", "is required: a list of field descriptors")),
        Some(Value::Array(fields)) => {
            if fields.is_empty() {
                out.push(Detail::new("fields", "must contain at least one field"));
            }
            let mut seen = HashSet::new();
            for (i, f) in fields.iter().enumerate() {
                let path = format!("fields[{i}]");
                if let Some(name) = check_field(&path, f, &mut out) {
                    if !seen.insert(name.clone()) {
                        out.push(Detail::new(format!("{path}.name"), format!("duplicate field name '{name}'")));
                    }
                    names.push(name);
                }
            }
        }
        Some(_) => out.push(Detail::new("fields", "must be an array of field descriptors")),
    }
    let known: HashSet<&str> = names.iter().map(String::as_str).collect();

    if let Some(pk) = obj.get("primaryKey") {
        check_field_list("primaryKey", pk, &known, &mut out);
    }
    if let Some(uk) = obj.get("uniqueKeys") {
        match uk.as_array() {
            Some(keys) => {
                for (i, k) in keys.iter().enumerate() {
                    check_field_list(&format!("uniqueKeys[{i}]"), k, &known, &mut out);
                }
            }
            None => out.push(Detail::new("uniqueKeys", "must be an array of field-name lists")),
        }
    }
    if let Some(fks) = obj.get("foreignKeys") {
        match fks.as_array() {
            Some(fks) => {
                for (i, fk) in fks.iter().enumerate() {
                    check_foreign_key(&format!("foreignKeys[{i}]"), fk, &known, &mut out);
                }
            }
            None => out.push(Detail::new("foreignKeys", "must be an array")),
        }
    }
    if let Some(mv) = obj.get("missingValues") {
        check_missing_values("missingValues", mv, &mut out);
    }
    if let Some(fm) = obj.get("fieldsMatch")
        && !fm.as_str().is_some_and(|s| FIELDS_MATCH.contains(&s))
    {
        out.push(Detail::new("fieldsMatch", format!("must be one of: {}", FIELDS_MATCH.join(", "))));
    }
    out
}

fn check_field(path: &str, f: &Value, out: &mut Vec<Detail>) -> Option<String> {
    let Some(f) = f.as_object() else {
        out.push(Detail::new(path, "a field descriptor must be a JSON object"));
        return None;
    };
    let name = match f.get("name") {
        // A field's name heads its column in every CSV file people download: it may not be one
        // a spreadsheet would run as a formula, nor hold characters no text has.
        Some(Value::String(s)) if crate::text::csv_escape(s) != s.as_str() => {
            out.push(Detail::new(format!("{path}.name"), "must not start with =, +, -, @ or a tab"));
            None
        }
        Some(Value::String(s)) if crate::text::has_control_characters(s) => {
            out.push(Detail::new(format!("{path}.name"), "holds a control character (such as NUL)"));
            None
        }
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.clone()),
        Some(Value::String(_)) => {
            out.push(Detail::new(format!("{path}.name"), "must not be empty"));
            None
        }
        Some(_) => {
            out.push(Detail::new(format!("{path}.name"), "must be a string"));
            None
        }
        None => {
            out.push(Detail::new(format!("{path}.name"), "is required"));
            None
        }
    };
    let ty = match f.get("type") {
        None => None,
        Some(Value::String(t)) if FIELD_TYPES.contains(&t.as_str()) => Some(t.as_str()),
        Some(other) => {
            out.push(Detail::new(
                format!("{path}.type"),
                format!("{other} is not a Table Schema type; expected one of: {}", FIELD_TYPES.join(", ")),
            ));
            return name;
        }
    };
    if let Some(fmt) = f.get("format") {
        check_format(&format!("{path}.format"), ty.unwrap_or("any"), fmt, out);
    }
    for key in ["title", "description", "rdfType"] {
        if let Some(v) = f.get(key)
            && !v.is_string()
        {
            out.push(Detail::new(format!("{path}.{key}"), "must be a string"));
        }
    }
    if let Some(t) = f.get(TERM_PROPERTY) {
        match t.as_str().and_then(TermRef::parse) {
            Some(_) => {}
            None => out.push(Detail::new(
                format!("{path}.{TERM_PROPERTY}"),
                "must be a dictionary term name such as \"cccd\" or \"cccd@1\"",
            )),
        }
    }
    if let Some(mv) = f.get("missingValues") {
        check_missing_values(&format!("{path}.missingValues"), mv, out);
    }
    if let Some(c) = f.get("constraints") {
        check_constraints(&format!("{path}.constraints"), ty.unwrap_or("any"), c, out);
    }
    name
}

fn check_format(path: &str, ty: &str, fmt: &Value, out: &mut Vec<Detail>) {
    let Some(fmt) = fmt.as_str() else {
        out.push(Detail::new(path, "must be a string"));
        return;
    };
    let allowed: &[&str] = match ty {
        "string" => &["default", "email", "uri", "binary", "uuid"],
        "geopoint" => &["default", "array", "object"],
        "geojson" => &["default", "topojson"],
        // Date and time types also accept a strptime-like pattern such as "%d/%m/%Y".
        "date" | "time" | "datetime" => {
            if fmt == "default" || fmt == "any" || fmt.contains('%') {
                return;
            }
            &["default", "any", "<pattern with %-directives>"]
        }
        "any" => return,
        _ => &["default"],
    };
    if !allowed.contains(&fmt) {
        out.push(Detail::new(
            path,
            format!("'{fmt}' is not a format of type {ty}; expected one of: {}", allowed.join(", ")),
        ));
    }
}

fn check_constraints(path: &str, ty: &str, c: &Value, out: &mut Vec<Detail>) {
    let Some(c) = c.as_object() else {
        out.push(Detail::new(path, "must be a JSON object"));
        return;
    };
    for (key, v) in c {
        let p = format!("{path}.{key}");
        match key.as_str() {
            "required" | "unique" => {
                if !v.is_boolean() {
                    out.push(Detail::new(p, "must be true or false"));
                }
            }
            "minLength" | "maxLength" => {
                if v.as_u64().is_none() {
                    out.push(Detail::new(p, "must be a non-negative integer"));
                } else if !matches!(ty, "string" | "array" | "list" | "object" | "any") {
                    out.push(Detail::new(p, format!("does not apply to type {ty}")));
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => match ty {
                "integer" => {
                    if !(v.is_i64() || v.is_u64() || v.as_str().is_some_and(|s| s.parse::<i64>().is_ok())) {
                        out.push(Detail::new(p, "must be an integer for an integer field"));
                    }
                }
                "number" => {
                    if !(v.is_number() || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok())) {
                        out.push(Detail::new(p, "must be a number for a number field"));
                    }
                }
                "date" | "time" | "datetime" | "yearmonth" | "duration" => {
                    if !v.is_string() {
                        out.push(Detail::new(p, format!("must be a {ty} written as a string")));
                    }
                }
                "year" => {
                    if !(v.is_i64() || v.is_string()) {
                        out.push(Detail::new(p, "must be a year"));
                    }
                }
                "any" => {}
                _ => out.push(Detail::new(p, format!("does not apply to type {ty}"))),
            },
            "pattern" => match v.as_str() {
                Some(re) => {
                    if !matches!(ty, "string" | "any") {
                        out.push(Detail::new(p, format!("does not apply to type {ty}")));
                    } else if let Err(e) = regex::Regex::new(re) {
                        out.push(Detail::new(p, format!("is not a valid regular expression: {e}")));
                    }
                }
                None => out.push(Detail::new(p, "must be a string")),
            },
            "enum" => match v.as_array() {
                Some(a) if !a.is_empty() => {}
                _ => out.push(Detail::new(p, "must be a non-empty array of allowed values")),
            },
            "jsonSchema" => {
                if !v.is_object() {
                    out.push(Detail::new(p, "must be a JSON Schema object"));
                }
            }
            other => out.push(Detail::new(
                p,
                format!("'{other}' is not a Table Schema constraint; expected one of: {}", CONSTRAINTS.join(", ")),
            )),
        }
    }
    if let (Some(min), Some(max)) =
        (c.get("minLength").and_then(Value::as_u64), c.get("maxLength").and_then(Value::as_u64))
        && min > max
    {
        out.push(Detail::new(format!("{path}.minLength"), format!("{min} is greater than maxLength {max}")));
    }
    if let (Some(min), Some(max)) = (c.get("minimum").and_then(Value::as_f64), c.get("maximum").and_then(Value::as_f64))
        && min > max
    {
        out.push(Detail::new(format!("{path}.minimum"), format!("{min} is greater than maximum {max}")));
    }
}

/// `primaryKey` and unique keys: a field name or a list of them, each naming a declared field.
fn check_field_list(path: &str, v: &Value, known: &HashSet<&str>, out: &mut Vec<Detail>) {
    let names: Vec<&Value> = match v {
        Value::String(_) => vec![v],
        Value::Array(a) if !a.is_empty() => a.iter().collect(),
        _ => {
            out.push(Detail::new(path, "must be a field name or a non-empty list of field names"));
            return;
        }
    };
    for (i, n) in names.iter().enumerate() {
        let p = if v.is_array() { format!("{path}[{i}]") } else { path.to_string() };
        match n.as_str() {
            Some(n) if known.contains(n) => {}
            Some(n) => out.push(Detail::new(p, format!("'{n}' is not a field of this schema"))),
            None => out.push(Detail::new(p, "must be a field name")),
        }
    }
}

fn count_names(v: &Value) -> usize {
    match v {
        Value::Array(a) => a.len(),
        _ => 1,
    }
}

fn check_foreign_key(path: &str, fk: &Value, known: &HashSet<&str>, out: &mut Vec<Detail>) {
    let Some(fk) = fk.as_object() else {
        out.push(Detail::new(path, "must be an object with `fields` and `reference`"));
        return;
    };
    let Some(fields) = fk.get("fields") else {
        out.push(Detail::new(format!("{path}.fields"), "is required"));
        return;
    };
    check_field_list(&format!("{path}.fields"), fields, known, out);
    let Some(reference) = fk.get("reference").and_then(Value::as_object) else {
        out.push(Detail::new(format!("{path}.reference"), "is required: an object with `fields` (and `resource`)"));
        return;
    };
    if let Some(r) = reference.get("resource")
        && !r.is_string()
    {
        out.push(Detail::new(format!("{path}.reference.resource"), "must be a string (\"\" for this resource)"));
    }
    match reference.get("fields") {
        None => out.push(Detail::new(format!("{path}.reference.fields"), "is required")),
        Some(rf) => {
            let self_ref = reference.get("resource").and_then(Value::as_str).is_none_or(str::is_empty);
            if self_ref {
                check_field_list(&format!("{path}.reference.fields"), rf, known, out);
            } else if !(rf.is_string()
                || rf.as_array().is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)))
            {
                out.push(Detail::new(format!("{path}.reference.fields"), "must be a field name or a list of them"));
            }
            if count_names(rf) != count_names(fields) {
                out.push(Detail::new(
                    format!("{path}.reference.fields"),
                    format!("has {} field(s) but `fields` has {}", count_names(rf), count_names(fields)),
                ));
            }
        }
    }
}

fn check_missing_values(path: &str, v: &Value, out: &mut Vec<Detail>) {
    let ok = v.as_array().is_some_and(|a| {
        a.iter().all(|x| x.is_string() || x.as_object().is_some_and(|o| o.get("value").is_some_and(Value::is_string)))
    });
    if !ok {
        out.push(Detail::new(path, "must be an array of strings (or of {\"value\", \"label\"} objects)"));
    }
}

/// Every `dictionaryTerm` reference in the schema, with the path of the field that makes it.
pub fn term_refs(schema: &Value) -> Vec<(String, TermRef)> {
    let mut out = Vec::new();
    if let Some(fields) = schema.get("fields").and_then(Value::as_array) {
        for (i, f) in fields.iter().enumerate() {
            if let Some(r) = f.get(TERM_PROPERTY).and_then(Value::as_str).and_then(TermRef::parse) {
                out.push((format!("fields[{i}].{TERM_PROPERTY}"), r));
            }
        }
    }
    out
}

/// Check the schema's term references against the dictionary: each must exist, and a field that
/// states its own type must agree with the term's.
pub fn check_terms(schema: &Value, lookup: &HashMap<String, Vec<DictionaryTerm>>) -> Vec<Detail> {
    let mut out = Vec::new();
    let fields = schema.get("fields").and_then(Value::as_array);
    for (path, r) in term_refs(schema) {
        match resolve(&r, lookup) {
            None => out.push(Detail::new(
                path,
                match r.version {
                    Some(v) => format!("dictionary term '{}' has no version {v}", r.name),
                    None => format!("'{}' is not a term of the shared data dictionary", r.name),
                },
            )),
            Some(term) => {
                let idx = path
                    .strip_prefix("fields[")
                    .and_then(|s| s.split(']').next())
                    .and_then(|s| s.parse::<usize>().ok());
                let own_type =
                    idx.and_then(|i| fields.and_then(|f| f.get(i))).and_then(|f| f.get("type")).and_then(Value::as_str);
                if let Some(t) = own_type
                    && t != term.field_type
                    && t != "any"
                {
                    out.push(Detail::new(
                        path.replace(TERM_PROPERTY, "type"),
                        format!(
                            "type '{t}' conflicts with dictionary term '{}' of type '{}'",
                            term.name, term.field_type
                        ),
                    ));
                }
            }
        }
    }
    out
}

pub fn resolve<'a>(r: &TermRef, lookup: &'a HashMap<String, Vec<DictionaryTerm>>) -> Option<&'a DictionaryTerm> {
    let versions = lookup.get(&r.name)?;
    match r.version {
        Some(v) => versions.iter().find(|t| t.version == v),
        None => versions.iter().max_by_key(|t| t.version),
    }
}

/// A field holding personal data: its name and what makes it personal (the dictionary term's
/// title, or `None` for a field marked `"personal": true` itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalField {
    pub name: String,
    pub term_title: Option<String>,
    /// The dictionary term's name (`cccd`), which says how the field is masked.
    pub term: Option<String>,
}

/// The fields of a schema that hold personal data (Law 91/2025/QH15): marked
/// `"personal": true`, or referencing a dictionary term marked personal unless the field says
/// `"personal": false`.
pub fn personal_fields(schema: &Value, lookup: &HashMap<String, Vec<DictionaryTerm>>) -> Vec<PersonalField> {
    let fields = schema.get("fields").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    fields
        .iter()
        .filter_map(|f| {
            let name = f.get("name").and_then(Value::as_str)?.to_string();
            // A field may say its values are not personal although its term is: an
            // establishment's switchboard number is a phone number, not a person's.
            if f.get("personal").and_then(Value::as_bool) == Some(false) {
                return None;
            }
            let term = f
                .get(TERM_PROPERTY)
                .and_then(Value::as_str)
                .and_then(TermRef::parse)
                .and_then(|r| resolve(&r, lookup).cloned())
                .filter(|t| t.personal);
            match term {
                Some(t) => Some(PersonalField { name, term_title: Some(t.title), term: Some(t.name) }),
                None if f.get("personal").and_then(Value::as_bool) == Some(true) => {
                    Some(PersonalField { name, term_title: None, term: None })
                }
                None => None,
            }
        })
        .collect()
}

/// The schema with every term-referencing field completed from its term: the term's type and
/// format unless the field sets them, and the term's constraints under the field's own.
pub fn effective(schema: &Value, lookup: &HashMap<String, Vec<DictionaryTerm>>) -> Value {
    let mut schema = schema.clone();
    if let Some(fields) = schema.get_mut("fields").and_then(Value::as_array_mut) {
        for f in fields.iter_mut() {
            let Some(obj) = f.as_object_mut() else { continue };
            let Some(r) = obj.get(TERM_PROPERTY).and_then(Value::as_str).and_then(TermRef::parse) else {
                continue;
            };
            let Some(term) = resolve(&r, lookup) else { continue };
            obj.entry("type").or_insert_with(|| Value::String(term.field_type.clone()));
            if let Some(fmt) = &term.format {
                obj.entry("format").or_insert_with(|| Value::String(fmt.clone()));
            }
            if obj.get("description").is_none() && !term.description.is_empty() {
                obj.insert("description".into(), Value::String(term.description.clone()));
            }
            // A value of the right form, shown to people instead of the term's pattern.
            if let (None, Some(example)) = (obj.get("example"), term.examples.first()) {
                obj.insert("example".into(), Value::String(example.clone()));
            }
            let mut merged: Map<String, Value> = term.constraints.as_object().cloned().unwrap_or_default();
            if let Some(own) = obj.get("constraints").and_then(Value::as_object) {
                for (k, v) in own {
                    merged.insert(k.clone(), v.clone());
                }
            }
            if !merged.is_empty() {
                obj.insert("constraints".into(), Value::Object(merged));
            }
            obj.insert(TERM_PROPERTY.into(), Value::String(format!("{}@{}", term.name, term.version)));
        }
    }
    schema
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(schema: Value) -> Vec<String> {
        check(&schema).into_iter().map(|d| d.path).collect()
    }

    #[test]
    fn accepts_a_full_schema() {
        let s = json!({
            "fields": [
                {"name": "ma_xa", "type": "string", "constraints": {"required": true, "pattern": "^[0-9]{5}$"}},
                {"name": "dan_so", "type": "integer", "constraints": {"minimum": 0}},
                {"name": "ngay", "type": "date", "format": "%d/%m/%Y"},
                {"name": "cccd", "dictionaryTerm": "cccd@1"},
                {"name": "parent", "type": "string"}
            ],
            "primaryKey": ["ma_xa"],
            "uniqueKeys": [["cccd"]],
            "foreignKeys": [{"fields": "parent", "reference": {"resource": "", "fields": "ma_xa"}}],
            "missingValues": ["", "NA"]
        });
        assert_eq!(check(&s), vec![]);
    }

    #[test]
    fn names_each_problem() {
        let s = json!({
            "fields": [
                {"name": "a", "type": "text"},
                {"name": "a", "type": "integer", "constraints": {"minimum": "x", "maxLength": 3}},
                {"type": "string", "constraints": {"pattern": "(", "between": 1}},
                "oops"
            ],
            "primaryKey": ["b"],
            "foreignKeys": [{"fields": ["a"], "reference": {"resource": "other", "fields": ["x", "y"]}}]
        });
        assert_eq!(
            paths(s),
            vec![
                "fields[0].type",
                "fields[1].constraints.maxLength",
                "fields[1].constraints.minimum",
                "fields[1].name",
                "fields[2].name",
                "fields[2].constraints.between",
                "fields[2].constraints.pattern",
                "fields[3]",
                "primaryKey[0]",
                "foreignKeys[0].reference.fields",
            ]
        );
    }

    #[test]
    fn rejects_non_objects_and_missing_fields() {
        assert_eq!(paths(json!([])), vec![""]);
        assert_eq!(paths(json!({})), vec!["fields"]);
        assert_eq!(paths(json!({"fields": []})), vec!["fields"]);
        assert_eq!(
            paths(json!({"fields": [{"name": "x", "dictionaryTerm": "Bad Name"}]})),
            vec!["fields[0].dictionaryTerm"]
        );
    }

    fn term(name: &str, version: i64, ty: &str) -> DictionaryTerm {
        DictionaryTerm {
            name: name.into(),
            version,
            title: name.into(),
            title_en: None,
            description: format!("{name} v{version}"),
            description_en: None,
            field_type: ty.into(),
            format: None,
            constraints: json!({"pattern": "^[0-9]{12}$"}),
            references: None,
            examples: vec![],
            personal: name == "cccd",
            created_at: time::OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn personal_fields_are_those_of_personal_terms_or_marked() {
        let mut lookup = HashMap::new();
        lookup.insert("cccd".to_string(), vec![term("cccd", 1, "string")]);
        lookup.insert("ma".to_string(), vec![term("ma", 1, "string")]);
        let schema = json!({"fields": [
            {"name": "so", "dictionaryTerm": "cccd"},
            {"name": "ma", "dictionaryTerm": "ma@1"},
            {"name": "ghi_chu", "type": "string", "personal": true},
            {"name": "khac", "type": "string", "personal": false},
            {"name": "tong_dai", "dictionaryTerm": "cccd", "personal": false}
        ]});
        let found = personal_fields(&schema, &lookup);
        assert_eq!(
            found,
            [
                PersonalField { name: "so".into(), term_title: Some("cccd".into()), term: Some("cccd".into()) },
                PersonalField { name: "ghi_chu".into(), term_title: None, term: None }
            ]
        );
    }

    #[test]
    fn terms_resolve_and_merge() {
        let mut lookup = HashMap::new();
        lookup.insert("cccd".to_string(), vec![term("cccd", 1, "string"), term("cccd", 2, "string")]);
        let s = json!({"fields": [
            {"name": "so_cccd", "dictionaryTerm": "cccd", "constraints": {"required": true}},
            {"name": "x", "type": "integer", "dictionaryTerm": "cccd@1"},
            {"name": "y", "dictionaryTerm": "mst"},
            {"name": "z", "dictionaryTerm": "cccd@9"}
        ]});
        let problems = check_terms(&s, &lookup);
        let p: Vec<_> = problems.iter().map(|d| d.path.as_str()).collect();
        assert_eq!(p, vec!["fields[1].type", "fields[2].dictionaryTerm", "fields[3].dictionaryTerm"]);
        assert!(problems[1].message.contains("'mst'"));
        let eff = effective(&s, &lookup);
        assert_eq!(eff["fields"][0]["type"], "string");
        assert_eq!(eff["fields"][0]["dictionaryTerm"], "cccd@2");
        assert_eq!(eff["fields"][0]["constraints"], json!({"pattern": "^[0-9]{12}$", "required": true}));
        assert_eq!(eff["fields"][0]["description"], "cccd v2");
    }
}
