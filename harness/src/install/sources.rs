//! The texts a rule source stands for: a rule file, the sections of a bundle, or what a
//! generator printed (run inside its node, given the topology's facts).

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{generator, InstallError, Loadable};
use crate::lab::spawn::{rt_tables, spawn_piped_with, PASSED_FD};
use crate::lab::Lab;
use crate::model::bundle::{merge_tables, parse_bundle};
use crate::model::{Plan, RuleKind, RuleSource};

/// The texts a rule source stands for: a file, the sections of a bundle, a generator's output.
/// The routing tables a bundle's `### rt_tables` names join `names` (the node's table names:
/// the scenario's, then earlier bundles'); when they do, `tables` is set to the new rt_tables
/// file for the tools that load the texts.
pub(super) fn materialize(
    lab: &Lab,
    plan: &Plan,
    node: &str,
    source: &RuleSource,
    names: &mut Vec<(String, u32)>,
    tables: &mut Option<Vec<u8>>,
) -> Result<Vec<Loadable>, InstallError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|e| InstallError::Source {
            shown: display_path(path),
            msg: e.to_string(),
        })
    };
    let before = names.len();
    let scenario_names = plan
        .rules
        .iter()
        .find(|r| r.node == node)
        .map_or(0, |r| r.tables.len());
    let mut sections = |shown: String, text: String| -> Result<Vec<Loadable>, InstallError> {
        let bundle = parse_bundle(&text).map_err(|msg| InstallError::Source {
            shown: shown.clone(),
            msg,
        })?;
        let by = if names.len() > scenario_names {
            "the scenario's `tables:` or an earlier `### rt_tables`"
        } else {
            "the scenario's `tables:`"
        };
        merge_tables(names, &bundle.tables, by).map_err(|(line, msg)| InstallError::Source {
            shown: format!("{shown}:{line}"),
            msg,
        })?;
        Ok(bundle
            .sections
            .into_iter()
            .map(|(kind, first_line, text)| Loadable {
                kind,
                shown: shown.clone(),
                first_line,
                text,
                ipv6: false,
            })
            .collect())
    };
    let texts = match source {
        RuleSource::File { kind, path } => Ok(vec![Loadable {
            kind: *kind,
            shown: display_path(path),
            first_line: 1,
            text: read(path)?,
            ipv6: false,
        }]),
        RuleSource::Bundle(path) => sections(display_path(path), read(path)?),
        // An installer loads its rules itself: `schedule` runs it (see `snapshot`).
        RuleSource::Install { .. } => Ok(Vec::new()),
        // A daemon loads nothing: `schedule` starts it once the node's rules are in.
        RuleSource::Daemon { .. } => Ok(Vec::new()),
        RuleSource::Inline { kind, shown, text } => Ok(vec![Loadable {
            kind: *kind,
            shown: shown.clone(),
            first_line: 1,
            text: text.clone(),
            ipv6: false,
        }]),
        RuleSource::Command { line, cwd, kind } => {
            let facts = crate::model::facts(&plan.topology, node).to_string();
            let failed = |said: String| InstallError::Generator {
                line: line.to_string(),
                node: node.to_string(),
                said,
            };
            let uplinks = crate::model::uplinks_env(&plan.topology);
            let program = Program {
                line,
                cwd,
                env: &[("HARNESS_UPLINKS", &uplinks)],
                private: false,
            };
            let out = run_program(lab, node, &program, &facts, tables.as_deref(), &failed)?;
            let out = String::from_utf8(out)
                .map_err(|_| failed("its output is not UTF-8 text".into()))?;
            let shown = format!("output of generator `{line}`");
            let texts = match kind {
                Some(k) => vec![Loadable {
                    kind: *k,
                    shown,
                    first_line: 1,
                    text: out,
                    ipv6: false,
                }],
                None => sections(shown, out)?,
            };
            // What a rule file may not do, a generator may not print (see model::hostsafe).
            for l in &texts {
                crate::model::hostsafe::check_at(
                    l.kind,
                    &l.text,
                    Path::new(&l.shown),
                    l.first_line,
                )
                .map_err(|e| InstallError::Outside(e, node.to_string()))?;
            }
            Ok(texts)
        }
    }?;
    if names.len() > before {
        *tables = Some(rt_tables(names));
    }
    Ok(texts.into_iter().flat_map(by_family).collect())
}

/// An `ip` text whose lines are led by `-6` or `-4` (`-6 rule add fwmark 2 table 102`, which
/// `ip -batch` cannot take) becomes one text per family: `ip -batch` gets the lines without
/// `-6` (`-4` taken off), `ip -6 -batch` the `-6` lines (taken off). The other family's lines
/// are left blank, so that the tool's line numbers stay the file's. Other texts are unchanged.
fn by_family(l: Loadable) -> Vec<Loadable> {
    if l.kind != RuleKind::Ip || l.ipv6 {
        return vec![l];
    }
    let mut v4 = String::with_capacity(l.text.len());
    let mut v6 = String::new();
    let mut any6 = false;
    // A line ending in `\` goes on to the next: the whole command is of its first line's family.
    let mut six = false;
    let mut continued = false;
    for line in l.text.split_inclusive('\n') {
        let body = line.trim_start();
        if !continued {
            six = body.starts_with("-6 ") || body.starts_with("-6\t");
        }
        let flag = !continued && (six || body.starts_with("-4 ") || body.starts_with("-4\t"));
        let kept = if flag { body[2..].trim_start() } else { line };
        let end = if line.ends_with('\n') { "\n" } else { "" };
        let (mine, other) = if six {
            (&mut v6, &mut v4)
        } else {
            (&mut v4, &mut v6)
        };
        mine.push_str(kept);
        other.push_str(end);
        any6 |= six;
        continued = line.trim_end_matches(['\n', '\r']).ends_with('\\');
    }
    if !any6 {
        return vec![Loadable { text: v4, ..l }];
    }
    vec![
        Loadable {
            text: v4,
            ..l.clone()
        },
        Loadable {
            text: v6,
            ipv6: true,
            ..l
        },
    ]
}

