//! Text rules shared by every part of kho: slugs and names, and the Vietnamese folding that lets
//! "ha noi", "HA NOI" and "Hà Nội" (and "Hoà"/"Hòa") match one another.

use unicode_normalization::UnicodeNormalization;

/// Lower-case, strip Vietnamese (and other Latin) diacritics, map đ→d, and collapse whitespace.
/// Works on NFC or NFD input alike, so tone-mark placement ("Hoà" vs "Hòa") does not matter.
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = true;
    for c in s.nfd() {
        if unicode_normalization::char::is_combining_mark(c) {
            continue;
        }
        let c = match c {
            'đ' | 'Đ' => 'd',
            c => c,
        };
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
                last_space = true;
            }
            continue;
        }
        for l in c.to_lowercase() {
            out.push(l);
        }
        last_space = false;
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// A column name reduced to what tells it apart: folded, letters and digits only. "Số giường
/// bệnh", "SO GIUONG BENH" and `so_giuong_benh` have the same key.
pub fn name_key(s: &str) -> String {
    fold(s).chars().filter(|c| c.is_alphanumeric()).collect()
}

/// A URL-safe identifier made from a (Vietnamese) title: "Dân số theo xã" → "dan-so-theo-xa".
pub fn slugify(s: &str) -> String {
    let mut out = String::new();
    for c in fold(s).chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out.truncate(100);
    out
}

/// The digits (with a leading '-') of a whole number written plainly or in groups of three
/// separated by one of `seps` ("1.234.567").
fn whole(s: &str, seps: &[char]) -> Option<String> {
    let (sign, body) = s.strip_prefix('-').map_or(("", s), |r| ("-", r));
    if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("{sign}{body}"));
    }
    let sep = body.chars().find(|c| !c.is_ascii_digit()).filter(|c| seps.contains(c))?;
    let groups: Vec<&str> = body.split(sep).collect();
    let ok = groups.len() >= 2
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| format!("{sign}{}", groups.concat()))
}

/// A whole number with its thousands grouped by '.', ',' or spaces: "1.234.567", "1 234".
pub fn vn_integer(v: &str) -> Option<i64> {
    whole(v.trim(), &['.', ',', ' ', '\u{a0}'])?.parse().ok()
}

/// A number as written in Vietnam — '.' or spaces between thousands, ',' before decimals:
/// "1.234.567", "3,5", "1.234,5" — or in English with grouped thousands ("1,234,567.5"), or a
/// percentage ("12,5%" is 12.5). A lone comma is the decimal mark ("1,234" is 1.234), as in
/// Vietnamese.
pub fn vn_number(v: &str) -> Option<f64> {
    let t = v.trim();
    let t = t.strip_suffix('%').map_or(t, str::trim_end);
    let finite = |n: f64| n.is_finite().then_some(n);
    if let Ok(n) = t.parse::<f64>() {
        return finite(n);
    }
    let join = |int: String, frac: &str| -> Option<f64> {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let text = if frac.is_empty() { int } else { format!("{int}.{frac}") };
        text.parse::<f64>().ok().and_then(finite)
    };
    let (int, frac) = t.rsplit_once(',').unwrap_or((t, ""));
    if let Some(n) = whole(int, &['.', ' ', '\u{a0}']).and_then(|int| join(int, frac)) {
        return Some(n);
    }
    let (int, frac) = t.rsplit_once('.').unwrap_or((t, ""));
    whole(int, &[',']).and_then(|int| join(int, frac))
}

/// Why a slug is not acceptable, or `None` if it is. Slugs appear in URLs, so no path separators,
/// dots or upper case; they are also stable identifiers, so keep them plain.
pub fn slug_problem(s: &str) -> Option<&'static str> {
    if s.len() < 2 || s.len() > 100 {
        return Some("must be 2 to 100 characters long");
    }
    if s.contains('/') || s.contains('\\') || s.contains("..") {
        return Some("must not contain path separators ('/', '\\\\') or '..'");
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Some("may contain only lower-case letters a–z, digits and '-'");
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must not start or end with '-'");
    }
    None
}

/// Dictionary term names: `snake_case`, starting with a letter (e.g. `cccd`, `commune_code`).
pub fn is_valid_term_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z'))
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Why a username is not acceptable, or `None`.
pub fn username_problem(s: &str) -> Option<&'static str> {
    if s.len() < 3 || s.len() > 64 {
        return Some("must be 3 to 64 characters long");
    }
    if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')) {
        return Some("may contain only a–z, 0–9, '.', '_' and '-'");
    }
    None
}

/// An e-mail address as mail is actually sent to one: `local@domain`, the local part of letters,
/// digits and `.!#$%&'*+/=?^_`{|}~-` (no quotes, spaces or angle brackets), the domain of
/// two or more labels of letters, digits and hyphens, at most 254 characters in all. These
/// addresses are shown to visitors, written into `mailto:` links and into the catalog
/// harvesters read, so anything looser is refused at input.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local.chars().all(|c| c.is_ascii_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels.last().is_some_and(|tld| tld.chars().all(|c| c.is_ascii_alphabetic()));
    s.len() <= 254 && local_ok && domain_ok
}

