//! sigmatag as a native Fluent Bit filter plugin (`flb-filter_sigmatag.so`).
//!
//! Fluent Bit loads `flb-filter_<name>.so` (with `-e` or a `[PLUGINS]` file), looks up the
//! data symbol `filter_<name>_plugin` and copies `sizeof(struct flb_filter_plugin)` bytes
//! of it. [`FlbFilterPlugin`] mirrors that struct as it is in every Fluent Bit release from
//! 4.0.0 to 5.1.1 ([`CHECKED_VERSIONS`]); there is no ABI versioning, so `cb_init` finds
//! out which Fluent Bit is running and refuses (returns -1, which stops Fluent Bit with an
//! error) on any other version. See `docs/fluent-bit.md`.
//!
//! `cb_filter` gets the raw msgpack chunk. Events are `[[time, metadata], body]` (Fluent
//! Bit 2.1+) or `[time, body]` (older producers); group markers (time -1 / -2) are kept as
//! they are. Nothing matched: `FLB_FILTER_NOTOUCH`. Otherwise a new chunk is built that
//! copies every event byte for byte and, for matching events, appends the tag field to the
//! body map: every other value keeps its exact msgpack type. No panic crosses the boundary
//! (`catch_unwind` on every callback; a panic means the chunk passes untouched).
#![deny(missing_docs)]

pub mod ffi;
pub mod msgpack;

use sigmatag_adapter::{Engine, ErrorKind, Reporter};
use sigmatag_matcher::{RecordError, Scratch};

use msgpack::{read_head, skip, Head, MsgpackMap};

/// Fluent Bit releases whose `struct flb_filter_plugin`, `FLB_FILTER_*` values and
/// `flb_filter_get_property` / `flb_filter_set_context` signatures were compared with this
/// mirror (identical in all of them).
pub const CHECKED_VERSIONS: &[&str] = &[
    "4.0.0", "4.0.1", "4.0.2", "4.0.3", "4.0.4", "4.0.5", "4.0.6", "4.0.7", "4.0.8", "4.0.9",
    "4.0.10", "4.0.11", "4.0.12", "4.0.13", "4.0.14", "4.1.0", "4.1.1", "4.1.2", "4.2.0", "4.2.1",
    "4.2.2", "4.2.3", "4.2.4", "4.2.5", "4.2.6", "4.2.7", "4.2.8", "5.0.0", "5.0.1", "5.0.2",
    "5.0.3", "5.0.4", "5.0.5", "5.0.6", "5.0.7", "5.0.8", "5.0.9", "5.1.0", "5.1.1",
];

/// What filtering one chunk produced.
#[derive(Debug, PartialEq, Eq)]
pub enum ChunkResult {
    /// Nothing changed: return `FLB_FILTER_NOTOUCH`.
    Untouched,
    /// The new chunk (may be empty when every record was dropped).
    Modified(Vec<u8>),
}

/// The filter state: rules, tag entries pre-packed as msgpack, a scratch.
#[derive(Debug)]
pub struct ChunkFilter {
    engine: Engine,
    scratch: Scratch,
    /// Each rule's tag entry as a msgpack map `{id, title, level, tags}`.
    packed: Vec<Vec<u8>>,
    /// Errors met on chunks (written once per kind).
    pub reporter: Reporter,
    /// Records seen, tagged, dropped.
    pub counts: (u64, u64, u64),
}

fn pack_info(engine: &Engine, i: usize) -> Result<Vec<u8>, &'static str> {
    let info = engine.set.info(i);
    let mut out = Vec::new();
    msgpack::write_map_len(&mut out, 4)?;
    msgpack::write_str(&mut out, "id")?;
    msgpack::write_str(&mut out, &info.id)?;
    msgpack::write_str(&mut out, "title")?;
    msgpack::write_str(&mut out, &info.title)?;
    msgpack::write_str(&mut out, "level")?;
    match &info.level {
        Some(l) => msgpack::write_str(&mut out, l)?,
        None => rmp::encode::write_nil(&mut out).map_err(|_| "cannot write nil")?,
    }
    msgpack::write_str(&mut out, "tags")?;
    let n = u32::try_from(info.tags.len()).map_err(|_| "too many tags")?;
    rmp::encode::write_array_len(&mut out, n).map_err(|_| "cannot write array")?;
    for t in &info.tags {
        msgpack::write_str(&mut out, t)?;
    }
    Ok(out)
}

