//! Text in the legacy Vietnamese 8-bit encodings, still found in old office files.
//!
//! Before Unicode, Vietnamese documents were typed in fonts whose glyphs stood at Latin-1 code
//! points: TCVN3 (also called ABC, the ".VnTime" fonts) gives each accented letter one code;
//! VNI (the "VNI-Times" fonts) writes a base letter followed by a mark. A spreadsheet keeps the
//! code points and not the font, so its cells read as "Së Y tÕ" (TCVN3) or "Sôû Y teá" (VNI)
//! for "Sở Y tế". A sheet whose text has such characters and no Vietnamese letter in Unicode is
//! converted with whichever encoding leaves the fewest characters that Vietnamese never uses.

use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    Tcvn3,
    Vni,
}

impl Legacy {
    pub fn name(self) -> &'static str {
        match self {
            Legacy::Tcvn3 => "TCVN3 (ABC)",
            Legacy::Vni => "VNI",
        }
    }

    pub fn decode(self, s: &str) -> String {
        match self {
            Legacy::Tcvn3 => tcvn3(s),
            Legacy::Vni => vni(s),
        }
    }
}

/// TCVN3 (TCVN 5712:1993, VN3) from 0xA1: one code per letter, lower case only (a capital was
/// the same code in an upper-case font, ".VnTimeH").
const TCVN3: [(char, char); 80] = [
    ('\u{A1}', 'Ă'),
    ('\u{A2}', 'Â'),
    ('\u{A3}', 'Ê'),
    ('\u{A4}', 'Ô'),
    ('\u{A5}', 'Ơ'),
    ('\u{A6}', 'Ư'),
    ('\u{A7}', 'Đ'),
    ('\u{A8}', 'ă'),
    ('\u{A9}', 'â'),
    ('\u{AA}', 'ê'),
    ('\u{AB}', 'ô'),
    ('\u{AC}', 'ơ'),
    ('\u{AD}', 'ư'),
    ('\u{AE}', 'đ'),
    ('\u{B5}', 'à'),
    ('\u{B6}', 'ả'),
    ('\u{B7}', 'ã'),
    ('\u{B8}', 'á'),
    ('\u{B9}', 'ạ'),
    ('\u{BB}', 'ằ'),
    ('\u{BC}', 'ẳ'),
    ('\u{BD}', 'ẵ'),
    ('\u{BE}', 'ắ'),
    ('\u{C6}', 'ặ'),
    ('\u{C7}', 'ầ'),
    ('\u{C8}', 'ẩ'),
    ('\u{C9}', 'ẫ'),
    ('\u{CA}', 'ấ'),
    ('\u{CB}', 'ậ'),
    ('\u{CC}', 'è'),
    ('\u{CE}', 'ẻ'),
    ('\u{CF}', 'ẽ'),
    ('\u{D0}', 'é'),
    ('\u{D1}', 'ẹ'),
    ('\u{D2}', 'ề'),
    ('\u{D3}', 'ể'),
    ('\u{D4}', 'ễ'),
    ('\u{D5}', 'ế'),
    ('\u{D6}', 'ệ'),
    ('\u{D7}', 'ì'),
    ('\u{D8}', 'ỉ'),
    ('\u{DC}', 'ĩ'),
    ('\u{DD}', 'í'),
    ('\u{DE}', 'ị'),
    ('\u{DF}', 'ò'),
    ('\u{E1}', 'ỏ'),
    ('\u{E2}', 'õ'),
    ('\u{E3}', 'ó'),
    ('\u{E4}', 'ọ'),
    ('\u{E5}', 'ồ'),
    ('\u{E6}', 'ổ'),
    ('\u{E7}', 'ỗ'),
    ('\u{E8}', 'ố'),
    ('\u{E9}', 'ộ'),
    ('\u{EA}', 'ờ'),
    ('\u{EB}', 'ở'),
    ('\u{EC}', 'ỡ'),
    ('\u{ED}', 'ớ'),
    ('\u{EE}', 'ợ'),
    ('\u{EF}', 'ù'),
    ('\u{F1}', 'ủ'),
    ('\u{F2}', 'ũ'),
    ('\u{F3}', 'ú'),
    ('\u{F4}', 'ụ'),
    ('\u{F5}', 'ừ'),
    ('\u{F6}', 'ử'),
    ('\u{F7}', 'ữ'),
    ('\u{F8}', 'ứ'),
    ('\u{F9}', 'ự'),
    ('\u{FA}', 'ỳ'),
    ('\u{FB}', 'ỷ'),
    ('\u{FC}', 'ỹ'),
    ('\u{FD}', 'ý'),
    ('\u{FE}', 'ỵ'),
    // Upper-case letters of the VN1 table, found in files typed with a full keyboard driver.
    ('\u{AF}', 'Ằ'),
    ('\u{BA}', 'Ẳ'),
    ('\u{BF}', 'Ẵ'),
    ('\u{C0}', 'Ắ'),
    ('\u{C1}', 'Ầ'),
    ('\u{C2}', 'Ẩ'),
];

