//! A YAML tree that remembers where every node came from.
//!
//! Sigma errors must name the line and column of the offending key or value, and the
//! high-level YAML loaders throw positions away. We build our own small tree from the
//! parser's marked events. Aliases are expanded here, with a budget: a file whose aliases
//! expand to more than [`MAX_NODES`] nodes ("billion laughs") is refused instead of
//! exhausting memory.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Most nodes one rule file may expand to, aliases included.
pub const MAX_NODES: usize = 1_000_000;
/// Most scalar bytes one rule file may expand to, aliases included (an alias of a long
/// scalar repeated many times is an alias bomb too, with few nodes).
pub const MAX_EXPANDED_BYTES: usize = 64 * 1024 * 1024;
/// Deepest nesting of sequences and mappings accepted (Sigma rules use fewer than 10).
pub const MAX_YAML_DEPTH: usize = 64;

/// A position in the YAML text (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Location {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// One YAML node with its location.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub kind: NodeKind,
    /// Where it starts.
    pub loc: Location,
}

/// The shapes a YAML node can take.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// A scalar; `plain` is false for quoted and block scalars (they are always strings).
    Scalar {
        /// The scalar text.
        text: String,
        /// True for a plain (unquoted) scalar, which may resolve to null, bool or number.
        plain: bool,
    },
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping in document order.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The scalar text, if this is a scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { text, .. } => Some(text),
            _ => None,
        }
    }
    /// True for a plain `null`, `~` or empty scalar.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, plain: true } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }
    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            NodeKind::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }
    /// A short name of the node's shape, for error messages.
    pub fn shape(&self) -> &'static str {
        match &self.kind {
            NodeKind::Scalar { .. } => "scalar",
            NodeKind::Seq(_) => "list",
            NodeKind::Map(_) => "map",
        }
    }
}

/// A YAML syntax or structure error.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// What went wrong.
    pub message: String,
    /// Where.
    pub loc: Location,
}

struct Builder {
    docs: Vec<Node>,
    stack: Vec<(Node, Option<Node>, usize)>,
    anchors: HashMap<usize, (Node, usize, usize)>,
    nodes: usize,
    bytes: usize,
    error: Option<YamlError>,
}

