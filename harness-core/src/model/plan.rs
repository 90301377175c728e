//! The validated model: pure data, no I/O. Everything the lab, the traffic and the judge
//! need, with every name resolved and every address parsed.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::error::RulesArgError;

/// A whole scenario: the lab, the rules to install, the flows to drive, what to expect.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The scenario's name: its file stem (`dual-isp`).
    pub name: String,
    pub file: PathBuf,
    pub description: Option<String>,
    pub topology: Topology,
    pub rules: Vec<NodeRules>,
    pub flows: Vec<FlowSpec>,
    pub expectations: Vec<Expectation>,
    pub expected_failure: Option<ExpectedFailure>,
    /// Link state changes between traffic groups.
    pub events: Vec<Event>,
}

/// What an event does to one end of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The end's carrier set down (`false`) or up (`true`): `down: LINK`, `up: LINK`.
    Carrier(bool),
    /// A silent failure: everything arriving at the end and everything leaving by it is
    /// dropped there, its carrier up (`blackhole: LINK`).
    Blackhole,
    /// This share of the packets (a percentage, 1 to 99) dropped at the end, each way, at
    /// random (`loss: LINK`, `percent: N`).
    Loss(u8),
    /// The end stops answering ARP requests and IPv6 neighbour solicitations; everything
    /// else passes (`deaf: LINK`).
    Deaf,
    /// The end's blackhole, loss or deafness undone (`heal: LINK`).
    Heal,
}

/// When an event happens.
#[derive(Debug, Clone, PartialEq)]
pub enum When {
    /// Once every earlier flow is done, before this traffic group starts.
    Before(String),
    /// This long after the group's first flow started.
    At(String, Duration),
    /// Once this many of the group's flows have started.
    AfterFlows(String, u32),
}

impl When {
    /// The traffic group it is tied to.
    pub fn group(&self) -> &str {
        match self {
            When::Before(g) | When::At(g, _) | When::AfterFlows(g, _) => g,
        }
    }
}

/// A change to one end of a link, between traffic groups or during one.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub name: String,
    pub when: When,
    pub change: Change,
    pub link: String,
    pub node: String,
    pub iface: String,
    /// The other end, which must see a carrier change before traffic goes on.
    pub peer_node: String,
    pub peer_iface: String,
}

/// What became of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Fate {
    /// Every round trip answered.
    Survives,
    /// Reset (the client's connection was refused or reset).
    Reset,
    /// Hung until its client gave up.
    Dies,
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Fate::Survives => "survives",
            Fate::Reset => "reset",
            Fate::Dies => "dies",
        })
    }
}

/// Which of an expectation's flows it judges, by when they ran against an event's time.
#[derive(Debug, Clone, PartialEq)]
pub enum Started {
    /// Started at least this long after the event.
    After(String, Duration),
    /// Started before the event.
    Before(String),
    /// Started at least this long after the first event, and before the second.
    Between(String, Duration, String),
    /// Running when the event happened: started before it, ended after it.
    Spanning(String),
}

impl fmt::Display for Started {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Started::After(e, d) if d.is_zero() => write!(f, "started after {e}"),
            Started::After(e, d) => {
                write!(f, "started {} or more after {e}", crate::model::human(*d))
            }
            Started::Before(e) => write!(f, "started before {e}"),
            Started::Between(a, d, b) if d.is_zero() => {
                write!(f, "started after {a} and before {b}")
            }
            Started::Between(a, d, b) => write!(
                f,
                "started {} or more after {a} and before {b}",
                crate::model::human(*d)
            ),
            Started::Spanning(e) => write!(f, "running when {e} happened"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Topology {
    pub name: String,
    pub file: PathBuf,
    pub nodes: Vec<Node>,
    pub links: Vec<Link>,
    pub router: Router,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// `net.ipv4.ip_forward` style keys, in file order.
    pub sysctls: Vec<(String, String)>,
    pub routes: Vec<Route>,
    /// Policy rules, as `ip rule add` takes them.
    pub rules: Vec<PolicyRule>,
}

/// What a policy rule does with a packet it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleAction {
    Table(u32),
    Blackhole,
    Prohibit,
    Unreachable,
}

/// An address family: `ip -4 …` or `ip -6 …`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

/// `[-4|-6] [pref N] [not] [from P] [to P] [iif IF] [oif IF] [fwmark N[/M]] (lookup N | blackhole | …)`
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyRule {
    /// `-6` or an IPv6 `from`/`to` makes an `ip -6 rule`; else IPv4.
    pub family: IpFamily,
    pub pref: Option<u32>,
    pub not: bool,
    /// Of the rule's family, as `to`.
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub fwmark: Option<(u32, Option<u32>)>,
    pub action: RuleAction,
    pub text: String,
}

/// One end of a veth link: `jupiter:eth1 10.37.1.253/24 2001:db8:1::253/64`.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    pub node: String,
    pub iface: String,
    /// IPv4 and IPv6 addresses with their prefix lengths, as written.
    pub addrs: Vec<IpNet>,
    pub mac: [u8; 6],
}

