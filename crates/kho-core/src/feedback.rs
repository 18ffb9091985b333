//! Checks on what visitors send back (problem reports, data requests, ratings) and on stewards'
//! answers. Public forms attract spam, so besides lengths the text may carry only a couple of
//! links, and a contact must look like an e-mail address or a phone number.

use crate::error::{Detail, Error};

pub const TITLE_MIN: usize = 5;
pub const TITLE_MAX: usize = 200;
pub const BODY_MIN: usize = 10;
pub const BODY_MAX: usize = 4000;
pub const CONTACT_MAX: usize = 200;
/// Links a message may hold: enough to point at a source, too few for link spam.
pub const LINKS_MAX: usize = 2;

/// Problems with a visitor's text field, appended to `out` with the field's name as path.
pub fn check_text(out: &mut Vec<Detail>, field: &str, value: &str, min: usize, max: usize) {
    let len = value.chars().count();
    if len < min {
        let detail = if len == 0 {
            Detail::new(field, "is required").with_vi("chưa điền")
        } else {
            Detail::new(field, format!("is too short: {len} characters, at least {min}"))
                .with_vi(format!("quá ngắn: {len} ký tự, cần ít nhất {min}"))
        };
        out.push(detail);
    } else if len > max {
        out.push(
            Detail::new(field, format!("is too long: {len} characters, at most {max}"))
                .with_vi(format!("quá dài: {len} ký tự, nhiều nhất {max}")),
        );
    }
    let links = links_in(value);
    if links > LINKS_MAX {
        out.push(
            Detail::new(field, format!("holds {links} links, at most {LINKS_MAX}"))
                .with_vi(format!("có {links} đường liên kết, nhiều nhất {LINKS_MAX}")),
        );
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
        out.push(Detail::new(field, "holds control characters").with_vi("có ký tự điều khiển không in được"));
    }
}

fn links_in(s: &str) -> usize {
    let lower = s.to_lowercase();
    lower.matches("http://").count() + lower.matches("https://").count() + lower.matches("www.").count()
        - lower.matches("://www.").count()
}

/// An e-mail address (something@domain.tld) or a phone number (8–15 digits, with spaces, dots,
/// dashes, parentheses and a leading +).
pub fn check_contact(out: &mut Vec<Detail>, field: &str, value: &str) {
    if value.chars().count() > CONTACT_MAX {
        out.push(
            Detail::new(field, format!("is too long: at most {CONTACT_MAX} characters"))
                .with_vi(format!("quá dài: nhiều nhất {CONTACT_MAX} ký tự")),
        );
        return;
    }
    let is_email = crate::text::is_email(value);
    // A number may follow the way to reach it, as people write it: "Zalo 0912 345 678",
    // "ĐT: 0212 3852 345".
    let words: Vec<&str> = value.split([' ', ':']).filter(|w| !w.is_empty()).collect();
    let labelled = (1..=3.min(words.len())).find(|k| {
        let label = crate::text::fold(&words[..*k].join(" "));
        CONTACT_LABELS.contains(&label.as_str())
    });
    let rest = labelled.map(|k| words[k..].join(" "));
    let number = rest.as_deref().unwrap_or(value.trim());
    let digits = number.chars().filter(char::is_ascii_digit).count();
    let is_phone = (8..=15).contains(&digits)
        && number.chars().enumerate().all(|(i, c)| c.is_ascii_digit() || " .-()".contains(c) || (c == '+' && i == 0));
    if !is_email && !is_phone {
        out.push(
            Detail::new(field, "is neither an e-mail address nor a phone number (e.g. lan@example.vn, 0912 345 678, Zalo 0912 345 678)")
                .with_vi("không phải thư điện tử hay số điện thoại (ví dụ: lan@example.vn, 0912 345 678, Zalo 0912 345 678)"),
        );
    }
}

/// Words that may come before a phone number in a contact, folded.
const CONTACT_LABELS: &[&str] =
    &["zalo", "viber", "sdt", "dt", "dien thoai", "di dong", "so dien thoai", "tel", "phone", "mobile", "hotline"];

/// A rating is 1 to 5 stars.
pub fn check_stars(stars: i64) -> Result<(), Error> {
    if (1..=5).contains(&stars) {
        Ok(())
    } else {
        Err(Error::validation(vec![Detail::new("stars", format!("must be 1 to 5, not {stars}"))]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &str) -> Vec<String> {
        let mut out = Vec::new();
        check_text(&mut out, "body", v, BODY_MIN, BODY_MAX);
        out.into_iter().map(|d| d.message).collect()
    }

    fn contact(v: &str) -> bool {
        let mut out = Vec::new();
        check_contact(&mut out, "contact", v);
        out.is_empty()
    }

    #[test]
    fn text_bounds_and_links() {
        assert!(text("Số liệu dân số xã Chiềng Sinh năm 2024 bị thiếu.").is_empty());
        assert_eq!(text(""), ["is required"]);
        assert_eq!(text("ngắn"), ["is too short: 4 characters, at least 10"]);
        assert_eq!(text(&"ả".repeat(4001)), ["is too long: 4001 characters, at most 4000"]);
        assert!(text("Nguồn: https://gso.gov.vn và www.sonla.gov.vn").is_empty());
        assert_eq!(text("buy http://a.example https://b.example www.c.example"), ["holds 3 links, at most 2"]);
        // A link written with www. after the scheme is one link, not two.
        assert!(text("xem https://www.sonla.gov.vn/du-lieu").is_empty());
        assert_eq!(text("dòng một\u{0}dòng hai"), ["holds control characters"]);
        assert!(text("dòng một\ndòng hai\tcột").is_empty());
    }

    #[test]
    fn contacts() {
        assert!(contact("lan.nguyen@example.vn"));
        assert!(contact("+84 912 345 678"));
        assert!(contact("0212.3852.123"));
        assert!(contact("(0212) 385-2123"));
        // The way to reach a number before it, as people write it.
        assert!(contact("Zalo 0912 345 678"));
        assert!(contact("ĐT: 0212 3852 345"));
        assert!(contact("Số điện thoại 0987.654.321"));
        assert!(!contact("Zalo"));
        assert!(!contact("Zalo tên Lan"));
        assert!(!contact("Facebook 0912 345 678"));
        assert!(!contact("gọi tôi"));
        assert!(!contact("a@b"));
        assert!(!contact("a b@c.vn"));
        assert!(!contact("12345"));
        assert!(!contact("0912+345678"));
        assert!(!contact(&format!("{}@example.vn", "a".repeat(200))));
    }

    #[test]
    fn stars() {
        assert!(check_stars(1).is_ok() && check_stars(5).is_ok());
        assert_eq!(check_stars(0).unwrap_err().details[0].message, "must be 1 to 5, not 0");
        assert!(check_stars(6).is_err());
    }
}
