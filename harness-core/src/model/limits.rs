//! Bounds on what a YAML file may be, checked before the YAML parser sees it: a regular file
//! (never a FIFO, a device or a directory), at most [`MAX_YAML_BYTES`], nested at most
//! [`MAX_DEPTH`] levels, one document, and aliases that expand to at most [`MAX_EXPANDED`]
//! values. Each check is linear in the file's size, so hostile input fails fast, in little
//! memory, and with the line where it goes wrong.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use yaml_rust2::parser::{Event, Parser};

/// The largest topology or scenario file read: the catalog's largest is a few KiB.
pub const MAX_YAML_BYTES: u64 = 4 << 20;
/// The deepest nesting of lists and mappings: a scenario needs about 6.
pub const MAX_DEPTH: usize = 64;
/// The most values a document may hold once its aliases (`*name`) are expanded.
pub const MAX_EXPANDED: u64 = 1_000_000;

/// What is wrong with a file before its text is looked at.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading it failed (missing, no permission, …).
    Io(std::io::Error),
    /// It exists but is not a regular file: what it is (`a directory`, `a FIFO (named pipe)`).
    NotRegular(&'static str),
    /// It holds more than `limit` bytes.
    TooBig { limit: u64 },
    /// It is not UTF-8 text.
    NotText,
}

impl ReadError {
    /// `cannot read `x`: …`, `` `x` is a directory, not a file`` …: what is wrong, without
    /// what to do (the caller knows what the file was meant to be).
    pub fn describe(&self, file: &Path) -> String {
        let f = file.display();
        match self {
            ReadError::Io(e) => format!("cannot read `{f}`: {e}"),
            ReadError::NotRegular(what) => format!("`{f}` is {what}, not a regular file"),
            ReadError::TooBig { limit } => format!("`{f}` is larger than {} MiB", limit >> 20),
            ReadError::NotText => format!("`{f}` is not UTF-8 text"),
        }
    }
}

/// What a file that is not a regular file is, in words; `None` for a regular file.
pub fn kind_of(ft: &std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        None
    } else if ft.is_dir() {
        Some("a directory")
    } else if ft.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if ft.is_char_device() {
        Some("a character device")
    } else if ft.is_block_device() {
        Some("a block device")
    } else if ft.is_socket() {
        Some("a socket")
    } else {
        Some("not a regular file")
    }
}

/// Reads a regular file of at most `limit` bytes. A FIFO or a device is refused before it is
/// opened (and opened non-blocking, in case it was swapped in since), so it cannot hang the
/// harness or fill its memory.
pub fn read_regular(file: &Path, limit: u64) -> Result<String, ReadError> {
    let meta = std::fs::metadata(file).map_err(ReadError::Io)?;
    if let Some(what) = kind_of(&meta.file_type()) {
        return Err(ReadError::NotRegular(what));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(file)
        .map_err(ReadError::Io)?;
    let meta = f.metadata().map_err(ReadError::Io)?;
    if let Some(what) = kind_of(&meta.file_type()) {
        return Err(ReadError::NotRegular(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooBig { limit });
    }
    read_at_most(f, limit)
}

fn read_at_most(f: File, limit: u64) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    f.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooBig { limit });
    }
    String::from_utf8(bytes).map_err(|_| ReadError::NotText)
}

/// A shape the harness refuses, and where (line, column; 1-based).
#[derive(Debug, PartialEq, Eq)]
pub struct ShapeError {
    pub pos: (usize, usize),
    pub msg: String,
}

/// Checks nesting, documents and aliases, before the YAML parser builds anything.
pub fn check_shape(text: &str) -> Result<(), ShapeError> {
    flow_depth(text)?;
    events(text)
}

fn too_deep(pos: (usize, usize)) -> ShapeError {
    ShapeError {
        pos,
        msg: format!(
            "lists and mappings nested more than {MAX_DEPTH} deep; a scenario needs a few levels: is this the right file?"
        ),
    }
}

/// The depth of flow collections (`[` and `{`), counted by a single pass over the text. The
/// YAML parser takes time quadratic in this depth, so it is bounded first. Brackets inside
/// quotes and comments are skipped; a `[` or `{` counts where a value may start (after a
/// blank, `:`, `,`, `-`, `?`, another bracket, or at the start of a line).
fn flow_depth(text: &str) -> Result<(), ShapeError> {
    let mut depth = 0usize;
    for (i, line) in text.lines().enumerate() {
        let mut quote: Option<char> = None;
        // In a plain scalar outside brackets (`a: x[y`), which runs to `: ` or the line's end.
        let mut plain = false;
        let mut prev = ' ';
        let mut chars = line.char_indices().peekable();
        while let Some((j, c)) = chars.next() {
            if plain {
                let blank_next = chars.peek().is_none_or(|p| p.1.is_whitespace());
                if c == ':' && blank_next {
                    plain = false;
                } else if c == '#' && prev.is_whitespace() {
                    break;
                }
                prev = c;
                continue;
            }
            match quote {
                Some('\'') if c == '\'' => {
                    if chars.peek().map(|p| p.1) == Some('\'') {
                        chars.next();
                    } else {
                        quote = None;
                    }
                }
                Some('"') if c == '\\' => {
                    chars.next();
                }
                Some('"') if c == '"' => quote = None,
                Some(_) => {}
                None => {
                    let starts_value =
                        prev.is_whitespace() || matches!(prev, ':' | ',' | '-' | '?' | '[' | '{');
                    match c {
                        '#' if prev.is_whitespace() => break,
                        '\'' | '"' if starts_value => quote = Some(c),
                        '[' | '{' if starts_value => {
                            depth += 1;
                            if depth > MAX_DEPTH {
                                let col = line[..j].chars().count() + 1;
                                return Err(too_deep((i + 1, col)));
                            }
                        }
                        ']' | '}' => depth = depth.saturating_sub(1),
                        c if depth == 0
                            && !c.is_whitespace()
                            && !"-?:,#'\"|>&*!%@`".contains(c) =>
                        {
                            plain = true
                        }
                        _ => {}
                    }
                }
            }
            prev = c;
        }
    }
    Ok(())
}