impl End {
    /// The end's IPv4 addresses, in order.
    pub fn v4(&self) -> impl Iterator<Item = Ipv4Net> + '_ {
        self.addrs.iter().filter_map(|a| match a {
            IpNet::V4(n) => Some(*n),
            IpNet::V6(_) => None,
        })
    }
    /// The end's IPv6 addresses, in order.
    pub fn v6(&self) -> impl Iterator<Item = Ipv6Net> + '_ {
        self.addrs.iter().filter_map(|a| match a {
            IpNet::V6(n) => Some(*n),
            IpNet::V4(_) => None,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub name: String,
    pub a: End,
    pub b: End,
    /// Both ends' MTU, when not the default 1500.
    pub mtu: Option<u32>,
}

/// A route, as `ip route add` takes it: `[-4|-6] DST [via GW] [dev IF] [table N] [metric N]`.
/// Its family is `dst`'s (`via` is of the same family).
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub dst: IpNet,
    /// IPv6 source-specific routing: the route is for packets from this prefix only.
    pub from: Option<IpNet>,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub table: Option<u32>,
    pub metric: Option<u32>,
    /// The line as written, for messages.
    pub text: String,
}

/// The router under test and its uplinks: the links whose choice the harness judges.
#[derive(Debug, Clone, PartialEq)]
pub struct Router {
    pub node: String,
    pub uplinks: Vec<String>,
    /// Each uplink's share for a weighted balancer (default 1), told to rule generators.
    pub weights: Vec<(String, u32)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `iptables-restore FILE`
    Iptables,
    /// `ip6tables-restore FILE`: the same text, for IPv6
    Ip6tables,
    /// `nft -f FILE`
    Nft,
    /// `ip -batch FILE`
    Ip,
    /// `ipset restore -file FILE`
    Ipset,
    /// `sysctl -p FILE` (a sysctl.conf: `net.ipv4.fib_multipath_hash_policy = 3`)
    Sysctl,
}

impl RuleKind {
    pub fn from_name(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.name() == s)
    }

    /// The key that names it in YAML and in `### KIND` headers.
    pub fn name(self) -> &'static str {
        match self {
            RuleKind::Iptables => "iptables",
            RuleKind::Ip6tables => "ip6tables",
            RuleKind::Nft => "nft",
            RuleKind::Ip => "ip",
            RuleKind::Ipset => "ipset",
            RuleKind::Sysctl => "sysctl",
        }
    }

    pub const ALL: [RuleKind; 6] = [
        RuleKind::Iptables,
        RuleKind::Ip6tables,
        RuleKind::Nft,
        RuleKind::Ip,
        RuleKind::Ipset,
        RuleKind::Sysctl,
    ];

    pub fn tool(self) -> &'static str {
        match self {
            RuleKind::Iptables => "iptables-restore",
            RuleKind::Ip6tables => "ip6tables-restore",
            RuleKind::Nft => "nft",
            RuleKind::Ip => "ip",
            RuleKind::Ipset => "ipset",
            RuleKind::Sysctl => "sysctl",
        }
    }
    pub fn package(self) -> &'static str {
        match self {
            RuleKind::Iptables | RuleKind::Ip6tables => "iptables",
            RuleKind::Nft => "nftables",
            RuleKind::Ip => "iproute2",
            RuleKind::Ipset => "ipset",
            RuleKind::Sysctl => "procps",
        }
    }
}

/// Where one part of a node's rule set comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleSource {
    /// A rule file as the router would load it.
    File { kind: RuleKind, path: PathBuf },
    /// A file holding one or more sections, each headed `### iptables` (or nft, ip, ipset,
    /// sysctl); without a header, the kind is told from the first line.
    Bundle(PathBuf),
    /// A generator: a shell command run inside the node, given the topology's facts as JSON;
    /// what it prints is loaded, as a bundle or as `kind`.
    Command {
        line: String,
        cwd: PathBuf,
        kind: Option<RuleKind>,
    },
    /// An installer: a shell command run inside the node like a generator, which loads the
    /// rules itself (iptables-restore, nft, ip, ipset, sysctl); what it loaded is then read
    /// back from the node (see `install::snapshot` in the harness crate).
    Install { line: String, cwd: PathBuf },
    /// A daemon (a monitor, as mwan3track is): a shell command started inside the node once
    /// all of the node's rule sources are loaded and the lab is wired, given the facts as a
    /// generator is, and not waited for: it runs through the traffic, in a process group
    /// (and PID namespace) of its own, and is stopped when the run ends. It loads nothing:
    /// what it changes in the node is its own doing, judged by the traffic.
    Daemon { line: String, cwd: PathBuf },
    /// Rules held in memory (a mutant of a rule file), shown as `shown` in messages.
    Inline {
        kind: RuleKind,
        shown: String,
        text: String,
    },
}