fn loc_of(mark: &Marker) -> Location {
    Location {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

/// (nodes, scalar bytes) of a tree (its depth is bounded by [`MAX_YAML_DEPTH`]).
fn measure(node: &Node) -> (usize, usize) {
    match &node.kind {
        NodeKind::Scalar { text, .. } => (1, text.len()),
        NodeKind::Seq(items) => items.iter().fold((1, 0), |(n, b), i| {
            let (n2, b2) = measure(i);
            (n.saturating_add(n2), b.saturating_add(b2))
        }),
        NodeKind::Map(entries) => entries.iter().fold((1, 0), |(n, b), (k, v)| {
            let (nk, bk) = measure(k);
            let (nv, bv) = measure(v);
            (
                n.saturating_add(nk).saturating_add(nv),
                b.saturating_add(bk).saturating_add(bv),
            )
        }),
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let (n, b) = measure(&node);
            self.anchors.insert(anchor, (node.clone(), n, b));
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some((parent, pending_key, _)) => match &mut parent.kind {
                NodeKind::Seq(items) => items.push(node),
                NodeKind::Map(entries) => match pending_key.take() {
                    None => *pending_key = Some(node),
                    Some(k) => entries.push((k, node)),
                },
                NodeKind::Scalar { .. } => {}
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let loc = loc_of(&mark);
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                self.nodes += 1;
                self.bytes = self.bytes.saturating_add(text.len());
                let plain = style == TScalarStyle::Plain;
                self.push_value(
                    Node {
                        kind: NodeKind::Scalar { text, plain },
                        loc,
                    },
                    anchor,
                );
            }
            Event::SequenceStart(anchor, _) => {
                self.nodes += 1;
                if self.stack.len() >= MAX_YAML_DEPTH {
                    self.error = Some(YamlError {
                        message: format!("YAML nests deeper than {MAX_YAML_DEPTH} levels"),
                        loc,
                    });
                    return;
                }
                self.stack.push((
                    Node {
                        kind: NodeKind::Seq(Vec::new()),
                        loc,
                    },
                    None,
                    anchor,
                ));
            }
            Event::MappingStart(anchor, _) => {
                self.nodes += 1;
                if self.stack.len() >= MAX_YAML_DEPTH {
                    self.error = Some(YamlError {
                        message: format!("YAML nests deeper than {MAX_YAML_DEPTH} levels"),
                        loc,
                    });
                    return;
                }
                self.stack.push((
                    Node {
                        kind: NodeKind::Map(Vec::new()),
                        loc,
                    },
                    None,
                    anchor,
                ));
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((node, _, anchor)) = self.stack.pop() {
                    self.push_value(node, anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some((node, n, b)) => {
                    self.nodes = self.nodes.saturating_add(*n);
                    self.bytes = self.bytes.saturating_add(*b);
                    if self.nodes > MAX_NODES {
                        self.error = Some(YamlError {
                            message: format!(
                                "YAML aliases expand to more than {MAX_NODES} nodes (alias bomb?)"
                            ),
                            loc,
                        });
                        return;
                    }
                    if self.bytes > MAX_EXPANDED_BYTES {
                        self.error = Some(YamlError {
                            message: format!(
                                "YAML aliases expand to more than {MAX_EXPANDED_BYTES} bytes of text (alias bomb?)"
                            ),
                            loc,
                        });
                        return;
                    }
                    let mut node = node.clone();
                    node.loc = loc;
                    self.push_value(node, 0);
                }
                None => {
                    self.error = Some(YamlError {
                        message: "alias refers to an unknown anchor".into(),
                        loc,
                    })
                }
            },
            _ => {}
        }
        if self.nodes > MAX_NODES && self.error.is_none() {
            self.error = Some(YamlError {
                message: format!("YAML document has more than {MAX_NODES} nodes"),
                loc,
            });
        }
    }
}

/// Parses every document of a YAML text into located trees.
///
/// The parser's events are pulled one by one (not through `Parser::load`, which recurses
/// once per nesting level and asserts on the event order): nesting is bounded by
/// [`MAX_YAML_DEPTH`] in the builder's own explicit stack, so no input can overflow the
/// call stack or reach a panic inside the YAML library's loader.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => {
                builder.on_event(ev, mark);
                if let Some(e) = builder.error.take() {
                    return Err(e);
                }
            }
            Err(e) => {
                return Err(YamlError {
                    message: e.info().to_string(),
                    loc: loc_of(e.marker()),
                })
            }
        }
    }
    Ok(builder.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_one_based() {
        let docs = parse_documents("a: 1\nb:\n  - x\n").unwrap();
        let b = docs[0].get("b").unwrap();
        assert_eq!(b.loc.line, 3);
        match &b.kind {
            NodeKind::Seq(items) => assert_eq!(items[0].loc, Location { line: 3, col: 5 }),
            _ => panic!("not a seq"),
        }
    }

    #[test]
    fn quoted_scalars_are_not_plain() {
        let docs = parse_documents("a: 'null'\nb: null\n").unwrap();
        assert!(!docs[0].get("a").unwrap().is_null());
        assert!(docs[0].get("b").unwrap().is_null());
    }

    #[test]
    fn alias_bomb_is_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("alias"), "{}", err.message);
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing() {
        // Block sequences nest two bytes per level: `Parser::load` used to recurse once per
        // level and overflow the stack on inputs like this.
        let text = format!("{}x\n", "- ".repeat(200_000));
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("deeper than 64"), "{}", err.message);
        let flow = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        assert!(parse_documents(&flow).is_err());
        let ok = format!("a: {}1{}\n", "[".repeat(60), "]".repeat(60));
        assert!(parse_documents(&ok).is_ok());
    }

    #[test]
    fn long_scalar_alias_bomb_is_refused() {
        // Few nodes, many bytes: a 1 MiB scalar aliased 100 times.
        let mut text = format!("a: &a '{}'\nb: [", "x".repeat(1 << 20));
        for _ in 0..100 {
            text.push_str("*a, ");
        }
        text.push_str("]\n");
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("bytes of text"), "{}", err.message);
    }

    #[test]
    fn syntax_error_has_location() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.loc.line >= 1);
    }
}
