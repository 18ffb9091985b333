//! Full-text and faceted search over the catalog's datasets.
//!
//! Text is matched by tantivy (BM25 ranking) over fields folded with [`kho_core::text::fold`], so
//! "ha noi", "HA NOI", "Hà Nội" and "Hoà"/"Hòa" find the same datasets; an unfolded copy of the
//! title lets a query typed with the right diacritics rank its exact matches first. Filters,
//! facets and sorting read a small summary of each dataset kept beside the index: a province's
//! catalog is thousands of datasets, not millions, and counting facets over summaries in memory is
//! simpler and faster than asking the index for each.
//!
//! The index lives in memory and is built from the metadata store at start-up; the service puts
//! each change into it as the change is committed, so results follow the catalog without a
//! restart. Nothing here knows HTTP or who the caller is beyond the [`Visibility`] it is given.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use kho_core::text::fold;
use kho_core::{Error, Result};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TEXT};
use tantivy::tokenizer::TokenStream;
use tantivy::{
    DocId, Index, IndexReader, IndexWriter, ReloadPolicy, Score, SegmentOrdinal, SegmentReader, TantivyDocument, Term,
};
use time::OffsetDateTime;

/// Longest query text looked at; the rest is ignored (a search box, not a document).
pub const MAX_QUERY_CHARS: usize = 500;
/// Most words of a query that take part in matching.
pub const MAX_QUERY_TERMS: usize = 32;

/// What the index knows of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchDoc {
    pub id: String,
    /// The slug (CKAN's `name`).
    pub name: String,
    pub title: String,
    pub title_en: Option<String>,
    pub description: String,
    pub tags: Vec<String>,
    /// Names and titles of the fields of its tables.
    pub field_names: Vec<String>,
    pub agency_code: String,
    pub agency_name: String,
    pub sector: Option<String>,
    pub license: Option<String>,
    pub frequency: String,
    /// Download formats on offer (empty until a version is published).
    pub formats: Vec<String>,
    pub spatial: Option<String>,
    pub access_level: String,
    /// Agencies that may read it whatever its level: the owner and, for restricted data, the
    /// agencies it is shared with.
    pub reader_agencies: Vec<i64>,
    pub created: OffsetDateTime,
    pub modified: OffsetDateTime,
    /// Downloads so far, for "most downloaded" ordering.
    pub downloads: u64,
    /// Views of its page so far.
    pub views: u64,
    /// When data was last published in it (none before the first version).
    pub published: Option<OffsetDateTime>,
    /// Ids of its tables.
    pub resource_ids: Vec<String>,
}

/// Who is searching, as far as visibility goes: the policy's one rule, which the index applies
/// through each dataset's reach (tested against the rule below).
pub use kho_core::policy::Visibility;

/// The fields that can filter and be counted as facets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    Agency,
    Sector,
    Tag,
    Format,
    License,
    Frequency,
    Spatial,
}

impl Facet {
    pub const ALL: [Facet; 7] =
        [Facet::Agency, Facet::Sector, Facet::Tag, Facet::Format, Facet::License, Facet::Frequency, Facet::Spatial];

    /// Its place in [`Facet::ALL`].
    fn index(self) -> usize {
        self as usize
    }

    fn values(self, d: &SearchDoc) -> Vec<&str> {
        fn one(v: &Option<String>) -> Vec<&str> {
            v.as_deref().filter(|s| !s.is_empty()).into_iter().collect()
        }
        match self {
            Facet::Agency => vec![d.agency_code.as_str()],
            Facet::Sector => one(&d.sector),
            Facet::Tag => d.tags.iter().map(String::as_str).collect(),
            Facet::Format => d.formats.iter().map(String::as_str).collect(),
            Facet::License => one(&d.license),
            Facet::Frequency => vec![d.frequency.as_str()],
            Facet::Spatial => one(&d.spatial),
        }
    }
}

/// A date field that can be limited to a range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateField {
    Created,
    Modified,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// The facet has this value (tags compare folded: "Dân số" = "dan so").
    Is(Facet, String),
    /// The facet does not have this value.
    IsNot(Facet, String),
    /// Bounds included; `None` is open.
    Between(DateField, Option<OffsetDateTime>, Option<OffsetDateTime>),
    /// By id or slug.
    Dataset(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Best match first (newest first when there is no query text).
    Relevance,
    Modified,
    Created,
    Name,
    Title,
    Id,
    Downloads,
}

#[derive(Debug, Clone)]
pub struct SearchQuery {
    pub text: String,
    pub filters: Vec<Filter>,
    pub visibility: Visibility,
    /// Keys in order, each ascending (`false`) or descending (`true`); ties end with the id.
    pub sort: Vec<(SortKey, bool)>,
    pub offset: usize,
    pub limit: usize,
    pub facets: Vec<Facet>,
    /// Most values per facet; `None` for all.
    pub facet_limit: Option<usize>,
}

