use std::collections::HashMap;

use kho_core::model::{Agency, Dataset, ResourceVersion};
use oxrdfio::{RdfFormat, RdfParser};
use serde_json::json;

use super::*;

fn dataset() -> Dataset {
    let mut d: Dataset = serde_json::from_value(json!({
        "id": "0195a0c0-0000-7000-8000-000000000001",
        "slug": "dan-so-tinh",
        "title": "Dân số các tỉnh",
        "title_en": "Population by province",
        "description": "Diện tích & dân số <2025>",
        "owner_agency_id": 3,
        "catalogs": ["open"],
        "access_level": "open",
        "license": "CC-BY-4.0",
        "frequency": "annual",
        "sector": "dan-so",
        "tags": ["dân số", "\"trích dẫn\""],
        "spatial": "14",
        "contact_name": "Bộ phận dữ liệu",
        "contact_email": "dulieu@example.gov.vn",
        "revision": 2,
        "created_at": "2026-01-02T03:04:05Z",
        "modified_at": "2026-02-02T03:04:05Z",
        "resources": [{
            "id": "r1", "dataset_id": "0195a0c0-0000-7000-8000-000000000001", "name": "tinh",
            "title": "Tỉnh", "schema": {"fields": []},
            "created_at": "2026-01-02T03:04:05Z", "modified_at": "2026-01-02T03:04:05Z"
        }]
    }))
    .expect("a valid dataset");
    d.input.temporal_start = Some(time::macros::date!(2025 - 01 - 01));
    d
}

fn agency() -> Agency {
    serde_json::from_value(json!({
        "id": 3, "code": "so-noi-vu", "name": "Sở Nội vụ", "name_en": "Department of Home Affairs",
        "kind": "department", "parent_id": null, "admin_unit_code": null, "created_at": "2026-01-01T00:00:00Z"
    }))
    .expect("a valid agency")
}

fn version() -> ResourceVersion {
    serde_json::from_value(json!({
        "dataset_id": "0195a0c0-0000-7000-8000-000000000001", "resource_id": "r1", "version": 1, "rows": 34,
        "bytes": 4096, "schema_hash": "", "schema": {}, "object_key": "k", "quarantine_key": null,
        "quarantined_rows": 0, "rows_added": 34, "rows_removed": 0, "rows_changed": 0, "upload_id": null,
        "published_by": "steward", "published_at": "2026-03-01T00:00:00Z"
    }))
    .expect("a valid version")
}

fn triples(bytes: &[u8], format: RdfFormat) -> Vec<oxrdf::Quad> {
    RdfParser::from_format(format).for_slice(bytes).collect::<Result<Vec<_>, _>>().expect("parses back")
}

#[test]
fn every_format_parses_back_to_the_same_triples() {
    let d = dataset();
    let a = agency();
    let latest = HashMap::from([("r1".to_string(), version())]);
    let entry =
        DatasetEntry { dataset: &d, publisher: Some(&a), latest: &latest, spatial_name: Some("Sơn La".into()) };
    let ttl = dataset_document("http://kho.example", &entry, Format::Turtle).expect("turtle");
    let xml = dataset_document("http://kho.example", &entry, Format::RdfXml).expect("rdf/xml");
    let jsonld = dataset_document("http://kho.example", &entry, Format::JsonLd).expect("json-ld");
    let n = triples(&ttl, RdfFormat::Turtle).len();
    assert!(n > 50, "{n} triples");
    assert_eq!(triples(&xml, RdfFormat::RdfXml).len(), n);
    assert_eq!(triples(&jsonld, RdfFormat::JsonLd { profile: JsonLdProfileSet::empty() }).len(), n);
    let text = String::from_utf8(ttl).expect("utf-8");
    // Text with quotes and markup survives escaping, and Vietnamese is kept as is.
    assert!(text.contains("\"\\\"trích dẫn\\\"\"@vi"), "{text}");
    assert!(text.contains("Diện tích & dân số <2025>"));
    assert!(text.contains("<http://publications.europa.eu/resource/authority/frequency/ANNUAL>"));
    assert!(text.contains("<http://publications.europa.eu/resource/authority/data-theme/SOCI>"));
    assert!(text.contains("\"4096\"^^xsd:decimal"));
}

