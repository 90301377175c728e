//! What a rule file may ask of its node without reaching the host (#14 §2). Pure.
//!
//! The tools run as root (or as root of the harness's user namespace) inside a node's network
//! namespace, and they do what a file says: `sysctl -p` writes any key it names, and a host-wide
//! key (`kernel.*`, `vm.*`, `net.core.rmem_max`) written from inside a network namespace changes
//! the host. `ip -batch` can add a name under /run/netns (`netns add`), run programs
//! (`netns exec`, `vrf exec`), or move a device into another namespace (`link set X netns 1`).
//! Each is refused here, with the line, before anything is built.
//!
//! # Which sysctl keys are the node's own
//! Only keys the kernel keeps per network namespace. [`PER_NETNS`] lists them as patterns,
//! first match wins, unlisted keys refused: an allowlist with a few carve-outs rather than a
//! denylist, so that a key a newer kernel adds is refused until someone checks it.
//!
//! Checked on kernel 6.18: a namespace made with `unshare --net` has its own copy of every
//! key it can see under /proc/sys/net (the host-wide ones, like `net.core.rmem_max`,
//! `net.ipv4.tcp_mem`, `net.ipv4.route.gc_*` or `net.ipv4.neigh.default.*`, are not there at
//! all); each of its 529 writable integer keys was written in such a namespace and the host's
//! 1050 values compared before and after: none moved. One visible key is host-wide all the
//! same and is refused: `net.netfilter.nf_hooks_lwtunnel` flips a global static key that cannot
//! be turned off again.

use std::path::Path;

use super::plan::{Plan, RuleKind, RuleSource};
use super::SpecError;

/// `(pattern, allowed)`, first match wins; `*` matches any run of characters (dots too).
/// Anything no pattern matches is refused.
const PER_NETNS: &[(&str, bool)] = &[
    // Neighbour defaults belong to the host's tables; per-device ones to the node.
    ("net.ipv4.neigh.default.*", false),
    ("net.ipv6.neigh.default.*", false),
    ("net.ipv4.conf.*", true),
    ("net.ipv6.conf.*", true),
    ("net.ipv4.neigh.*", true),
    ("net.ipv6.neigh.*", true),
    // The route cache's garbage collection and ICMP rate limits are the host's.
    ("net.ipv4.route.flush", true),
    ("net.ipv4.route.min_adv_mss", true),
    ("net.ipv4.route.min_pmtu", true),
    ("net.ipv4.route.mtu_expires", true),
    ("net.ipv4.route.*", false),
    ("net.ipv6.route.*", true),
    ("net.ipv6.icmp.*", true),
    // Host-wide memory limits, labels and secrets.
    ("net.ipv4.cipso_*", false),
    ("net.ipv4.fib_sync_mem", false),
    ("net.ipv4.inet_peer_*", false),
    ("net.ipv4.ipfrag_secret_interval", false),
    ("net.ipv4.tcp_allowed_congestion_control", false),
    ("net.ipv4.tcp_low_latency", false),
    ("net.ipv4.tcp_max_orphans", false),
    ("net.ipv4.tcp_mem", false),
    ("net.ipv4.udp_mem", false),
    ("net.ipv6.calipso_*", false),
    ("net.ipv6.ip6frag_secret_interval", false),
    ("net.ipv6.mld_max_msf", false),
    ("net.ipv6.mld_qrv", false),
    ("net.ipv4.*", true),
    ("net.ipv6.*", true),
    // Conntrack's table size is the host's; its timeouts and switches are the node's.
    ("net.netfilter.nf_conntrack_max", false),
    ("net.netfilter.nf_conntrack_buckets", false),
    ("net.netfilter.nf_conntrack_expect_max", false),
    ("net.netfilter.nf_conntrack_*", true),
    ("net.netfilter.nf_log.*", true),
    ("net.mptcp.*", true),
    ("net.bridge.bridge-nf-*", true),
    ("net.unix.max_dgram_qlen", true),
    ("net.core.optmem_max", true),
    ("net.core.rps_default_mask", true),
    ("net.core.somaxconn", true),
    ("net.core.tstamp_allow_data", true),
    ("net.core.txrehash", true),
    ("net.core.xfrm_*", true),
];

/// Whether `text` matches `pattern`, where `*` stands for any run of characters.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, tail)) => {
            text.starts_with(head)
                && (head.len()..=text.len())
                    .any(|i| text.is_char_boundary(i) && glob(tail, &text[i..]))
        }
    }
}

