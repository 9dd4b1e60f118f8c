//! Byte tests on eight bytes at once in a `u64` (SWAR), shared by the portable JSON stage
//! one, the key table and the string scanners.

/// 0x01 in every byte.
pub(crate) const LO: u64 = 0x0101_0101_0101_0101;
/// 0x80 in every byte.
pub(crate) const HI: u64 = 0x8080_8080_8080_8080;
/// 0x7f in every byte.
pub(crate) const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

/// 0x80 in every byte of `w` that is zero, exactly (no borrow between bytes).
#[inline(always)]
pub(crate) fn zero_bytes(w: u64) -> u64 {
    !(((w & LOW7).wrapping_add(LOW7)) | w | LOW7)
}

/// 0x80 in every byte of `w` equal to `c`, exactly.
#[inline(always)]
pub(crate) fn eq_bytes(w: u64, c: u8) -> u64 {
    zero_bytes(w ^ (LO * c as u64))
}

/// 0x80 in the lowest zero byte of `w` (and maybe in bytes above it, never below): enough,
/// and one operation cheaper than [`zero_bytes`], when only the first one is wanted.
#[inline(always)]
pub(crate) fn first_zero(w: u64) -> u64 {
    w.wrapping_sub(LO) & !w & HI
}

/// The first (up to) eight bytes of `b` as a little-endian word, zero-padded.
#[inline(always)]
pub(crate) fn padded8(b: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    let n = b.len().min(8);
    w[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(w)
}

/// Whether `b` holds byte `c`, eight bytes at a time (the last eight overlapping the word
/// before): for short texts such as record keys, where the standard `contains` (`memchr`)
/// costs ~90 instructions of set-up.
#[inline]
pub(crate) fn has_byte(b: &[u8], c: u8) -> bool {
    let n = b.len();
    if n < 8 {
        return b.contains(&c);
    }
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let mut m = eq_bytes(word(n - 8), c);
    let mut i = 0;
    while i + 8 <= n {
        m |= eq_bytes(word(i), c);
        i += 8;
    }
    m != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_byte_is_contains() {
        for len in [0usize, 1, 7, 8, 9, 15, 16, 17, 24, 31] {
            for pos in 0..len {
                for byte in [0u8, b'\\', b' ', 0x80, 0xff] {
                    let mut b = vec![b'k'; len];
                    b[pos] = byte;
                    for c in [b'\\', b' ', b'k', 0xff] {
                        assert_eq!(has_byte(&b, c), b.contains(&c), "{b:?} {c}");
                    }
                }
            }
        }
    }

    #[test]
    fn byte_masks() {
        for pos in 0..8 {
            for byte in [0u8, 1, 0x20, 0x5c, 0x7f, 0x80, 0xff] {
                let mut b = [0x41u8; 8];
                b[pos] = byte;
                let w = u64::from_le_bytes(b);
                let want = if byte == 0 { 0x80u64 << (8 * pos) } else { 0 };
                assert_eq!(zero_bytes(w), want, "{byte:#x} at {pos}");
                assert_eq!(first_zero(w) != 0, byte == 0);
                assert_eq!(
                    eq_bytes(w, byte),
                    0x80u64 << (8 * pos) | if byte == 0x41 { !0 } else { 0 } & HI
                );
            }
        }
    }
}