/// Whether text holds characters no text should: control characters other than tab and line
/// breaks (NUL, escape…), and Unicode noncharacters (U+FFFE, U+FFFF…). They display as
/// nothing, break XML (the catalog in RDF/XML) and are never typed on purpose.
pub fn has_control_characters(s: &str) -> bool {
    s.chars().any(|c| {
        (c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            || ('\u{FDD0}'..='\u{FDEF}').contains(&c)
            || (u32::from(c) & 0xFFFE) == 0xFFFE
    })
}

/// Characters with which a spreadsheet starts reading a cell as a formula.
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell for a CSV file that people open in a spreadsheet. A cell a spreadsheet would run
/// as a formula (`=HYPERLINK(…)`, `+cmd|' /C calc'!A0`, `@SUM(…)`, `-2+3`) gets a leading `'`,
/// as OWASP advises for CSV injection, so that it shows as text. Numbers (`-5`, `+84912345678`)
/// and a lone `-` (a common "no data" mark) stay as they are. kho reads the `'` back off
/// ([`csv_unescape`]), so its own files load again unchanged; machines that want the stored
/// values ask the API with `raw=true`.
pub fn csv_escape(s: &str) -> std::borrow::Cow<'_, str> {
    let risky = s.chars().count() > 1
        && s.starts_with(FORMULA_START)
        && s.trim().parse::<f64>().map_or(true, |n| !n.is_finite());
    if risky { std::borrow::Cow::Owned(format!("'{s}")) } else { std::borrow::Cow::Borrowed(s) }
}

/// The cell as stored, from one written by [`csv_escape`].
pub fn csv_unescape(s: &str) -> &str {
    match s.strip_prefix('\'') {
        Some(rest) if rest.chars().count() > 1 && rest.starts_with(FORMULA_START) => rest,
        _ => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_matches_vietnamese_variants() {
        assert_eq!(fold("Hà Nội"), "ha noi");
        assert_eq!(fold("HA  NOI "), "ha noi");
        assert_eq!(fold("ha noi"), "ha noi");
        assert_eq!(fold("Hoà Bình"), fold("Hòa Bình"));
        assert_eq!(fold("Đắk Lắk"), "dak lak");
        // Decomposed input (as some GSO files have) folds the same as precomposed.
        let nfd: String = "Thuỷ".nfd().collect();
        assert_eq!(fold(&nfd), fold("Thủy"));
    }

    #[test]
    fn slugs() {
        assert_eq!(slugify("Dân số theo xã, phường (2024)"), "dan-so-theo-xa-phuong-2024");
        assert_eq!(slug_problem("dan-so"), None);
        assert!(slug_problem("a").is_some());
        assert!(slug_problem("../etc").is_some());
        assert!(slug_problem("a/b").is_some());
        assert!(slug_problem("Dan-So").is_some());
        assert!(slug_problem("-x-").is_some());
    }

    #[test]
    fn control_characters() {
        assert!(!has_control_characters("Dân số\ttheo xã\r\n(2025)"));
        for bad in ["a\u{0}b", "\u{1b}[31m", "x\u{FFFE}", "x\u{FFFF}", "\u{FDD0}", "\u{7f}", "\u{1FFFF}"] {
            assert!(has_control_characters(bad), "{bad:?}");
        }
    }

    #[test]
    fn emails() {
        for ok in ["dulieu@sonla.gov.vn", "nguyen.van-a+so@example.com", "a@b.co"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "@b.vn",
            "a@",
            "a@b",
            "a b@c.vn",
            "a@b.vn>",
            "x@y.vn> . <http://e> <http://t> \"p\"",
            "\"q\"@b.vn",
            "a@-b.vn",
            "a@b..vn",
            "a@b.v1",
            ".a@b.vn",
            "a<script>@b.vn",
        ] {
            assert!(!is_email(bad), "{bad}");
        }
    }

    #[test]
    fn formula_cells_are_neutralised_and_read_back() {
        for (cell, written) in [
            ("=HYPERLINK(\"http://x\",\"bấm\")", "'=HYPERLINK(\"http://x\",\"bấm\")"),
            ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
            ("\t=1", "'\t=1"),
            ("-5", "-5"),
            ("+84912345678", "+84912345678"),
            ("-", "-"),
            ("Hà Nội", "Hà Nội"),
            ("a=b", "a=b"),
        ] {
            assert_eq!(csv_escape(cell), written, "{cell}");
            assert_eq!(csv_unescape(&csv_escape(cell)), cell, "{cell}");
        }
        assert_eq!(csv_unescape("'quoted'"), "'quoted'");
    }

    #[test]
    fn names() {
        assert!(is_valid_term_name("commune_code"));
        assert!(!is_valid_term_name("Commune"));
        assert!(!is_valid_term_name("1x"));
        assert_eq!(username_problem("nguyen.van.a"), None);
        assert!(username_problem("Ng").is_some());
    }
}