/// `Ok` when `key` (dotted, as in the topology's `sysctls:`) is a network namespace's own;
/// else why not (`not kept per network namespace: …`) and what to do.
pub fn sysctl_key(key: &str) -> Result<(), String> {
    let own = PER_NETNS
        .iter()
        .find(|(p, _)| glob(p, key))
        .is_some_and(|(_, allowed)| *allowed);
    if own {
        return Ok(());
    }
    let why = if key.starts_with("net.") {
        "not kept per network namespace: writing it in a node would change the host's value"
    } else {
        "the host's, not a network namespace's: writing it in a node would change the host"
    };
    Err(format!(
        "{why}; set only per-namespace keys (net.ipv4.*, net.ipv6.*, \
         net.netfilter.nf_conntrack_* timeouts, net.core.somaxconn, …)"
    ))
}

/// A line of a rule text that would reach outside its node: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outside {
    /// 1-based, in the text given.
    pub line: usize,
    pub col: usize,
    pub msg: String,
}

/// Checks a text of `kind` (see the module's docs): only `sysctl` and `ip` texts can reach the
/// host this way; the rest pass.
pub fn check(kind: RuleKind, text: &str) -> Result<(), Outside> {
    match kind {
        RuleKind::Sysctl => check_sysctl_conf(text),
        RuleKind::Ip => check_ip_batch(text),
        RuleKind::Iptables | RuleKind::Ip6tables | RuleKind::Nft | RuleKind::Ipset => Ok(()),
    }
}

/// A sysctl.conf as `sysctl -p` reads it: `KEY = VALUE`, `#` or `;` comments, a leading `-`
/// to ignore a failure. Keys may be written with `/` (`net/ipv4/conf/eth0.5/rp_filter`): then
/// dots are part of names. A `*` is allowed only for the interface of `net.ipv4.conf.*.KEY`
/// (and ipv6): procps expands it, and every interface's copy is the node's own.
fn check_sysctl_conf(text: &str) -> Result<(), Outside> {
    for (i, raw) in text.lines().enumerate() {
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        let col = raw.len() - trimmed.len() + 1;
        let at = |msg: String| Outside {
            line: i + 1,
            col,
            msg,
        };
        let key = trimmed.split('=').next().unwrap_or("").trim();
        let key = key.strip_prefix('-').unwrap_or(key).trim();
        let parts: Vec<&str> = if key.contains('/') {
            key.split('/').collect()
        } else {
            key.split('.').collect()
        };
        if parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains(['\\', '\0']))
        {
            return Err(at(format!(
                "sysctl key `{key}` is not a plain name: write it as `net.ipv4.ip_forward`"
            )));
        }
        let globbed = |p: &str| p.contains(['*', '?', '[']);
        let device_glob = parts.len() == 5
            && parts[0] == "net"
            && (parts[1] == "ipv4" || parts[1] == "ipv6")
            && parts[2] == "conf";
        if let Some(k) = parts.iter().position(|p| globbed(p)) {
            if !(device_glob && k == 3 && !parts[4..].iter().any(|p| globbed(p))) {
                return Err(at(format!(
                    "sysctl key `{key}` has a wildcard outside an interface name: write each \
                     key out (a wildcard could reach the host's keys)"
                )));
            }
        }
        // Checked with the interface replaced by a name no pattern singles out.
        let dotted = if device_glob {
            format!("net.{}.conf.x.{}", parts[1], parts[4])
        } else {
            parts.join(".")
        };
        sysctl_key(&dotted).map_err(|m| at(format!("sysctl `{key}` is {m}")))?;
    }
    Ok(())
}

/// Checks every rule file, bundle and in-memory text of `plan` (a generator's output is
/// checked once it has printed it, before it is loaded): the first line that would reach
/// outside its node, as `FILE:LINE:COL`. A file that cannot be read or split is left for the
/// installer to report.
pub fn check_plan(plan: &Plan) -> Result<(), SpecError> {
    for source in plan.rules.iter().flat_map(|r| &r.sources) {
        let texts = match source {
            RuleSource::File { kind, path } => match std::fs::read_to_string(path) {
                Ok(text) => vec![(path.clone(), *kind, 1, text)],
                Err(_) => continue,
            },
            RuleSource::Bundle(path) => {
                let Ok(text) = std::fs::read_to_string(path) else {
                    continue;
                };
                let Ok(parts) = super::bundle::split_bundle(&text) else {
                    continue;
                };
                parts
                    .into_iter()
                    .map(|(kind, first, text)| (path.clone(), kind, first, text))
                    .collect()
            }
            RuleSource::Inline { kind, shown, text } => {
                vec![(shown.into(), *kind, 1, text.clone())]
            }
            RuleSource::Command { .. } | RuleSource::Install { .. } | RuleSource::Daemon { .. } => {
                continue
            }
        };
        // Shown as the user gave it: `--rules` paths are made absolute from the current folder.
        let cwd = std::env::current_dir().unwrap_or_default();
        for (path, kind, first, text) in texts {
            let shown = path.strip_prefix(&cwd).unwrap_or(&path);
            check_at(kind, &text, shown, first)?;
        }
    }
    Ok(())
}