impl Default for SearchQuery {
    fn default() -> Self {
        SearchQuery {
            text: String::new(),
            filters: vec![],
            visibility: Visibility::OpenOnly,
            sort: vec![(SortKey::Relevance, true)],
            offset: 0,
            limit: 10,
            facets: vec![],
            facet_limit: Some(50),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub total: usize,
    pub hits: Vec<Arc<SearchDoc>>,
    /// Per facet asked for: values with their counts, most frequent first (then by value).
    pub facets: BTreeMap<Facet, Vec<(String, usize)>>,
}

struct Fields {
    id: Field,
    /// The summary's slot in [`Summaries`], as a column: a match's summary is one array read
    /// away, with no id to decode or hash.
    key: Field,
    title: Field,
    title_exact: Field,
    tags: Field,
    description: Field,
    field_names: Field,
    agency: Field,
}

/// Field weights: a word in the title says more about a dataset than one in its description.
/// Picks one field of [`Fields`].
type FieldOf = fn(&Fields) -> Field;

const WEIGHTS: [(FieldOf, f32); 5] =
    [(|f| f.title, 4.0), (|f| f.tags, 3.0), (|f| f.field_names, 1.5), (|f| f.agency, 1.5), (|f| f.description, 1.0)];

/// How widely the dataset in a slot may be read, as visibility checks need it: one byte per
/// slot, so checking thousands of matches reads a few cache lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Reach {
    /// No dataset in the slot (never filled, or removed).
    #[default]
    Empty,
    Open,
    Shared,
    /// Restricted or private, or a draft: only the agencies named in its summary.
    Named,
}

impl Reach {
    /// A dataset with nothing published yet is a draft: whatever its level, only the agencies
    /// that may read it by name (its owner) find it, until its first version; the portal, the
    /// CKAN API and the DCAT catalogue do not list an empty promise.
    fn of(d: &SearchDoc) -> Reach {
        if d.published.is_none() {
            return Reach::Named;
        }
        match d.access_level.as_str() {
            "open" => Reach::Open,
            "shared" => Reach::Shared,
            _ => Reach::Named,
        }
    }
}

/// What ordering compares of each slot, a column per key beside the summaries: reading one key
/// of thousands of matches touches one small array, not a record (or a summary) per match.
#[derive(Debug, Default)]
struct KeyColumns {
    /// Nanoseconds since the Unix epoch (exact from 1678 to 2262, clamped beyond).
    modified: Vec<i64>,
    created: Vec<i64>,
    downloads: Vec<u64>,
    /// The id as a number when it is a lower-case UUID, whose text order this keeps.
    id: Vec<Option<u128>>,
}

impl KeyColumns {
    fn add_slot(&mut self) {
        self.modified.push(0);
        self.created.push(0);
        self.downloads.push(0);
        self.id.push(None);
    }

    fn set(&mut self, k: usize, d: &SearchDoc) {
        let nanos = |t: OffsetDateTime| t.unix_timestamp_nanos().clamp(i64::MIN.into(), i64::MAX.into()) as i64;
        if let (Some(m), Some(c), Some(n), Some(id)) =
            (self.modified.get_mut(k), self.created.get_mut(k), self.downloads.get_mut(k), self.id.get_mut(k))
        {
            *m = nanos(d.modified);
            *c = nanos(d.created);
            *n = d.downloads;
            *id = uuid_number(&d.id);
        }
    }

    /// Whether a sort key is a number here (relevance is the score when there are words).
    fn is_number(key: SortKey, has_text: bool) -> bool {
        match key {
            SortKey::Relevance => !has_text,
            SortKey::Modified | SortKey::Created | SortKey::Downloads => true,
            SortKey::Name | SortKey::Title | SortKey::Id => false,
        }
    }

    /// The value of a numeric sort key for slot `k` (0 for any other key).
    fn number(&self, k: u32, key: SortKey) -> i64 {
        let k = k as usize;
        match key {
            SortKey::Relevance | SortKey::Modified => self.modified.get(k).copied(),
            SortKey::Created => self.created.get(k).copied(),
            SortKey::Downloads => self.downloads.get(k).map(|n| i64::try_from(*n).unwrap_or(i64::MAX)),
            SortKey::Name | SortKey::Title | SortKey::Id => None,
        }
        .unwrap_or_default()
    }
}

/// A match while the page is cut: its score, its slot and the value of the first numeric sort
/// key, copied in while the matches are read in slot order so that ordering them mostly
/// compares what is in hand.
#[derive(Debug, Clone, Copy)]
struct Hit {
    score: f32,
    slot: u32,
    first: i64,
}

/// A lower-case hyphenated UUID as a number, ordered as its text is ('0'–'9' sort before
/// 'a'–'f', and the hyphens sit in the same places); anything else has none.
fn uuid_number(id: &str) -> Option<u128> {
    let b = id.as_bytes();
    if b.len() != 36 {
        return None;
    }
    let mut n: u128 = 0;
    for (i, c) in b.iter().enumerate() {
        let digit = match (i, c) {
            (8 | 13 | 18 | 23, b'-') => continue,
            (8 | 13 | 18 | 23, _) => return None,
            (_, b'0'..=b'9') => c - b'0',
            (_, b'a'..=b'f') => c - b'a' + 10,
            _ => return None,
        };
        n = (n << 4) | u128::from(digit);
    }
    Some(n)
}

/// One facet's value numbers for every slot, in one pool: counting a facet over thousands of
/// matches walks two arrays in slot order instead of following a pointer per match.
#[derive(Default)]
struct FacetColumn {
    /// Per slot, where its numbers start in `pool` and how many there are.
    spans: Vec<(u32, u32)>,
    pool: Vec<u32>,
    /// Numbers in `pool` no slot points at any more (left behind by a slot that grew).
    unused: usize,
}

impl FacetColumn {
    fn add_slot(&mut self) {
        self.spans.push((0, 0));
    }

    fn of(&self, k: usize) -> &[u32] {
        self.spans.get(k).and_then(|&(at, n)| self.pool.get(at as usize..(at + n) as usize)).unwrap_or_default()
    }