fn tcvn3_char(c: char) -> Option<char> {
    TCVN3.iter().find(|(k, _)| *k == c).map(|(_, v)| *v)
}

fn tcvn3(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for word in s.split_inclusive(char::is_whitespace) {
        // A word typed in an upper-case font shows its plain letters in capitals; its accented
        // letters were stored as lower case and are raised to match.
        let ascii: Vec<char> = word.chars().filter(char::is_ascii_alphabetic).collect();
        let capital_code = word.chars().any(|c| ('\u{A1}'..='\u{A7}').contains(&c));
        let shout =
            (ascii.len() >= 2 || (capital_code && !ascii.is_empty())) && ascii.iter().all(char::is_ascii_uppercase);
        for c in word.chars() {
            match tcvn3_char(c) {
                Some(v) if shout => out.extend(v.to_uppercase()),
                Some(v) => out.push(v),
                None => out.push(c),
            }
        }
    }
    out
}

/// VNI marks, written after the letter they go on, as Unicode combining marks; both cases.
fn vni_marks(c: char) -> Option<&'static str> {
    Some(match c.to_lowercase().next()? {
        'ø' => "\u{300}",
        'ù' => "\u{301}",
        'û' => "\u{309}",
        'õ' => "\u{303}",
        'ï' => "\u{323}",
        'â' => "\u{302}",
        'ê' => "\u{306}",
        'á' => "\u{302}\u{301}",
        'à' => "\u{302}\u{300}",
        'å' => "\u{302}\u{309}",
        'ã' => "\u{302}\u{303}",
        'ä' => "\u{302}\u{323}",
        'é' => "\u{306}\u{301}",
        'è' => "\u{306}\u{300}",
        'ú' => "\u{306}\u{309}",
        'ü' => "\u{306}\u{303}",
        'ë' => "\u{306}\u{323}",
        _ => return None,
    })
}

/// VNI letters that stand alone: đ, ơ, ư and the i and y forms.
fn vni_letter(c: char) -> Option<char> {
    let lower = match c.to_lowercase().next()? {
        'ñ' => 'đ',
        'ô' => 'ơ',
        'ö' => 'ư',
        'ì' => 'ì',
        'í' => 'í',
        'ò' => 'ị',
        'ó' => 'ĩ',
        'æ' => 'ỉ',
        'î' => 'ỵ',
        _ => return None,
    };
    Some(if c.is_uppercase() { lower.to_uppercase().next().unwrap_or(lower) } else { lower })
}

