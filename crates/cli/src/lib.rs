//! The pieces of the `sigmatag` command that other front-ends reuse: loading rule files
//! and directories with per-rule error reports, and splicing the tag field into a JSON
//! record's bytes.
#![deny(missing_docs)]

use std::io::{BufRead, BufReader, IoSlice, Read, Write};
use std::path::{Path, PathBuf};

use sigmatag_matcher::{JsonBytes, Pipeline, RuleSet};
use sigmatag_rule::{parse_rules, LoadOptions, Location, Placeholders, Rule, RuleError};

pub mod tagger;
pub use tagger::{LineOutcome, TagConfig, Tagger};

/// The embedded default rule (the user's seed rule).
pub const DEFAULT_RULE: &str =
    include_str!("../../../rules/default/proc_creation_win_iexpress_susp_paths.yml");
/// The name the embedded rule reports as its source.
pub const DEFAULT_RULE_SOURCE: &str = "<embedded>/proc_creation_win_iexpress_susp_paths.yml";

/// Rules loaded from files, with everything that was rejected.
#[derive(Debug)]
pub struct Loaded {
    /// The compiled set.
    pub set: RuleSet,
    /// Rules rejected by the parser or the compiler, in file order.
    pub rejected: Vec<RuleError>,
    /// Rule files read.
    pub files: usize,
}

/// Collects rule files: a file as is, a directory searched recursively for `.yml`/`.yaml`
/// (sorted, so loading order is stable).
pub fn collect_rule_files(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                collect_rule_files(&p, out)?;
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yml" | "yaml")) {
                out.push(p);
            }
        }
        Ok(())
    } else if path.exists() {
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{}: no such file or directory", path.display()),
        ))
    }
}

/// Parses rule texts (source name, text); returns the rules and the rejections.
pub fn parse_texts<'a>(
    texts: impl IntoIterator<Item = (String, std::borrow::Cow<'a, str>)>,
    opts: &LoadOptions,
) -> (Vec<Rule>, Vec<RuleError>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (source, text) in texts {
        for r in parse_rules(&text, &source, opts) {
            match r {
                Ok(r) => rules.push(r),
                Err(e) => errors.push(e),
            }
        }
    }
    (rules, errors)
}

/// Loads and compiles rules from paths (or the embedded default rule when `paths` is empty).
pub fn load(paths: &[PathBuf], pipeline: Pipeline, opts: &LoadOptions) -> std::io::Result<Loaded> {
    let mut texts: Vec<(String, std::borrow::Cow<'static, str>)> = Vec::new();
    let mut read_errors = Vec::new();
    if paths.is_empty() {
        texts.push((DEFAULT_RULE_SOURCE.to_string(), DEFAULT_RULE.into()));
    }
    let mut files = Vec::new();
    for p in paths {
        collect_rule_files(p, &mut files)?;
    }
    for f in &files {
        match std::fs::read(f) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => texts.push((f.display().to_string(), s.into())),
                Err(_) => read_errors.push(file_error(f, "file is not UTF-8")),
            },
            Err(e) => read_errors.push(file_error(f, &format!("cannot read: {e}"))),
        }
    }
    let n_files = texts.len();
    let (mut rules, mut rejected) = parse_texts(texts, opts);
    rejected.extend(cap_rules(&mut rules, MAX_RULES));
    let (set, compile_errors) = RuleSet::compile_owned(rules, pipeline);
    rejected.extend(read_errors);
    rejected.extend(compile_errors);
    Ok(Loaded {
        set,
        rejected,
        files: n_files,
    })
}

/// Most rules one [`load`] accepts (after parsing, before compiling). The rules beyond it,
/// in loading order, are rejected with this limit as their reason (docs/security.md).
pub const MAX_RULES: usize = 100_000;

/// Keeps the first `max` rules; each rule beyond is returned as a rejection naming the limit.
pub fn cap_rules(rules: &mut Vec<Rule>, max: usize) -> Vec<RuleError> {
    if rules.len() <= max {
        return Vec::new();
    }
    rules
        .drain(max..)
        .map(|r| RuleError {
            source: r.source,
            rule_id: Some(r.id),
            title: Some(r.title),
            loc: r
                .detection
                .search_ids
                .first()
                .map(|s| s.loc)
                .unwrap_or(Location { line: 1, col: 1 }),
            path: String::new(),
            reason: format!("more than {max} rules loaded: this rule is over the rule-count limit"),
        })
        .collect()
}

fn file_error(f: &Path, reason: &str) -> RuleError {
    RuleError {
        source: f.display().to_string(),
        rule_id: None,
        title: None,
        loc: Location { line: 1, col: 1 },
        path: String::new(),
        reason: reason.to_string(),
    }
}