impl RuleSource {
    /// `scenarios/dual-isp/jupiter.iptables`, or `generator `./gen``, for messages.
    pub fn describe(&self) -> String {
        match self {
            RuleSource::File { path, .. } | RuleSource::Bundle(path) => path.display().to_string(),
            RuleSource::Command { line, .. } => format!("generator `{line}`"),
            RuleSource::Install { line, .. } => format!("installer `{line}`"),
            RuleSource::Daemon { line, .. } => format!("daemon `{line}`"),
            RuleSource::Inline { shown, .. } => shown.clone(),
        }
    }

    /// `NODE=SPEC` from the command line: an executable file or a command line is a generator;
    /// another regular file is a bundle, whose section headers are checked here. Relative
    /// paths and commands start from `cwd`. Refused before anything is built: a directory, a
    /// FIFO or a device; a bundle with an unknown `### KIND` header; and a name that looks
    /// like a file (it has a `/`, or ends in `.txt`, `.rules`, `.sh`, …) but does not exist —
    /// a typo, not a command to run.
    pub fn parse_override(
        text: &str,
        cwd: &std::path::Path,
    ) -> Result<(String, RuleSource), RulesArgError> {
        use std::os::unix::fs::PermissionsExt;
        let arg = || text.to_string();
        let (node, spec) = text
            .split_once('=')
            .filter(|(n, s)| !n.is_empty() && !s.trim().is_empty())
            .ok_or_else(|| RulesArgError::Shape { arg: arg() })?;
        let command = || RuleSource::Command {
            line: spec.to_string(),
            cwd: cwd.to_path_buf(),
            kind: None,
        };
        if let Some(line) = spec.trim_start().strip_prefix(INSTALL_PREFIX) {
            let line = line.trim();
            if let Some(msg) = installer_problem(line, cwd) {
                return Err(RulesArgError::Installer { arg: arg(), msg });
            }
            return Ok((
                node.to_string(),
                RuleSource::Install {
                    line: line.to_string(),
                    cwd: cwd.to_path_buf(),
                },
            ));
        }
        if let Some(line) = spec.trim_start().strip_prefix(DAEMON_PREFIX) {
            let line = line.trim();
            if let Some(msg) = daemon_problem(line, cwd) {
                return Err(RulesArgError::Installer { arg: arg(), msg });
            }
            return Ok((
                node.to_string(),
                RuleSource::Daemon {
                    line: line.to_string(),
                    cwd: cwd.to_path_buf(),
                },
            ));
        }
        let path = cwd.join(spec);
        match std::fs::metadata(&path) {
            Ok(m) => {
                if let Some(what) = super::limits::kind_of(&m.file_type()) {
                    return Err(RulesArgError::NotAFile {
                        arg: arg(),
                        spec: spec.to_string(),
                        what,
                    });
                }
                if m.permissions().mode() & 0o111 != 0 {
                    return Ok((node.to_string(), command()));
                }
                let body =
                    super::limits::read_regular(&path, MAX_BUNDLE_BYTES).map_err(|error| {
                        RulesArgError::Unreadable {
                            arg: arg(),
                            spec: spec.to_string(),
                            error,
                        }
                    })?;
                super::bundle::split_bundle(&body).map_err(|m| {
                    let at = m
                        .strip_prefix("line ")
                        .and_then(|r| r.split_once(": "))
                        .and_then(|(n, m)| Some((n.parse::<usize>().ok()?, m)));
                    match at {
                        Some((line, m)) => RulesArgError::BundleLine {
                            arg: arg(),
                            spec: spec.to_string(),
                            line,
                            msg: m.to_string(),
                        },
                        None => RulesArgError::Bundle {
                            arg: arg(),
                            spec: spec.to_string(),
                            msg: m,
                        },
                    }
                })?;
                Ok((node.to_string(), RuleSource::Bundle(path)))
            }
            Err(_) => {
                // A command line runs through `sh`; a first word that names a file that is
                // not there is a typo, as is a single word that looks like a file name.
                let first = spec.split_whitespace().next().unwrap_or(spec);
                let single = !spec.trim().contains(char::is_whitespace);
                let file_like = first.contains('/')
                    || (single && RULE_FILE_ENDINGS.iter().any(|e| first.ends_with(e)));
                // `instal:./load`: a kind of rule source misspelt, not a command.
                if let Some((prefix, _)) = first.split_once(':') {
                    if !prefix.is_empty()
                        && prefix.chars().all(|c| c.is_ascii_lowercase())
                        && !cwd.join(first).exists()
                        && find_in_path(first).is_none()
                    {
                        return Err(RulesArgError::UnknownPrefix {
                            arg: arg(),
                            prefix: prefix.to_string(),
                        });
                    }
                }
                if file_like && !cwd.join(first).exists() {
                    return Err(RulesArgError::NoSuchFile {
                        arg: arg(),
                        spec: spec.to_string(),
                        first: first.to_string(),
                        cwd: (!first.starts_with('/')).then(|| cwd.to_path_buf()),
                        env_hint: !first.contains('/'),
                    });
                }
                if !single_command_exists(first) {
                    return Err(RulesArgError::NoSuchCommand {
                        arg: arg(),
                        first: first.to_string(),
                        cwd: cwd.to_path_buf(),
                    });
                }
                Ok((node.to_string(), command()))
            }
        }
    }
}