fn is_vowel(c: char) -> bool {
    let base = c.to_lowercase().to_string().nfd().next().unwrap_or(c);
    matches!(base, 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

fn vni(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous: Option<char> = None;
    for c in s.chars() {
        // A mark goes on the vowel before it; elsewhere the character is itself.
        if previous.is_some_and(is_vowel)
            && let Some(marks) = vni_marks(c)
        {
            out.push_str(marks);
            previous = Some('x');
            continue;
        }
        let letter = vni_letter(c).unwrap_or(c);
        out.push(letter);
        previous = Some(letter);
    }
    out.nfc().collect()
}

/// Latin-1 letters that also spell Vietnamese in Unicode (à, á, â, ã, è, é, ê, ì, í, ò, ó, ô,
/// õ, ù, ú, ý and capitals).
fn vietnamese_latin1(c: char) -> bool {
    "àáâãèéêìíòóôõùúýÀÁÂÃÈÉÊÌÍÒÓÔÕÙÚÝ".contains(c)
}

/// Characters in a text that Vietnamese does not use: Latin-1 symbols and letters outside the
/// Vietnamese alphabet (what is left when a legacy text is read as Unicode).
fn foreign(s: &str) -> usize {
    s.chars().filter(|&c| ('\u{A1}'..='\u{FF}').contains(&c) && !vietnamese_latin1(c)).count()
}

/// The tone marks in a word (grave, acute, hook, tilde, dot below).
fn tones(word: &str) -> usize {
    word.nfd().filter(|c| matches!(c, '\u{300}' | '\u{301}' | '\u{303}' | '\u{309}' | '\u{323}')).count()
}

/// A letter only Unicode Vietnamese has (ă, đ, ơ, ư and the letters with two marks).
fn unicode_vietnamese(c: char) -> bool {
    matches!(c, 'ă' | 'Ă' | 'đ' | 'Đ' | 'ơ' | 'Ơ' | 'ư' | 'Ư' | 'ĩ' | 'Ĩ' | 'ũ' | 'Ũ' | '\u{1EA0}'..='\u{1EF9}')
}

/// The legacy encoding of a sheet's texts, if they are in one: some texts hold characters that
/// Vietnamese does not use, none holds a Unicode Vietnamese letter, and one of the encodings
/// explains at least three quarters of them.
pub fn detect<'a>(texts: impl Iterator<Item = &'a str> + Clone) -> Option<Legacy> {
    if texts.clone().any(|t| t.chars().any(unicode_vietnamese)) {
        return None;
    }
    let before: usize = texts.clone().map(foreign).sum();
    if before == 0 {
        return None;
    }
    // What each reading leaves unexplained, then how many syllables it makes with two tones
    // (Vietnamese has one at most; either encoding read as the other makes many), then how few
    // Vietnamese letters it makes.
    let score = |enc: Legacy| -> (usize, usize, usize) {
        let (mut left, mut two_tones, mut made) = (0, 0, 0);
        for t in texts.clone() {
            let d = enc.decode(t);
            left += foreign(&d);
            two_tones += d.split(|c: char| !c.is_alphabetic()).filter(|w| tones(w) > 1).count();
            made += d.chars().filter(|&c| unicode_vietnamese(c)).count();
        }
        (left, two_tones, usize::MAX - made)
    };
    let (tcvn3, vni) = (score(Legacy::Tcvn3), score(Legacy::Vni));
    let (best, left) = if tcvn3 <= vni { (Legacy::Tcvn3, tcvn3.0) } else { (Legacy::Vni, vni.0) };
    (left * 4 <= before).then_some(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_encodings_read_back() {
        assert_eq!(Legacy::Tcvn3.decode("Së Y tÕ"), "Sở Y tế");
        assert_eq!(Legacy::Tcvn3.decode("B¶o Th¾ng"), "Bảo Thắng");
        assert_eq!(Legacy::Tcvn3.decode("M\u{AD}êng Kh\u{AD}¬ng"), "Mường Khương");
        assert_eq!(Legacy::Tcvn3.decode("UBND TØNH S¥N LA"), "UBND TỈNH SƠN LA");
        assert_eq!(Legacy::Tcvn3.decode("GI¸M §èC"), "GIÁM ĐỐC");
        assert_eq!(Legacy::Vni.decode("Sôû Y teá"), "Sở Y tế");
        assert_eq!(Legacy::Vni.decode("Bình vieän ña khoa"), "Bình viện đa khoa");
        assert_eq!(Legacy::Vni.decode("Thaønh phoá Sôn La"), "Thành phố Sơn La");
        assert_eq!(Legacy::Vni.decode("Tröôøng"), "Trường");
    }

    #[test]
    fn a_sheet_is_recognised_by_what_it_holds() {
        let tcvn3 = ["Së Y tÕ", "BÖnh viÖn ®a khoa tØnh", "Tr¹m y tÕ x· ChiÒng C¬i", "123"];
        assert_eq!(detect(tcvn3.iter().copied()), Some(Legacy::Tcvn3));
        let vni = ["Sôû Y teá", "Beänh vieän ña khoa tænh", "Traïm y teá xaõ Chieàng Côi"];
        assert_eq!(detect(vni.iter().copied()), Some(Legacy::Vni));
        // Unicode Vietnamese, plain ASCII, and French stay as they are.
        assert_eq!(detect(["Sở Y tế", "Bệnh viện"].iter().copied()), None);
        assert_eq!(detect(["Ma co so", "123"].iter().copied()), None);
        assert_eq!(detect(["Hà Nội", "Café"].iter().copied()), None);
    }
}