    fn set(&mut self, k: usize, ids: &[u32]) {
        let Some(span) = self.spans.get_mut(k) else { return };
        let n = ids.len() as u32;
        if n <= span.1 {
            // Fits where the old ones were.
            let at = span.0 as usize;
            self.pool[at..at + ids.len()].copy_from_slice(ids);
            self.unused += (span.1 - n) as usize;
            span.1 = n;
        } else {
            self.unused += span.1 as usize;
            *span = (self.pool.len() as u32, n);
            self.pool.extend_from_slice(ids);
        }
        if self.unused > 4096 && self.unused > self.pool.len() / 2 {
            self.compact();
        }
    }

    /// Rewrite the pool without the numbers nothing points at.
    fn compact(&mut self) {
        let mut pool = Vec::with_capacity(self.pool.len() - self.unused);
        for span in &mut self.spans {
            let (at, n) = (span.0 as usize, span.1 as usize);
            let start = pool.len() as u32;
            pool.extend_from_slice(&self.pool[at..at + n]);
            span.0 = start;
        }
        self.pool = pool;
        self.unused = 0;
    }
}

/// The summaries beside the index: a slot per dataset (emptied when it is removed) and its id's slot.
#[derive(Default)]
struct Summaries {
    slots: Vec<Option<Arc<SearchDoc>>>,
    /// Per slot, who may see it (and whether it holds a dataset).
    reach: Vec<Reach>,
    /// Per slot, what ordering compares.
    keys: KeyColumns,
    /// Per slot, the title folded, for ordering by title.
    titles: Vec<String>,
    /// Per facet, per slot, the numbers of its values (see `values`): facets are counted in an
    /// array indexed by these, with no string hashed or compared per match.
    facet_ids: [FacetColumn; 7],
    /// Per facet, every value ever seen, by number, and the number of each.
    values: [Vec<String>; 7],
    value_ids: [HashMap<String, u32>; 7],
    by_id: HashMap<String, usize>,
    /// Dataset id of each table id, for the APIs that name a table only.
    by_resource: HashMap<String, String>,
}

impl Summaries {
    fn get(&self, id: &str) -> Option<&Arc<SearchDoc>> {
        self.by_id.get(id).and_then(|k| self.slots.get(*k)).and_then(Option::as_ref)
    }

    /// Put a summary in its slot, numbering its facet values.
    fn set(&mut self, k: usize, d: SearchDoc) {
        let mut ids: [Vec<u32>; 7] = Default::default();
        for facet in Facet::ALL {
            let i = facet.index();
            for v in facet.values(&d) {
                let id = match self.value_ids[i].get(v) {
                    Some(id) => *id,
                    None => {
                        let id = self.values[i].len() as u32;
                        self.values[i].push(v.to_string());
                        self.value_ids[i].insert(v.to_string(), id);
                        id
                    }
                };
                if !ids[i].contains(&id) {
                    ids[i].push(id);
                }
            }
        }
        if let (Some(slot), Some(reach), Some(title)) =
            (self.slots.get_mut(k), self.reach.get_mut(k), self.titles.get_mut(k))
        {
            *reach = Reach::of(&d);
            self.keys.set(k, &d);
            *title = fold(&d.title);
            *slot = Some(Arc::new(d));
            for (column, ids) in self.facet_ids.iter_mut().zip(&ids) {
                column.set(k, ids);
            }
        }
    }

    /// The summary in slot `k` (every slot a search hands around holds one).
    fn at(&self, k: u32) -> Option<&SearchDoc> {
        self.slots.get(k as usize).and_then(Option::as_deref)
    }

    /// Whether slot `k` holds a dataset shown to `v`; its summary is only read for data shared
    /// with named agencies.
    fn visible(&self, k: u32, v: Visibility) -> bool {
        match (self.reach.get(k as usize).copied().unwrap_or_default(), v) {
            (Reach::Empty, _) => false,
            (_, Visibility::All) | (Reach::Open, _) | (Reach::Shared, Visibility::Agency(_)) => true,
            (Reach::Shared | Reach::Named, Visibility::OpenOnly) => false,
            (Reach::Named, Visibility::Agency(a)) => self.at(k).is_some_and(|d| d.reader_agencies.contains(&a)),
        }
    }

    /// Ids in text order, compared as numbers when both are UUIDs.
    fn id_order(&self, a: u32, b: u32) -> std::cmp::Ordering {
        let number = |k: u32| self.keys.id.get(k as usize).copied().flatten();
        match (number(a), number(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => self.at(a).map(|d| d.id.as_str()).cmp(&self.at(b).map(|d| d.id.as_str())),
        }
    }

    fn get_mut(&mut self, id: &str) -> Option<&mut Arc<SearchDoc>> {
        let k = *self.by_id.get(id)?;
        self.slots.get_mut(k).and_then(Option::as_mut)
    }

    fn values(&self) -> impl Iterator<Item = &Arc<SearchDoc>> {
        self.slots.iter().flatten()
    }

    /// Drop the table ids of what sits in slot `k`.
    fn forget_resources(&mut self, k: usize) {
        if let Some(Some(old)) = self.slots.get(k) {
            for r in &old.resource_ids {
                self.by_resource.remove(r);
            }
        }
    }

    /// The slot of this id, a new one if it has none.
    fn key_for(&mut self, id: &str) -> usize {
        if let Some(k) = self.by_id.get(id) {
            return *k;
        }
        self.slots.push(None);
        for column in &mut self.facet_ids {
            column.add_slot();
        }
        self.reach.push(Reach::Empty);
        self.keys.add_slot();
        self.titles.push(String::new());
        let k = self.slots.len() - 1;
        self.by_id.insert(id.to_string(), k);
        k
    }
}

/// Collects every match as (summary slot, score): a catalog search needs all of them for its
/// count and facets, and nothing else from the index.
struct Matches;

struct SegmentMatches {
    keys: Column<u64>,
    out: Vec<(u64, Score)>,
}

impl Collector for Matches {
    type Fruit = Vec<(u64, Score)>;
    type Child = SegmentMatches;