#[test]
fn a_dataset_without_versions_has_no_distributions() {
    let d = dataset();
    let latest = HashMap::new();
    let entry = DatasetEntry { dataset: &d, publisher: None, latest: &latest, spatial_name: None };
    let ttl = String::from_utf8(dataset_document("http://kho.example", &entry, Format::Turtle).expect("turtle"))
        .expect("utf-8");
    assert!(!ttl.contains("dcat:distribution"), "{ttl}");
}

#[test]
fn catalog_pages_link_to_their_neighbours() {
    let info = CatalogInfo {
        title_vi: "Cổng dữ liệu mở".into(),
        title_en: "Open data portal".into(),
        description_vi: "Dữ liệu mở".into(),
        description_en: "Open data".into(),
        publisher_name: "UBND tỉnh".into(),
        publisher_name_en: None,
        spatial: Some(("14".into(), "Tỉnh Sơn La".into())),
        modified: None,
    };
    let paging = Paging { page: 2, per_page: 10, total: 35, url: "http://kho.example/catalog.ttl?q=x".into() };
    let ttl =
        String::from_utf8(catalog_document("http://kho.example", &info, &[], &paging, Format::Turtle).expect("ttl"))
            .expect("utf-8");
    for link in [
        "firstPage \"http://kho.example/catalog.ttl?q=x&page=1\"",
        "lastPage \"http://kho.example/catalog.ttl?q=x&page=4\"",
        "nextPage \"http://kho.example/catalog.ttl?q=x&page=3\"",
        "previousPage \"http://kho.example/catalog.ttl?q=x&page=1\"",
    ] {
        assert!(ttl.contains(link), "{link} in {ttl}");
    }
}

#[test]
fn values_that_look_like_turtle_stay_inside_their_iri() {
    let mut d = dataset();
    let evil = "x@y.vn> . <http://kho.example/dataset/other> <http://purl.org/dc/terms/title> \"pwned\" . <http://a";
    // Characters XML cannot carry, as a title stored before they were refused.
    d.input.title = "Dân\u{0}số\u{1}\u{FFFE}\u{FFFF}".into();
    d.input.tags = vec!["thẻ\u{FFFE}".into()];
    d.input.contact_email = Some(evil.into());
    d.input.license = Some("X> <http://purl.org/dc/terms/title> \"pwned\" ; <http://e".into());
    d.input.slug = "dan-so tinh\"<>".into();
    let a = agency();
    let latest = HashMap::from([("r1".to_string(), version())]);
    let entry = DatasetEntry { dataset: &d, publisher: Some(&a), latest: &latest, spatial_name: None };
    for format in [Format::Turtle, Format::RdfXml, Format::JsonLd] {
        let bytes = dataset_document("http://kho.example", &entry, format).expect("written");
        let parse_as = match format {
            Format::Turtle => RdfFormat::Turtle,
            Format::RdfXml => RdfFormat::RdfXml,
            Format::JsonLd => RdfFormat::JsonLd { profile: JsonLdProfileSet::empty() },
        };
        let quads = triples(&bytes, parse_as);
        // Only whole values: the licence's id is shown as its title, quotes and all, as text.
        let pwned = quads.iter().filter(|q| q.object.to_string() == "\"pwned\"").count();
        assert_eq!(pwned, 0, "{format:?}: {}", String::from_utf8_lossy(&bytes));
        assert!(quads.iter().all(|q| q.subject.to_string() != "<http://kho.example/dataset/other>"));
        let mail = quads.iter().find(|q| q.predicate.as_str().ends_with("hasEmail")).expect("the e-mail is kept");
        assert!(mail.object.to_string().starts_with("<mailto:x@y.vn%3E%20.%20%3Chttp"), "{}", mail.object);
    }
    assert!(iri("http://a b").is_some_and(|n| n.as_str() == "http://a%20b"));
    assert!(iri("http://x/%zz%41").is_some_and(|n| n.as_str() == "http://x/%25zz%41"));
    assert!(iri("no scheme").is_none());
}