/// [`check`] on a text that starts at line `first` of `shown`, as a [`SpecError`].
pub fn check_at(kind: RuleKind, text: &str, shown: &Path, first: usize) -> Result<(), SpecError> {
    check(kind, text).map_err(|o| SpecError::new(shown, Some((first - 1 + o.line, o.col)), o.msg))
}

/// iproute2's objects in the order `ip` tries them: a first word is the first object it
/// begins (`n` is `neighbor`, `netn` is `netns`).
const IP_OBJECTS: &[&str] = &[
    "address",
    "addrlabel",
    "maddress",
    "route",
    "rule",
    "neighbor",
    "neighbour",
    "ntable",
    "ntbl",
    "link",
    "l2tp",
    "fou",
    "ila",
    "macsec",
    "tunnel",
    "tunl",
    "tuntap",
    "tap",
    "token",
    "tcpmetrics",
    "tcp_metrics",
    "monitor",
    "xfrm",
    "mroute",
    "mrule",
    "netns",
    "netconf",
    "vrf",
    "sr",
    "nexthop",
    "mptcp",
    "ioam",
    "stats",
    "help",
];

/// An `ip -batch` file: each command's words as iproute2 splits them (`#` to the end of the
/// line is a comment, a `\` at the end joins the next line, a word may be quoted), checked
/// for anything that reaches outside the node:
/// * the objects `netns` (names under /run/netns, `exec`), `vrf` (`exec`, cgroups) and
///   `monitor` (never ends);
/// * the words `netns`, `link-netns`, `link-netnsid`, `netnsid` and their abbreviations
///   (a device moved or created in another namespace, or tied to one);
/// * BPF objects (`xdp obj FILE`, `encap bpf in obj FILE`, `pinned PATH`): read from the
///   host's files and pinned in its bpffs (`xdp off` is fine);
/// * a first word that is an option (`-n`, `-netns`, `-force`, `-batch`), which `ip` would
///   refuse anyway.
fn check_ip_batch(text: &str) -> Result<(), Outside> {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        // A command and the lines it continues on: where each line starts in it.
        let mut joined = String::new();
        let mut starts = Vec::new();
        loop {
            let l = lines[i];
            starts.push((joined.len(), i));
            i += 1;
            match l.strip_suffix('\\') {
                Some(head) if i < lines.len() => {
                    joined.push_str(head);
                    joined.push(' ');
                }
                _ => {
                    joined.push_str(l);
                    break;
                }
            }
        }
        let code = joined.split('#').next().unwrap_or("");
        let words = ip_words(code);
        // A leading `-6` (`-4`) makes the line `ip -6 …`: the harness runs it so.
        let words = match words.first() {
            Some((f, _)) if f == "-6" || f == "-4" => &words[1..],
            _ => &words[..],
        };
        let Some((first, first_col)) = words.first() else {
            continue;
        };
        let at = |col: usize, msg: String| {
            let (from, line) = starts
                .iter()
                .rev()
                .find(|(from, _)| *from <= col)
                .copied()
                .unwrap_or((0, starts[0].1));
            Outside {
                line: line + 1,
                col: col - from + 1,
                msg,
            }
        };
        if first.starts_with('-') {
            return Err(at(
                *first_col,
                format!(
                    "`{first}`: an `ip` file holds commands without options (`route add …`), \
                     each line at most led by `-6` or `-4` (`-6 rule add fwmark 2 table 102`); \
                     options like `-n`/`-netns` would run them outside the node"
                ),
            ));
        }
        let object = IP_OBJECTS
            .iter()
            .copied()
            .find(|o| o.starts_with(first.as_str()));
        if let Some(o @ ("netns" | "vrf" | "monitor")) = object {
            let what = match o {
                "netns" => "names namespaces on the host (/run/netns) and runs programs there",
                "vrf" => "runs programs and changes cgroups on the host",
                _ => "never ends",
            };
            return Err(at(
                *first_col,
                format!("`ip {o}` {what}; a rule file may only change its own node"),
            ));
        }
        for (w, col) in &words[1..] {
            let abbrev = |full: &str, min: usize| w.len() >= min && full.starts_with(w.as_str());
            let other_ns = abbrev("netns", 3)
                || w.starts_with("netns")
                || abbrev("link-netnsid", 6)
                || w.starts_with("link-netns")
                || w == "netnsid";
            if other_ns {
                return Err(at(
                    *col,
                    format!(
                        "`{w}` names another network namespace; a rule file may only change \
                         its own node"
                    ),
                ));
            }
            let bpf = ["obj", "object"].contains(&w.as_str()) || w.starts_with("pinned");
            if bpf {
                return Err(at(
                    *col,
                    format!(
                        "`{w}`: BPF programs come from the host's files and pin into its \
                         bpffs; a rule file may only change its own node"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// A command's words as iproute2's `makeargs` splits them: on blanks, a word that starts with
/// a quote running to the same quote; each with its 0-based column.
fn ip_words(line: &str) -> Vec<(String, usize)> {
    let b = line.as_bytes();
    let blank = |c: u8| matches!(c, b' ' | b'\t' | b'\r' | b'\n');
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        while k < b.len() && blank(b[k]) {
            k += 1;
        }
        if k >= b.len() {
            break;
        }
        let col = k;
        if b[k] == b'"' || b[k] == b'\'' {
            let q = b[k];
            let end = b[k + 1..]
                .iter()
                .position(|c| *c == q)
                .map_or(b.len(), |e| k + 1 + e);
            out.push((line[k + 1..end].to_string(), col));
            k = end + 1;
        } else {
            let end = b[k..]
                .iter()
                .position(|c| blank(*c))
                .map_or(b.len(), |e| k + e);
            out.push((line[k..end].to_string(), col));
            k = end;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::forward("net.ipv4.ip_forward", true)]
    #[case::conf("net.ipv4.conf.eth0.rp_filter", true)]
    #[case::conf6("net.ipv6.conf.all.forwarding", true)]
    // The IPv6 keys a dual-stack lab sets (#17): each written in a fresh namespace on 6.18,
    // the host's values unchanged; the refused ones are not in a namespace's /proc/sys at all.
    #[case::accept_dad("net.ipv6.conf.default.accept_dad", true)]
    #[case::dad_transmits("net.ipv6.conf.all.dad_transmits", true)]
    #[case::accept_ra("net.ipv6.conf.eth0.accept_ra", true)]
    #[case::router_solicitations("net.ipv6.conf.default.router_solicitations", true)]
    #[case::disable_ipv6("net.ipv6.conf.all.disable_ipv6", true)]
    #[case::icmp6_ratelimit("net.ipv6.icmp.ratelimit", true)]
    #[case::hash_policy6("net.ipv6.fib_multipath_hash_policy", true)]
    #[case::neigh6_dev("net.ipv6.neigh.eth0.base_reachable_time_ms", true)]
    #[case::neigh6_default("net.ipv6.neigh.default.gc_thresh3", false)]
    #[case::mld_qrv("net.ipv6.mld_qrv", false)]
    #[case::calipso("net.ipv6.calipso_cache_enable", false)]
    #[case::hash_policy("net.ipv4.fib_multipath_hash_policy", true)]
    #[case::neigh_dev("net.ipv4.neigh.eth0.gc_stale_time", true)]
    #[case::neigh_default("net.ipv4.neigh.default.gc_thresh3", false)]
    #[case::route_gc("net.ipv4.route.gc_timeout", false)]
    #[case::route_pmtu("net.ipv4.route.min_pmtu", true)]
    #[case::tcp_mem("net.ipv4.tcp_mem", false)]
    #[case::tcp_rmem("net.ipv4.tcp_rmem", true)]
    #[case::ct_timeout("net.netfilter.nf_conntrack_tcp_timeout_established", true)]
    #[case::ct_max("net.netfilter.nf_conntrack_max", false)]
    #[case::ct_max_old("net.nf_conntrack_max", false)]
    #[case::lwtunnel("net.netfilter.nf_hooks_lwtunnel", false)]
    #[case::somaxconn("net.core.somaxconn", true)]
    #[case::rmem_max("net.core.rmem_max", false)]
    #[case::wmem_max("net.core.wmem_max", false)]
    #[case::backlog("net.core.netdev_max_backlog", false)]
    #[case::printk("kernel.printk_ratelimit_burst", false)]
    #[case::vm("vm.swappiness", false)]
    #[case::fs("fs.file-max", false)]
    #[case::prefix_only("net.ipv4", false)]
    fn keys(#[case] key: &str, #[case] own: bool) {
        assert_eq!(sysctl_key(key).is_ok(), own, "{key}: {:?}", sysctl_key(key));
    }

    #[rstest]
    #[case::fine(
        "# comment\nnet.ipv4.ip_forward = 1\n; other\n-net.ipv4.conf.all.rp_filter=0\n",
        None
    )]
    #[case::kernel("net.ipv4.ip_forward = 1\n  kernel.printk_ratelimit_burst = 11\n", Some((2, 3)))]
    #[case::vm("vm.swappiness=1", Some((1, 1)))]
    #[case::ignored_failure("-kernel.domainname = x", Some((1, 1)))]
    #[case::slashes("net/ipv4/conf/eth0.5/rp_filter = 1", None)]
    #[case::slashes_host("net/core/rmem_max = 1", Some((1, 1)))]
    #[case::dotdot("net/ipv4/../../kernel/printk_ratelimit_burst = 1", Some((1, 1)))]
    #[case::device_glob("net.ipv4.conf.*.rp_filter = 0", None)]
    #[case::wide_glob("net.*.rmem_max = 1", Some((1, 1)))]
    #[case::key_glob("net.ipv4.conf.all.* = 0", Some((1, 1)))]
    #[case::no_value("kernel.printk_ratelimit_burst", Some((1, 1)))]
    fn sysctl_files(#[case] text: &str, #[case] want: Option<(usize, usize)>) {
        let got = check(RuleKind::Sysctl, text).err().map(|o| (o.line, o.col));
        assert_eq!(got, want, "{:?}", check(RuleKind::Sysctl, text));
    }

    #[rstest]
    #[case::routes(
        "route add default via 10.0.0.1 table 10\nrule add fwmark 1 table 10\n",
        None
    )]
    #[case::comment("# netns add evil\nroute add 10.1.0.0/16 dev eth0 # netns\n", None)]
    #[case::netns_add("route add default via 10.0.0.1\nnetns add evil\n", Some((2, 1)))]
    #[case::netns_abbrev("  netn add evil\n", Some((1, 3)))]
    #[case::netns_exec("netns exec other sh -c 'touch /x'\n", Some((1, 1)))]
    #[case::vrf_exec("vrf exec blue sh\n", Some((1, 1)))]
    #[case::monitor("mon all\n", Some((1, 1)))]
    #[case::option_n("-n evil link show\n", Some((1, 1)))]
    #[case::force_batch("-force -batch /etc/passwd\n", Some((1, 1)))]
    #[case::move_link("link set dev eth1 netns 1\n", Some((1, 19)))]
    #[case::move_abbrev("link set eth1 net 1\n", Some((1, 15)))]
    #[case::quoted("link set eth1 \"netns\" 1\n", Some((1, 15)))]
    #[case::veth_peer(
        "link add a type veth peer name b netns 1\n",
        Some((1, 34))
    )]
    #[case::link_netnsid("link add m link eth0 link-netnsid 0 type macvlan\n", Some((1, 22)))]
    #[case::continued("link set eth1 \\\n netns 1\n", Some((2, 2)))]
    #[case::xdp("link set dev eth0 xdp obj /tmp/p.o\n", Some((1, 23)))]
    #[case::xdp_pinned("link set dev eth0 xdpgeneric pinned /sys/fs/bpf/p\n", Some((1, 30)))]
    #[case::xdp_off("link set dev eth0 xdp off\n", None)]
    #[case::encap_bpf("route add 10.9.0.0/16 encap bpf in obj p.o dev eth0\n", Some((1, 36)))]
    #[case::neigh_short("n add 10.0.0.2 lladdr 02:00:00:00:00:01 dev eth0\n", None)]
    fn ip_files(#[case] text: &str, #[case] want: Option<(usize, usize)>) {
        let got = check(RuleKind::Ip, text).err().map(|o| (o.line, o.col));
        assert_eq!(got, want, "{:?}", check(RuleKind::Ip, text));
    }

    #[test]
    fn other_kinds_pass() {
        assert!(check(RuleKind::Iptables, "netns add evil\n").is_ok());
        assert!(check(RuleKind::Ip6tables, "netns add evil\n").is_ok());
        assert!(check(RuleKind::Nft, "kernel.printk = 1\n").is_ok());
    }
}
