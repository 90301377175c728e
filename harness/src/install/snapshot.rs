//! Installers: a command run inside a node, like a generator (the topology's facts on stdin
//! and in `$HARNESS_TOPOLOGY`, the same limits, its own PID namespace), that loads the rules
//! itself: Shorewall's compiled `firewall start`, mwan3's functions, FireHOL. What it loaded
//! is then read back from the node, the node's *snapshot*, and kept as the node's loaded
//! rules, so that coverage (iptables counters against the loaded text) sees them:
//!
//! * `iptables-save` (the backend in use: system, nft or legacy), its comment lines left out;
//! * `nft list ruleset`, without the tables iptables-nft made (they are in the first);
//! * `ip rule` and `ip route show table all`, minus what was there before the installer ran
//!   (what the lab set, and what earlier rule sources loaded), and minus the routes the kernel
//!   makes for addresses (`proto kernel`, table `local`), as `ip -batch` lines;
//! * `ipset save` (first: the iptables rules that match a set load only once it exists).
//!
//! Each is a [`Loadable`] of its kind, shown as `installer `CMD` (iptables-save)`: text in
//! the form its tool loads, so that a mutant of it can be loaded in the installer's place.
//! Sysctls are not read back. The installer finds the run's `--backend` in
//! `$HARNESS_BACKEND` (`system`, `nft`, `legacy`); rules it loads with the other iptables
//! than the run reads are an installer error that says so.

use std::process::Command;

use super::sources::{run_program, Program};
use super::{Backend, InstallError, Loadable};
use crate::lab::spawn::{run_with_input, spawn_piped};
use crate::lab::Lab;
use crate::model::{Plan, RuleKind};

/// The routes and policy rules in a node before an installer runs.
pub(super) struct Baseline {
    routes: Vec<String>,
    rules: Vec<String>,
}

/// What the lab (and earlier rule sources) left in `node`: read before the installer runs.
pub(super) fn baseline(
    lab: &Lab,
    node: &str,
    tables: Option<&[u8]>,
) -> Result<Baseline, InstallError> {
    let [routes, rules] = read_all(lab, node, tables, [ROUTES, RULES].map(Some))?;
    Ok(Baseline {
        routes: lines(&routes.unwrap_or_default()),
        rules: lines(&rules.unwrap_or_default()),
    })
}

/// What is read back, beside `iptables-save`.
type Read = (&'static str, &'static [&'static str]);
const ROUTES: Read = ("ip", &["route", "show", "table", "all"]);
const RULES: Read = ("ip", &["rule", "show"]);
const NFT: Read = ("nft", &["list", "ruleset"]);
const IPSET: Read = ("ipset", &["save"]);

/// Runs the installer `line` in `node` (from `cwd`), then reads back what it loaded.
pub(super) fn install(
    lab: &Lab,
    plan: &Plan,
    node: &str,
    line: &str,
    cwd: &std::path::Path,
    tables: Option<&[u8]>,
    backend: Backend,
) -> Result<Vec<Loadable>, InstallError> {
    let before = baseline(lab, node, tables)?;
    let facts = crate::model::facts(&plan.topology, node).to_string();
    let failed = |said: String| InstallError::Installer {
        line: line.to_string(),
        node: node.to_string(),
        said,
    };
    // Always a private mount namespace: an installer that writes iptables's or iproute2's
    // files (rt_tables) writes them there, not on the host.
    let own = crate::lab::spawn::rt_tables(&[]);
    let tables_for_it = tables.unwrap_or(&own);
    let env = [("HARNESS_BACKEND", backend_name(backend))];
    let program = Program {
        line,
        cwd,
        env: &env,
    };
    run_program(lab, node, &program, &facts, Some(tables_for_it), &failed)?;
    let snapshot = read_back(lab, node, line, tables, backend, &before).map_err(|e| match e {
        Mismatch(said) => failed(said),
        Other(e) => e,
    })?;
    record(node, line, cwd, &snapshot);
    Ok(snapshot)
}

/// The last snapshot of each installer (node, command line, folder) this process ran: what
/// `harness mutate` makes mutants of.
type Recorded = Vec<((String, String, std::path::PathBuf), Vec<Loadable>)>;
static RECORDED: std::sync::Mutex<Recorded> = std::sync::Mutex::new(Vec::new());

fn record(node: &str, line: &str, cwd: &std::path::Path, snapshot: &[Loadable]) {
    let key = (node.to_string(), line.to_string(), cwd.to_path_buf());
    let mut all = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(k, _)| *k != key);
    all.push((key, snapshot.to_vec()));
}

/// What installer `line` (run from `cwd`) loaded in `node` the last time this process ran
/// it: its snapshot, each part a text its tool loads (iptables-save, nft, ip -batch, ipset
/// restore). `None` when it has not run.
pub fn recorded(node: &str, line: &str, cwd: &std::path::Path) -> Option<Vec<Loadable>> {
    let all = RECORDED.lock().unwrap_or_else(|p| p.into_inner());
    all.iter()
        .find(|((n, l, c), _)| n == node && l == line && c == cwd)
        .map(|(_, s)| s.clone())
}

/// `--backend`'s name, as the installer finds it in `$HARNESS_BACKEND`.
fn backend_name(backend: Backend) -> &'static str {
    match backend {
        Backend::System => "system",
        Backend::Nft => "nft",
        Backend::Legacy => "legacy",
    }
}

