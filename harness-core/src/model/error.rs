use std::fmt;
use std::path::{Path, PathBuf};

/// A problem in a topology or scenario file, found before anything is built.
///
/// Displayed as `file:line:col: what is wrong; what to do`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecError {
    /// The file the problem is in (a scenario, or the topology it names).
    pub file: PathBuf,
    /// The line of the problem, counted from 1, when it is known.
    pub line: Option<usize>,
    /// The column on that line, counted from 1, when it is known.
    pub col: Option<usize>,
    /// What is wrong, then what to do: `unknown node `satrun`; did you mean `saturn`?`.
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

    /// From a serde_yaml_ng error: its position, and its text without the "at line L column
    /// C" that the position already gives, reworded for people rather than Rust types.
    pub fn from_yaml(file: &Path, e: &serde_yaml_ng::Error) -> Self {
        let pos = e.location().map(|l| (l.line(), l.column()));
        SpecError::new(file, pos, reword(&strip_positions(&e.to_string())))
    }
}

/// Removes every " at line L column C" (libyaml repeats it inside its own messages).
fn strip_positions(msg: &str) -> String {
    let mut out = msg.to_string();
    while let Some(at) = out.find(" at line ") {
        let rest = &out[at + " at line ".len()..];
        let digits = |s: &str| s.chars().take_while(char::is_ascii_digit).count();
        let n = digits(rest);
        let Some(col) = rest[n..].strip_prefix(" column ") else {
            break;
        };
        let end = at + " at line ".len() + n + " column ".len() + digits(col);
        out.replace_range(at..end, "");
    }
    out
}

/// serde's wording (`invalid type: string "eighty", expected u16`) → `expected a whole number
/// from 0 to 65535, found `eighty``; unknown keys get a suggestion. serde names the field path
/// first (`traffic[0].port: …`); it is kept.
fn reword(msg: &str) -> String {
    let (path, body) = match msg.split_once(": ") {
        Some((p, b)) if !p.is_empty() && !p.contains(' ') => (Some(p), b),
        _ => (None, msg),
    };
    let body = if let Some(rest) = body
        .strip_prefix("invalid type: ")
        .or_else(|| body.strip_prefix("invalid value: "))
    {
        match rest.rsplit_once(", expected ") {
            Some((found, exp)) => format!("expected {}, found {}", expected(exp), found_as(found)),
            None => body.to_string(),
        }
    } else if let Some(rest) = body.strip_prefix("unknown field ") {
        unknown("key", rest)
    } else if let Some(rest) = body.strip_prefix("unknown variant ") {
        unknown("value", rest)
    } else if let Some(f) = body.strip_prefix("missing field ") {
        format!("missing key {f}; add it")
    } else if let Some(f) = body.strip_prefix("duplicate field ") {
        format!("key {f} is given twice; keep one")
    } else if body.contains("while parsing") || body.contains("while scanning") {
        format!("{body} (YAML syntax: check the indentation, spaces not tabs, and `key: value` here or on the line above)")
    } else {
        body.to_string()
    };
    match path {
        Some(p) => format!("{p}: {body}"),
        None => body,
    }
}

fn expected(exp: &str) -> String {
    let max = match exp {
        "u8" => Some(u64::from(u8::MAX)),
        "u16" => Some(u64::from(u16::MAX)),
        "u32" => Some(u64::from(u32::MAX)),
        "u64" => Some(u64::MAX),
        _ => None,
    };
    match (max, exp) {
        (Some(m), _) => format!("a whole number from 0 to {m}"),
        (_, "i8" | "i16" | "i32" | "i64") => "a whole number".into(),
        (_, "f32" | "f64") => "a number".into(),
        (_, "a boolean") => "`true` or `false`".into(),
        (_, "a sequence") => "a list".into(),
        _ => exp.into(),
    }
}

/// serde's `Unexpected`: `string "x"`, `integer `1``, `map`, …
fn found_as(found: &str) -> String {
    if let Some(s) = found.strip_prefix("string ") {
        return format!("`{}`", s.trim_matches('"'));
    }
    for kind in ["integer ", "floating point ", "boolean ", "character "] {
        if let Some(v) = found.strip_prefix(kind) {
            return v.to_string();
        }
    }
    match found {
        "unit value" => "an empty value".into(),
        "sequence" => "a list".into(),
        "map" => "a mapping".into(),
        other => other.into(),
    }
}

