//! Installers: a command run inside a node, like a generator (the topology's facts on stdin
//! and in `$HARNESS_TOPOLOGY`, the same limits, its own PID namespace), that loads the rules
//! itself: Shorewall's compiled `firewall start`, mwan3's functions, FireHOL. What it loaded
//! is then read back from the node, the node's *snapshot*, and kept as the node's loaded
//! rules, so that coverage (iptables counters against the loaded text) sees them:
//!
//! * `iptables-save` and `ip6tables-save` (the backend in use: system, nft or legacy), their
//!   comment lines left out, reloaded as `iptables` and `ip6tables` rules;
//! * `nft list ruleset`, without the tables iptables-nft and ip6tables-nft made (they are in
//!   the first two);
//! * `ip rule` and `ip route show table all`, minus what was there before the installer ran
//!   (what the lab set, and what earlier rule sources loaded), and minus the routes the kernel
//!   makes for addresses (`proto kernel`, table `local`), as `ip -batch` lines;
//! * `ipset save` (first: the iptables rules that match a set load only once it exists);
//! * the `net.*` sysctls whose value it changed (`sysctl -a`, counters left out).
//!
//! Each is a [`Loadable`] of its kind, shown as `installer `CMD` (iptables-save)`: text in
//! the form its tool loads, so that a mutant of it can be loaded in the installer's place.
//! The installer finds the run's `--backend` in
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
    routes6: Vec<String>,
    rules6: Vec<String>,
    sysctls: Vec<String>,
}

/// What the lab (and earlier rule sources) left in `node`: read before the installer runs.
pub(super) fn baseline(
    lab: &Lab,
    node: &str,
    tables: Option<&[u8]>,
) -> Result<Baseline, InstallError> {
    let sysctl = crate::model::find_in_path("sysctl")
        .is_some()
        .then_some(SYSCTLS);
    let [routes, rules, routes6, rules6, sysctls] = read_all(
        lab,
        node,
        tables,
        [
            Some(ROUTES),
            Some(RULES),
            Some(ROUTES6),
            Some(RULES6),
            sysctl,
        ],
    )?;
    Ok(Baseline {
        routes: lines(&routes.unwrap_or_default()),
        rules: lines(&rules.unwrap_or_default()),
        routes6: lines(&routes6.unwrap_or_default()),
        rules6: lines(&rules6.unwrap_or_default()),
        sysctls: lines(&sysctls.unwrap_or_default()),
    })
}

