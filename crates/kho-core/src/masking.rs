//! Masking personal data for readers who have not declared why they need it (Law 91/2025/QH15:
//! data minimisation). A masked value keeps what lets a reader tell rows apart or check a
//! record they already hold — the first and last digits of an identifier, the family name and
//! initials, the year of birth, the commune and province of an address — and hides the rest.

use serde::{Deserialize, Serialize};

/// How a personal field is masked, from its dictionary term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// Identity card, tax or insurance numbers, phone numbers, and personal fields of no known
    /// kind: the first four and last two characters kept (`0010******45`).
    Identifier,
    /// The first two characters of the mailbox and the whole domain (`ng********@gmail.com`).
    Email,
    /// The family name and the initials (`Nguyễn V. A.`).
    Name,
    /// The year only (`**/**/1990`).
    Date,
    /// The last two parts of the address, usually the commune and the province.
    Address,
}

impl MaskKind {
    /// The mask for a field of dictionary term `term` (`None`: a field marked personal itself).
    pub fn for_term(term: Option<&str>) -> MaskKind {
        match term.unwrap_or("") {
            "email" => MaskKind::Email,
            "full_name" => MaskKind::Name,
            "date_of_birth" => MaskKind::Date,
            "address_detail" => MaskKind::Address,
            _ => MaskKind::Identifier,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MaskKind::Identifier => "identifier",
            MaskKind::Email => "email",
            MaskKind::Name => "name",
            MaskKind::Date => "date",
            MaskKind::Address => "address",
        }
    }

    pub fn parse(s: &str) -> Option<MaskKind> {
        [MaskKind::Identifier, MaskKind::Email, MaskKind::Name, MaskKind::Date, MaskKind::Address]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// `value` masked as `kind` says. Stars replace characters one for one, so a reader sees the
/// length of what is hidden but not its content.
pub fn mask(kind: MaskKind, value: &str) -> String {
    let value = value.trim();
    match kind {
        MaskKind::Identifier => keep_ends(value, 4, 2),
        MaskKind::Email => match value.rsplit_once('@') {
            Some((local, domain)) => format!("{}@{domain}", keep_ends(local, 2, 0)),
            None => keep_ends(value, 2, 0),
        },
        MaskKind::Name => {
            let mut words = value.split_whitespace();
            let Some(family) = words.next() else { return String::new() };
            let mut out = family.to_string();
            for w in words {
                if let Some(c) = w.chars().next() {
                    out.push(' ');
                    out.push(c);
                    out.push('.');
                }
            }
            out
        }
        MaskKind::Date => {
            // ISO dates (2026-03-15, as stored) or dd/mm/yyyy: the year is the four-digit part.
            let year = value
                .split(|c: char| !c.is_ascii_digit())
                .find(|p| p.len() == 4)
                .map(str::to_string)
                .unwrap_or_else(|| "****".into());
            format!("**/**/{year}")
        }
        MaskKind::Address => {
            let parts: Vec<&str> = value.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
            if parts.len() <= 2 {
                return "***".into();
            }
            format!("***, {}", parts[parts.len() - 2..].join(", "))
        }
    }
}

/// Keep `head` characters at the start and `tail` at the end when at least four remain hidden;
/// otherwise keep only the first character of four or more, or hide everything.
fn keep_ends(value: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = value.chars().collect();
    let n = chars.len();
    let (head, tail) = if n >= head + tail + 4 {
        (head, tail)
    } else if n >= 4 {
        (1, 0)
    } else {
        (0, 0)
    };
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', n - head - tail));
    out.extend(&chars[n - tail..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_what_tells_rows_apart() {
        assert_eq!(mask(MaskKind::Identifier, "001099012345"), "0010******45");
        assert_eq!(mask(MaskKind::Identifier, "0912345678"), "0912****78");
        assert_eq!(mask(MaskKind::Identifier, "12345"), "1****");
        assert_eq!(mask(MaskKind::Identifier, "12"), "**");
        assert_eq!(mask(MaskKind::Email, "nguyenvana@gmail.com"), "ng********@gmail.com");
        assert_eq!(mask(MaskKind::Name, "Nguyễn Văn  Ánh"), "Nguyễn V. Á.");
        assert_eq!(mask(MaskKind::Date, "1990-05-12"), "**/**/1990");
        assert_eq!(mask(MaskKind::Date, "12/05/1990"), "**/**/1990");
        assert_eq!(
            mask(MaskKind::Address, "Số 12, Tổ 3, Phường Chiềng Lề, Tỉnh Sơn La"),
            "***, Phường Chiềng Lề, Tỉnh Sơn La"
        );
        assert_eq!(mask(MaskKind::Address, "Bản Hụm"), "***");
    }

    #[test]
    fn kinds_follow_terms_and_round_trip() {
        assert_eq!(MaskKind::for_term(Some("cccd")), MaskKind::Identifier);
        assert_eq!(MaskKind::for_term(Some("phone")), MaskKind::Identifier);
        assert_eq!(MaskKind::for_term(Some("full_name")), MaskKind::Name);
        assert_eq!(MaskKind::for_term(None), MaskKind::Identifier);
        for k in [MaskKind::Identifier, MaskKind::Email, MaskKind::Name, MaskKind::Date, MaskKind::Address] {
            assert_eq!(MaskKind::parse(k.as_str()), Some(k));
        }
    }
}
