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

/// The 16 bytes of `buf` from `at`, zero-padded past its end.
#[inline(always)]
pub(crate) fn chunk16(buf: &[u8], at: usize) -> [u8; 16] {
    match buf.get(at..at + 16) {
        Some(c) => c.try_into().unwrap_or([0; 16]),
        None => {
            let mut t = [0u8; 16];
            let rest = buf.get(at..).unwrap_or(&[]);
            t[..rest.len()].copy_from_slice(rest);
            t
        }
    }
}

/// ASCII lowercase of 16 bytes (other bytes unchanged).
#[inline(always)]
fn lower16(c: [u8; 16]) -> [u8; 16] {
    c.map(|b| b | (((b.wrapping_sub(b'A') < 26) as u8) << 5))
}

/// Appends `n` bytes made by `chunk` (16 at a time, from offset 0) to `out`.
#[inline(always)]
fn push_chunks(out: &mut Vec<u8>, n: usize, chunk: impl Fn(&Vec<u8>, usize) -> [u8; 16]) {
    out.reserve(n + 16);
    let at = out.len();
    let mut i = 0;
    while i < n {
        let c = chunk(out, i);
        // Sixteen bytes into the spare capacity (the last chunk may write past `n`: those
        // bytes stay beyond the length).
        let spare = &mut out.spare_capacity_mut()[i..i + 16];
        for (d, b) in spare.iter_mut().zip(c) {
            d.write(b);
        }
        i += 16;
    }
    // SAFETY: the loop wrote bytes `at..at + n` (and maybe a few beyond), within capacity.
    unsafe { out.set_len(at + n) };
}

/// Appends `buf[start..end]` (ASCII) to `out` twice: as it is, then lowercased. Sixteen
/// bytes at a time, read past `end` where `buf` has them (a record's bytes after a value),
/// zero-padded at its end: for the short values of log records, a `memcpy` call and a
/// byte-by-byte lowercase pass cost more than the copy itself.
#[inline]
pub(crate) fn push_raw_and_lower(out: &mut Vec<u8>, buf: &[u8], start: usize, end: usize) {
    let n = end - start;
    let padded = n.next_multiple_of(16);
    let Some(src) = buf.get(start..start + padded) else {
        // Near the end of `buf`: chunks zero-padded one by one.
        push_chunks(out, n, |_, i| chunk16(buf, start + i));
        push_chunks(out, n, |_, i| lower16(chunk16(buf, start + i)));
        return;
    };
    // The raw copy at `0..padded`, then the lowercase one at `n..n + padded` (over the raw
    // copy's padding), in whole chunks: one bounds check per value, not per chunk.
    out.reserve(n + padded);
    let at = out.len();
    let spare = &mut out.spare_capacity_mut()[..n + padded];
    // (Each chunk goes through a `[u8; 16]` value: written from the slice directly, LLVM
    // emits sixteen byte moves.)
    let copy = |dst: &mut [std::mem::MaybeUninit<u8>], f: fn([u8; 16]) -> [u8; 16]| {
        for (d, c) in dst.chunks_exact_mut(16).zip(src.chunks_exact(16)) {
            let c: [u8; 16] = c.try_into().unwrap_or([0; 16]);
            for (x, y) in d.iter_mut().zip(f(c)) {
                x.write(y);
            }
        }
    };
    copy(&mut spare[..padded], |c| c);
    copy(&mut spare[n..], lower16);
    // SAFETY: bytes `at..at + 2n` were written above (raw `0..n`, lowercase `n..2n`).
    unsafe { out.set_len(at + 2 * n) };
}

/// Appends the ASCII lowercase of `out[start..end]` (ASCII) to `out`, sixteen bytes at a
/// time (an unescaped value, already in `out`).
#[inline]
pub(crate) fn push_lower_within(out: &mut Vec<u8>, start: usize, end: usize) {
    push_chunks(out, end - start, |o, i| {
        lower16(chunk16(&o[..end], start + i))
    });
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

    /// The sixteen-byte copies against the plain definition: every length around the chunk
    /// size, values ending at the buffer's end (zero padding) or followed by more bytes
    /// (read past), appended after what the buffer holds.
    #[test]
    fn chunked_copies_are_plain_copies() {
        let text: Vec<u8> = (0..200u8)
            .map(|i| b"aZ@[`{09\\:x.EXE "[i as usize % 16])
            .collect();
        for len in 0..70 {
            for start in [0usize, 3, 17] {
                for tail in [0usize, 1, 15, 16, 40] {
                    let buf = &text[..start + len + tail];
                    let end = start + len;
                    let value = &buf[start..end];
                    let mut out = b"prefix".to_vec();
                    push_raw_and_lower(&mut out, buf, start, end);
                    let mut want = b"prefix".to_vec();
                    want.extend_from_slice(value);
                    want.extend(value.iter().map(u8::to_ascii_lowercase));
                    assert_eq!(out, want, "{len} {start} {tail}");
                    // Lowercasing a value already in the buffer, followed by other bytes.
                    let mut out = b"prefix".to_vec();
                    out.extend_from_slice(value);
                    out.extend_from_slice(b"MORE");
                    let at = out.len();
                    push_lower_within(&mut out, 6, 6 + len);
                    let mut want = out[..at].to_vec();
                    want.extend(value.iter().map(u8::to_ascii_lowercase));
                    assert_eq!(out, want, "{len} {start} {tail}");
                }
            }
        }
    }
}