    fn for_segment(&self, _ord: SegmentOrdinal, segment: &SegmentReader) -> tantivy::Result<SegmentMatches> {
        Ok(SegmentMatches { keys: segment.fast_fields().u64("key")?, out: Vec::new() })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, fruits: Vec<Vec<(u64, Score)>>) -> tantivy::Result<Vec<(u64, Score)>> {
        Ok(fruits.concat())
    }
}

impl SegmentCollector for SegmentMatches {
    type Fruit = Vec<(u64, Score)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if let Some(k) = self.keys.first(doc) {
            self.out.push((k, score));
        }
    }

    fn harvest(self) -> Self::Fruit {
        self.out
    }
}

pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<IndexWriter>,
    fields: Fields,
    docs: RwLock<Summaries>,
}

fn search_err(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("search index: {e}"))
}

impl SearchIndex {
    pub fn new() -> Result<SearchIndex> {
        let mut s = Schema::builder();
        let fields = Fields {
            id: s.add_text_field("id", STRING),
            key: s.add_u64_field("key", INDEXED | FAST),
            title: s.add_text_field("title", TEXT),
            title_exact: s.add_text_field("title_exact", TEXT),
            tags: s.add_text_field("tags", TEXT),
            description: s.add_text_field("description", TEXT),
            field_names: s.add_text_field("field_names", TEXT),
            agency: s.add_text_field("agency", TEXT),
        };
        let index = Index::create_in_ram(s.build());
        // One indexing thread and a small arena: updates are one dataset at a time.
        let writer = index.writer_with_num_threads(1, 15_000_000).map_err(search_err)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into().map_err(search_err)?;
        Ok(SearchIndex { index, reader, writer: Mutex::new(writer), fields, docs: RwLock::default() })
    }

    /// Put datasets in (replacing any with the same id) and make them searchable.
    pub fn upsert(&self, docs: impl IntoIterator<Item = SearchDoc>) -> Result<()> {
        let mut writer = self.writer.lock().map_err(|_| search_err("writer poisoned"))?;
        let mut added = Vec::new();
        for d in docs {
            // Slots are only handed out under the writer's lock, so the key written to the index
            // is the one the summary will sit in.
            let key = self.docs.write().map_err(|_| search_err("summaries poisoned"))?.key_for(&d.id);
            writer.delete_term(Term::from_field_text(self.fields.id, &d.id));
            writer.add_document(self.tantivy_doc(&d, key as u64)).map_err(search_err)?;
            added.push((key, d));
        }
        writer.commit().map_err(search_err)?;
        // Summaries change after the index has the document, under the writer's lock: a search
        // never sees a summary for a document the index does not have yet.
        {
            let mut map = self.docs.write().map_err(|_| search_err("summaries poisoned"))?;
            for (key, d) in added {
                map.forget_resources(key);
                for r in &d.resource_ids {
                    map.by_resource.insert(r.clone(), d.id.clone());
                }
                map.set(key, d);
            }
        }
        self.reader.reload().map_err(search_err)
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        let mut writer = self.writer.lock().map_err(|_| search_err("writer poisoned"))?;
        writer.delete_term(Term::from_field_text(self.fields.id, id));
        writer.commit().map_err(search_err)?;
        {
            let mut guard = self.docs.write().map_err(|_| search_err("summaries poisoned"))?;
            let map = &mut *guard;
            if let Some(k) = map.by_id.get(id).copied() {
                map.forget_resources(k);
                if let (Some(slot), Some(reach)) = (map.slots.get_mut(k), map.reach.get_mut(k)) {
                    // The slot stays with the id: a dataset put back takes the same one.
                    *slot = None;
                    *reach = Reach::Empty;
                }
            }
        }
        self.reader.reload().map_err(search_err)
    }

