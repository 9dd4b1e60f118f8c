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
    anchors: HashMap<usize, Node>,
    nodes: usize,
    error: Option<YamlError>,
}

fn loc_of(mark: &Marker) -> Location {
    Location {
        line: mark.line(),
        col: mark.col() + 1,
    }
}

fn count_nodes(node: &Node) -> usize {
    match &node.kind {
        NodeKind::Scalar { .. } => 1,
        NodeKind::Seq(items) => 1 + items.iter().map(count_nodes).sum::<usize>(),
        NodeKind::Map(entries) => {
            1 + entries
                .iter()
                .map(|(k, v)| count_nodes(k) + count_nodes(v))
                .sum::<usize>()
        }
    }
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
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
                Some(node) => {
                    let n = count_nodes(node);
                    self.nodes = self.nodes.saturating_add(n);
                    if self.nodes > MAX_NODES {
                        self.error = Some(YamlError {
                            message: format!(
                                "YAML aliases expand to more than {MAX_NODES} nodes (alias bomb?)"
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
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let mut builder = Builder {
        docs: Vec::new(),
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        error: None,
    };
    let mut parser = Parser::new_from_str(text);
    let result = parser.load(&mut builder, true);
    if let Some(e) = builder.error {
        return Err(e);
    }
    if let Err(e) = result {
        let m = e.marker();
        return Err(YamlError {
            message: e.info().to_string(),
            loc: loc_of(m),
        });
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
    fn syntax_error_has_location() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.loc.line >= 1);
    }
}