/// `--rules NODE=install:COMMAND`: the command is an installer.
pub const INSTALL_PREFIX: &str = "install:";

/// `--rules NODE=daemon:COMMAND`: the command is a daemon, run beside the rules.
pub const DAEMON_PREFIX: &str = "daemon:";

/// Why an installer's command line cannot run, if it cannot: it is empty, or its first word
/// names a file that is not there (relative to `cwd`) or not executable, or a command that is
/// not in PATH.
pub fn installer_problem(line: &str, cwd: &std::path::Path) -> Option<String> {
    program_problem(("installer", "install", "./load-rules"), line, cwd)
}

/// Why a daemon's command line cannot run, if it cannot: as [`installer_problem`].
pub fn daemon_problem(line: &str, cwd: &std::path::Path) -> Option<String> {
    program_problem(("daemon", "daemon", "./monitor"), line, cwd)
}

/// Why a program's command line cannot run; `(what, key, example)` word the messages:
/// (`installer`, `install`, `./load-rules`).
fn program_problem(
    (what, key, example): (&str, &str, &str),
    line: &str,
    cwd: &std::path::Path,
) -> Option<String> {
    let Some(first) = line.split_whitespace().next() else {
        return Some(format!(
            "the {what}'s command is empty: write `{key}: COMMAND`, e.g. `{key}: {example}`"
        ));
    };
    if first.contains('/') {
        let path = cwd.join(first);
        let looked = if first.starts_with('/') {
            String::new()
        } else {
            format!(" (looked in `{}`)", cwd.display())
        };
        let is = if what == "installer" {
            "name the program that loads the rules"
        } else {
            "name the program to run"
        };
        return match path.metadata() {
            Err(_) => Some(format!(
                "{what} `{first}` does not exist{looked}; check the spelling"
            )),
            Ok(m) if !m.is_file() => Some(format!(
                "{what} `{first}` is not a regular file{looked}; {is}"
            )),
            Ok(_) if !executable(&path) => Some(format!(
                "{what} `{first}` is not executable{looked}: `chmod +x {first}`, or write `{key}: sh {first}`"
            )),
            Ok(_) => None,
        };
    }
    (!single_command_exists(first)).then(|| {
        format!(
            "{what} `{first}` is neither a command in PATH nor a file (looked in `{}`); check the spelling, or give its path (`./{first}`)",
            cwd.display()
        )
    })
}

/// Whether a command line's first word can run: a shell builtin or keyword, anything `sh`
/// would not look up (`VAR=x`, `(`, a path), or an executable in PATH (or /usr/sbin, /sbin,
/// which the harness adds when it runs as an ordinary user).
fn single_command_exists(first: &str) -> bool {
    const SH: &[&str] = &[
        ".", ":", "[", "alias", "break", "case", "cd", "command", "continue", "echo", "eval",
        "exec", "exit", "export", "false", "for", "getopts", "if", "kill", "local", "printf",
        "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap", "true",
        "type", "ulimit", "umask", "unalias", "unset", "until", "wait", "while",
    ];
    let plain = first
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if !plain || first.is_empty() || SH.contains(&first) {
        return true;
    }
    find_in_path(first).is_some()
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| executable(&Path::new(d).join(first)))
}

/// Where `tool` is in PATH (the usual one when PATH is not set): an executable file.
pub fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| executable(p))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The largest bundle file `--rules` reads.
pub const MAX_BUNDLE_BYTES: u64 = 64 << 20;

/// Names that are rule files, not commands: `--rules jupiter=rulse.txt` is a typo.
pub const RULE_FILE_ENDINGS: &[&str] = &[
    ".txt",
    ".iptables",
    ".ip6tables",
    ".nft",
    ".ip",
    ".ipset",
    ".sysctl",
    ".rules",
    ".bundle",
    ".conf",
    ".sh",
    ".py",
    ".yaml",
    ".yml",
];

/// The rule set of one node, loaded in order.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRules {
    pub node: String,
    /// Routing table names the rule files use (`rt_link1 = 251`), private to the lab.
    pub tables: Vec<(String, u32)>,
    pub sources: Vec<RuleSource>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
    /// Crafted ICMP packets (`craft:`).
    Icmp,
}

impl Proto {
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Icmp => 1,
        }
    }
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        })
    }
}

