//! kho's catalog as DCAT-AP 3, the metadata profile European and Vietnamese (DCAT-VN) portals
//! harvest: the catalog (paged like ckanext-dcat, with Hydra links) and each dataset, in Turtle,
//! JSON-LD and RDF/XML.
//!
//! This crate knows nothing of HTTP or storage: it is handed what the caller may see and the
//! site's base URL, and returns the document. Every controlled value (frequency, file type,
//! language, access right, theme) is an EU authority-table concept, and each one used is also
//! described in the document (its class, label and scheme), so a SHACL validator checks the
//! output on its own, with no network.

use std::collections::HashMap;
use std::io;

use kho_core::model::{AccessLevel, Agency, AgencyKind, Dataset, Resource, ResourceVersion};
use oxrdf::vocab::{rdf, xsd};
use oxrdf::{Literal, NamedNode, NamedOrBlankNode, Term, Triple};
use oxrdfio::{JsonLdProfileSet, RdfFormat, RdfSerializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const DCAT: &str = "http://www.w3.org/ns/dcat#";
const DCT: &str = "http://purl.org/dc/terms/";
const FOAF: &str = "http://xmlns.com/foaf/0.1/";
const VCARD: &str = "http://www.w3.org/2006/vcard/ns#";
const SKOS: &str = "http://www.w3.org/2004/02/skos/core#";
const HYDRA: &str = "http://www.w3.org/ns/hydra/core#";
const ADMS: &str = "http://www.w3.org/ns/adms#";
const RDFS: &str = "http://www.w3.org/2000/01/rdf-schema#";
const DCATAP: &str = "http://data.europa.eu/r5r/";
const EU: &str = "http://publications.europa.eu/resource/authority/";
const IANA: &str = "https://www.iana.org/assignments/media-types/";

/// The serializations offered, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Turtle,
    JsonLd,
    RdfXml,
}

impl Format {
    /// `ttl`, `jsonld`, `rdf` or `xml`.
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "ttl" => Some(Format::Turtle),
            "jsonld" => Some(Format::JsonLd),
            "rdf" | "xml" => Some(Format::RdfXml),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Turtle => "ttl",
            Format::JsonLd => "jsonld",
            Format::RdfXml => "rdf",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Format::Turtle => "text/turtle; charset=utf-8",
            Format::JsonLd => "application/ld+json",
            Format::RdfXml => "application/rdf+xml",
        }
    }
}

/// The catalog's own description: the portal and the body that runs it.
#[derive(Debug, Clone)]
pub struct CatalogInfo {
    pub title_vi: String,
    pub title_en: String,
    pub description_vi: String,
    pub description_en: String,
    pub publisher_name: String,
    pub publisher_name_en: Option<String>,
    /// The province: its GSO code and name.
    pub spatial: Option<(String, String)>,
    /// When the catalog last changed (its newest dataset).
    pub modified: Option<OffsetDateTime>,
}

/// One dataset as the caller may see it.
pub struct DatasetEntry<'a> {
    pub dataset: &'a Dataset,
    pub publisher: Option<&'a Agency>,
    /// The latest published version of each table, by resource id.
    pub latest: &'a HashMap<String, ResourceVersion>,
    /// The name of the administrative unit it covers, if any.
    pub spatial_name: Option<String>,
}

/// One page of a paged catalog.
#[derive(Debug, Clone)]
pub struct Paging {
    pub page: usize,
    pub per_page: usize,
    pub total: usize,
    /// The catalog's URL with every query parameter but `page`, e.g. `…/catalog.ttl?q=dan+so`.
    pub url: String,
}

impl Paging {
    fn link(&self, page: usize) -> String {
        let sep = if self.url.contains('?') { '&' } else { '?' };
        format!("{}{}page={page}", self.url, sep)
    }
}

/// The URI of a dataset in the catalog (by its stable id, not its slug, which may change).
pub fn dataset_uri(site: &str, d: &Dataset) -> String {
    format!("{site}/dataset/{}", d.id)
}

