//! Case folding: Unicode simple case folding with an ASCII fast path.

/// Folds one character: its lowercase form when that is a single character.
#[inline]
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    match c {
        // Simple case folding maps these where lowercase does not.
        'ς' => 'σ',
        'ẞ' => 'ß',
        _ => {
            let mut it = c.to_lowercase();
            match (it.next(), it.next()) {
                (Some(l), None) => l,
                _ => c,
            }
        }
    }
}

/// Appends the folded form of `text` to `out`. Never allocates when `out` has room.
#[inline]
pub fn fold_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    if bytes.is_ascii() {
        let at = out.len();
        out.extend_from_slice(bytes);
        out[at..].make_ascii_lowercase();
        return;
    }
    let mut buf = [0u8; 4];
    for c in text.chars() {
        out.extend_from_slice(fold_char(c).encode_utf8(&mut buf).as_bytes());
    }
}

/// The folded form of `text` as a new string (compile time only).
pub fn fold_string(text: &str) -> String {
    text.chars().map(fold_char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn folds_ascii_and_unicode() {
        assert_eq!(fold_string("IEXPRESS.exe"), "iexpress.exe");
        assert_eq!(fold_string("ÄÖÜ Σ ς"), "äöü σ σ");
        // 'İ' lowercases to two characters: simple folding leaves it.
        assert_eq!(fold_string("İ"), "İ");
        assert_eq!(fold_string("\u{212A}"), "k"); // Kelvin sign
        let mut v = Vec::new();
        fold_into("ÀB", &mut v);
        assert_eq!(v, "àb".as_bytes());
    }
}