/// One connection (TCP) or exchange (UDP), with the id written into its payload.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSpec {
    pub id: u32,
    pub group: String,
    pub proto: Proto,
    pub client_node: String,
    /// The client's address and fixed port; the unspecified address (`0.0.0.0`, `::`) lets
    /// the kernel choose. All three addresses of a flow are of one family.
    pub client: SocketAddr,
    pub server_node: String,
    /// Where the server listens.
    pub server: SocketAddr,
    /// Where the client connects: the server's address, or one the router forwards to it.
    pub dial: SocketAddr,
    pub round_trips: u32,
    pub timeout: Duration,
    /// UDP: once done and closed, the client gets a late datagram from the server, which its
    /// kernel answers with ICMP port unreachable: a RELATED packet of the flow.
    pub related_probe: bool,
    /// TCP: bytes of padding after each request's tag (0: none), to send segments larger than
    /// a link's MTU.
    pub size: u32,
    /// A pause between round trips (zero: none).
    pub interval: Duration,
    /// Start the next flow of the group this long after this one (its group's `pace:`).
    pub pace: Option<Duration>,
    /// For a crafted packet: where it is injected. `client` is then its source address and
    /// ICMP id, `dial` its destination.
    pub craft: Option<Craft>,
}

/// A packet the harness builds and injects on a link, from one of its ends.
#[derive(Debug, Clone, PartialEq)]
pub struct Craft {
    pub kind: CraftKind,
    pub link: String,
    /// The node whose end sends it.
    pub from: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CraftKind {
    /// An ICMP echo reply no request went out for: INVALID in conntrack.
    EchoReply,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Check {
    /// Every packet of the flow, both ways, crossed this uplink and no other; `None`: no
    /// uplink at all (traffic that stays on the router's LAN side).
    Via(Option<String>),
    /// The n-th selected flow left via `seq[n % len]`.
    Sequence(Vec<String>),
    /// The server saw this source address (or one in this prefix), by the uplink the flow
    /// left on.
    Source(BTreeMap<String, Within>),
    /// The router's conntrack mark, by the uplink the flow left on.
    Mark(BTreeMap<String, u32>),
    /// Every packet of the flow, both ways, crossed one and the same uplink.
    OneUplink,
    /// Every round trip got its answer (or, with `false`, not).
    Completes(bool),
    /// The router sent the flow's packets out on this uplink and no other; `None`: on none.
    LeavesVia(Option<String>),
    /// The flows split between uplinks by these weights, within the binomial bound for their
    /// number (uplinks in the order written).
    Split(Vec<(String, u32)>),
    /// `split` with `per: client`: each client address counted once, by the uplink its first
    /// selected flow left on, within the binomial bound for the number of clients.
    SplitPerClient(Vec<(String, u32)>),
    /// Every selected flow of one client (its source address on the LAN) left on one uplink.
    Sticky,
    /// What became of each selected connection.
    Fate(Fate),
}

impl Check {
    pub fn key(&self) -> &'static str {
        match self {
            Check::Via(_) => "via",
            Check::Sequence(_) => "sequence",
            Check::Source(_) => "source",
            Check::Mark(_) => "mark",
            Check::OneUplink => "one_uplink",
            Check::Completes(_) => "completes",
            Check::Split(_) | Check::SplitPerClient(_) => "split",
            Check::Sticky => "sticky",
            Check::Fate(_) => "fate",
            Check::LeavesVia(_) => "leaves_via",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn map<V: fmt::Display>(m: &BTreeMap<String, V>) -> String {
            m.iter()
                .map(|(k, v)| format!("{k} → {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        match self {
            Check::Via(Some(l)) => write!(f, "via {l}"),
            Check::Via(None) => write!(f, "via no uplink"),
            Check::Sequence(s) => write!(f, "sequence {}, …", s.join(", ")),
            Check::Source(m) => write!(f, "source seen {}", map(m)),
            Check::Mark(m) => write!(f, "conntrack mark {}", map(m)),
            Check::OneUplink => write!(f, "every packet on one uplink"),
            Check::Completes(true) => write!(f, "completes"),
            Check::Completes(false) => write!(f, "does not complete"),
            Check::LeavesVia(Some(l)) => write!(f, "the router sends it out via {l}"),
            Check::LeavesVia(None) => write!(f, "the router sends it out on no uplink"),
            Check::Split(w) => write!(
                f,
                "split {} (binomial bound, false-failure rate ≤ 1e-6)",
                w.iter()
                    .map(|(l, n)| format!("{l} {n}"))
                    .collect::<Vec<_>>()
                    .join(" : ")
            ),
            Check::SplitPerClient(w) => write!(
                f,
                "split {} per client, by each client's first uplink (binomial bound, false-failure rate ≤ 1e-6)",
                w.iter()
                    .map(|(l, n)| format!("{l} {n}"))
                    .collect::<Vec<_>>()
                    .join(" : ")
            ),
            Check::Sticky => write!(f, "each client's flows on one uplink (sticky)"),
            Check::Fate(x) => write!(f, "the connection {x}"),
        }
    }
}

/// A source address a `source:` expectation wants: one address, or any in a prefix (what
/// NETMAP and NPTv6 give many clients). Written and shown as the address alone, or the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Within(pub IpNet);

impl Within {
    pub fn contains(&self, a: IpAddr) -> bool {
        self.0.contains(&a)
    }
    /// Whether some address is in both.
    pub fn meets(&self, other: &Within) -> bool {
        self.0.contains(&other.0) || other.0.contains(&self.0)
    }
}

impl From<IpAddr> for Within {
    fn from(a: IpAddr) -> Within {
        Within(IpNet::from(a))
    }
}

impl std::str::FromStr for Within {
    type Err = ();
    fn from_str(s: &str) -> Result<Within, ()> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(a.into());
        }
        let n: IpNet = s.parse().map_err(|_| ())?;
        // Host bits set (`2001:db8:1::5/48`) are a slip: the prefix is meant, said as such.
        (n.trunc() == n).then_some(n).map(Within).ok_or(())
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "one in {}", self.0)
        }
    }
}