/// The catalog page: the catalog, its publisher, each dataset and the paging links.
pub fn catalog_document(
    site: &str,
    info: &CatalogInfo,
    entries: &[DatasetEntry<'_>],
    paging: &Paging,
    format: Format,
) -> io::Result<Vec<u8>> {
    let mut g = Graph::default();
    let catalog = format!("{site}/catalog");
    g.a(&catalog, DCAT, "Catalog");
    g.text(&catalog, DCT, "title", &info.title_vi, "vi");
    g.text(&catalog, DCT, "title", &info.title_en, "en");
    g.text(&catalog, DCT, "description", &info.description_vi, "vi");
    g.text(&catalog, DCT, "description", &info.description_en, "en");
    let publisher = format!("{site}/#publisher");
    g.link(&catalog, DCT, "publisher", &publisher);
    g.a(&publisher, FOAF, "Agent");
    g.text(&publisher, FOAF, "name", &info.publisher_name, "vi");
    if let Some(en) = &info.publisher_name_en {
        g.text(&publisher, FOAF, "name", en, "en");
    }
    g.publisher_type(&publisher, "RegionalAuthority");
    g.link(&catalog, FOAF, "homepage", &format!("{site}/"));
    g.a(&format!("{site}/"), FOAF, "Document");
    g.language(&catalog);
    if let Some(m) = info.modified {
        g.date_time(&catalog, DCT, "modified", m);
    }
    g.link(&catalog, DCAT, "themeTaxonomy", &format!("{EU}data-theme"));
    g.scheme(&format!("{EU}data-theme"));
    if let Some((code, name)) = &info.spatial {
        g.place(&catalog, site, code, Some(name));
    }
    for e in entries {
        g.link(&catalog, DCAT, "dataset", &dataset_uri(site, e.dataset));
        describe_dataset(&mut g, site, e);
    }
    let page = paging.link(paging.page);
    g.a(&page, HYDRA, "PagedCollection");
    g.integer(&page, HYDRA, "totalItems", paging.total as i64);
    g.integer(&page, HYDRA, "itemsPerPage", paging.per_page as i64);
    let last = paging.total.div_ceil(paging.per_page.max(1)).max(1);
    g.plain(&page, HYDRA, "firstPage", &paging.link(1));
    g.plain(&page, HYDRA, "lastPage", &paging.link(last));
    if paging.page < last {
        g.plain(&page, HYDRA, "nextPage", &paging.link(paging.page + 1));
    }
    if paging.page > 1 {
        g.plain(&page, HYDRA, "previousPage", &paging.link(paging.page - 1));
    }
    g.write(format)
}

/// One dataset and its distributions.
pub fn dataset_document(site: &str, entry: &DatasetEntry<'_>, format: Format) -> io::Result<Vec<u8>> {
    let mut g = Graph::default();
    describe_dataset(&mut g, site, entry);
    g.write(format)
}

/// The file formats each published table is offered in: kho's format parameter, the EU
/// file-type code, the IANA media type and a title.
const DISTRIBUTIONS: [(&str, &str, &str); 4] = [
    ("csv", "CSV", "text/csv"),
    ("json", "JSON", "application/json"),
    ("xlsx", "XLSX", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("parquet", "PARQUET", "application/vnd.apache.parquet"),
];

fn describe_dataset(g: &mut Graph, site: &str, e: &DatasetEntry<'_>) {
    let d = e.dataset;
    let i = &d.input;
    let uri = dataset_uri(site, d);
    let landing = format!("{site}/datasets/{}", i.slug);
    g.a(&uri, DCAT, "Dataset");
    g.text(&uri, DCT, "title", &i.title, "vi");
    if let Some(en) = &i.title_en {
        g.text(&uri, DCT, "title", en, "en");
    }
    // DCAT-AP requires a description; a dataset saved without one is described by its title.
    let description = if i.description.trim().is_empty() { &i.title } else { &i.description };
    g.text(&uri, DCT, "description", description, "vi");
    if let Some(en) = &i.description_en {
        g.text(&uri, DCT, "description", en, "en");
    }
    g.plain(&uri, DCT, "identifier", &d.id);
    g.link(&uri, DCAT, "landingPage", &landing);
    g.a(&landing, FOAF, "Document");
    g.date_time(&uri, DCT, "issued", d.created_at);
    let modified = e.latest.values().map(|v| v.published_at).fold(d.modified_at, OffsetDateTime::max);
    g.date_time(&uri, DCT, "modified", modified);
    g.language(&uri);
    for t in &i.tags {
        g.text(&uri, DCAT, "keyword", t, "vi");
    }
    let frequency = format!("{EU}frequency/{}", i.frequency.eu_code());
    g.link(&uri, DCT, "accrualPeriodicity", &frequency);
    g.concept(&frequency, "Frequency", &format!("{EU}frequency"), i.frequency.as_str());
    g.a(&frequency, DCT, "Frequency");
    let (right, right_label) = match i.access_level {
        AccessLevel::Open => ("PUBLIC", "public"),
        AccessLevel::Shared | AccessLevel::Restricted => ("RESTRICTED", "restricted"),
        AccessLevel::Private => ("NON_PUBLIC", "non-public"),
    };
    let right = format!("{EU}access-right/{right}");
    g.link(&uri, DCT, "accessRights", &right);
    g.concept(&right, "RightsStatement", &format!("{EU}access-right"), right_label);
    if let Some(sector) = i.sector.as_deref().and_then(kho_core::sector::sector) {
        let theme = format!("{EU}data-theme/{}", sector.eu_theme);
        g.link(&uri, DCAT, "theme", &theme);
        g.concept(&theme, "Concept", &format!("{EU}data-theme"), theme_label(sector.eu_theme));
    }
    if let Some(a) = e.publisher {
        let agent = format!("{site}/agencies/{}", a.code);
        g.link(&uri, DCT, "publisher", &agent);
        g.a(&agent, FOAF, "Agent");
        g.text(&agent, FOAF, "name", &a.name, "vi");
        if let Some(en) = &a.name_en {
            g.text(&agent, FOAF, "name", en, "en");
        }
        let kind = match a.kind {
            AgencyKind::CommuneCommittee => "LocalAuthority",
            _ => "RegionalAuthority",
        };
        g.publisher_type(&agent, kind);
    }
    if i.contact_name.is_some() || i.contact_email.is_some() {
        let contact = format!("{uri}#contact");
        g.link(&uri, DCAT, "contactPoint", &contact);
        g.a(&contact, VCARD, "Kind");
        g.a(&contact, VCARD, "Organization");
        let name = i.contact_name.clone().or_else(|| e.publisher.map(|a| a.name.clone())).unwrap_or_default();
        g.plain(&contact, VCARD, "fn", &name);
        if let Some(mail) = &i.contact_email {
            g.link(&contact, VCARD, "hasEmail", &format!("mailto:{mail}"));
        }
    }
    if let Some(code) = &i.spatial {
        g.place(&uri, site, code, e.spatial_name.as_deref());
    }
    if i.temporal_start.is_some() || i.temporal_end.is_some() {
        let period = format!("{uri}#period");
        g.link(&uri, DCT, "temporal", &period);
        g.a(&period, DCT, "PeriodOfTime");
        if let Some(start) = i.temporal_start {
            g.typed(&period, DCAT, "startDate", &start.to_string(), xsd::DATE);
        }
        if let Some(end) = i.temporal_end {
            g.typed(&period, DCAT, "endDate", &end.to_string(), xsd::DATE);
        }
    }
    let license = i.license.as_deref().map(|id| match kho_core::license::license(id) {
        Some(l) => (l.url.to_string(), l.title.to_string()),
        None => (format!("{site}/licenses/{id}"), id.to_string()),
    });
    for r in &d.resources {
        if let Some(v) = e.latest.get(&r.id) {
            distributions(g, site, e.dataset, &uri, r, v, license.as_ref());
        }
    }
    if e.latest.values().next().is_some() {
        let package = format!("{uri}#datapackage");
        g.link(&uri, DCAT, "distribution", &package);
        g.a(&package, DCAT, "Distribution");
        g.text(&package, DCT, "title", &format!("{} (Data Package)", i.title), "vi");
        g.link(&package, DCAT, "accessURL", &landing);
        g.link(&package, DCAT, "downloadURL", &format!("{site}/api/v1/datasets/{}/datapackage", i.slug));
        g.text(
            &package,
            DCT,
            "description",
            "Gói dữ liệu (Frictionless Data Package): mọi bảng dạng CSV kèm lược đồ.",
            "vi",
        );
        g.file_type(&package, "ZIP", "application/zip");
        g.stable(&package);
        let standard = "https://specs.frictionlessdata.io/data-package/";
        g.link(&package, DCT, "conformsTo", standard);
        g.a(standard, DCT, "Standard");
        if let Some((url, title)) = &license {
            g.license(&package, url, title);
        }
    }
}

/// The English label of an EU data theme.
fn theme_label(code: &str) -> &str {
    match code {
        "AGRI" => "Agriculture, fisheries, forestry and food",
        "ECON" => "Economy and finance",
        "EDUC" => "Education, culture and sport",
        "ENER" => "Energy",
        "ENVI" => "Environment",
        "GOVE" => "Government and public sector",
        "HEAL" => "Health",
        "INTR" => "International issues",
        "JUST" => "Justice, legal system and public safety",
        "REGI" => "Regions and cities",
        "SOCI" => "Population and society",
        "TECH" => "Science and technology",
        "TRAN" => "Transport",
        other => other,
    }
}

fn distributions(
    g: &mut Graph,
    site: &str,
    d: &Dataset,
    dataset: &str,
    r: &Resource,
    v: &ResourceVersion,
    license: Option<&(String, String)>,
) {
    let table_title = r.input.title.clone().unwrap_or_else(|| r.input.name.clone());
    let schema = format!("{site}/api/v1/datasets/{}/resources/{}/schema", d.input.slug, r.input.name);
    for (param, code, media) in DISTRIBUTIONS {
        let dist = format!("{dataset}/tables/{}/{param}", r.input.name);
        g.link(dataset, DCAT, "distribution", &dist);
        g.a(&dist, DCAT, "Distribution");
        g.text(&dist, DCT, "title", &format!("{table_title} ({code})"), "vi");
        g.link(&dist, DCAT, "accessURL", &format!("{site}/datasets/{}", d.input.slug));
        let download = format!(
            "{site}/api/v1/datasets/{}/resources/{}/versions/latest/data?format={param}",
            d.input.slug, r.input.name
        );
        g.link(&dist, DCAT, "downloadURL", &download);
        g.text(
            &dist,
            DCT,
            "description",
            &format!("Bảng {}, phiên bản mới nhất ({}, {} dòng), định dạng {code}.", r.input.name, v.version, v.rows),
            "vi",
        );
        g.file_type(&dist, code, media);
        g.stable(&dist);
        g.date_time(&dist, DCT, "modified", v.published_at);
        g.date_time(&dist, DCT, "issued", r.created_at);
        // The stored Parquet file is served as it is; the other formats are written on request.
        if param == "parquet" {
            g.typed(&dist, DCAT, "byteSize", &v.bytes.max(0).to_string(), xsd::DECIMAL);
        }
        g.link(&dist, DCT, "conformsTo", &schema);
        g.a(&schema, DCT, "Standard");
        if let Some((url, title)) = license {
            g.license(&dist, url, title);
        }
    }
}

/// Triples under construction, each subject and predicate given as text.
#[derive(Default)]
struct Graph {
    triples: Vec<Triple>,
    /// Resources already described (concepts used by many datasets are described once).
    described: std::collections::HashSet<String>,
}

/// Whether XML 1.0 allows the character at all: RDF/XML cannot carry the others (NUL, most
/// control characters, U+FFFE, U+FFFF), escaped or not, and one of them anywhere would make the
/// whole catalog unparseable.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Text for a literal, without the characters XML cannot carry (values stored before they were
/// refused at input).
fn xml_text(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().all(xml_char) { std::borrow::Cow::Borrowed(s) } else { s.chars().filter(|c| xml_char(*c)).collect() }
}

/// `s` as an IRI, or `None` if it cannot be one. Most IRIs here are kho's own, but some carry
/// what a steward typed (a contact e-mail in `mailto:`, a licence id), and values stored before
/// those fields were checked may hold anything. A `>` would end the IRI in Turtle and the rest
/// of the value would be read as more triples, about any dataset; a space or a quote makes the
/// whole document unparseable. So every character outside RFC 3987's IRI set is
/// percent-encoded, and what is still not an IRI is left out rather than written unchecked.
pub fn iri(s: &str) -> Option<NamedNode> {
    let mut out = String::with_capacity(s.len());
    let bytes = s.as_bytes();
    for (i, c) in s.char_indices() {
        let keep = match c {
            'A'..='Z' | 'a'..='z' | '0'..='9' => true,
            '-' | '.' | '_' | '~' | ':' | '/' | '?' | '#' | '[' | ']' | '@' | '!' | '$' | '&' | '\'' | '(' | ')'
            | '*' | '+' | ',' | ';' | '=' => true,
            '%' => bytes.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
            c if !c.is_ascii() => !c.is_whitespace() && !c.is_control() && xml_char(c),
            _ => false,
        };
        if keep {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    NamedNode::new(out).ok()
}

impl Graph {
    fn add(&mut self, s: &str, ns: &str, p: &str, o: impl Into<Term>) {
        if let (Some(s), Some(p)) = (iri(s), iri(&format!("{ns}{p}"))) {
            self.triples.push(Triple::new(NamedOrBlankNode::from(s), p, o));
        }
    }

    fn once(&mut self, key: &str) -> bool {
        self.described.insert(key.to_string())
    }

    fn a(&mut self, s: &str, ns: &str, class: &str) {
        if self.once(&format!("{s} a {ns}{class}"))
            && let (Some(s), Some(class)) = (iri(s), iri(&format!("{ns}{class}")))
        {
            self.triples.push(Triple::new(NamedOrBlankNode::from(s), rdf::TYPE, class));
        }
    }

    fn link(&mut self, s: &str, ns: &str, p: &str, o: &str) {
        if let Some(o) = iri(o) {
            self.add(s, ns, p, o);
        }
    }

    fn text(&mut self, s: &str, ns: &str, p: &str, text: &str, lang: &str) {
        let lit = Literal::new_language_tagged_literal(xml_text(text), lang)
            .unwrap_or_else(|_| Literal::new_simple_literal(xml_text(text)));
        self.add(s, ns, p, lit);
    }

    fn plain(&mut self, s: &str, ns: &str, p: &str, text: &str) {
        self.add(s, ns, p, Literal::new_simple_literal(xml_text(text)));
    }

    fn typed(&mut self, s: &str, ns: &str, p: &str, value: &str, ty: oxrdf::NamedNodeRef<'_>) {
        self.add(s, ns, p, Literal::new_typed_literal(value, ty));
    }

    fn integer(&mut self, s: &str, ns: &str, p: &str, n: i64) {
        self.typed(s, ns, p, &n.to_string(), xsd::INTEGER);
    }

    fn date_time(&mut self, s: &str, ns: &str, p: &str, t: OffsetDateTime) {
        let t = t.replace_nanosecond(0).unwrap_or(t);
        if let Ok(text) = t.format(&Rfc3339) {
            self.typed(s, ns, p, &text, xsd::DATE_TIME);
        }
    }

    fn language(&mut self, s: &str) {
        let vie = format!("{EU}language/VIE");
        self.link(s, DCT, "language", &vie);
        self.concept(&vie, "LinguisticSystem", &format!("{EU}language"), "Vietnamese");
    }

    /// An authority-table concept: typed, labelled and placed in its scheme (once).
    fn concept(&mut self, iri: &str, dct_class: &str, scheme: &str, label: &str) {
        if dct_class != "Concept" {
            self.a(iri, DCT, dct_class);
        }
        self.a(iri, SKOS, "Concept");
        if self.once(&format!("{iri} described")) {
            self.text(iri, SKOS, "prefLabel", label, "en");
            self.link(iri, SKOS, "inScheme", scheme);
        }
        self.scheme(scheme);
    }

    /// An authority table, typed and titled (once).
    fn scheme(&mut self, scheme: &str) {
        if self.once(&format!("{scheme} scheme")) {
            self.a(scheme, SKOS, "ConceptScheme");
            let title = scheme.trim_end_matches("/1.0").rsplit('/').next().unwrap_or(scheme).to_string();
            self.text(scheme, DCT, "title", &title, "en");
        }
    }

    fn publisher_type(&mut self, agent: &str, kind: &str) {
        let ty = format!("http://purl.org/adms/publishertype/{kind}");
        self.link(agent, DCT, "type", &ty);
        self.concept(&ty, "Concept", "http://purl.org/adms/publishertype/1.0", kind);
    }

    fn file_type(&mut self, dist: &str, code: &str, media: &str) {
        let format = format!("{EU}file-type/{code}");
        self.link(dist, DCT, "format", &format);
        self.concept(&format, "MediaTypeOrExtent", &format!("{EU}file-type"), code);
        let media = format!("{IANA}{media}");
        self.link(dist, DCAT, "mediaType", &media);
        self.a(&media, DCT, "MediaType");
    }

    /// An administrative unit (kho's own URI, with its GSO code), in Viet Nam.
    fn place(&mut self, s: &str, site: &str, code: &str, name: Option<&str>) {
        let place = format!("{site}/admin-units/{code}");
        self.link(s, DCT, "spatial", &place);
        self.a(&place, DCT, "Location");
        if self.once(&format!("{place} described")) {
            self.plain(&place, SKOS, "notation", code);
            if let Some(name) = name {
                self.text(&place, SKOS, "prefLabel", name, "vi");
            }
        }
        let country = format!("{EU}country/VNM");
        self.link(s, DCT, "spatial", &country);
        self.a(&country, DCT, "Location");
        self.concept(&country, "Concept", &format!("{EU}country"), "Viet Nam");
    }

    /// The download addresses are stable: they always give the latest version.
    fn stable(&mut self, dist: &str) {
        let stable = format!("{EU}planned-availability/STABLE");
        self.link(dist, DCATAP, "availability", &stable);
        self.concept(&stable, "Concept", &format!("{EU}planned-availability"), "stable");
    }

    fn license(&mut self, s: &str, url: &str, title: &str) {
        self.link(s, DCT, "license", url);
        self.a(url, DCT, "LicenseDocument");
        if self.once(&format!("{url} label")) {
            self.plain(url, RDFS, "label", title);
        }
    }

    fn write(self, format: Format) -> io::Result<Vec<u8>> {
        let rdf_format = match format {
            Format::Turtle => RdfFormat::Turtle,
            Format::RdfXml => RdfFormat::RdfXml,
            Format::JsonLd => RdfFormat::JsonLd { profile: JsonLdProfileSet::empty() },
        };
        let mut serializer = RdfSerializer::from_format(rdf_format);
        for (prefix, iri) in [
            ("dcat", DCAT),
            ("dct", DCT),
            ("foaf", FOAF),
            ("vcard", VCARD),
            ("skos", SKOS),
            ("hydra", HYDRA),
            ("adms", ADMS),
            ("rdfs", RDFS),
            ("dcatap", DCATAP),
            ("xsd", "http://www.w3.org/2001/XMLSchema#"),
        ] {
            serializer = serializer.with_prefix(prefix, iri).map_err(io::Error::other)?;
        }
        // Each subject's statements together, subjects in the order they were first described,
        // so the Turtle reads one resource at a time.
        let mut order: HashMap<&NamedOrBlankNode, usize> = HashMap::new();
        for t in &self.triples {
            let next = order.len();
            order.entry(&t.subject).or_insert(next);
        }
        let mut triples: Vec<&Triple> = self.triples.iter().collect();
        triples.sort_by_key(|t| order[&t.subject]);
        let mut out = serializer.for_writer(Vec::new());
        for t in triples {
            out.serialize_triple(t)?;
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests;
