//! A read-only table from record keys to path states, built for lookups straight from a
//! record's bytes.
//!
//! A key is summarised by its length and two 64-bit words: its first eight bytes and its last
//! eight (both zero-padded when the key is shorter). For keys of up to 16 bytes, almost every
//! record key, the words cover every byte, so a lookup is one multiply, one probe and three
//! integer compares, with no byte comparison; longer keys are compared in full on a hit. The
//! words are loaded from the record buffer in place when eight bytes are readable there.

/// Length, first and last eight bytes of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KeyWords {
    len: u32,
    first: u64,
    last: u64,
}

#[inline(always)]
fn word_at(buf: &[u8], at: usize) -> u64 {
    match buf.get(at..at + 8) {
        Some(w) => u64::from_le_bytes(w.try_into().unwrap_or([0; 8])),
        None => crate::swar::padded8(buf.get(at..).unwrap_or(&[])),
    }
}

impl KeyWords {
    /// The words of `key`.
    #[inline]
    pub fn of(key: &[u8]) -> KeyWords {
        KeyWords::in_buf(key, 0, key.len())
    }

    /// The words of `buf[start..end]`, loading eight bytes at a time where `buf` has them.
    #[inline(always)]
    pub fn in_buf(buf: &[u8], start: usize, end: usize) -> KeyWords {
        let len = end - start;
        if len >= 8 {
            KeyWords {
                len: len as u32,
                first: word_at(buf, start),
                last: word_at(buf, end - 8),
            }
        } else {
            // Bytes past the key are masked off (little-endian: the key is the low bytes).
            let mask = (1u64 << (len * 8)).wrapping_sub(1);
            KeyWords {
                len: len as u32,
                first: word_at(buf, start) & mask,
                last: 0,
            }
        }
    }

    /// Whether the key holds a backslash (or, with `space`, a space); `None` for keys over
    /// 16 bytes, whose words do not cover every byte.
    #[inline(always)]
    pub fn has_special(&self, space: bool) -> Option<bool> {
        if self.len > 16 {
            return None;
        }
        // Padding bytes are zero and never equal a backslash or a space.
        let eq = crate::swar::eq_bytes;
        let mut m = eq(self.first, b'\\') | eq(self.last, b'\\');
        if space {
            m |= eq(self.first, b' ') | eq(self.last, b' ');
        }
        Some(m != 0)
    }

    #[inline(always)]
    fn hash(&self) -> u64 {
        (self.first ^ self.last.rotate_left(29) ^ (self.len as u64).rotate_right(8))
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
}

/// One place of the table: the key's words, its target, and for keys over 16 bytes the
/// index of the whole key in `long`.
#[derive(Debug, Clone, Copy)]
struct Place {
    words: KeyWords,
    target: u32,
    long: u32,
}

const EMPTY: u32 = u32::MAX;

/// Keys -> `u32` targets.
#[derive(Debug, Default)]
pub(crate) struct KeyIndex {
    places: Box<[Place]>,
    long: Vec<Box<[u8]>>,
}

impl KeyIndex {
    /// Builds the table of `(key, target)` pairs (keys distinct).
    pub fn build(pairs: &[(&[u8], u32)]) -> KeyIndex {
        if pairs.is_empty() {
            return KeyIndex::default();
        }
        let size = (pairs.len() * 2).next_power_of_two().max(4);
        let empty = Place {
            words: KeyWords {
                len: EMPTY,
                first: 0,
                last: 0,
            },
            target: 0,
            long: EMPTY,
        };
        let mut places = vec![empty; size].into_boxed_slice();
        let mut long = Vec::new();
        for &(key, target) in pairs {
            let words = KeyWords::of(key);
            let mut at = (words.hash() >> 40) as usize & (size - 1);
            while places[at].words.len != EMPTY {
                at = (at + 1) & (size - 1);
            }
            let long_id = if key.len() > 16 {
                long.push(Box::from(key));
                long.len() as u32 - 1
            } else {
                EMPTY
            };
            places[at] = Place {
                words,
                target,
                long: long_id,
            };
        }
        KeyIndex { places, long }
    }

    /// The target of the key `buf[start..end]`.
    #[inline(always)]
    pub fn get_in(&self, buf: &[u8], start: usize, end: usize) -> Option<u32> {
        self.get_words(&KeyWords::in_buf(buf, start, end), buf, start, end)
    }

    /// The target of the key `buf[start..end]` whose words are `words`.
    #[inline(always)]
    pub fn get_words(&self, words: &KeyWords, buf: &[u8], start: usize, end: usize) -> Option<u32> {
        if self.places.is_empty() {
            return None;
        }
        let words = *words;
        let mask = self.places.len() - 1;
        let mut at = (words.hash() >> 40) as usize & mask;
        loop {
            let p = &self.places[at];
            if p.words == words {
                if p.long == EMPTY || *self.long[p.long as usize] == buf[start..end] {
                    return Some(p.target);
                }
            } else if p.words.len == EMPTY {
                return None;
            }
            at = (at + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_exactly_the_keys_it_holds() {
        let keys: Vec<String> = (0..300)
            .map(|i| match i % 4 {
                0 => format!("k{i}"),
                1 => format!("Key{i}WithALongerName"),
                2 => format!("{i:016}"),
                _ => "x".repeat(i % 40),
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let pairs: Vec<(&[u8], u32)> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.as_bytes(), i as u32))
            .collect();
        let index = KeyIndex::build(&pairs);
        for (k, i) in &pairs {
            assert_eq!(index.get_in(k, 0, k.len()), Some(*i));
            // In place inside a longer buffer, at every alignment.
            for pad in 0..9 {
                let mut buf = vec![b'#'; pad];
                buf.extend_from_slice(k);
                buf.extend_from_slice(b"\":tail");
                assert_eq!(index.get_in(&buf, pad, pad + k.len()), Some(*i), "{pad}");
            }
        }
        // Special bytes, against the plain definition.
        for key in [
            "",
            "a b",
            "ab",
            "a\\b",
            "abcdefghijklmno\\",
            "abcdefghijklmnop",
            " ",
            "x".repeat(17).as_str(),
        ] {
            let w = KeyWords::of(key.as_bytes());
            let want = |space: bool| {
                (key.len() <= 16).then(|| key.contains('\\') || space && key.contains(' '))
            };
            assert_eq!(w.has_special(false), want(false), "{key:?}");
            assert_eq!(w.has_special(true), want(true), "{key:?}");
        }
        for miss in [
            "",
            "k",
            "k1x",
            "Key1WithALongerNamf",
            "0000000000000001x",
            "xxxxxxxxxxxxxxxxy",
        ] {
            if !keys.iter().any(|k| k == miss) {
                assert_eq!(index.get_in(miss.as_bytes(), 0, miss.len()), None, "{miss}");
            }
        }
    }
}