/// Reads a placeholder file: a YAML map from placeholder name to a list of values.
pub fn read_placeholders(path: &Path) -> Result<Placeholders, String> {
    use sigmatag_rule::yaml::{parse_documents, NodeKind};
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let docs = parse_documents(&text)
        .map_err(|e| format!("{}:{}: {}", path.display(), e.loc, e.message))?;
    let mut out = Placeholders::new();
    let Some(doc) = docs.first() else {
        return Ok(out);
    };
    let NodeKind::Map(entries) = &doc.kind else {
        return Err(format!(
            "{}: expected a map of placeholder -> values",
            path.display()
        ));
    };
    for (k, v) in entries {
        let name = k
            .as_str()
            .ok_or_else(|| format!("{}:{}: key must be text", path.display(), k.loc))?;
        let vals = match &v.kind {
            NodeKind::Seq(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            NodeKind::Scalar { text, .. } => vec![text.clone()],
            NodeKind::Map(_) => {
                return Err(format!(
                    "{}:{}: values must be a list",
                    path.display(),
                    v.loc
                ))
            }
        };
        out.insert(name.trim_matches('%').to_string(), vals);
    }
    Ok(out)
}

/// Pre-rendered JSON of each rule's tag entry (`{"id":..,"title":..,"level":..,"tags":[..]}`).
pub fn tag_fragments(set: &RuleSet) -> Vec<Vec<u8>> {
    (0..set.len())
        .map(|i| {
            let info = set.info(i);
            // Keys in a fixed order: id, title, level, tags.
            let s = |x: &str| serde_json::to_string(x).unwrap_or_else(|_| "\"\"".into());
            let level = info
                .level
                .as_deref()
                .map(s)
                .unwrap_or_else(|| "null".into());
            let tags: Vec<String> = info.tags.iter().map(|t| s(t)).collect();
            format!(
                "{{\"id\":{},\"title\":{},\"level\":{},\"tags\":[{}]}}",
                s(&info.id),
                s(&info.title),
                level,
                tags.join(",")
            )
            .into_bytes()
        })
        .collect()
}

/// Writes `line` with `,"<field>":[<fragments of hits>]` spliced before its closing brace.
///
/// `line` must be a JSON object (validated by the matcher's reader). The original bytes are
/// kept; nothing is re-serialised.
pub fn splice_tag(
    line: &[u8],
    field_json: &[u8],
    hits: &[u32],
    fragments: &[Vec<u8>],
    out: &mut Vec<u8>,
) {
    let close = tag_insert_at(line);
    out.extend_from_slice(&line[..close]);
    push_tag(line, close, field_json, hits, fragments, out);
    out.extend_from_slice(&line[close..]);
}

/// Where the tag field goes in `line` (a JSON object): the offset of its closing brace.
fn tag_insert_at(line: &[u8]) -> usize {
    // The byte before the trailing whitespace is the closing brace.
    ws_start(line, line.len()).saturating_sub(1)
}

/// Where the whitespace that ends `line[..end]` starts (`end` if there is none).
fn ws_start(line: &[u8], mut end: usize) -> usize {
    while end > 0 && matches!(line[end - 1], b' ' | b'\t' | b'\r' | b'\n') {
        end -= 1;
    }
    end
}

/// Appends the text [`splice_tag`] inserts at `close` (from [`tag_insert_at`]) to `out`:
/// `,"<field>":[<fragments of hits>]`, without the comma in an empty object.
fn push_tag(
    line: &[u8],
    close: usize,
    field_json: &[u8],
    hits: &[u32],
    fragments: &[Vec<u8>],
    out: &mut Vec<u8>,
) {
    let before = ws_start(line, close);
    let empty = before > 0 && line[before - 1] == b'{';
    if !empty {
        out.push(b',');
    }
    out.extend_from_slice(field_json);
    out.extend_from_slice(b":[");
    for (k, h) in hits.iter().enumerate() {
        if k > 0 {
            out.push(b',');
        }
        out.extend_from_slice(&fragments[*h as usize]);
    }
    out.push(b']');
}

/// Counts from one [`tag_stream`] run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagStats {
    /// Lines read.
    pub records: u64,
    /// Lines that got the tag field.
    pub matched: u64,
    /// Lines that are not a JSON object (written unchanged).
    pub unparsable: u64,
    /// Matches per rule index.
    pub per_rule: Vec<u64>,
}