    pub fn len(&self) -> usize {
        self.docs.read().map(|d| d.values().count()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The dataset a table (resource) id belongs to.
    pub fn dataset_of_resource(&self, resource_id: &str) -> Option<String> {
        let docs = self.docs.read().ok()?;
        docs.by_resource.get(resource_id).cloned()
    }

    /// What the index holds of one dataset.
    pub fn get(&self, id: &str) -> Option<Arc<SearchDoc>> {
        self.docs.read().ok()?.get(id).cloned()
    }

    /// Count a download of a dataset (kept for ordering by downloads).
    pub fn count_download(&self, id: &str) {
        if let Ok(mut map) = self.docs.write()
            && let Some(d) = map.get_mut(id)
        {
            let mut copy = (**d).clone();
            copy.downloads += 1;
            let downloads = copy.downloads;
            *d = Arc::new(copy);
            if let Some(k) = map.by_id.get(id).copied()
                && let Some(n) = map.keys.downloads.get_mut(k)
            {
                *n = downloads;
            }
        }
    }

    /// Downloads of all the datasets a visibility shows.
    pub fn downloads(&self, visibility: Visibility) -> u64 {
        let Ok(docs) = self.docs.read() else { return 0 };
        (0..docs.slots.len() as u32)
            .filter(|k| docs.visible(*k, visibility))
            .filter_map(|k| docs.keys.downloads.get(k as usize))
            .sum()
    }

    /// Count a view of a dataset's page.
    pub fn count_view(&self, id: &str) {
        if let Ok(mut map) = self.docs.write()
            && let Some(d) = map.get_mut(id)
        {
            let mut copy = (**d).clone();
            copy.views += 1;
            *d = Arc::new(copy);
        }
    }

    fn tantivy_doc(&self, d: &SearchDoc, key: u64) -> TantivyDocument {
        let f = &self.fields;
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, &d.id);
        doc.add_u64(f.key, key);
        let title = match &d.title_en {
            Some(en) => format!("{} {} {}", d.title, en, d.name.replace('-', " ")),
            None => format!("{} {}", d.title, d.name.replace('-', " ")),
        };
        doc.add_text(f.title, fold(&title));
        doc.add_text(f.title_exact, d.title.to_lowercase());
        doc.add_text(f.tags, fold(&d.tags.join(" ; ")));
        doc.add_text(f.description, fold(&d.description));
        doc.add_text(f.field_names, fold(&d.field_names.join(" ").replace('_', " ")));
        doc.add_text(f.agency, fold(&format!("{} {}", d.agency_name, d.agency_code.replace('-', " "))));
        doc
    }

    /// The words of a query as the index holds them (folded, lower-case), at most
    /// [`MAX_QUERY_TERMS`]. Operators and punctuation of any query language are just separators.
    fn terms(&self, field: Field, text: &str) -> Result<Vec<String>> {
        let text: String = text.chars().take(MAX_QUERY_CHARS).collect();
        let mut analyzer = self.index.tokenizer_for_field(field).map_err(search_err)?;
        let mut stream = analyzer.token_stream(&text);
        let mut out: Vec<String> = Vec::new();
        while let Some(t) = stream.next() {
            if !out.contains(&t.text) {
                out.push(t.text.clone());
            }
            if out.len() == MAX_QUERY_TERMS {
                break;
            }
        }
        Ok(out)
    }

    /// The datasets matching every word of `text`, as (summary slot, score); `None` when the
    /// text has no words (everything matches).
    fn text_scores(&self, text: &str) -> Result<Option<Vec<(u64, Score)>>> {
        let f = &self.fields;
        let words = self.terms(f.title, &fold(text))?;
        if words.is_empty() {
            return Ok(None);
        }
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for w in &words {
            let any_field: Vec<(Occur, Box<dyn Query>)> = WEIGHTS
                .iter()
                .map(|(field, weight)| {
                    let q = TermQuery::new(Term::from_field_text(field(f), w), IndexRecordOption::WithFreqs);
                    (Occur::Should, Box::new(BoostQuery::new(Box::new(q), *weight)) as Box<dyn Query>)
                })
                .collect();
            must.push((Occur::Must, Box::new(BooleanQuery::new(any_field))));
        }
        // The title as typed, diacritics and all, adds to the score without being required.
        for w in self.terms(f.title_exact, &text.to_lowercase())? {
            let q = TermQuery::new(Term::from_field_text(f.title_exact, &w), IndexRecordOption::WithFreqs);
            must.push((Occur::Should, Box::new(BoostQuery::new(Box::new(q), 2.0))));
        }
        let query = BooleanQuery::new(must);
        let searcher = self.reader.searcher();
        Ok(Some(searcher.search(&query, &Matches).map_err(search_err)?))
    }

    pub fn search(&self, q: &SearchQuery) -> Result<SearchResult> {
        let scores = self.text_scores(&q.text)?;
        let docs = self.docs.read().map_err(|_| search_err("summaries poisoned"))?;
        let keep = |k: u32| {
            docs.visible(k, q.visibility)
                && (q.filters.is_empty() || docs.at(k).is_some_and(|d| q.filters.iter().all(|f| passes(d, f))))
        };
        let has_text = scores.is_some();
        let first_number = q.sort.iter().position(|(key, _)| KeyColumns::is_number(*key, has_text));
        let hit = |score: f32, slot: u32| {
            let first = first_number.map_or(0, |i| docs.keys.number(slot, q.sort[i].0));
            Hit { score, slot, first }
        };
        // With words, only their matches are looked at; without, every dataset.
        let mut hits: Vec<Hit> = match &scores {
            Some(s) => s
                .iter()
                .filter_map(|(key, score)| u32::try_from(*key).ok().map(|k| (*score, k)))
                .filter(|(_, k)| keep(*k))
                .map(|(score, k)| hit(score, k))
                .collect(),
            None => (0..docs.slots.len() as u32).filter(|k| keep(*k)).map(|k| hit(0.0, k)).collect(),
        };
        let mut facets = BTreeMap::new();
        for facet in &q.facets {
            let i = facet.index();
            let mut counts = vec![0usize; docs.values[i].len()];
            for h in &hits {
                for id in docs.facet_ids[i].of(h.slot as usize) {
                    if let Some(n) = counts.get_mut(*id as usize) {
                        *n += 1;
                    }
                }
            }
            let names = &docs.values[i];
            let mut found: Vec<(usize, usize)> = counts.into_iter().enumerate().filter(|(_, n)| *n > 0).collect();
            found.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| names[a.0].cmp(&names[b.0])));
            if let Some(limit) = q.facet_limit {
                found.truncate(limit);
            }
            facets.insert(*facet, found.into_iter().map(|(v, n)| (names[v].clone(), n)).collect());
        }
        let total = hits.len();
        let order = |x: &Hit, y: &Hit| {
            let (a, b) = (x.slot, y.slot);
            for (i, &(key, desc)) in q.sort.iter().enumerate() {
                let o = match key {
                    _ if Some(i) == first_number => x.first.cmp(&y.first),
                    SortKey::Relevance if has_text => x.score.total_cmp(&y.score),
                    SortKey::Name => docs.at(a).map(|d| &d.name).cmp(&docs.at(b).map(|d| &d.name)),
                    SortKey::Title => docs.titles.get(a as usize).cmp(&docs.titles.get(b as usize)),
                    SortKey::Id => docs.id_order(a, b),
                    number => docs.keys.number(a, number).cmp(&docs.keys.number(b, number)),
                };
                let o = if desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            docs.id_order(a, b)
        };
        // Only the page asked for needs to be in order: put the first offset + limit in front,
        // then sort just those.
        let wanted = q.offset.saturating_add(q.limit);
        if wanted == 0 {
            hits.clear();
        } else if wanted < hits.len() {
            hits.select_nth_unstable_by(wanted - 1, order);
            hits.truncate(wanted);
        }
        hits.sort_by(order);
        let hits = hits
            .into_iter()
            .skip(q.offset)
            .take(q.limit)
            .filter_map(|h| docs.slots.get(h.slot as usize).and_then(Option::clone))
            .collect();
        Ok(SearchResult { total, hits, facets })
    }
}