impl ChunkFilter {
    /// A filter over loaded rules.
    pub fn new(engine: Engine) -> Result<ChunkFilter, String> {
        let packed = (0..engine.set.len())
            .map(|i| pack_info(&engine, i).map_err(str::to_string))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ChunkFilter {
            scratch: engine.set.scratch(),
            engine,
            packed,
            reporter: Reporter::default(),
            counts: (0, 0, 0),
        })
    }

    /// The rules.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Filters one chunk of events. A chunk that cannot be read to its end is left
    /// untouched (and reported once).
    pub fn filter(&mut self, chunk: &[u8]) -> ChunkResult {
        match self.filter_inner(chunk) {
            Ok(r) => r,
            Err(e) => {
                self.reporter.report(
                    ErrorKind::Unparsable,
                    &format_args!("a chunk is not valid msgpack ({e}); passed through unchanged"),
                );
                ChunkResult::Untouched
            }
        }
    }

    fn filter_inner(&mut self, chunk: &[u8]) -> Result<ChunkResult, RecordError> {
        let mut out: Option<Vec<u8>> = None;
        let mut pos = 0;
        let drop = self.engine.settings.drop_unmatched;
        while pos < chunk.len() {
            let start = pos;
            let ev = parse_event(chunk, &mut pos)?;
            let event = chunk.get(start..pos).unwrap_or(&[]);
            let Some(ev) = ev else {
                // Not an ordinary event (group marker, odd shape): keep as it is.
                if let Some(o) = out.as_mut() {
                    o.extend_from_slice(event);
                }
                continue;
            };
            self.counts.0 += 1;
            let body = chunk.get(ev.body.0..ev.body.1).unwrap_or(&[]);
            let hits = match self
                .engine
                .set
                .match_record(&MsgpackMap(body), &mut self.scratch)
            {
                Ok(h) => h,
                Err(e) => {
                    self.reporter.report(
                        ErrorKind::Unparsable,
                        &format_args!(
                            "a record body cannot be read ({e}); passed through unchanged"
                        ),
                    );
                    &[]
                }
            };
            if hits.is_empty() {
                if drop {
                    self.counts.2 += 1;
                    out.get_or_insert_with(|| chunk.get(..start).unwrap_or(&[]).to_vec());
                } else if let Some(o) = out.as_mut() {
                    o.extend_from_slice(event);
                }
                continue;
            }
            self.counts.1 += 1;
            let o = out.get_or_insert_with(|| {
                let mut v = Vec::with_capacity(chunk.len() + 256);
                v.extend_from_slice(chunk.get(..start).unwrap_or(&[]));
                v
            });
            // [header, body + tag]
            o.push(0x92);
            o.extend_from_slice(chunk.get(ev.header.0..ev.header.1).unwrap_or(&[]));
            let repack = |o: &mut Vec<u8>| -> Result<(), &'static str> {
                msgpack::write_map_len(o, ev.pairs + 1)?;
                o.extend_from_slice(chunk.get(ev.pairs_start..ev.body.1).unwrap_or(&[]));
                msgpack::write_str(o, &self.engine.settings.tag_field)?;
                let n = u32::try_from(hits.len()).map_err(|_| "too many hits")?;
                rmp::encode::write_array_len(o, n).map_err(|_| "cannot write array")?;
                for &h in hits {
                    o.extend_from_slice(self.packed.get(h as usize).map_or(&[][..], |v| v));
                }
                Ok(())
            };
            repack(o).map_err(|m| RecordError {
                message: m,
                offset: start,
            })?;
        }
        Ok(match out {
            Some(o) => ChunkResult::Modified(o),
            None => ChunkResult::Untouched,
        })
    }
}

/// Byte ranges of one ordinary event.
struct Event {
    /// The header (`[time, metadata]` or the bare time), to copy as is.
    header: (usize, usize),
    /// The whole body map.
    body: (usize, usize),
    /// Where the body's pairs start (after its map header), and how many there are.
    pairs_start: usize,
    pairs: usize,
}

/// Reads one event at `*pos` and advances past it. `Ok(None)`: a well-formed value that is
/// not an ordinary event with a map body (group markers included).
fn parse_event(b: &[u8], pos: &mut usize) -> Result<Option<Event>, RecordError> {
    let start = *pos;
    let n = match read_head(b, pos)? {
        Head::Array(n) => n,
        _ => {
            *pos = start;
            skip(b, pos)?;
            return Ok(None);
        }
    };
    if n != 2 {
        *pos = start;
        skip(b, pos)?;
        return Ok(None);
    }
    let h0 = *pos;
    // Group markers have an integer time of -1 (start) or -2 (end).
    let mut p = *pos;
    let marker = match read_head(b, &mut p)? {
        Head::Array(_) => matches!(read_head(b, &mut p)?, Head::Int(-1) | Head::Int(-2)),
        Head::Int(-1) | Head::Int(-2) => true,
        _ => false,
    };
    skip(b, pos)?;
    let h1 = *pos;
    let b0 = *pos;
    let head = read_head(b, pos)?;
    let pairs_start = *pos;
    *pos = b0;
    skip(b, pos)?;
    match head {
        Head::Map(pairs) if !marker => Ok(Some(Event {
            header: (h0, h1),
            body: (b0, *pos),
            pairs_start,
            pairs,
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests;
