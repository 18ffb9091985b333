// English words on a Vietnamese page: the check the "Vietnamese everywhere" asks for.
// It reads the text a person reads (not code samples, not the data itself: the cells of a
// data table and the labels inside a chart are what the agency published) and reports every
// word of a list of English words that is not also Vietnamese, and every internal code
// (a snake_case name, a dotted action, "user:2:…"), except the proper names kho's users know.

const ENGLISH = new Set(("the of and for with as by at from or be this that are was were has have had will would can could should may must " +
  "file files data dataset datasets download downloads upload uploads version versions error errors table tables field fields schema rows row key keys " +
  "required string integer number boolean date datetime open shared restricted private user users token tokens admin steward viewer search filter filters " +
  "sort page next previous name title type value values valid invalid missing empty unknown none all any yes new edit delete save cancel create created " +
  "updated update submit sign signed out password account settings help about home contact email phone address license licence sector tags tag format formats " +
  "quality score scores overdue fresh draft publish published preview chart map legend total count sum average min max group rule rules pattern expected " +
  "example line column columns header headers sheet first last more less than other others each every only also still yet when where which who what how " +
  "report reports request requests feedback rating ratings answer answered resolved declined hidden status source sources catalog catalogue dictionary term terms " +
  "agency agencies unit units commune province code codes id ids url link links view views click here read write it its you your our we they them there " +
  "site parameter year month day hour duration category raw unit entry land transparency time support labor legal weighted unweighted south ratio").split(" "));

// Names people meet as they are: formats, standards, products, institutions.
const PROPER = new Set(["kho", "API", "CSV", "XLSX", "JSON", "JSON-LD", "Parquet", "Excel", "DCAT", "CKAN", "OpenAPI", "English", "Data", "Package",
  "Table", "Schema", "Frictionless", "Creative", "Commons", "Attribution", "NowCast", "AQI", "PCI", "GeoJSON", "Zalo", "VCCI", "USAID", "AirNow",
  "MIT", "CC0", "CC-BY", "Turtle", "LibreOffice", "TCVN3", "VNI", "Unicode", "UTF-8", "ODS", "XLS", "NDJSON"]);

// Names of several words, taken out before the words are read.
const PROPER_PHRASES = ["U.S. Department of State", "Creative Commons Attribution", "Data Package", "Table Schema"];

/** The English words and internal codes in what a person reads on the page. */
export async function englishOn(page) {
  const text = await page.evaluate(() => {
    const body = document.body.cloneNode(true);
    body.querySelectorAll("code, pre, kbd, svg, script, style, table.preview tbody, .sr-only-code").forEach((e) => e.remove());
    // innerText needs layout; a detached clone has none, so read text nodes of visible elements.
    const hidden = (el) => el.closest("details:not([open]) > :not(summary)") || el.closest("[hidden]");
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    const parts = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!hidden(n.parentElement)) parts.push(n.textContent);
    }
    return parts.join(" ") + " " + document.title;
  });
  let readable = text;
  for (const p of PROPER_PHRASES) readable = readable.split(p).join(" ");
  const words = readable.match(/[\p{L}\p{N}][\p{L}\p{N}_.:@\/-]*[\p{L}\p{N}]|\p{L}/gu) || [];
  const found = new Set();
  for (const w of words) {
    if (PROPER.has(w)) continue;
    if (/@/.test(w) || /\.(vn|org|com|net|gov)(\/|$)/.test(w)) continue; // e-mail addresses, web addresses
    if (/\.(csv|xlsx|xls|ods|json|parquet|zip)$/i.test(w)) continue; // the names of people's own files
    const internal = /_/.test(w) || /^[a-z]+\.[a-z_]+$/.test(w) || /^(user|token):\d/.test(w);
    if (internal || ENGLISH.has(w.toLowerCase())) found.add(w);
  }
  return [...found];
}
