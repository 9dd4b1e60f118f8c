// ok: unwrap/expect in this file are in test or benchmark code, where a failure is the point.
//! A small exact msgpack decoder for checking the native plugin's output: every value
//! keeps its wire type (u64 vs i64, f32 vs f64 with its bits).

/// A decoded value with its exact type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mp {
    Nil,
    Bool(bool),
    /// Unsigned, with the marker byte it was written with.
    U(u64, u8),
    /// Signed, with its marker byte.
    I(i64, u8),
    F32(u32),
    F64(u64),
    Str(String),
    Bin(Vec<u8>),
    Arr(Vec<Mp>),
    Map(Vec<(Mp, Mp)>),
    Ext(i8, Vec<u8>),
}

/// Decodes one value at `*p`.
pub fn value(b: &[u8], p: &mut usize) -> Mp {
    let c = b[*p];
    *p += 1;
    let mut take = |n: usize| {
        let s = &b[*p..*p + n];
        *p += n;
        s.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
    };
    match c {
        0x00..=0x7f => Mp::U(u64::from(c), c & 0x80),
        0x80..=0x8f => map(b, p, usize::from(c & 0xf)),
        0x90..=0x9f => arr(b, p, usize::from(c & 0xf)),
        0xa0..=0xbf => str_(b, p, usize::from(c & 0x1f)),
        0xc0 => Mp::Nil,
        0xc2 => Mp::Bool(false),
        0xc3 => Mp::Bool(true),
        0xc4..=0xc6 => {
            let n = take(1 << (c - 0xc4)) as usize;
            let v = b[*p..*p + n].to_vec();
            *p += n;
            Mp::Bin(v)
        }
        0xc7..=0xc9 => {
            let n = take(1 << (c - 0xc7)) as usize;
            let t = b[*p] as i8;
            *p += 1;
            let v = b[*p..*p + n].to_vec();
            *p += n;
            Mp::Ext(t, v)
        }
        0xca => Mp::F32(take(4) as u32),
        0xcb => Mp::F64(take(8)),
        0xcc..=0xcf => Mp::U(take(1 << (c - 0xcc)), c),
        0xd0..=0xd3 => {
            let n = 1 << (c - 0xd0);
            let raw = take(n);
            let shift = 64 - 8 * n as u32;
            Mp::I(((raw << shift) as i64) >> shift, c)
        }
        0xd4..=0xd8 => {
            let n = 1usize << (c - 0xd4);
            let t = b[*p] as i8;
            *p += 1;
            let v = b[*p..*p + n].to_vec();
            *p += n;
            Mp::Ext(t, v)
        }
        0xd9..=0xdb => {
            let n = take(1 << (c - 0xd9)) as usize;
            str_(b, p, n)
        }
        0xdc | 0xdd => {
            let n = take(2 << (c - 0xdc)) as usize;
            arr(b, p, n)
        }
        0xde | 0xdf => {
            let n = take(2 << (c - 0xde)) as usize;
            map(b, p, n)
        }
        0xe0..=0xff => Mp::I(i64::from(c as i8), 0xe0),
        0xc1 => panic!("invalid msgpack byte 0xc1"),
    }
}

fn str_(b: &[u8], p: &mut usize, n: usize) -> Mp {
    let s = std::str::from_utf8(&b[*p..*p + n])
        .expect("utf-8 str")
        .to_string();
    *p += n;
    Mp::Str(s)
}
fn arr(b: &[u8], p: &mut usize, n: usize) -> Mp {
    Mp::Arr((0..n).map(|_| value(b, p)).collect())
}
fn map(b: &[u8], p: &mut usize, n: usize) -> Mp {
    Mp::Map((0..n).map(|_| (value(b, p), value(b, p))).collect())
}

/// One decoded event: header and body.
#[derive(Debug, Clone)]
pub struct Event {
    pub header: Mp,
    pub body: Mp,
}

impl Event {
    /// The body's pairs.
    pub fn pairs(&self) -> &[(Mp, Mp)] {
        match &self.body {
            Mp::Map(m) => m,
            _ => &[],
        }
    }
    /// A field of the body.
    pub fn get(&self, key: &str) -> Option<&Mp> {
        self.pairs()
            .iter()
            .find(|(k, _)| matches!(k, Mp::Str(s) if s == key))
            .map(|(_, v)| v)
    }
    /// The ids in the `sigma` field (empty when there is none).
    pub fn sigma_ids(&self) -> Vec<String> {
        self.tag_ids("sigma")
    }
    /// The ids in a tag field.
    pub fn tag_ids(&self, field: &str) -> Vec<String> {
        let Some(Mp::Arr(items)) = self.get(field) else {
            return vec![];
        };
        items
            .iter()
            .map(|e| match e {
                Mp::Map(m) => m
                    .iter()
                    .find_map(|(k, v)| match (k, v) {
                        (Mp::Str(k), Mp::Str(v)) if k == "id" => Some(v.clone()),
                        _ => None,
                    })
                    .expect("tag entry has an id"),
                _ => panic!("tag entry is not a map"),
            })
            .collect()
    }
}

/// Decodes a whole chunk of `[header, body]` events.
pub fn events(b: &[u8]) -> Vec<Event> {
    let mut p = 0;
    let mut out = Vec::new();
    while p < b.len() {
        match value(b, &mut p) {
            Mp::Arr(mut v) if v.len() == 2 => {
                let body = v.pop().expect("event array has a body");
                let header = v.pop().expect("event array has a header");
                out.push(Event { header, body });
            }
            other => panic!("not an event: {other:?}"),
        }
    }
    out
}
