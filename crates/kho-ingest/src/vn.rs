//! Vietnamese identifiers: citizen ID (CCCD), enterprise tax code (MST), phone numbers.

/// Why a CCCD is invalid, or `None`. `prefix_ok` says whether the first three digits are a
/// province (birth registration) code.
pub fn cccd_problem(v: &str, prefix_ok: impl Fn(&str) -> bool) -> Option<(&'static str, String)> {
    if v.len() != 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Some((
            "phải gồm đúng 12 chữ số",
            format!("must be exactly 12 digits, not {} characters", v.chars().count()),
        ));
    }
    if !prefix_ok(&v[..3]) {
        return Some((
            "3 số đầu không phải mã tỉnh nơi đăng ký khai sinh",
            format!("'{}' is not a province code of birth registration", &v[..3]),
        ));
    }
    None
}

/// The birth century and sex that a CCCD's fourth digit encodes: (first year of the century, is_female).
pub fn cccd_century_sex(v: &str) -> Option<(i32, bool)> {
    let g = v.as_bytes().get(3)?.checked_sub(b'0')?;
    if g > 9 {
        return None;
    }
    Some((1900 + 100 * (g as i32 / 2), g % 2 == 1))
}

/// The full birth year a CCCD encodes.
pub fn cccd_birth_year(v: &str) -> Option<i32> {
    let (century, _) = cccd_century_sex(v)?;
    let yy: i32 = v.get(4..6)?.parse().ok()?;
    Some(century + yy)
}

const MST_WEIGHTS: [u32; 9] = [31, 29, 23, 19, 17, 13, 7, 5, 3];

/// Why an MST is invalid, or `None`. Ten digits whose last is the check digit
/// 10 − (Σ dᵢ·wᵢ mod 11), optionally followed by "-NNN" for a branch. A remainder of 0 would
/// need a check digit of 10, which cannot be written: such numbers are never issued, so they are
/// rejected (as python-stdnum does).
pub fn mst_problem(v: &str) -> Option<(&'static str, String)> {
    let (main, branch) = match v.split_once('-') {
        Some((m, b)) => (m, Some(b)),
        None => (v, None),
    };
    if main.len() != 10 || !main.bytes().all(|b| b.is_ascii_digit()) {
        return Some(("phải gồm 10 chữ số (chi nhánh: thêm -NNN)", "must be 10 digits (a branch adds -NNN)".into()));
    }
    if let Some(b) = branch
        && (b.len() != 3 || !b.bytes().all(|c| c.is_ascii_digit()) || b == "000")
    {
        return Some((
            "mã chi nhánh phải là 3 chữ số từ 001 đến 999",
            "the branch suffix must be 3 digits, 001–999".into(),
        ));
    }
    let d: Vec<u32> = main.bytes().map(|b| (b - b'0') as u32).collect();
    if d[2..9].iter().all(|x| *x == 0) {
        return Some(("số thứ tự (chữ số 3–9) không được toàn số 0", "digits 3–9 must not all be 0".into()));
    }
    let sum: u32 = d[..9].iter().zip(MST_WEIGHTS).map(|(a, w)| a * w).sum();
    let r = sum % 11;
    if r == 0 || 10 - r != d[9] {
        return Some(("sai chữ số kiểm tra (chữ số thứ 10)", "the check digit (10th digit) is wrong".into()));
    }
    None
}

/// Why a Vietnamese phone number is invalid, or `None`: +84 or 0, then a 9-digit mobile number
/// (prefixes 3, 5, 7, 8, 9) or a 10-digit landline (area codes 02x). Spaces, dots and dashes
/// between digits are tolerated.
pub fn phone_problem(v: &str) -> Option<(&'static str, String)> {
    let digits: String = v.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect();
    let rest = digits.strip_prefix("+84").or_else(|| digits.strip_prefix('0'));
    let Some(rest) = rest.filter(|r| r.bytes().all(|b| b.is_ascii_digit())) else {
        return Some((
            "phải bắt đầu bằng 0 hoặc +84 và chỉ gồm chữ số",
            "must start with 0 or +84 and contain only digits".into(),
        ));
    };
    let ok = match rest.as_bytes().first() {
        Some(b'3' | b'5' | b'7' | b'8' | b'9') => rest.len() == 9,
        Some(b'2') => rest.len() == 10,
        _ => false,
    };
    if ok {
        None
    } else {
        Some((
            "không phải số di động (0 + 9 chữ số, đầu 3/5/7/8/9) hay số cố định (02x + 8 chữ số)",
            "not a mobile number (0 + 9 digits starting 3/5/7/8/9) nor a landline (02x + 8 digits)".into(),
        ))
    }
}

/// A whole number with its thousands grouped by '.', ',' or spaces: "1.234.567", "1 234".
pub fn integer(v: &str) -> Option<i64> {
    kho_core::text::vn_integer(v)
}

/// A number as written in Vietnam (see [`kho_core::text::vn_number`]).
pub fn number(v: &str) -> Option<f64> {
    kho_core::text::vn_number(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_vietnam_writes_them() {
        assert_eq!(integer("1.234.567"), Some(1_234_567));
        assert_eq!(integer("-1 234"), Some(-1234));
        assert_eq!(integer("1,234"), Some(1234));
        assert_eq!(integer("12.34"), None);
        assert_eq!(integer("1.2345"), None);
        assert_eq!(number("3,5"), Some(3.5));
        assert_eq!(number("1.234.567,25"), Some(1_234_567.25));
        assert_eq!(number("1,234,567.5"), Some(1_234_567.5));
        assert_eq!(number("12,5%"), Some(12.5));
        assert_eq!(number("12.5 %"), Some(12.5));
        // A lone comma is the decimal mark, as in Vietnamese.
        assert_eq!(number("1,234"), Some(1.234));
        assert_eq!(number("1.2.3"), None);
        assert_eq!(number("mười"), None);
        assert_eq!(number("inf%"), None);
    }

    #[test]
    fn cccd() {
        let ok = |p: &str| p.starts_with('0') && p != "000";
        assert_eq!(cccd_problem("014095001234", ok), None);
        assert!(cccd_problem("14095001234", ok).is_some());
        assert!(cccd_problem("99909500123x", ok).is_some());
        assert!(cccd_problem("000095001234", ok).unwrap().1.contains("'000'"));
        assert_eq!(cccd_century_sex("014095001234"), Some((1900, false)));
        assert_eq!(cccd_century_sex("014305001234"), Some((2000, true)));
        assert_eq!(cccd_birth_year("014305001234"), Some(2005));
        assert_eq!(cccd_birth_year("014195001234"), Some(1995));
    }

    #[test]
    fn mst_vectors() {
        assert_eq!(mst_problem("0100233488"), None);
        assert!(mst_problem("0100233480").is_some());
        assert_eq!(mst_problem("0314409058-002"), None);
        assert!(mst_problem("0314409058-000").is_some());
        assert!(mst_problem("0314409058-02").is_some());
        assert!(mst_problem("010023348").is_some());
        assert!(mst_problem("0100000008").is_some());
        assert_eq!(mst_problem("0100109106"), None);
    }

    #[test]
    fn phones() {
        for ok in ["0912345678", "+84912345678", "0912 345 678", "091.234.5678", "02123852345", "+842438251234"] {
            assert_eq!(phone_problem(ok), None, "{ok}");
        }
        for bad in ["091234567", "0112345678", "84912345678", "09123456789", "0912abc678", "0212385234"] {
            assert!(phone_problem(bad).is_some(), "{bad}");
        }
    }
}