/// The `tag` loop: NDJSON in, NDJSON out, one line out per line in, in order. Matching lines
/// get the tag field spliced in; all other lines are written byte-identical.
///
/// Output is written once per read (a vectored write of the read buffer's pieces and the
/// tag fields between them), so no line is copied on its way out except by that write, and
/// a slow input (a pipe that delivers a few lines at a time) is tagged and passed on as it
/// comes rather than held back until an output buffer fills.
pub fn tag_stream(
    set: &RuleSet,
    input: impl Read,
    mut output: impl Write,
    field_json: &[u8],
    fragments: &[Vec<u8>],
) -> std::io::Result<TagStats> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut scratch = set.scratch();
    let mut line = Vec::with_capacity(1 << 16);
    let mut out = Pieces::default();
    let mut stats = TagStats {
        per_rule: vec![0; set.len()],
        ..TagStats::default()
    };
    // One line with its newline (`text[start..nl + 1]`; `nl == text.len()` for a last line
    // without one): the pieces that write it, tagged or byte-identical.
    let mut one = |text: &[u8], start: usize, nl: usize, out: &mut Pieces, stats: &mut TagStats| {
        let body = &text[start..nl];
        stats.records += 1;
        let hits = match set.match_record(&JsonBytes(body), &mut scratch) {
            Ok([]) => None,
            Ok(hits) => Some(hits),
            Err(_) => {
                stats.unparsable += 1;
                None
            }
        };
        let Some(hits) = hits else {
            out.text(start, nl + 1);
            return;
        };
        stats.matched += 1;
        for h in hits {
            stats.per_rule[*h as usize] += 1;
        }
        let close = tag_insert_at(body);
        out.text(start, start + close);
        let from = out.tags.len();
        push_tag(body, close, field_json, hits, fragments, &mut out.tags);
        out.tag(from);
        out.text(start + close, nl + 1);
    };
    loop {
        // The complete lines in the read buffer are matched where they lie; a line that
        // does not fit in it (or the last one, without a newline) is gathered in `line`.
        let chunk = reader.fill_buf()?;
        if chunk.is_empty() {
            break;
        }
        let mut done = 0;
        for nl in memchr::memchr_iter(b'\n', chunk) {
            one(chunk, done, nl, &mut out, &mut stats);
            done = nl + 1;
            if out.list.len() >= Pieces::MAX {
                out.write(chunk, &mut output)?;
            }
        }
        if done > 0 {
            out.write(chunk, &mut output)?;
            reader.consume(done);
            continue;
        }
        line.clear();
        reader.read_until(b'\n', &mut line)?;
        let nl = line.len() - usize::from(line.last() == Some(&b'\n'));
        one(&line, 0, nl, &mut out, &mut stats);
        if nl == line.len() {
            // The last line had no newline: one is written after it.
            line.push(b'\n');
        }
        out.write(&line, &mut output)?;
    }
    output.flush()?;
    Ok(stats)
}

/// The output of one read: ranges of the read text and of `tags`, in order.
#[derive(Default)]
struct Pieces {
    /// (from `tags`, start, end).
    list: Vec<(bool, usize, usize)>,
    /// The tag fields of the matching lines.
    tags: Vec<u8>,
}

impl Pieces {
    /// Most pieces gathered before they are written (writev takes at most 1,024 buffers).
    const MAX: usize = 1000;

    /// `text[start..end]` next (joined to the previous piece when it ends there).
    fn text(&mut self, start: usize, end: usize) {
        match self.list.last_mut() {
            Some((false, _, e)) if *e == start => *e = end,
            _ => self.list.push((false, start, end)),
        }
    }

    /// `tags[from..]` next.
    fn tag(&mut self, from: usize) {
        self.list.push((true, from, self.tags.len()));
    }

    /// Writes the pieces (ranges of `text` and of the tags) and forgets them.
    fn write(&mut self, text: &[u8], output: &mut impl Write) -> std::io::Result<()> {
        let mut slices: Vec<IoSlice<'_>> = self
            .list
            .iter()
            .map(|&(tag, start, end)| {
                let from = if tag { &self.tags[..] } else { text };
                IoSlice::new(&from[start..end])
            })
            .collect();
        let result = write_all_vectored(output, &mut slices);
        self.list.clear();
        self.tags.clear();
        result
    }
}