/// What is read back, beside `iptables-save`.
type Read = (&'static str, &'static [&'static str]);
const ROUTES: Read = ("ip", &["route", "show", "table", "all"]);
const RULES: Read = ("ip", &["rule", "show"]);
const ROUTES6: Read = ("ip", &["-6", "route", "show", "table", "all"]);
const RULES6: Read = ("ip", &["-6", "rule", "show"]);
const NFT: Read = ("nft", &["list", "ruleset"]);
const IPSET: Read = ("ipset", &["save"]);
const SYSCTLS: Read = ("sysctl", &["-a", "--pattern", "^net\\."]);

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
    // Always a private mount namespace with the node's table names (the kernel's alone when it
    // has none): an installer that writes iproute2's rt_tables writes a private copy, and
    // what is read back names no table by a name only the host's rt_tables knows.
    let own = crate::lab::spawn::rt_tables(&[]);
    let tables = Some(tables.unwrap_or(&own));
    let before = baseline(lab, node, tables)?;
    let facts = crate::model::facts(&plan.topology, node).to_string();
    let failed = |said: String| InstallError::Installer {
        line: line.to_string(),
        node: node.to_string(),
        said,
    };
    let uplinks = crate::model::uplinks_env(&plan.topology);
    let env = [
        ("HARNESS_BACKEND", backend_name(backend)),
        ("HARNESS_UPLINKS", &uplinks),
    ];
    let program = Program {
        line,
        cwd,
        env: &env,
        private: true,
    };
    run_program(lab, node, &program, &facts, tables, &failed)?;
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
    let save = super::save_tool(RuleKind::Iptables, backend);
    let save6 = super::save_tool(RuleKind::Ip6tables, backend);
    // Read at once: each a process of its own.
    let have = |tool: &str| crate::model::find_in_path(tool).is_some();
    let [saved, saved6, listed, rules, routes, rules6, routes6, sets, sysctls] = read_all(
        lab,
        node,
        tables,
        [
            Some((save, &[][..])),
            have(save6).then_some((save6, &[][..])),
            have("nft").then_some(NFT),
            Some(RULES),
            Some(ROUTES),
            Some(RULES6),
            Some(ROUTES6),
            have("ipset").then_some(IPSET),
            have("sysctl").then_some(SYSCTLS),
        ],
    )?;
    let saved = saved.unwrap_or_default();
    let iptables = iptables_text(&saved);
    let saved6 = saved6.unwrap_or_default();
    let ip6tables = iptables_text(&saved6);
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
    if !has_rules(&ip6tables) && saved6.contains("ip6tables-legacy tables present") {
        return Err(Mismatch(format!(
            "it loaded ip6tables rules with ip6tables-legacy, but this run reads `{save6}` \
             (--backend {}): load them with ip6tables-nft-restore (`$HARNESS_BACKEND` tells the \
             installer which), or run with --backend legacy",
            backend_name(backend)
        )));
    }
    if !iptables.is_empty() {
        out.push(loadable(RuleKind::Iptables, shown(save), iptables.clone()));
    }
    if !ip6tables.is_empty() {
        out.push(loadable(
            RuleKind::Ip6tables,
            shown(save6),
            ip6tables.clone(),
        ));
    }
    if let Some(listed) = listed {
        let nft_has_rules = |tool: &'static str| {
            crate::model::find_in_path(tool).is_some()
                && read(lab, node, tables, tool, &[]).is_ok_and(|t| has_rules(&iptables_text(&t)))
        };
        if backend == Backend::Legacy
            && !has_rules(&ip6tables)
            && nft_has_rules("ip6tables-nft-save")
        {
            return Err(Mismatch(
                "it loaded ip6tables rules with ip6tables-nft, but this run reads \
                 `ip6tables-legacy-save` (--backend legacy): load them with \
                 ip6tables-legacy-restore (`$HARNESS_BACKEND` is `legacy`), or drop \
                 --backend legacy"
                    .into(),
            ));
        }
        if backend == Backend::Legacy && !has_rules(&iptables) && nft_has_rules("iptables-nft-save")
        {
            return Err(Mismatch(
                "it loaded iptables rules with iptables-nft, but this run reads \
                 `iptables-legacy-save` (--backend legacy): load them with \
                 iptables-legacy-restore (`$HARNESS_BACKEND` is `legacy`), or drop \
                 --backend legacy"
                    .into(),
            ));
        }
        let nft = own_nft_tables(&listed, &iptables, &ip6tables, backend);
        if !nft.is_empty() {
            out.push(loadable(RuleKind::Nft, shown("nft list ruleset"), nft));
        }
    }
    let rules = changes(&rules.unwrap_or_default(), &before.rules);
    let routes = changes(&routes.unwrap_or_default(), &before.routes);
    let sysctls = changed_sysctls(&sysctls.unwrap_or_default(), &before.sysctls);
    if !sysctls.is_empty() {
        out.push(loadable(RuleKind::Sysctl, shown("sysctl -a"), sysctls));
    }
    // IPv6's routes and rules, each line led by `-6` (run by `ip -6 -batch`).
    let rules6 = changes(&rules6.unwrap_or_default(), &before.rules6);
    let routes6 = changes(&routes6.unwrap_or_default(), &before.routes6);
    let ip = ip_batch(&rules, &routes, "") + &ip_batch(&rules6, &routes6, "-6 ");
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
        ipv6: false,
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

/// The entries of a listing, one per line, blanks collapsed; a line that starts with a blank
/// continues the entry before it (`ip route`'s `nexthop` lines).
fn lines(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        let words = l.split_whitespace().collect::<Vec<_>>().join(" ");
        if words.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(last) if l.starts_with(char::is_whitespace) => {
                last.push(' ');
                last.push_str(&words);
            }
            _ => out.push(words),
        }
    }
    out
}

/// The entries of `now` not in `before`, and those of `before` not in `now` (each entry
/// cancels one equal to it).
fn changes(now: &str, before: &[String]) -> (Vec<String>, Vec<String>) {
    let mut gone: Vec<String> = before.to_vec();
    let new = lines(now)
        .into_iter()
        .filter(|l| match gone.iter().position(|b| b == l) {
            Some(i) => {
                gone.remove(i);
                false
            }
            None => true,
        })
        .collect();
    (new, gone)
}

