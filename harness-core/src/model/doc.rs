//! The YAML document being validated, and the helpers every part of the model's checks
//! shares: errors at a path's position, "did you mean" for unknown names, valid names.

use std::path::Path;

use super::error::{self, SpecError};
use super::limits;
use super::locate::YamlIndex;

/// One YAML file being validated: reports errors at the position of a path.
pub(super) struct Doc<'a> {
    pub(super) file: &'a Path,
    pub(super) index: YamlIndex,
}

impl Doc<'_> {
    pub(super) fn err(&self, path: &str, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.file, self.index.find(path), msg)
    }

    /// An error about the key at `path` (a name being declared), not its value.
    pub(super) fn err_key(&self, path: &str, msg: impl Into<String>) -> SpecError {
        SpecError::new(self.file, self.index.find_key(path), msg)
    }
}

/// `unknown node `satrun`; did you mean `saturn`? (the topology has …)`
pub(super) fn unknown_name(what: &str, name: &str, known: &[&str], listed_as: &str) -> String {
    let hint = match error::closest(name, known) {
        Some(m) => format!("; did you mean `{m}`?"),
        None => String::new(),
    };
    format!(
        "unknown {what} `{name}`{hint} ({listed_as} {})",
        known.join(", ")
    )
}

pub(super) fn parse<T: serde::de::DeserializeOwned>(
    file: &Path,
    text: &str,
) -> Result<T, SpecError> {
    limits::check_shape(text).map_err(|e| SpecError::new(file, Some(e.pos), e.msg))?;
    serde_yaml_ng::from_str(text).map_err(|e| SpecError::from_yaml(file, &e))
}
pub(super) fn stem(p: &Path) -> String {
    p.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Node, link and table names: letters, digits, `-` and `_`, starting with a letter.
pub(super) fn valid_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && s.len() <= 32
}