/// Writes every byte of `bufs` (`Write::write_all_vectored` is not stable).
fn write_all_vectored(
    output: &mut impl Write,
    mut bufs: &mut [IoSlice<'_>],
) -> std::io::Result<()> {
    IoSlice::advance_slices(&mut bufs, 0);
    while !bufs.is_empty() {
        match output.write_vectored(bufs) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut bufs, n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `step` bytes per read, so that lines straddle the read buffer.
    struct Trickle<'a>(&'a [u8], usize);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.1.min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Takes at most `n` bytes per write (and, as `Write`'s default does, only the first
    /// non-empty buffer of a vectored write).
    struct Dribble(Vec<u8>, usize);

    impl Write for Dribble {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.1);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn output_is_each_line_tagged_or_unchanged() {
        let loaded = load(&[], Pipeline::preset("evtx").unwrap(), &Default::default()).unwrap();
        let set = &loaded.set;
        let frags = tag_fragments(set);
        let example = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/events.jsonl"
        ))
        .unwrap();
        // Many short lines between the example's (more pieces in one read than one vectored
        // write takes), unparsable ones, CRLF endings, an empty object, no final newline.
        let mut input = Vec::new();
        for i in 0..3000 {
            match i % 5 {
                0 => input.extend_from_slice(b"{}\n"),
                1 => input.extend_from_slice(b"x\n"),
                2 => input.extend_from_slice(b"{\"a\":1}\r\n"),
                3 => input.extend_from_slice(b"\n"),
                _ => input.extend_from_slice(&example),
            }
        }
        input.extend_from_slice(example.strip_suffix(b"\n").unwrap_or(&example));
        // Line by line, as the loop should write them.
        let mut expected = Vec::new();
        let mut scratch = set.scratch();
        let mut tagged = 0;
        for line in input.split(|b| *b == b'\n') {
            match set.match_record(&JsonBytes(line), &mut scratch) {
                Ok(hits) if !hits.is_empty() => {
                    tagged += 1;
                    splice_tag(line, b"\"sigma\"", hits, &frags, &mut expected);
                }
                _ => expected.extend_from_slice(line),
            }
            expected.push(b'\n');
        }
        assert!(tagged > 600, "{tagged}");
        let mut out = Vec::new();
        let stats = tag_stream(set, &input[..], &mut out, b"\"sigma\"", &frags).unwrap();
        assert_eq!(stats.matched, tagged);
        assert!(out == expected, "whole writes");
        let mut dribble = Dribble(Vec::new(), 7);
        tag_stream(
            set,
            Trickle(&input, 5000),
            &mut dribble,
            b"\"sigma\"",
            &frags,
        )
        .unwrap();
        assert!(dribble.0 == expected, "partial writes");
    }

    #[test]
    fn lines_across_read_boundaries_come_out_the_same() {
        let loaded = load(&[], Pipeline::preset("evtx").unwrap(), &Default::default()).unwrap();
        let frags = tag_fragments(&loaded.set);
        let example = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../examples/events.jsonl"
        ))
        .unwrap();
        let mut input = example.clone();
        input.extend_from_slice(b"not json\n\n{\"long\":\"");
        input.extend(std::iter::repeat_n(b'x', 150_000));
        input.extend_from_slice(b"\"}\n");
        input.extend_from_slice(&example);
        input.extend_from_slice(b"{\"last\":\"no newline\"}");
        let mut expected = Vec::new();
        let whole =
            tag_stream(&loaded.set, &input[..], &mut expected, b"\"sigma\"", &frags).unwrap();
        assert!(
            whole.matched > 0,
            "the example events match the default rule"
        );
        let alone = tag_stream(
            &loaded.set,
            &example[..],
            std::io::sink(),
            b"\"sigma\"",
            &frags,
        )
        .unwrap();
        // "not json" and the empty line, besides the example's own.
        assert_eq!(whole.unparsable, 2 * alone.unparsable + 2);
        for step in [1, 7, 300, 4096, 1 << 16, 1 << 20] {
            let mut out = Vec::new();
            let stats = tag_stream(
                &loaded.set,
                Trickle(&input, step),
                &mut out,
                b"\"sigma\"",
                &frags,
            )
            .unwrap();
            assert_eq!(out, expected, "step {step}");
            assert_eq!(
                (stats.records, stats.matched),
                (whole.records, whole.matched)
            );
        }
        // One line out per line in.
        let lines_in: Vec<&[u8]> = input.split(|b| *b == b'\n').collect();
        let lines_out: Vec<&[u8]> = expected[..expected.len() - 1]
            .split(|b| *b == b'\n')
            .collect();
        assert_eq!(lines_in.len(), lines_out.len());
        assert_eq!(whole.records as usize, lines_in.len());
    }

    #[test]
    fn splice_keeps_original_bytes() {
        let frags = vec![b"{\"id\":\"a\"}".to_vec(), b"{\"id\":\"b\"}".to_vec()];
        let mut out = Vec::new();
        splice_tag(b"{\"x\": 1.0 }\r", b"\"sigma\"", &[0, 1], &frags, &mut out);
        assert_eq!(
            out,
            b"{\"x\": 1.0 ,\"sigma\":[{\"id\":\"a\"},{\"id\":\"b\"}]}\r"
        );
        out.clear();
        splice_tag(b"{ }", b"\"t\"", &[1], &frags, &mut out);
        assert_eq!(out, b"{ \"t\":[{\"id\":\"b\"}]}");
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["t"][0]["id"], "b");
    }
}
