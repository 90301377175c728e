use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a topology or scenario file, found before anything is built.
///
/// Displayed as `file:line:col: what is wrong; what to do`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub col: Option<usize>,
    pub msg: String,
}

impl SpecError {
    pub fn new(file: &Path, pos: Option<(usize, usize)>, msg: impl Into<String>) -> Self {
        SpecError {
            file: file.to_path_buf(),
            line: pos.map(|p| p.0),
            col: pos.map(|p| p.1),
            msg: msg.into(),
        }
    }

    /// From a serde_yaml_ng error: its position, and its text without the trailing
    /// "at line L column C" that the position already gives.
    pub fn from_yaml(file: &Path, e: &serde_yaml_ng::Error) -> Self {
        let pos = e.location().map(|l| (l.line(), l.column()));
        let mut msg = e.to_string();
        if let Some(cut) = msg.rfind(" at line ") {
            msg.truncate(cut);
        }
        if let Some(rest) = msg.strip_prefix(": ") {
            msg = rest.to_string();
        }
        // serde names the innermost field path first ("links.wan1: unknown field ..."); keep it.
        SpecError::new(file, pos, msg)
    }
}

impl fmt::Display for SpecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.col {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.msg)
    }
}

impl std::error::Error for SpecError {}