impl serde::Serialize for Within {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            s.collect_str(&self.0.addr())
        } else {
            s.collect_str(&self.0)
        }
    }
}

impl schemars::JsonSchema for Within {
    fn inline_schema() -> bool {
        true
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Within".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "an address, or a prefix (any address in it)",
            "type": "string",
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub name: String,
    /// The selector as written (`web`, `all`, `[1, 3]`).
    pub selector: String,
    /// Flow ids it applies to, in flow order.
    pub flows: Vec<u32>,
    pub check: Check,
    /// Of those flows, only the ones that ran so against an event (known after the run).
    pub started: Option<Started>,
}

/// One expectation a broken twin must break; `flows: None` means "some flows".
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Break {
    pub expectation: String,
    pub flows: Option<Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct ExpectedFailure {
    pub reason: String,
    pub breaks: Vec<Break>,
}

impl Topology {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }
    pub fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }
    /// Every link end on `node`, in link order.
    pub fn ends_of<'a>(&'a self, node: &'a str) -> impl Iterator<Item = &'a End> + 'a {
        self.links
            .iter()
            .flat_map(|l| [&l.a, &l.b])
            .filter(move |e| e.node == node)
    }
    /// The node's first IPv4 address: the one its IPv4 flows use.
    pub fn primary_addr(&self, node: &str) -> Option<Ipv4Addr> {
        self.ends_of(node)
            .flat_map(End::v4)
            .map(|a| a.addr())
            .next()
    }
    /// The node's first IPv6 address: the one its IPv6 flows will use.
    pub fn primary_addr6(&self, node: &str) -> Option<Ipv6Addr> {
        self.ends_of(node)
            .flat_map(End::v6)
            .map(|a| a.addr())
            .next()
    }
    /// Whether any end of `node` has an IPv6 address: the lab turns IPv6 on there only.
    pub fn uses_ipv6(&self, node: &str) -> bool {
        self.ends_of(node).any(|e| e.v6().next().is_some())
    }
}

impl Plan {
    /// Replaces `node`'s rule set with `sources` (from `--rules`), keeping its table names
    /// and adding those its bundles' `### rt_tables` give.
    ///
    /// # Errors
    /// [`RulesArgError::NoSuchNode`] when the topology has no node `node`;
    /// [`RulesArgError::TableClash`] when a bundle names a table the node names otherwise.
    pub fn override_rules(
        &mut self,
        node: &str,
        sources: Vec<RuleSource>,
    ) -> Result<(), RulesArgError> {
        if self.topology.node(node).is_none() {
            return Err(RulesArgError::NoSuchNode {
                file: self.file.clone(),
                node: node.to_string(),
                have: self.topology.nodes.iter().map(|n| n.name.clone()).collect(),
            });
        }
        let have: Vec<(String, u32)> = self
            .rules
            .iter()
            .find(|r| r.node == node)
            .map(|r| r.tables.clone())
            .unwrap_or_default();
        let tables = self.check_bundle_tables(node, have, &sources)?;
        match self.rules.iter_mut().find(|r| r.node == node) {
            Some(r) => {
                r.sources = sources;
                r.tables = tables;
            }
            None => self.rules.push(NodeRules {
                node: node.to_string(),
                tables,
                sources,
            }),
        }
        Ok(())
    }

    /// Checks that the `### rt_tables` of the bundles among `sources` agree with the
    /// node's own table names (`have`, the scenario's `tables:`) and with each other: the
    /// node's table names with theirs (so that a kept lab's shells know them too). A bundle
    /// that cannot be read or split is left for the installer to report.
    fn check_bundle_tables(
        &self,
        node: &str,
        mut have: Vec<(String, u32)>,
        sources: &[RuleSource],
    ) -> Result<Vec<(String, u32)>, RulesArgError> {
        let mut by = "the scenario's `tables:`";
        for source in sources {
            let RuleSource::Bundle(path) = source else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let Ok(bundle) = super::bundle::parse_bundle(&text) else {
                continue;
            };
            let added = super::bundle::merge_tables(&mut have, &bundle.tables, by).map_err(
                |(line, msg)| {
                    let cwd = std::env::current_dir().unwrap_or_default();
                    RulesArgError::TableClash {
                        bundle: path
                            .strip_prefix(&cwd)
                            .unwrap_or(path)
                            .display()
                            .to_string(),
                        line,
                        msg,
                        node: node.to_string(),
                        scenario: self.file.clone(),
                    }
                },
            )?;
            if added {
                by = "the scenario's `tables:` or an earlier `### rt_tables`";
            }
        }
        Ok(have)
    }