/// `` `trafic`, expected one of `topology`, `traffic` `` → unknown key `trafic`; did you mean …
fn unknown(what: &str, rest: &str) -> String {
    let (word, allowed) = rest.split_once(", expected ").unwrap_or((rest, ""));
    let names: Vec<&str> = allowed.split('`').skip(1).step_by(2).collect();
    let bare = word.trim_matches('`');
    match closest(bare, &names) {
        Some(m) => format!("unknown {what} {word}; did you mean `{m}`?"),
        None if names.is_empty() => format!("unknown {what} {word}; remove it"),
        None => format!(
            "unknown {what} {word}; use one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The one candidate nearest to `word` in edit distance (a swap counts as one), if it is
/// near and no other is as near. Names that differ only in their number are not typos of
/// each other: `wan2` suggests nothing when there is only `wan1`.
pub(crate) fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let near = (word.chars().count() / 3).clamp(1, 3);
    let stem = |s: &'a str| s.trim_end_matches(|c: char| c.is_ascii_digit());
    let scored: Vec<(usize, &str)> = candidates
        .iter()
        .filter(|c| {
            stem(c) != word.trim_end_matches(|c: char| c.is_ascii_digit()) || stem(c) == **c
        })
        .map(|c| (strsim::osa_distance(word, c), *c))
        .collect();
    let best = scored.iter().map(|(d, _)| *d).min()?;
    let mut at_best = scored.iter().filter(|(d, _)| *d == best);
    match (at_best.next(), at_best.next()) {
        (Some((d, c)), None) if *d <= near && *d > 0 => Some(c),
        _ => None,
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

/// A `--rules NODE=SPEC` argument that cannot be used, found before anything is built
/// (see [`RuleSource::parse_override`](super::RuleSource::parse_override)). `arg` is the
/// argument as given (`jupiter=./gen`), `spec` what follows the `=`.
#[derive(Debug, thiserror::Error)]
pub enum RulesArgError {
    /// `--rules NODE=…` names a node the scenario's topology does not have.
    #[error("{}: `--rules {node}=…`: the topology has no node `{node}` (it has {})", file.display(), have.join(", "))]
    NoSuchNode {
        file: std::path::PathBuf,
        node: String,
        have: Vec<String>,
    },
    /// A bundle's `### rt_tables` names a table that clashes with the scenario's `tables:`
    /// for that node (or an earlier bundle's): `bundle:line` is the line naming it.
    #[error("{bundle}:{line}: {msg} (node `{node}` of {})", scenario.display())]
    TableClash {
        bundle: String,
        line: usize,
        msg: String,
        node: String,
        scenario: std::path::PathBuf,
    },
    /// Not `NODE=SPEC` with both parts given.
    #[error(
        "`--rules {arg}`: write NODE=FILE or NODE=COMMAND, e.g. `--rules jupiter=./gen-rules`"
    )]
    Shape { arg: String },
    /// `spec` names a directory, a FIFO, a device or a socket (`what`, in words).
    #[error("`--rules {arg}`: `{spec}` is {what}: neither a rule file nor a generator; name a bundle file or an executable generator")]
    NotAFile {
        arg: String,
        spec: String,
        what: &'static str,
    },
    /// `spec` is a file that is not executable, so a bundle, and it cannot be read as one.
    #[error("`--rules {arg}`: {} (read as a bundle file: it is not executable); name a bundle of at most {mib} MiB", .error.describe(Path::new(.spec)), mib = super::plan::MAX_BUNDLE_BYTES >> 20)]
    Unreadable {
        arg: String,
        spec: String,
        error: super::limits::ReadError,
    },
    /// The bundle file has a bad `### KIND` header at `line`.
    #[error("{spec}:{line}: {msg} (in the bundle file `--rules {arg}`)")]
    BundleLine {
        arg: String,
        spec: String,
        line: usize,
        msg: String,
    },
    /// The bundle file cannot be split into sections (no line to point at).
    #[error("`--rules {arg}`: bundle file `{spec}`: {msg}")]
    Bundle {
        arg: String,
        spec: String,
        msg: String,
    },
    /// The first word of `spec` looks like a file name (a `/`, or a rule file's ending) but
    /// there is no such file: a typo, not a command to run. `cwd` is where it was looked for
    /// (none for an absolute path); `env_hint` whether `env SPEC` would run it from PATH.
    #[error("`--rules {arg}`: there is no file `{first}`{}; it looks like a file name (a bundle, or an executable generator), so it is not run as a command: check the spelling{}", looked_in(.cwd.as_deref()), run_with_env(*.env_hint, .spec))]
    NoSuchFile {
        arg: String,
        spec: String,
        first: String,
        cwd: Option<PathBuf>,
        env_hint: bool,
    },
    /// `NODE=WORD:…` where WORD is no kind of rule source (`install:` and `daemon:` are).
    #[error("`--rules {arg}`: `{prefix}:` is no kind of rule source: write NODE=install:COMMAND for an installer, NODE=daemon:COMMAND for a daemon, NODE=FILE for a bundle, NODE=COMMAND for a generator")]
    UnknownPrefix { arg: String, prefix: String },
    /// `NODE=install:COMMAND` (or `NODE=daemon:COMMAND`) whose command cannot run (`msg` says
    /// why).
    #[error("`--rules {arg}`: {msg}")]
    Installer { arg: String, msg: String },
    /// The first word of `spec` is neither a file in `cwd` nor a command in PATH.
    #[error("`--rules {arg}`: `{first}` is neither a file (looked in `{cwd}`) nor a command in PATH; check the spelling, or give the generator's path (`./{first}`)")]
    NoSuchCommand {
        arg: String,
        first: String,
        cwd: PathBuf,
    },
}

/// ` (looked in `DIR`)`, or nothing.
fn looked_in(cwd: Option<&Path>) -> String {
    cwd.map(|d| format!(" (looked in `{}`)", d.display()))
        .unwrap_or_default()
}

/// `; to run a command of that name from PATH, write `env SPEC``, or nothing.
fn run_with_env(give: bool, spec: &str) -> String {
    if give {
        format!("; to run a command of that name from PATH, write `env {spec}`")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::port(
        "traffic[0].port: invalid type: string \"eighty\", expected u16 at line 19 column 11",
        "traffic[0].port: expected a whole number from 0 to 65535, found `eighty`"
    )]
    #[case::negative(
        "traffic[0].flows: invalid type: integer `-1`, expected u32 at line 20 column 12",
        "traffic[0].flows: expected a whole number from 0 to 4294967295, found `-1`"
    )]
    #[case::boolean(
        "expect[1].one_uplink: invalid type: string \"yes\", expected a boolean at line 3 column 1",
        "expect[1].one_uplink: expected `true` or `false`, found `yes`"
    )]
    #[case::list(
        "router.uplinks: invalid type: string \"wan1\", expected a sequence at line 61 column 12",
        "router.uplinks: expected a list, found `wan1`"
    )]
    #[case::unknown_key_near(
        "unknown field `trafic`, expected one of `topology`, `traffic`, `expect` at line 14 column 1",
        "unknown key `trafic`; did you mean `traffic`?"
    )]
    #[case::unknown_key_swapped(
        "nodes.saturn: unknown field `rotues`, expected `sysctls` or `routes` at line 13 column 5",
        "nodes.saturn: unknown key `rotues`; did you mean `routes`?"
    )]
    #[case::unknown_key_far(
        "nodes.saturn: unknown field `colour`, expected `sysctls` or `routes` at line 13 column 5",
        "nodes.saturn: unknown key `colour`; use one of `sysctls`, `routes`"
    )]
    #[case::variant(
        "traffic[0].proto: unknown variant `tpc`, expected `tcp` or `udp` at line 1 column 1",
        "traffic[0].proto: unknown value `tpc`; did you mean `tcp`?"
    )]
    #[case::missing(
        "traffic[0]: missing field `port` at line 15 column 5",
        "traffic[0]: missing key `port`; add it"
    )]
    #[case::syntax(
        "did not find expected key at line 15 column 3, while parsing a block mapping at line 7 column 1",
        "did not find expected key, while parsing a block mapping (YAML syntax: check the indentation, spaces not tabs, and `key: value` here or on the line above)"
    )]
    fn rewords(#[case] serde: &str, #[case] want: &str) {
        assert_eq!(reword(&strip_positions(serde)), want);
    }

    #[rstest]
    #[case::swap("satrun", &["saturn", "jupiter"], Some("saturn"))]
    #[case::ambiguous("wan3", &["wan1", "wan2"], None)]
    #[case::numbered("wan2", &["lan", "wan1"], None)]
    #[case::numbered_typo("wna1", &["lan", "wan1"], Some("wan1"))]
    #[case::far("pluto", &["saturn", "jupiter"], None)]
    fn suggests(#[case] word: &str, #[case] among: &[&str], #[case] want: Option<&str>) {
        assert_eq!(closest(word, among), want);
    }
}