/// Why a snapshot could not be read: the installer loaded its iptables rules with the other
/// iptables than the run reads (its fault), or reading failed.
enum ReadBackError {
    Mismatch(String),
    Other(InstallError),
}
use ReadBackError::{Mismatch, Other};

impl From<InstallError> for ReadBackError {
    fn from(e: InstallError) -> Self {
        Other(e)
    }
}

/// What is loaded in `node` now, less `before`'s routes and rules (see the module's doc).
fn read_back(
    lab: &Lab,
    node: &str,
    line: &str,
    tables: Option<&[u8]>,
    backend: Backend,
    before: &Baseline,
) -> Result<Vec<Loadable>, ReadBackError> {
    let shown = |what: &str| format!("installer `{line}` ({what})");
    let mut out = Vec::new();
    let save = match backend {
        Backend::System => "iptables-save",
        Backend::Nft => "iptables-nft-save",
        Backend::Legacy => "iptables-legacy-save",
    };
    // Read at once: each a process of its own.
    let have = |tool: &str| crate::model::find_in_path(tool).is_some();
    let [saved, listed, rules, routes, sets] = read_all(
        lab,
        node,
        tables,
        [
            Some((save, &[][..])),
            have("nft").then_some(NFT),
            Some(RULES),
            Some(ROUTES),
            have("ipset").then_some(IPSET),
        ],
    )?;
    let saved = saved.unwrap_or_default();
    let iptables = iptables_text(&saved);
    // The sets first: iptables rules that match them load only once they exist.
    if let Some(sets) = sets.filter(|s| !s.trim().is_empty()) {
        out.push(loadable(RuleKind::Ipset, shown("ipset save"), sets));
    }
    let has_rules = |t: &str| {
        t.lines()
            .any(|l| l.starts_with("-A ") || l.starts_with("-I "))
    };
    // iptables-nft-save says so when iptables-legacy holds tables, and nft marks the tables
    // iptables-nft made: rules loaded with the one the run does not read would go unseen.
    if !has_rules(&iptables) && saved.contains("iptables-legacy tables present") {
        return Err(Mismatch(format!(
            "it loaded iptables rules with iptables-legacy, but this run reads `{save}` \
             (--backend {}): load them with iptables-nft-restore (`$HARNESS_BACKEND` tells the \
             installer which), or run with --backend legacy",
            backend_name(backend)
        )));
    }
    if !iptables.is_empty() {
        out.push(loadable(RuleKind::Iptables, shown(save), iptables.clone()));
    }
    if let Some(listed) = listed {
        let nft_has_rules = || {
            crate::model::find_in_path("iptables-nft-save").is_some()
                && read(lab, node, tables, "iptables-nft-save", &[])
                    .is_ok_and(|t| has_rules(&iptables_text(&t)))
        };
        if backend == Backend::Legacy && !has_rules(&iptables) && nft_has_rules() {
            return Err(Mismatch(
                "it loaded iptables rules with iptables-nft, but this run reads \
                 `iptables-legacy-save` (--backend legacy): load them with \
                 iptables-legacy-restore (`$HARNESS_BACKEND` is `legacy`), or drop \
                 --backend legacy"
                    .into(),
            ));
        }
        let nft = own_nft_tables(&listed, &iptables, backend);
        if !nft.is_empty() {
            out.push(loadable(RuleKind::Nft, shown("nft list ruleset"), nft));
        }
    }
    let rules = new_lines(&rules.unwrap_or_default(), &before.rules);
    let routes = new_lines(&routes.unwrap_or_default(), &before.routes);
    let ip = ip_batch(&rules, &routes);
    if !ip.is_empty() {
        out.push(loadable(RuleKind::Ip, shown("ip rule, ip route"), ip));
    }
    Ok(out)
}