    /// Makes the plan drive `total` flows, scaling every traffic group in proportion and
    /// renumbering the flows; expectations keep their groups. Used by `harness bench`.
    pub fn with_flow_count(&self, total: usize) -> Plan {
        let mut groups: Vec<(String, Vec<&FlowSpec>)> = Vec::new();
        for f in &self.flows {
            match groups.iter_mut().find(|(g, _)| *g == f.group) {
                Some((_, v)) => v.push(f),
                None => groups.push((f.group.clone(), vec![f])),
            }
        }
        let have = self.flows.len().max(1);
        let mut flows = Vec::with_capacity(total);
        for (i, (_, fs)) in groups.iter().enumerate() {
            let n = if i + 1 == groups.len() {
                total.saturating_sub(flows.len())
            } else {
                (fs.len() * total).div_ceil(have)
            };
            for k in 0..n {
                let mut f = fs[k % fs.len()].clone();
                f.id = flows.len() as u32 + 1;
                f.client.set_port(client_port(f.id));
                let round = port_round(f.id);
                f.server.set_port(f.server.port().saturating_add(round));
                f.dial.set_port(f.dial.port().saturating_add(round));
                flows.push(f);
            }
        }
        let mut plan = self.clone();
        for e in &mut plan.expectations {
            let old: Vec<&FlowSpec> = self
                .flows
                .iter()
                .filter(|f| e.flows.contains(&f.id))
                .collect();
            e.flows = flows
                .iter()
                .filter(|f| old.iter().any(|o| o.group == f.group))
                .map(|f| f.id)
                .collect();
        }
        plan.flows = flows;
        plan.expected_failure = None;
        plan
    }
}

/// Flows per round of client ports: flows 1–25000 use ports 40001–65000.
pub const PORTS_PER_ROUND: u32 = 25000;

/// The client port of flow `id`: fixed, so runs are comparable and snapshots stable. Past
/// 25000 flows (only `harness bench` goes there) the ports come round again; see
/// [`port_round`].
pub fn client_port(id: u32) -> u16 {
    (40000 + id.saturating_sub(1) % PORTS_PER_ROUND + 1) as u16
}

/// Which round of client ports flow `id` is in (0 for the first 25000 flows). A flow of round
/// r goes to its server port + r, so that every flow keeps a tuple of its own.
pub fn port_round(id: u32) -> u16 {
    (id.saturating_sub(1) / PORTS_PER_ROUND) as u16
}

#[cfg(test)]
mod tests {
    use crate::model::{load, repo_path};

    /// Ports 40001–65000 for the first 25000 flows, then again towards the next server port:
    /// every flow's tuple stays its own.
    #[test]
    fn client_ports_come_round() {
        use super::{client_port, port_round};
        assert_eq!((client_port(1), port_round(1)), (40001, 0));
        assert_eq!((client_port(25000), port_round(25000)), (65000, 0));
        assert_eq!((client_port(25001), port_round(25001)), (40001, 1));
        assert_eq!((client_port(100000), port_round(100000)), (65000, 3));
        let plan = load(&repo_path("scenarios/dual-isp.yaml"))
            .unwrap()
            .with_flow_count(60000);
        let tuples: std::collections::BTreeSet<_> =
            plan.flows.iter().map(|f| (f.client, f.dial)).collect();
        assert_eq!(tuples.len(), 60000);
        // Flow 60000 is a DNS flow (port 53) of round 2; flow 10 a web flow (port 80) of round 0.
        assert_eq!(plan.flows[59999].dial.port(), 53 + 2);
        assert_eq!(plan.flows[9].dial.port(), 80);
    }

    #[test]
    fn scaling_keeps_proportions_groups_and_fixed_ports() {
        let plan = load(&repo_path("scenarios/dual-isp.yaml")).expect("valid");
        let big = plan.with_flow_count(100);
        assert_eq!(big.flows.len(), 100);
        let web: Vec<u32> = big
            .flows
            .iter()
            .filter(|f| f.group == "web")
            .map(|f| f.id)
            .collect();
        assert_eq!(web, (1..=80).collect::<Vec<_>>());
        assert!(big
            .flows
            .iter()
            .all(|f| f.client.port() == super::client_port(f.id)));
        let alt = big
            .expectations
            .iter()
            .find(|e| e.name == "alternates")
            .expect("alternates");
        assert_eq!(alt.flows, web, "a group's expectation follows its group");
        let dns = big
            .expectations
            .iter()
            .find(|e| e.name == "udp_default")
            .expect("udp_default");
        assert_eq!(dns.flows, (81..=100).collect::<Vec<_>>());
    }
}

#[cfg(test)]
mod bundle_table_tests {
    use super::RuleSource;
    use crate::model::{load, repo_path, RulesArgError};

