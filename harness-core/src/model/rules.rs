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
            if let Some(line) = f.install {
                if f.generate.is_some()
                    || f.as_kind.is_some()
                    || f.bundle.is_some()
                    || f.iptables.is_some()
                    || f.ip6tables.is_some()
                    || f.nft.is_some()
                    || f.ip.is_some()
                    || f.ipset.is_some()
                    || f.sysctl.is_some()
                {
                    return Err(doc.err(
                        &fpath,
                        "an entry is either a file, `generate: COMMAND` or `install: COMMAND`",
                    ));
                }
                let ipath = format!("{fpath}.install");
                if let Some(msg) = plan::installer_problem(&line, cwd) {
                    return Err(doc.err(&ipath, msg));
                }
                files.push(RuleSource::Install {
                    line: line.trim().to_string(),
                    cwd: cwd.to_path_buf(),
                });
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
}