/// One pass over the parser's events: nesting (block collections too), a second document,
/// and the size of the document once aliases are expanded (a "billion laughs" bomb is a few
/// lines that expand to billions of values). A syntax error stops the pass quietly: serde
/// reports it with its own words.
fn events(text: &str) -> Result<(), ShapeError> {
    let mut parser = Parser::new_from_str(text);
    // Per open collection: its anchor (0: none) and its size so far.
    let mut open: Vec<(usize, u64)> = Vec::new();
    let mut sizes: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    let mut total: u64 = 0;
    let mut documents = 0;
    loop {
        let Ok((ev, mark)) = parser.next_token() else {
            return Ok(());
        };
        let pos = (mark.line(), mark.col() + 1);
        let mut add = |n: u64, open: &mut Vec<(usize, u64)>| -> Result<(), ShapeError> {
            total = total.saturating_add(n);
            if let Some(top) = open.last_mut() {
                top.1 = top.1.saturating_add(n);
            }
            if total > MAX_EXPANDED {
                return Err(ShapeError {
                    pos,
                    msg: format!("aliases here expand the document past {MAX_EXPANDED} values; write the values out, or use fewer aliases of aliases"),
                });
            }
            Ok(())
        };
        match ev {
            Event::StreamEnd => return Ok(()),
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 {
                    return Err(ShapeError {
                        pos,
                        msg: "a second YAML document (after `---`); a file holds one scenario or topology: remove the `---` and what follows, or move it to a file of its own".into(),
                    });
                }
            }
            Event::Scalar(_, _, anchor, _) => {
                add(1, &mut open)?;
                if anchor != 0 {
                    sizes.insert(anchor, 1);
                }
            }
            Event::Alias(id) => {
                let n = sizes.get(&id).copied().unwrap_or(1);
                add(n, &mut open)?;
            }
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                add(1, &mut open)?;
                open.push((anchor, 1));
                if open.len() > MAX_DEPTH {
                    return Err(too_deep(pos));
                }
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = open.pop() {
                    if anchor != 0 {
                        sizes.insert(anchor, size);
                    }
                    // The parent counted this collection as 1 when it opened.
                    if let Some(top) = open.last_mut() {
                        top.1 = top.1.saturating_add(size - 1);
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn bomb(levels: usize) -> String {
        let mut s = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n".to_string();
        for i in 1..=levels {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        s
    }

    #[rstest]
    #[case::flow_brackets(&format!("a: {}", "[".repeat(65)), (1, 68))]
    #[case::flow_braces(&format!("a: {}", "{b: ".repeat(70)), (1, 4 + 4 * 64))]
    #[case::block(&format!("a:\n{}x", "- ".repeat(70)), (2, 127))]
    #[case::second_document("a: 1\n---\nb: 2\n", (2, 1))]
    #[case::alias_bomb(&bomb(6), (6, 45))]
    fn refuses(#[case] text: &str, #[case] at: (usize, usize)) {
        let e = check_shape(text).expect_err("refused");
        assert_eq!(e.pos, at, "{}", e.msg);
    }

    #[rstest]
    #[case::catalog_depth("a: [[[{b: [1]}]]]\n")]
    #[case::brackets_in_quotes(&format!("a: '{}'\nb: \"{}\"\n", "[".repeat(100), "{".repeat(100)))]
    #[case::brackets_in_comment(&format!("a: 1 # {}\n", "[".repeat(100)))]
    #[case::brackets_in_plain_scalar(&format!("a: x{}\n", "[".repeat(100)))]
    #[case::small_aliases(&bomb(3))]
    #[case::one_document("---\na: 1\n...\n")]
    fn accepts(#[case] text: &str) {
        assert_eq!(check_shape(text), Ok(()));
    }

    /// 100,000 nested brackets: refused at the 65th, in a moment.
    #[test]
    fn deep_flow_is_refused_fast() {
        let text = format!("topology: {}", "[".repeat(100_000));
        let t = std::time::Instant::now();
        assert!(check_shape(&text).is_err());
        assert!(t.elapsed() < std::time::Duration::from_millis(200));
    }
}