    /// A bundle's `### rt_tables` join the node's table names; one that clashes with the
    /// scenario's is refused with the bundle's line.
    #[test]
    fn bundle_tables_join_the_nodes_and_clashes_are_refused() {
        let plan = load(&repo_path("scenarios/dual-isp.yaml")).expect("valid");
        let d = tempfile::tempdir().expect("tempdir");
        let good = d.path().join("good.rules");
        std::fs::write(
            &good,
            "### rt_tables\n1 wan1\n251 rt_link1\n### ip\nroute flush cache\n",
        )
        .expect("write");
        let mut p = plan.clone();
        p.override_rules("jupiter", vec![RuleSource::Bundle(good)])
            .expect("taken");
        let tables = &p
            .rules
            .iter()
            .find(|r| r.node == "jupiter")
            .expect("jupiter")
            .tables;
        assert_eq!(
            tables,
            &[
                ("rt_link1".to_string(), 251),
                ("rt_link2".to_string(), 252),
                ("wan1".to_string(), 1)
            ]
        );
        let bad = d.path().join("bad.rules");
        std::fs::write(
            &bad,
            "### ip\nroute flush cache\n### rt_tables\n\n252 wan2\n",
        )
        .expect("write");
        let mut p = plan.clone();
        let e = p
            .override_rules("jupiter", vec![RuleSource::Bundle(bad)])
            .expect_err("clash");
        assert!(
            matches!(e, RulesArgError::TableClash { line: 5, .. }),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .contains(":5: table `wan2` = 252: the scenario's `tables:` names table 252 `rt_link2` already"),
            "{e}"
        );
    }
}

#[cfg(test)]
mod override_tests {
    use super::RuleSource;
    use rstest::rstest;
    use std::os::unix::fs::PermissionsExt;

    /// A folder with `rules.txt` (a bundle), `gen` (executable) and `sub/` (a folder).
    fn folder() -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(d.path().join("rules.txt"), "*filter\nCOMMIT\n").expect("write");
        std::fs::write(d.path().join("gen"), "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(d.path().join("gen"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::create_dir(d.path().join("sub")).expect("mkdir");
        d
    }

    #[rstest]
    #[case::bundle("r=rules.txt", "bundle")]
    #[case::executable("r=gen", "command")]
    #[case::executable_with_args("r=./gen --all", "command")]
    #[case::command_line("r=echo '### iptables'", "command")]
    #[case::command_from_path("r=env gen-rules.sh", "command")]
    #[case::builtin("r=printf '*filter\\nCOMMIT\\n'", "command")]
    #[case::assignment("r=X=1 sh -c 'echo $X'", "command")]
    #[case::in_path("r=sh -c 'exit 3'", "command")]
    #[case::installer("r=install:./gen --all", "installer")]
    #[case::installer_from_path("r=install: sh -c 'exit 3'", "installer")]
    fn takes(#[case] arg: &str, #[case] what: &str) {
        let d = folder();
        let (node, source) = RuleSource::parse_override(arg, d.path()).expect("taken");
        assert_eq!(node, "r");
        let got = match source {
            RuleSource::Bundle(_) => "bundle",
            RuleSource::Command { .. } => "command",
            RuleSource::Install { .. } => "installer",
            _ => "other",
        };
        assert_eq!(got, what);
    }

    #[rstest]
    #[case::typo("r=rulse.txt", "there is no file `rulse.txt`")]
    #[case::missing_path("r=./gne", "there is no file `./gne`")]
    #[case::missing_path_with_args("r=bin/gen --all", "there is no file `bin/gen`")]
    #[case::rule_file_ending("r=x.iptables", "looks like a file name")]
    #[case::directory("r=sub", "`sub` is a directory")]
    #[case::device("r=/dev/null", "`/dev/null` is a character device")]
    #[case::not_in_path("r=gen-rulez-not-installed", "neither a file (looked in")]
    #[case::not_in_path_with_args("r=gen-rulez-not-installed --all", "nor a command in PATH")]
    #[case::unknown_kind("r=instal:./gen", "`instal:` is no kind of rule source")]
    #[case::installer_missing("r=install:./gne", "installer `./gne` does not exist")]
    #[case::installer_empty("r=install: ", "the installer's command is empty")]
    #[case::no_node("=rules.txt", "write NODE=FILE or NODE=COMMAND")]
    #[case::no_spec("r= ", "write NODE=FILE or NODE=COMMAND")]
    fn refuses(#[case] arg: &str, #[case] says: &str) {
        let d = folder();
        let e = RuleSource::parse_override(arg, d.path()).expect_err("refused");
        let e = e.to_string();
        assert!(e.contains(says), "{e}");
    }

    #[test]
    fn bundle_headers_are_checked() {
        let d = folder();
        std::fs::write(
            d.path().join("b.rules"),
            "### nft\nflush ruleset\n### nfts\n",
        )
        .expect("write");
        let e = RuleSource::parse_override("r=b.rules", d.path())
            .expect_err("refused")
            .to_string();
        assert!(
            e.starts_with("b.rules:3: `### nfts` is no kind of rules"),
            "{e}"
        );
    }
}