fn has_value(d: &SearchDoc, facet: Facet, value: &str) -> bool {
    match facet {
        Facet::Tag => {
            let want = fold(value);
            d.tags.iter().any(|t| fold(t) == want)
        }
        _ => facet.values(d).iter().any(|v| v.eq_ignore_ascii_case(value)),
    }
}

fn passes(d: &SearchDoc, f: &Filter) -> bool {
    match f {
        Filter::Is(facet, v) => has_value(d, *facet, v),
        Filter::IsNot(facet, v) => !has_value(d, *facet, v),
        Filter::Between(field, from, to) => {
            let t = match field {
                DateField::Created => d.created,
                DateField::Modified => d.modified,
            };
            from.is_none_or(|f| t >= f) && to.is_none_or(|u| t <= u)
        }
        Filter::Dataset(id) => &d.id == id || &d.name == id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn doc(id: &str, title: &str, tags: &[&str], agency: &str, access: &str) -> SearchDoc {
        SearchDoc {
            id: id.into(),
            name: kho_core::text::slugify(title),
            title: title.into(),
            title_en: None,
            description: format!("Mô tả của {title}"),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            field_names: vec!["ma_tinh".into(), "dan_so".into()],
            agency_code: agency.into(),
            agency_name: format!("Sở {agency}"),
            sector: Some("dan-cu".into()),
            license: Some("CC-BY-4.0".into()),
            frequency: "annual".into(),
            formats: vec!["CSV".into()],
            spatial: None,
            access_level: access.into(),
            reader_agencies: vec![1],
            created: datetime!(2025-01-01 0:00 UTC),
            modified: datetime!(2025-06-01 0:00 UTC),
            downloads: 0,
            views: 0,
            published: Some(datetime!(2025-06-01 0:00 UTC)),
            resource_ids: vec![format!("{id}-r")],
        }
    }

    fn ids(r: &SearchResult) -> Vec<&str> {
        r.hits.iter().map(|d| d.id.as_str()).collect()
    }

    #[test]
    fn published_datasets_are_found_by_exactly_whom_the_policy_lets_read_them() {
        use kho_core::model::AccessLevel;
        use kho_core::policy::DatasetAccess;
        let (owner, named) = (10, 20);
        let levels = [AccessLevel::Open, AccessLevel::Shared, AccessLevel::Restricted, AccessLevel::Private];
        let i = SearchIndex::new().unwrap();
        i.upsert(levels.iter().map(|l| {
            let mut d = doc(l.as_str(), &format!("Bảng {}", l.as_str()), &[], "so", l.as_str());
            // As the service builds it: the owner, and the agencies restricted data is shared with.
            d.reader_agencies = if *l == AccessLevel::Restricted { vec![owner, named] } else { vec![owner] };
            d
        }))
        .unwrap();
        for v in [
            Visibility::All,
            Visibility::OpenOnly,
            Visibility::Agency(owner),
            Visibility::Agency(named),
            Visibility::Agency(30),
        ] {
            let found = i.search(&SearchQuery { visibility: v, limit: 10, ..Default::default() }).unwrap();
            let mut found: Vec<&str> = ids(&found);
            found.sort();
            let mut admitted: Vec<&str> = levels
                .iter()
                .filter(|l| {
                    let allowed = if **l == AccessLevel::Restricted { vec![named] } else { vec![] };
                    v.admits(DatasetAccess { owner_agency_id: owner, level: **l, allowed_agency_ids: &allowed })
                })
                .map(|l| l.as_str())
                .collect();
            admitted.sort();
            assert_eq!(found, admitted, "{v:?}");
        }
    }

    #[test]
    fn downloads_add_up_over_what_a_visitor_may_see() {
        let i = index();
        for id in ["a", "a", "b", "c", "missing"] {
            i.count_download(id);
        }
        i.count_view("a");
        assert_eq!(i.downloads(Visibility::OpenOnly), 3);
        assert_eq!(i.downloads(Visibility::All), 4);
        assert_eq!(i.get("a").map(|d| (d.downloads, d.views)), Some((2, 1)));
    }

    fn index() -> SearchIndex {
        let i = SearchIndex::new().unwrap();
        i.upsert([
            doc("a", "Dân số các tỉnh Hà Nội", &["dân số"], "so-noi-vu", "open"),
            doc("b", "Khánh Hoà: cơ sở y tế", &["y tế"], "so-y-te", "open"),
            doc("c", "Hộ nghèo theo xã", &["xã hội"], "so-noi-vu", "restricted"),
            doc("d", "Ngân sách tỉnh", &["tài chính"], "so-tai-chinh", "shared"),
        ])
        .unwrap();
        i
    }

    #[test]
    fn words_match_with_or_without_diacritics_and_either_tone_placement() {
        let i = index();
        let find = |text: &str| {
            let q = SearchQuery { text: text.into(), visibility: Visibility::All, ..Default::default() };
            ids(&i.search(&q).unwrap()).into_iter().map(String::from).collect::<Vec<_>>()
        };
        for text in ["ha noi", "Hà Nội", "HA NOI", "hà   NỘI"] {
            assert_eq!(find(text), vec!["a"], "{text}");
        }
        assert_eq!(find("Khánh Hòa"), vec!["b"]);
        assert_eq!(find("khanh hoa"), vec!["b"]);
        // Every word must match; words in tags, field names and agency names count.
        assert_eq!(find("ha noi y te"), Vec::<String>::new());
        let all = find("dan so");
        assert_eq!((all.len(), all[0].as_str()), (4, "a"), "field names match; the title ranks first");
        assert_eq!(find("dan_so"), all);
        assert_eq!(find("tai chinh"), vec!["d"]);
        // Query-language syntax is only separators.
        assert_eq!(find("title:(ha AND noi)~2 OR *:* -- ' ; DROP"), Vec::<String>::new());
        assert_eq!(find("+\"ha noi\"~ ^ ()"), vec!["a"]);
        assert_eq!(find("   ").len(), 4);
    }

    #[test]
    fn visibility_filters_facets_and_sorting() {
        let i = index();
        let mut q = SearchQuery { facets: Facet::ALL.to_vec(), limit: 10, ..Default::default() };
        let r = i.search(&q).unwrap();
        assert_eq!((r.total, ids(&r).len()), (2, 2), "anonymous: open only");
        assert_eq!(r.facets[&Facet::Agency], vec![("so-noi-vu".to_string(), 1), ("so-y-te".to_string(), 1)]);
        q.visibility = Visibility::Agency(2);
        assert_eq!(i.search(&q).unwrap().total, 3, "another agency: open and shared");
        q.visibility = Visibility::Agency(1);
        assert_eq!(i.search(&q).unwrap().total, 4, "the readers: everything");

        // An open dataset with nothing published is a draft: its owner and administrators
        // find it, nobody else, until its first version.
        let mut draft = doc("z", "Bản nháp dân số", &[], "so-y-te", "open");
        draft.published = None;
        draft.formats = vec![];
        i.upsert([draft.clone()]).unwrap();
        let count =
            |v: Visibility| i.search(&SearchQuery { visibility: v, limit: 10, ..Default::default() }).unwrap().total;
        assert_eq!((count(Visibility::OpenOnly), count(Visibility::Agency(2))), (2, 3), "not listed for others");
        assert_eq!((count(Visibility::Agency(1)), count(Visibility::All)), (5, 5), "its owner and administrators");
        draft.published = Some(datetime!(2026-01-01 0:00 UTC));
        i.upsert([draft]).unwrap();
        assert_eq!(count(Visibility::OpenOnly), 3, "listed once published");
        i.remove("z").unwrap();

        q.filters = vec![Filter::Is(Facet::Agency, "so-noi-vu".into()), Filter::Is(Facet::Tag, "Dan So".into())];
        assert_eq!(ids(&i.search(&q).unwrap()), vec!["a"]);
        q.filters = vec![Filter::IsNot(Facet::Agency, "so-noi-vu".into())];
        q.sort = vec![(SortKey::Id, true)];
        assert_eq!(ids(&i.search(&q).unwrap()), vec!["d", "b"]);
        q.filters = vec![];
        q.sort = vec![(SortKey::Name, false)];
        q.offset = 1;
        q.limit = 2;
        assert_eq!(ids(&i.search(&q).unwrap()), vec!["c", "b"]);

        // Changes show at once; removed datasets are gone.
        let mut newer = doc("e", "Dân số mới", &[], "so-y-te", "open");
        newer.modified = datetime!(2026-01-01 0:00 UTC);
        i.upsert([newer]).unwrap();
        i.remove("a").unwrap();
        let q = SearchQuery {
            text: "dan so".into(),
            filters: vec![Filter::Between(DateField::Modified, Some(datetime!(2025-12-31 0:00 UTC)), None)],
            ..Default::default()
        };
        assert_eq!(ids(&i.search(&q).unwrap()), vec!["e"]);
        assert_eq!(i.len(), 4);
        assert_eq!(i.dataset_of_resource("e-r").as_deref(), Some("e"));
        assert_eq!(i.dataset_of_resource("a-r"), None);
    }

    #[test]
    fn uuid_numbers_keep_the_text_order() {
        let mut ids = vec![
            "019ad2c4-7e10-7f3a-9b1c-0a2b3c4d5e6f",
            "019ad2c4-7e10-7f3a-9b1c-0a2b3c4d5e70",
            "019ad2c4-7e0f-7fff-ffff-ffffffffffff",
            "a0000000-0000-4000-8000-000000000000",
            "90000000-0000-4000-8000-000000000000",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
        ];
        ids.sort();
        let mut by_number = ids.clone();
        by_number.sort_by_key(|id| uuid_number(id));
        assert_eq!(by_number, ids);
        assert!(ids.iter().all(|id| uuid_number(id).is_some()));
        // Upper case, other lengths and misplaced hyphens sort as text instead.
        for other in
            ["019AD2C4-7E10-7F3A-9B1C-0A2B3C4D5E6F", "a", "019ad2c47e10-7f3a-9b1c-0a2b3c4d5e6f-", "slug-of-a-dataset"]
        {
            assert_eq!(uuid_number(other), None, "{other}");
        }
    }

    #[test]
    fn ties_end_with_the_id_whether_or_not_ids_are_uuids() {
        let i = SearchIndex::new().unwrap();
        let given = ["b", "019ad2c4-7e10-7f3a-9b1c-0a2b3c4d5e70", "a", "019ad2c4-7e10-7f3a-9b1c-0a2b3c4d5e6f"];
        i.upsert(given.iter().map(|id| doc(id, "Dân số", &[], "so-y-te", "open"))).unwrap();
        let mut want = given.to_vec();
        want.sort();
        for text in ["", "dan so"] {
            let q = SearchQuery { text: text.into(), ..Default::default() };
            assert_eq!(ids(&i.search(&q).unwrap()), want, "{text:?}");
        }
    }

    #[test]
    fn facet_columns_keep_each_slots_values_through_growth_shrinking_and_compaction() {
        let mut c = FacetColumn::default();
        let mut want: Vec<Vec<u32>> = Vec::new();
        for k in 0..3000usize {
            c.add_slot();
            want.push(vec![]);
            let ids: Vec<u32> = (0..(k % 4) as u32).map(|n| n + k as u32).collect();
            c.set(k, &ids);
            want[k] = ids;
        }
        // Grow some, shrink others, many times over: the pool is compacted along the way.
        for round in 0..6u32 {
            for k in (0..3000usize).step_by(2) {
                let ids: Vec<u32> = (0..((k as u32 + round) % 6)).map(|n| n * 7 + round).collect();
                c.set(k, &ids);
                want[k] = ids;
            }
        }
        for (k, ids) in want.iter().enumerate() {
            assert_eq!(c.of(k), ids.as_slice(), "slot {k}");
        }
        assert!(c.pool.len() - c.unused <= want.iter().map(Vec::len).sum::<usize>());
        assert!(c.pool.len() < 3 * want.iter().map(Vec::len).sum::<usize>(), "compacted: {}", c.pool.len());
        assert_eq!(c.of(999_999), &[] as &[u32]);
    }

    #[test]
    fn facet_numbers_follow_their_order() {
        for (i, f) in Facet::ALL.iter().enumerate() {
            assert_eq!(f.index(), i, "{f:?}");
        }
    }

    #[test]
    fn replacing_keeps_one_copy_and_pages_follow_the_full_order() {
        let i = SearchIndex::new().unwrap();
        let docs: Vec<SearchDoc> = (0..50)
            .map(|n| {
                let mut d = doc(&format!("d{n:02}"), &format!("Dân số {n}"), &[], "so-y-te", "open");
                d.downloads = (n * 7 % 13) as u64;
                d
            })
            .collect();
        i.upsert(docs.clone()).unwrap();
        // Put them all back, one renamed: still 50, with the new title found by its words.
        let mut renamed = docs[3].clone();
        renamed.title = "Trường học".into();
        renamed.description = String::new();
        renamed.field_names.clear();
        renamed.name = "truong-hoc".into();
        i.upsert(docs.iter().skip(4).cloned().chain([renamed])).unwrap();
        assert_eq!(i.len(), 50);
        let q = SearchQuery { text: "dan so".into(), limit: 100, ..Default::default() };
        assert_eq!(i.search(&q).unwrap().total, 49);
        let q = SearchQuery { text: "truong hoc".into(), ..Default::default() };
        assert_eq!(ids(&i.search(&q).unwrap()), vec!["d03"]);
        // Pages cut from a partly sorted list are the slices of the fully sorted one.
        let sort = vec![(SortKey::Downloads, true), (SortKey::Name, false)];
        let all = SearchQuery { sort: sort.clone(), limit: 100, ..Default::default() };
        let full: Vec<String> = ids(&i.search(&all).unwrap()).into_iter().map(String::from).collect();
        assert_eq!(full.len(), 50);
        for (offset, limit) in [(0, 1), (0, 10), (7, 5), (45, 10), (60, 5)] {
            let q = SearchQuery { sort: sort.clone(), offset, limit, ..Default::default() };
            let page = i.search(&q).unwrap();
            let want: Vec<&str> = full.iter().skip(offset).take(limit).map(String::as_str).collect();
            assert_eq!((ids(&page), page.total), (want, 50), "offset {offset} limit {limit}");
        }
        let none = SearchQuery { limit: 0, ..Default::default() };
        assert_eq!((i.search(&none).unwrap().hits.len(), i.search(&none).unwrap().total), (0, 50));
    }
}