/// A command line to run in a node, from folder `cwd`, with `env` added to its environment.
pub(super) struct Program<'a> {
    pub line: &'a str,
    pub cwd: &'a Path,
    pub env: &'a [(&'a str, &'a str)],
    /// Whether it writes into private copies of /etc, /var, /run and /tmp (an installer).
    pub private: bool,
}

/// Runs a generator or an installer inside `node`: the topology's facts on its stdin and in
/// the file named by `HARNESS_TOPOLOGY` (an in-memory file, inherited as fd 200);
/// `HARNESS_NODE` names the node. Bounded as [`generator`] says; what it printed on stdout.
/// `failed` words a failure (a generator's, an installer's).
pub(super) fn run_program(
    lab: &Lab,
    node: &str,
    program: &Program<'_>,
    facts: &str,
    tables: Option<&[u8]>,
    failed: &dyn Fn(String) -> InstallError,
) -> Result<Vec<u8>, InstallError> {
    let Program {
        line,
        cwd,
        env,
        private,
    } = *program;
    let memfd =
        nix::sys::memfd::memfd_create(c"harness-topology", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(|e| failed(e.to_string()))?;
    let mut file = std::fs::File::from(memfd);
    std::io::Write::write_all(&mut file, facts.as_bytes()).map_err(|e| failed(e.to_string()))?;
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(line)
        .current_dir(cwd)
        .env("HARNESS_TOPOLOGY", format!("/proc/self/fd/{PASSED_FD}"))
        .env("HARNESS_NODE", node)
        .envs(env.iter().copied());
    let limits = generator::Limits::current().map_err(failed)?;
    let ns = lab.ns(node).clone();
    let tables = tables.map(<[u8]>::to_vec);
    // The memfd moves with the spawn: it must stay open until the generator has its copy.
    let spawn =
        move || spawn_piped_with(&ns, cmd, tables.as_deref(), Some(file.as_raw_fd()), private);
    let ended = generator::run(lab.ns(node), spawn, facts.as_bytes().to_vec(), limits)
        .map_err(|e| failed(e.to_string()))?;
    let (status, stdout, stderr) = match ended {
        generator::Ended::Exited {
            status,
            stdout,
            stderr,
        } => (status, stdout, stderr),
        generator::Ended::TimedOut(limit) => {
            return Err(failed(format!(
                "it ran longer than {} s, the time limit, and was killed with every process it \
                 started; make it finish sooner, or raise the limit with --generator-timeout \
                 SECS (or HARNESS_GENERATOR_TIMEOUT=SECS)",
                limit.as_secs_f64()
            )))
        }
        generator::Ended::TooMuch(limit) => {
            return Err(failed(format!(
                "it printed more than {}, the output limit, and was killed with every process \
                 it started; print less, or raise the limit with \
                 HARNESS_GENERATOR_MAX_OUTPUT=BYTES (e.g. `256MiB`)",
                generator::show_bytes(limit)
            )))
        }
    };
    if !status.success() {
        let said = String::from_utf8_lossy(&stderr).trim().to_string();
        return Err(failed(if said.is_empty() {
            format!("{status} and printed nothing on stderr")
        } else {
            format!("{status}:\n  {}", said.replace('\n', "\n  "))
        }));
    }
    Ok(stdout)
}

fn display_path(p: &Path) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    p.canonicalize()
        .ok()
        .and_then(|c| c.strip_prefix(&cwd).ok().map(PathBuf::from))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::{by_family, Loadable, RuleKind};

    /// `-6` lines go to `ip -6 -batch`, the rest (`-4` taken off) to `ip -batch`; each text
    /// keeps every line's number, and a continued command stays whole.
    #[test]
    fn an_ip_text_splits_by_family_keeping_line_numbers() {
        let l = Loadable {
            kind: RuleKind::Ip,
            shown: "jupiter.ip".into(),
            first_line: 1,
            text: "route add table 101 default via 2001:db8:1::254\n\
                   -6 rule add fwmark 1 \\\n  table 101\n\
                   -4 rule add fwmark 1 table 101\n\
                   # a comment\n"
                .into(),
            ipv6: false,
        };
        let got = by_family(l);
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0].text,
            "route add table 101 default via 2001:db8:1::254\n\n\nrule add fwmark 1 table 101\n# a comment\n"
        );
        assert!(!got[0].ipv6);
        assert_eq!(got[1].text, "\nrule add fwmark 1 \\\n  table 101\n\n\n");
        assert!(got[1].ipv6);
        let plain = Loadable {
            text: "route add default via 10.0.0.1\n".into(),
            ..got[0].clone()
        };
        assert_eq!(by_family(plain.clone()), vec![plain]);
    }
}