fn loadable(kind: RuleKind, shown: String, text: String) -> Loadable {
    Loadable {
        kind,
        shown,
        first_line: 1,
        text,
    }
}

/// Runs `tool args` in `node`: what it printed.
fn read(
    lab: &Lab,
    node: &str,
    tables: Option<&[u8]>,
    tool: &'static str,
    args: &[&str],
) -> Result<String, InstallError> {
    let mut cmd = Command::new(tool);
    cmd.args(args);
    let out = run_with_input(lab.ns(node), cmd, tables, None, b"").map_err(|error| {
        InstallError::Spawn {
            tool,
            node: node.to_string(),
            error,
        }
    })?;
    if !out.status.success() {
        return Err(InstallError::Source {
            shown: format!("`{tool} {}` in node `{node}`", args.join(" ")),
            msg: format!(
                "reading back what the installer loaded: {}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs each of `reads` in `node` at once: what each printed (`None` for a read not asked).
fn read_all<const N: usize>(
    lab: &Lab,
    node: &str,
    tables: Option<&[u8]>,
    reads: [Option<Read>; N],
) -> Result<[Option<String>; N], InstallError> {
    let spawned = reads.map(|r| {
        r.map(|(tool, args)| {
            let mut cmd = Command::new(tool);
            cmd.args(args);
            (tool, args, spawn_piped(lab.ns(node), cmd, tables, None))
        })
    });
    // Each is waited for (on this thread: they die with it), its output read in turn.
    let done = spawned.map(|s| {
        s.map(|(tool, args, child)| {
            let out = child.and_then(|mut c| {
                drop(c.stdin.take());
                c.wait_with_output()
            });
            (tool, args, out)
        })
    });
    let mut out = [(); N].map(|()| None);
    for (i, d) in done.into_iter().enumerate() {
        let Some((tool, args, result)) = d else {
            continue;
        };
        let o = result.map_err(|error| InstallError::Spawn {
            tool,
            node: node.to_string(),
            error,
        })?;
        if !o.status.success() {
            return Err(InstallError::Source {
                shown: format!("`{tool} {}` in node `{node}`", args.join(" ")),
                msg: format!(
                    "reading back what the installer loaded: {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                ),
            });
        }
        out[i] = Some(String::from_utf8_lossy(&o.stdout).into_owned());
    }
    Ok(out)
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// The lines of `now` not in `before` (each line of `before` cancels one of `now`).
fn new_lines(now: &str, before: &[String]) -> Vec<String> {
    let mut left: Vec<&str> = before.iter().map(String::as_str).collect();
    lines(now)
        .into_iter()
        .filter(|l| match left.iter().position(|b| b == l) {
            Some(i) => {
                left.swap_remove(i);
                false
            }
            None => true,
        })
        .collect()
}

/// `iptables-save` output without its comment lines (`# Generated by …`, dates).
fn iptables_text(saved: &str) -> String {
    saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// The tables iptables-nft makes, by name.
const XTABLES: &[&str] = &["filter", "nat", "mangle", "raw", "security"];

/// `nft list ruleset` without the tables iptables-nft made: those nft marks as managed by
/// it, and (unless the backend is legacy) `ip`/`ip6` tables of an xtables name that
/// `iptables` holds.
fn own_nft_tables(listed: &str, iptables: &str, backend: Backend) -> String {
    let mut out = String::new();
    let mut keep = false;
    let mut managed = false;
    for l in listed.lines() {
        if l.starts_with('#') {
            // nft's `# Warning: table ip nat is managed by iptables-nft, do not touch!`
            managed |= l.contains("managed by iptables-nft");
            continue;
        }
        if let Some(head) = l.strip_prefix("table ") {
            let mut words = head.split_whitespace();
            let (family, name) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            let xtables = backend != Backend::Legacy
                && matches!(family, "ip" | "ip6")
                && XTABLES.contains(&name)
                && iptables.lines().any(|t| t == format!("*{name}"));
            keep = !managed && !xtables;
            managed = false;
        }
        if keep {
            out.push_str(l);
            out.push('\n');
        }
        if l == "}" {
            keep = false;
        }
    }
    out
}

/// `ip rule` and `ip route` lines as `ip -batch` input: `rule add pref N …`, `route add …`
/// (routes the kernel makes for addresses left out).
fn ip_batch(rules: &[String], routes: &[String]) -> String {
    let mut out = String::new();
    for r in rules {
        let Some((pref, rest)) = r.split_once(':') else {
            continue;
        };
        let rest = rest.trim().replace(" lookup ", " table ");
        out.push_str(&format!("rule add pref {} {rest}\n", pref.trim()));
    }
    for r in routes {
        let words: Vec<&str> = r.split_whitespace().collect();
        if words.first() == Some(&"local")
            || words.first() == Some(&"broadcast")
            || words
                .windows(2)
                .any(|w| w == ["proto", "kernel"] || w == ["table", "local"])
        {
            continue;
        }
        let kept: Vec<&str> = words
            .into_iter()
            .filter(|w| !matches!(*w, "linkdown" | "dead" | "offload" | "trap"))
            .collect();
        out.push_str(&format!("route add {}\n", kept.join(" ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_rules_become_ip_batch_lines() {
        let rules = vec![
            "32765:\tfrom all fwmark 0x1 lookup rt_link1".to_string(),
            "100:\tfrom 10.37.1.253 lookup 1 proto static".to_string(),
        ];
        let routes = vec![
            "default via 10.37.1.254 dev eth1 table rt_link1".to_string(),
            "10.37.1.0/24 dev eth1 proto kernel scope link src 10.37.1.253".to_string(),
            "local 10.9.9.9 dev eth1 table local proto kernel scope host src 10.9.9.9".to_string(),
            "default via 10.37.2.254 dev eth2 table 2 linkdown".to_string(),
        ];
        assert_eq!(
            ip_batch(&rules, &routes),
            "rule add pref 32765 from all fwmark 0x1 table rt_link1\n\
             rule add pref 100 from 10.37.1.253 table 1 proto static\n\
             route add default via 10.37.1.254 dev eth1 table rt_link1\n\
             route add default via 10.37.2.254 dev eth2 table 2\n"
        );
    }

    #[test]
    fn what_was_there_before_is_left_out() {
        let before = lines("0:\tfrom all lookup local\n32766:\tfrom all lookup main\n");
        let now = "0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x1 lookup 1\n32766:\tfrom all lookup main\n";
        assert_eq!(
            new_lines(now, &before),
            vec!["32765:\tfrom all fwmark 0x1 lookup 1"]
        );
    }

    #[test]
    fn iptables_nft_tables_are_left_to_iptables_save() {
        let listed = "# Warning: table ip nat is managed by iptables-nft, do not touch!\ntable ip nat {\n\tchain POSTROUTING {\n\t}\n}\ntable ip mangle {\n\tchain PREROUTING {\n\t}\n}\ntable inet mine {\n\tchain c {\n\t}\n}\n";
        let iptables = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(
            own_nft_tables(listed, iptables, Backend::System),
            "table inet mine {\n\tchain c {\n\t}\n}\n"
        );
    }
}