/// The `KEY = VALUE` lines of `now` whose key `before` has with another value, as a
/// sysctl.conf; keys that count (`nf_conntrack_count`) or appeared since (a module's, with
/// its defaults) are left out.
fn changed_sysctls(now: &str, before: &[String]) -> String {
    let key = |l: &str| l.split_once(" = ").map(|(k, _)| k.trim().to_string());
    let mut out = String::new();
    for l in lines(now) {
        let Some(k) = key(&l) else {
            continue;
        };
        if k.ends_with("_count") || before.contains(&l) {
            continue;
        }
        if before.iter().any(|b| key(b).as_deref() == Some(k.as_str())) {
            out.push_str(&l);
            out.push('\n');
        }
    }
    out
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

/// `nft list ruleset` without the tables iptables-nft and ip6tables-nft made: those nft marks
/// as managed by it, and (unless the backend is legacy) `ip` tables of an xtables name that
/// `iptables` holds, `ip6` tables of one `ip6tables` holds.
fn own_nft_tables(listed: &str, iptables: &str, ip6tables: &str, backend: Backend) -> String {
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
            let saved = match family {
                "ip" => iptables,
                "ip6" => ip6tables,
                _ => "",
            };
            let xtables = backend != Backend::Legacy
                && XTABLES.contains(&name)
                && saved.lines().any(|t| t == format!("*{name}"));
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

/// What changed in `ip rule` and `ip route` as `ip -batch` input: what is gone deleted
/// first (`rule del pref N …`, `route del …`), then what is new added (`rule add pref N …`,
/// `route replace …`, which also takes the place of a route of the same destination). Routes
/// the kernel makes for addresses are left out.
fn ip_batch(
    rules: &(Vec<String>, Vec<String>),
    routes: &(Vec<String>, Vec<String>),
    family: &str,
) -> String {
    let rule = |verb: &str, r: &str| {
        let (pref, rest) = r.split_once(':')?;
        let rest = rest.trim().replace(" lookup ", " table ");
        Some(format!("{family}rule {verb} pref {} {rest}\n", pref.trim()))
    };
    let route = |verb: &str, r: &str| {
        let words: Vec<&str> = r.split_whitespace().collect();
        // The kernel's own: local, broadcast, IPv6's anycast and multicast, connected routes.
        if words
            .first()
            .is_some_and(|w| ["local", "broadcast", "anycast", "multicast"].contains(w))
            || words
                .windows(2)
                .any(|w| w == ["proto", "kernel"] || w == ["table", "local"])
        {
            return None;
        }
        let kept: Vec<&str> = words
            .into_iter()
            .filter(|w| !matches!(*w, "linkdown" | "dead" | "offload" | "trap"))
            .collect();
        Some(format!("{family}route {verb} {}\n", kept.join(" ")))
    };
    let (new_rules, gone_rules) = rules;
    let (new_routes, gone_routes) = routes;
    gone_routes
        .iter()
        .filter_map(|r| route("del", r))
        .chain(gone_rules.iter().filter_map(|r| rule("del", r)))
        .chain(new_rules.iter().filter_map(|r| rule("add", r)))
        .chain(new_routes.iter().filter_map(|r| route("replace", r)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_rules_become_ip_batch_lines() {
        let before = lines(
            "default via 10.37.1.254 dev eth1\n\
             10.37.1.0/24 dev eth1 proto kernel scope link src 10.37.1.253\n",
        );
        let now = "default\n\tnexthop via 10.37.1.254 dev eth1 weight 1\n\tnexthop via 10.37.2.254 dev eth2 weight 2\n\
                   10.37.1.0/24 dev eth1 proto kernel scope link src 10.37.1.253\n\
                   default via 10.37.1.254 dev eth1 table rt_link1\n\
                   local 10.9.9.9 dev eth1 table local proto kernel scope host src 10.9.9.9\n\
                   default via 10.37.2.254 dev eth2 table 2 linkdown\n";
        let rules_before = lines("0:\tfrom all lookup local\n32766:\tfrom all lookup main\n");
        let rules_now = "0:\tfrom all lookup local\n100:\tfrom 10.37.1.253 lookup 1 proto static\n32765:\tfrom all fwmark 0x1 lookup rt_link1\n";
        assert_eq!(
            ip_batch(&changes(rules_now, &rules_before), &changes(now, &before), ""),
            "route del default via 10.37.1.254 dev eth1\n\
             rule del pref 32766 from all table main\n\
             rule add pref 100 from 10.37.1.253 table 1 proto static\n\
             rule add pref 32765 from all fwmark 0x1 table rt_link1\n\
             route replace default nexthop via 10.37.1.254 dev eth1 weight 1 nexthop via 10.37.2.254 dev eth2 weight 2\n\
             route replace default via 10.37.1.254 dev eth1 table rt_link1\n\
             route replace default via 10.37.2.254 dev eth2 table 2\n"
        );
    }

    /// IPv6's routes and rules read back become `-6` lines; the kernel's own (connected,
    /// link-local, local, anycast, multicast) are left out.
    #[test]
    fn ipv6_routes_and_rules_become_dash_6_lines() {
        let before = lines(
            "2001:db8:1::/64 dev eth1 proto kernel metric 256 pref medium\n\
             default via 2001:db8:1::254 dev eth1 metric 1024 pref medium\n",
        );
        let now = "2001:db8:1::/64 dev eth1 proto kernel metric 256 pref medium\n\
                   fe80::/64 dev eth2 proto kernel metric 256 pref medium\n\
                   default via 2001:db8:1::254 dev eth1 metric 1024 pref medium\n\
                   default via 2001:db8:2::254 dev eth2 table 102 metric 1024 pref medium\n\
                   local 2001:db8:2::253 dev eth2 table local proto kernel metric 0 pref medium\n\
                   anycast 2001:db8:2:: dev eth2 table local proto kernel metric 0 pref medium\n\
                   multicast ff00::/8 dev eth2 table local proto kernel metric 256 pref medium\n";
        let rules_before = lines("0:\tfrom all lookup local\n32766:\tfrom all lookup main\n");
        let rules_now = "0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x2 lookup 102\n32766:\tfrom all lookup main\n";
        assert_eq!(
            ip_batch(
                &changes(rules_now, &rules_before),
                &changes(now, &before),
                "-6 "
            ),
            "-6 rule add pref 32765 from all fwmark 0x2 table 102\n\
             -6 route replace default via 2001:db8:2::254 dev eth2 table 102 metric 1024 pref medium\n"
        );
    }

    #[test]
    fn only_sysctls_that_changed_are_kept() {
        let before = lines("net.ipv4.ip_forward = 0\nnet.ipv4.conf.eth1.rp_filter = 2\nnet.netfilter.nf_conntrack_count = 0\n");
        let now = "net.ipv4.ip_forward = 0\nnet.ipv4.conf.eth1.rp_filter = 0\nnet.netfilter.nf_conntrack_count = 3\nnet.netfilter.nf_conntrack_max = 65536\n";
        assert_eq!(
            changed_sysctls(now, &before),
            "net.ipv4.conf.eth1.rp_filter = 0\n"
        );
    }

    #[test]
    fn what_was_there_before_is_left_out() {
        let before = lines("0:\tfrom all lookup local\n32766:\tfrom all lookup main\n");
        let now = "0:\tfrom all lookup local\n32765:\tfrom all fwmark 0x1 lookup 1\n32766:\tfrom all lookup main\n";
        assert_eq!(
            changes(now, &before),
            (
                vec!["32765: from all fwmark 0x1 lookup 1".to_string()],
                vec![]
            )
        );
    }

    #[test]
    fn iptables_nft_tables_are_left_to_iptables_save() {
        let listed = "# Warning: table ip nat is managed by iptables-nft, do not touch!\ntable ip nat {\n\tchain POSTROUTING {\n\t}\n}\ntable ip mangle {\n\tchain PREROUTING {\n\t}\n}\ntable inet mine {\n\tchain c {\n\t}\n}\n";
        let iptables = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(
            own_nft_tables(listed, iptables, "", Backend::System),
            "table inet mine {\n\tchain c {\n\t}\n}\n"
        );
    }

    /// Each family's xtables are told by its own save: an `ip6 mangle` table that
    /// ip6tables-save shows is its, an `ip6 filter` it does not show is the installer's nft.
    #[test]
    fn ip6tables_nft_tables_are_left_to_ip6tables_save() {
        let listed = "# Warning: table ip6 nat is managed by iptables-nft, do not touch!\ntable ip6 nat {\n\tchain POSTROUTING {\n\t}\n}\ntable ip6 mangle {\n\tchain PREROUTING {\n\t}\n}\ntable ip6 filter {\n\tchain c {\n\t}\n}\n";
        let iptables = "*filter\n:FORWARD ACCEPT [0:0]\nCOMMIT\n";
        let ip6tables = "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n";
        assert_eq!(
            own_nft_tables(listed, iptables, ip6tables, Backend::System),
            "table ip6 filter {\n\tchain c {\n\t}\n}\n"
        );
        // Under legacy, nf_tables tables are all the installer's own.
        assert!(own_nft_tables(listed, iptables, ip6tables, Backend::Legacy)
            .contains("table ip6 mangle"));
    }
}
