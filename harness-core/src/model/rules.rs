//! `rules:`: each node's routing table names and rule sources (files, bundles, generators).

use std::path::Path;

use super::doc::{unknown_name, Doc};
use super::{limits, plan, raw, NodeRules, RuleKind, RuleSource, SpecError, Topology};

pub(super) fn node_rules(
    doc: &Doc,
    dir: &Path,
    topo: &Topology,
    raw: raw::Ordered<raw::NodeRulesDef>,
) -> Result<Vec<NodeRules>, SpecError> {
    let mut out = Vec::new();
    for (node, def) in raw.0 {
        let path = format!("rules.{node}");
        if topo.node(&node).is_none() {
            let have: Vec<&str> = topo.nodes.iter().map(|n| n.name.as_str()).collect();
            return Err(doc.err_key(
                &path,
                unknown_name("node", &node, &have, "the topology has"),
            ));
        }
        let mut tables = Vec::new();
        for (name, id) in def.tables.0 {
            let tpath = format!("{path}.tables.{name}");
            if let Some(m) = super::bundle::bad_table_name(&name) {
                return Err(doc.err_key(&tpath, m));
            }
            if let Some(m) = super::bundle::bad_table_id(&name, id) {
                return Err(doc.err(&tpath, m));
            }
            if let Some((other, _)) = tables.iter().find(|(_, i)| *i == id) {
                return Err(doc.err(&tpath, format!("table `{name}` = {id}: `{other}` is table {id} already; give each name its own number")));
            }
            tables.push((name, id));
        }
        let mut files = Vec::new();
        for (i, f) in def.files.into_iter().enumerate() {
            let fpath = format!("{path}.files[{i}]");
            // `harness run x.yaml`: the folder is ``, where no command can start.
            let cwd = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            let others = [
                f.iptables.is_some(),
                f.ip6tables.is_some(),
                f.nft.is_some(),
                f.ip.is_some(),
                f.ipset.is_some(),
                f.sysctl.is_some(),
                f.bundle.is_some(),
                f.generate.is_some(),
                f.as_kind.is_some(),
            ]
            .contains(&true);
            // An installer and a daemon are entries of their own.
            for (key, line, what) in [
                ("install", f.install.as_ref(), Program::Installer),
                ("daemon", f.daemon.as_ref(), Program::Daemon),
            ] {
                let Some(line) = line else { continue };
                if others || (f.install.is_some() && f.daemon.is_some()) {
                    return Err(doc.err(
                        &fpath,
                        "an entry is either a file, `generate: COMMAND`, `install: COMMAND` or `daemon: COMMAND`",
                    ));
                }
                let problem = match what {
                    Program::Installer => plan::installer_problem(line, cwd),
                    Program::Daemon => plan::daemon_problem(line, cwd),
                };
                if let Some(msg) = problem {
                    return Err(doc.err(&format!("{fpath}.{key}"), msg));
                }
                let (line, cwd) = (line.trim().to_string(), cwd.to_path_buf());
                files.push(match what {
                    Program::Installer => RuleSource::Install { line, cwd },
                    Program::Daemon => RuleSource::Daemon { line, cwd },
                });
            }
            if f.install.is_some() || f.daemon.is_some() {
                continue;
            }
            if let Some(line) = f.generate {
                let kind = match f.as_kind.as_deref() {
                    None => None,
                    Some(k) => Some(RuleKind::from_name(k).ok_or_else(|| {
                        doc.err(
                            &format!("{fpath}.as"),
                            format!(
                                "`as: {k}`: one of iptables, ip6tables, nft, ip, ipset, sysctl"
                            ),
                        )
                    })?),
                };
                if f.iptables.is_some()
                    || f.ip6tables.is_some()
                    || f.nft.is_some()
                    || f.ip.is_some()
                    || f.ipset.is_some()
                    || f.sysctl.is_some()
                    || f.bundle.is_some()
                {
                    return Err(doc.err(&fpath, "an entry is either a file or `generate: COMMAND`"));
                }
                files.push(RuleSource::Command {
                    line,
                    cwd: cwd.to_path_buf(),
                    kind,
                });
                continue;
            }
            if f.as_kind.is_some() {
                return Err(doc.err(&format!("{fpath}.as"), "`as:` goes with `generate:`"));
            }
            // The file's kind; `None` for a bundle (its sections say theirs).
            let mut given: Vec<(Option<RuleKind>, String)> = [
                (Some(RuleKind::Iptables), f.iptables),
                (Some(RuleKind::Ip6tables), f.ip6tables),
                (Some(RuleKind::Nft), f.nft),
                (Some(RuleKind::Ip), f.ip),
                (Some(RuleKind::Ipset), f.ipset),
                (Some(RuleKind::Sysctl), f.sysctl),
                (None, f.bundle),
            ]
            .into_iter()
            .filter_map(|(k, p)| p.map(|p| (k, p)))
            .collect();
            if given.len() != 1 {
                return Err(doc.err(&fpath, "each entry names one file: `- iptables: FILE` (iptables-restore), `- ip6tables: FILE` (ip6tables-restore), `- nft: FILE` (nft -f), `- ip: FILE` (ip -batch), `- ipset: FILE` (ipset restore), `- sysctl: FILE` (sysctl -p) or `- bundle: FILE` (sections headed `### KIND`)"));
            }
            let (kind, rel) = given.pop().expect("one");
            let full = dir.join(&rel);
            match std::fs::metadata(&full) {
                Err(_) => {
                    return Err(doc.err(
                        &fpath,
                        format!(
                        "rule file `{}` does not exist; paths are relative to the scenario file",
                        full.display()
                    ),
                    ))
                }
                Ok(m) => {
                    if let Some(what) = limits::kind_of(&m.file_type()) {
                        return Err(doc.err(
                            &fpath,
                            format!(
                                "rule file `{}` is {what}, not a regular file; name the file {} loads",
                                full.display(),
                                kind.map_or("the harness", RuleKind::tool)
                            ),
                        ));
                    }
                    if m.len() > plan::MAX_BUNDLE_BYTES {
                        return Err(doc.err(
                            &fpath,
                            format!(
                                "rule file `{}` is larger than {} MiB; is it the right file?",
                                full.display(),
                                plan::MAX_BUNDLE_BYTES >> 20
                            ),
                        ));
                    }
                }
            }
            files.push(match kind {
                Some(kind) => RuleSource::File { kind, path: full },
                None => RuleSource::Bundle(full),
            });
        }
        out.push(NodeRules {
            node,
            tables,
            sources: files,
        });
    }
    Ok(out)
}

