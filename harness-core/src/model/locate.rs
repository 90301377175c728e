//! Where a value sits in a YAML file, for error messages.
//!
//! serde gives positions only for errors it raises itself. Checks that need the whole
//! document (an unknown node name, a link that is not an uplink) find the position of the
//! offending value here, from its path (`links.wan1.a`, `traffic[0].to`).

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// Line (1-based) and column (1-based) of every value in a document, by path.
#[derive(Debug, Default, Clone)]
pub struct YamlIndex {
    at: HashMap<String, (usize, usize)>,
}

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

struct Builder {
    stack: Vec<Frame>,
    index: YamlIndex,
}

impl Builder {
    /// The path of the value that starts now, or `None` when this event is a mapping key.
    fn value_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => key.take().map(|k| join(path, &k)),
            Some(Frame::Seq { path, next }) => {
                let p = format!("{path}[{next}]");
                *next += 1;
                Some(p)
            }
        }
    }
}

impl Builder {
    /// A block collection's own mark falls after its key; point at the key when there is one.
    fn record_collection(&mut self, path: &str, pos: (usize, usize)) {
        if !self.index.at.contains_key(&format!("{path}#key")) {
            self.index.at.entry(path.to_string()).or_insert(pos);
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = (mark.line(), mark.col() + 1);
        match ev {
            Event::Scalar(text, ..) => match self.value_path() {
                Some(p) => {
                    self.index.at.entry(p).or_insert(pos);
                }
                None => {
                    if let Some(Frame::Map { path, key }) = self.stack.last_mut() {
                        // Point a missing value's error at its key.
                        self.index
                            .at
                            .entry(format!("{}#key", join(path, &text)))
                            .or_insert(pos);
                        *key = Some(text);
                    }
                }
            },
            Event::Alias(_) => {
                self.value_path();
            }
            Event::MappingStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record_collection(&path, pos);
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                let path = self.value_path().unwrap_or_default();
                self.record_collection(&path, pos);
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

impl YamlIndex {
    /// Indexes `text`; a document that does not parse gives an empty index (serde reports
    /// the syntax error with its own position).
    pub fn new(text: &str) -> Self {
        let mut b = Builder {
            stack: Vec::new(),
            index: YamlIndex::default(),
        };
        let _ = Parser::new_from_str(text).load(&mut b, false);
        b.index
    }

    /// Position of the key at `path` (`rules.jupiter` → `jupiter:`), else as [`Self::find`].
    pub fn find_key(&self, path: &str) -> Option<(usize, usize)> {
        self.at
            .get(&format!("{path}#key"))
            .copied()
            .or_else(|| self.find(path))
    }

    /// Position of the value at `path`, else of its key, else of the nearest parent.
    /// `PATH#key` asks for the key itself.
    pub fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut p = path.to_string();
        loop {
            if let Some(pos) = self.at.get(&p).or_else(|| self.at.get(&format!("{p}#key"))) {
                return Some(*pos);
            }
            let cut = p.rfind(['.', '['])?;
            p.truncate(cut);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const DOC: &str = "nodes:\n  saturn:\n    routes:\n      - default via 1.2.3.4\n      - 10.0.0.0/8 via 1.2.3.5\nlinks:\n  lan: {a: 'saturn:eth0 1.2.3.3/24', b: x}\n";

    #[rstest]
    #[case::nested_seq("nodes.saturn.routes[1]", (5, 9))]
    #[case::flow_map("links.lan.b", (7, 41))]
    #[case::key_of_map("nodes.saturn", (2, 3))]
    #[case::missing_child_falls_back_to_parent("links.lan.c", (7, 3))]
    #[case::asked_key("links.lan.b#key", (7, 38))]
    fn finds(#[case] path: &str, #[case] want: (usize, usize)) {
        assert_eq!(YamlIndex::new(DOC).find(path), Some(want));
    }

    #[rstest]
    #[case::scalar_value_key("links.lan.b", (7, 38))]
    #[case::map_key("nodes.saturn", (2, 3))]
    #[case::no_key_falls_back("nodes.saturn.routes[0]", (4, 9))]
    fn finds_keys(#[case] path: &str, #[case] want: (usize, usize)) {
        assert_eq!(YamlIndex::new(DOC).find_key(path), Some(want));
    }
}
