//! The encoding modifiers: `utf16le`/`wide`, `utf16be`, `utf16`, `base64`, `base64offset`.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with `=` padding (RFC 4648).
pub(crate) fn base64(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextets = [(n >> 18) & 63, (n >> 12) & 63, (n >> 6) & 63, n & 63];
        // 1 input byte -> 2 characters, 2 -> 3, 3 -> 4; the rest is padding.
        for (i, s) in sextets.iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[*s as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// pySigma's `base64offset`: for shift `i` in 0..3, encode `i` spaces followed by the
/// value and cut off the characters that depend on the unknown neighbouring bytes:
/// `b64encode(i*b" " + v)[start[i] : -end[(len(v)+i) % 3]]` with `start = (0, 2, 3)` and
/// `end = (none, 3, 2)`.
pub(crate) fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END: [usize; 3] = [0, 3, 2];
    (0..3)
        .map(|i| {
            let mut shifted = vec![b' '; i];
            shifted.extend_from_slice(bytes);
            let enc = base64(&shifted);
            let start = START[i];
            let end = enc.len().saturating_sub(END[(bytes.len() + i) % 3]);
            // Python slicing yields "" when start >= end.
            if start >= end {
                String::new()
            } else {
                enc[start..end].to_string()
            }
        })
        .collect()
}

/// UTF-16 little endian.
pub(crate) fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

/// UTF-16 big endian.
pub(crate) fn utf16be(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

/// UTF-16 with byte order mark `FF FE`, then little endian.
pub(crate) fn utf16_bom(s: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(utf16le(s));
    out
}