/// A program in a node's rules that is not a generator.
#[derive(Clone, Copy)]
enum Program {
    Installer,
    Daemon,
}

#[cfg(test)]
mod tests {
    use crate::model::{load, repo_path, RuleKind, RuleSource};

    /// A scenario whose files are seed 002's and an `ip6tables:` file: each kept as its kind.
    #[test]
    fn an_ip6tables_entry_is_an_ip6tables_file() {
        let plan = load(&repo_path(
            "harness/tests/fixtures/ip6tables/dual-isp-ip6tables.yaml",
        ))
        .expect("valid");
        let kinds: Vec<RuleKind> = plan.rules[0]
            .sources
            .iter()
            .filter_map(|s| match s {
                RuleSource::File { kind, .. } => Some(*kind),
                _ => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                RuleKind::Iptables,
                RuleKind::Ip6tables,
                RuleKind::Ip,
                RuleKind::Ip
            ]
        );
    }

    /// `ip6tables:` beside another key in one entry is refused, as `iptables:` is.
    #[test]
    fn an_ip6tables_entry_names_one_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let topo = repo_path("topologies/jupiter.yaml");
        std::fs::write(d.path().join("r"), "*filter\nCOMMIT\n").expect("write");
        for (entry, says) in [
            ("{ ip6tables: r, iptables: r }", "each entry names one file"),
            (
                "{ ip6tables: r, install: ./x }",
                "an entry is either a file",
            ),
            (
                "{ ip6tables: r, generate: ./x }",
                "an entry is either a file",
            ),
            (
                "{ generate: ./x, as: ip7tables }",
                "one of iptables, ip6tables, nft",
            ),
        ] {
            let s = d.path().join("s.yaml");
            std::fs::write(
                &s,
                format!(
                    "topology: {}\nrules:\n  jupiter:\n    files:\n      - {entry}\ntraffic:\n  - {{ proto: tcp, from: saturn, to: neptune, port: 80 }}\nexpect:\n  - {{ completes: true }}\n",
                    topo.display()
                ),
            )
            .expect("write");
            let e = load(&s).expect_err(entry).to_string();
            assert!(e.contains(says), "{entry}: {e}");
        }
    }

    /// A scenario with `entry` in jupiter's files, in folder `d` (with `r`, an iptables file,
    /// `mon`, an executable, and `plain`, a file that is not).
    fn scenario_with(d: &std::path::Path, entry: &str) -> std::path::PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let topo = repo_path("topologies/jupiter.yaml");
        std::fs::write(d.join("r"), "*filter\nCOMMIT\n").expect("write");
        std::fs::write(d.join("mon"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(d.join("mon"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::write(d.join("plain"), "#!/bin/sh\n").expect("write");
        std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        let s = d.join("s.yaml");
        std::fs::write(
            &s,
            format!(
                "topology: {}\nrules:\n  jupiter:\n    files:\n      - iptables: r\n      - {entry}\ntraffic:\n  - {{ proto: tcp, from: saturn, to: neptune, port: 80 }}\nexpect:\n  - {{ completes: true }}\n",
                topo.display()
            ),
        )
        .expect("write");
        s
    }

    /// `- daemon: COMMAND` is a daemon of the node, run from the scenario's folder, in its
    /// place in the list; `--rules NODE=daemon:COMMAND` is one too.
    #[test]
    fn a_daemon_entry_is_a_daemon() {
        let d = tempfile::tempdir().expect("tempdir");
        for (entry, line) in [
            (
                "daemon: ./mon --target 172.16.1.100",
                "./mon --target 172.16.1.100",
            ),
            ("{ daemon: \"  sleep 1000 \" }", "sleep 1000"),
            (
                "daemon: \"while :; do sleep 1; done\"",
                "while :; do sleep 1; done",
            ),
        ] {
            let plan = load(&scenario_with(d.path(), entry)).expect(entry);
            let sources = &plan.rules[0].sources;
            assert_eq!(sources.len(), 2, "{entry}");
            assert_eq!(
                sources[1],
                RuleSource::Daemon {
                    line: line.into(),
                    cwd: d.path().to_path_buf()
                },
                "{entry}"
            );
            assert_eq!(sources[1].describe(), format!("daemon `{line}`"));
        }
        let (node, source) =
            RuleSource::parse_override("jupiter=daemon: ./mon -x", d.path()).expect("taken");
        assert_eq!(node, "jupiter");
        assert_eq!(
            source,
            RuleSource::Daemon {
                line: "./mon -x".into(),
                cwd: d.path().to_path_buf()
            }
        );
    }

    /// A daemon is an entry of its own, and a command that cannot run is refused before
    /// anything is built, at the key that names it.
    #[test]
    fn a_daemon_entry_is_alone_and_must_be_able_to_run() {
        let d = tempfile::tempdir().expect("tempdir");
        for (entry, at, says) in [
            ("{ daemon: ./mon, iptables: r }", ":6:9:", "an entry is either a file, `generate: COMMAND`, `install: COMMAND` or `daemon: COMMAND`"),
            ("{ daemon: ./mon, install: ./mon }", ":6:9:", "or `daemon: COMMAND`"),
            ("{ daemon: ./mon, generate: ./mon }", ":6:9:", "or `daemon: COMMAND`"),
            ("{ daemon: ./mon, as: ip }", ":6:9:", "or `daemon: COMMAND`"),
            ("{ daemon: ./mon, bundle: r }", ":6:9:", "or `daemon: COMMAND`"),
            ("daemon: \" \"", ":6:17:", "the daemon's command is empty: write `daemon: COMMAND`"),
            ("daemon: ./mno", ":6:17:", "daemon `./mno` does not exist (looked in"),
            ("daemon: ./plain", ":6:17:", "daemon `./plain` is not executable"),
            ("daemon: ./sub", ":6:17:", "daemon `./sub` is not a regular file"),
            ("daemon: mwan3track-not-installed -i 1", ":6:17:", "daemon `mwan3track-not-installed` is neither a command in PATH nor a file"),
        ] {
            let e = load(&scenario_with(d.path(), entry)).expect_err(entry).to_string();
            assert!(e.contains(says), "{entry}: {e}");
            // The entry, or the command in it.
            assert!(e.contains(&format!("s.yaml{at}")), "{entry}: {e}");
        }
        for (arg, says) in [
            ("jupiter=daemon:./mno", "`--rules jupiter=daemon:./mno`: daemon `./mno` does not exist"),
            ("jupiter=daemon: ", "the daemon's command is empty"),
            ("jupiter=deamon:./mon", "`deamon:` is no kind of rule source: write NODE=install:COMMAND for an installer, NODE=daemon:COMMAND for a daemon"),
        ] {
            let e = RuleSource::parse_override(arg, d.path()).expect_err(arg).to_string();
            assert!(e.contains(says), "{arg}: {e}");
        }
    }
}
