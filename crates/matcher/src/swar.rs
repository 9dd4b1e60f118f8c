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

#[cfg(test)]
mod tests {
    use super::*;

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
