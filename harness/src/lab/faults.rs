//! Faults at one end of a link beyond a lost carrier (#18): a silent blackhole, random loss,
//! deafness to address resolution, and healing them, made while traffic runs.
//!
//! Each kind of fault at an end is an nftables table of the node's own,
//! `netdev harness_fault_<kind>_<iface>` (`kind`: `blackhole`, `deaf`, `loss30`…), with one
//! base chain on the device's `ingress` hook (what arrives at the end) and one on its
//! `egress` hook (what leaves by it). A change is one `nft -f -` run inside the node, one
//! transaction: the wanted table is added (or woken, if an earlier fault of the same kind
//! left it dormant) and every other fault table of the end is made dormant (`flags
//! dormant`: its hooks unregistered), so a second fault on an end replaces the first at
//! once. Healing makes them all dormant. The carrier is never touched: the peer sees its
//! link up and nothing answers.
//!
//! Why dormant and not deleted: a transaction that deletes anything (a table, a chain, a
//! rule) leaves its memory to be freed after an RCU grace period, and the kernel waits for
//! that when the `nft` process closes its netlink socket (`nft_rcv_nl_event` flushes the
//! destroy work on `NETLINK_URELEASE`): on this kernel (HZ=250) every such run took 16 ms,
//! against 3 to 5 ms for adding and waking tables and making them dormant.
//!
//! * The tables are bound to the device, not to addresses or routes: whatever the node or
//!   its peer do to routes, neighbour entries or the carrier (down and up again), a fault
//!   stays until healed or replaced. Only a `flush ruleset` run in the node itself removes
//!   it (faults are meant for the ISPs' ends, where no rule set is loaded).
//! * The ingress chain has the lowest priority there is, so it runs before any netdev
//!   ingress chain of a rule set (a fault is on the wire, outside the node); the egress
//!   chain the highest, so it runs after them. Packet captures (`tcpdump`, AF_PACKET) on the
//!   faulted device still see what arrives (taps run before the ingress hook) but not what
//!   the egress chain dropped (taps run after it).
//! * Every drop rule has a counter: `nft list table netdev harness_fault_<kind>_<iface>` in
//!   the node says how many packets the fault took.
//! * This kernel hooks a netdev chain on a device that does not exist without a word (it
//!   waits for the device to appear): the interface is looked up first.
//!
//! Nothing is done outside the node's namespace: `nft` is spawned with the node's network
//! namespace entered (see [`super::spawn`]), and the tables are read over a netlink socket
//! opened on a thread inside the node.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;

use super::{spawn, Lab, LabError};
use crate::model::Change;

/// Makes `change` at `node`'s end `iface`: installs the blackhole, loss or deafness there
/// (replacing whatever fault the end had), or heals it. [`Change::Carrier`] is
/// [`Lab::set_link`]'s. Takes a few milliseconds (at most one `nft` run); the fault is in
/// force when it returns.
///
/// # Errors
/// [`LabError::Netlink`] naming the node, the interface and the change: no such node or
/// interface, a loss above 100 %, `nft` missing, what `nft` said when it refused, or the
/// tables not in the state asked for afterwards.
pub fn apply(lab: &Lab, node: &str, iface: &str, change: Change) -> Result<(), LabError> {
    let fail = |msg: String| LabError::Netlink {
        node: node.to_string(),
        what: what(iface, change),
        msg,
    };
    let Some(ns) = lab.nodes.get(node) else {
        return Err(fail(format!(
            "the lab has no node `{node}` (its nodes: {})",
            lab.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
        )));
    };
    if let Change::Carrier(on) = change {
        return lab.set_link(node, iface, on);
    }
    let wanted = wanted(iface, change).map_err(&fail)?;
    let (ns2, iface) = (ns.clone(), iface.to_string());
    // On a thread inside the node: the interface and the tables are looked up there, and
    // nft, which dies with the thread that spawned it, is waited for there.
    ns.run(move || in_node(&ns2, &iface, wanted))
        .map_err(|e| fail(format!("starting a thread in the node: {e}")))?
        .map_err(&fail)
}

/// A fault table: its name and the `nft` text that makes it.
struct Table {
    name: String,
    text: String,
}

/// [`apply`]'s work, on a thread inside the node.
fn in_node(ns: &super::Netns, iface: &str, wanted: Option<Table>) -> Result<(), String> {
    let c = std::ffi::CString::new(iface).map_err(|_| "a NUL in the interface's name")?;
    // SAFETY: a NUL-terminated name; the call only reads it.
    if unsafe { libc::if_nametoindex(c.as_ptr()) } == 0 {
        return Err(format!("the node has no interface `{iface}`"));
    }
    let listed = |when: &str| {
        netdev_tables()
            .map(|all| of_end(&all, iface))
            .map_err(|e| format!("listing the node's netdev tables {when}: {e}"))
    };
    let before = listed("before")?;
    let batch = batch(&before, wanted.as_ref());
    if batch.is_empty() {
        return Ok(());
    }
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]);
    let out = spawn::run_with_input(ns, cmd, None, None, batch.as_bytes()).map_err(|e| {
        if e.kind() == io::ErrorKind::NotFound {
            "`nft` is not on PATH: install nftables (`apt-get install -y nftables`)".to_string()
        } else {
            format!("running `nft -f -`: {e}")
        }
    })?;
    if !out.status.success() {
        return Err(format!(
            "`nft -f -` exited with {} and said:\n{}\nthe batch it was given:\n{batch}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    // What nft left, checked: a version of nft that did not wake a dormant table with
    // `add table` would leave the fault silently off.
    let after = listed("after `nft -f -`")?;
    let want = wanted.as_ref().map(|t| t.name.as_str());
    let wrong: Vec<String> = after
        .iter()
        .filter(|(name, dormant)| *dormant == (Some(name.as_str()) == want))
        .map(|(name, dormant)| {
            format!(
                "`{name}` is {}",
                if *dormant { "dormant" } else { "active" }
            )
        })
        .chain(
            want.filter(|w| !after.iter().any(|(n, _)| n == w))
                .map(|w| format!("`{w}` is missing")),
        )
        .collect();
    if !wrong.is_empty() {
        return Err(format!(
            "`nft -f -` succeeded, but then {} (the batch:\n{batch})",
            wrong.join(", ")
        ));
    }
    Ok(())
}

/// The `nft -f` batch that leaves `wanted` (or none) the one active fault table of the end
/// whose fault tables are `tables` (name, dormant): empty when there is nothing to do.
fn batch(tables: &[(String, bool)], wanted: Option<&Table>) -> String {
    let mut s = String::new();
    for (name, dormant) in tables {
        if !dormant && Some(name) != wanted.map(|t| &t.name) {
            s.push_str(&format!("add table netdev {name} {{ flags dormant; }}\n"));
        }
    }
    if let Some(t) = wanted {
        match tables.iter().find(|(n, _)| *n == t.name) {
            None => s.push_str(&t.text),
            // Woken, as nft(8) says: `add table` without the flag.
            Some((_, true)) => s.push_str(&format!("add table netdev {}\n", t.name)),
            Some((_, false)) => {}
        }
    }
    s
}

/// The name part of `iface` in its tables' names: each character outside `[A-Za-z0-9]`
/// written `_XX` (its bytes in hex), so no two interfaces share a table and the name is an
/// nft identifier (`eth-1` → `eth_2d1`).
fn encode(iface: &str) -> String {
    let mut t = String::new();
    for b in iface.bytes() {
        if b.is_ascii_alphanumeric() {
            t.push(b as char);
        } else {
            t.push_str(&format!("_{b:02x}"));
        }
    }
    t
}

const PREFIX: &str = "harness_fault_";

/// The table that holds fault `kind` (`blackhole`, `deaf`, `loss30`: no `_` in it) at
/// `iface`: `harness_fault_<kind>_<iface encoded>`.
pub fn table_name(kind: &str, iface: &str) -> String {
    format!("{PREFIX}{kind}_{}", encode(iface))
}

/// Of the netdev tables `all` (name, dormant), those holding a fault of `iface`.
fn of_end(all: &[(String, bool)], iface: &str) -> Vec<(String, bool)> {
    let end = encode(iface);
    all.iter()
        .filter(|(name, _)| {
            name.strip_prefix(PREFIX)
                .and_then(|rest| rest.split_once('_'))
                .is_some_and(|(_, e)| e == end)
        })
        .cloned()
        .collect()
}

/// What the change does, for error messages.
fn what(iface: &str, change: Change) -> String {
    match change {
        Change::Carrier(on) => format!("setting `{iface}` {}", if on { "up" } else { "down" }),
        Change::Blackhole => format!("making `{iface}` a blackhole"),
        Change::Loss(p) => format!("making `{iface}` drop {p}% of its packets each way"),
        Change::Deaf => format!("making `{iface}` deaf to ARP and neighbour solicitations"),
        Change::Heal => format!("healing `{iface}`"),
    }
}

/// The table `change` wants active at `iface` (none for [`Change::Heal`]), with the text
/// that makes it:
///
/// * Blackhole: everything dropped, both hooks.
/// * Loss(p): each packet, each way, dropped when `numgen random mod 100 < p` (this kernel
///   has no netem). ARP and neighbour discovery are packets too: they are lost as well.
/// * Deaf: ARP requests and neighbour solicitations (ICMPv6 135) arriving at the end are
///   dropped, so it never hears a question, nor learns the asker's address from one; ARP
///   replies and neighbour advertisements (136) leaving it are dropped, so it answers
///   nothing, not even unasked (gratuitous or unsolicited). Its own questions and the
///   answers to them pass: the end still resolves its peer and reaches it, which answers
///   from the neighbour entry the question made (until that entry needs confirming).
///   Everything else passes.
fn wanted(iface: &str, change: Change) -> Result<Option<Table>, String> {
    const DROP: &[&str] = &["counter drop"];
    let loss;
    let (kind, ingress, egress): (&str, &[&str], &[&str]) = match change {
        Change::Carrier(_) => return Err("a carrier change is `Lab::set_link`'s".into()),
        Change::Heal => return Ok(None),
        Change::Loss(p) if p > 100 => {
            return Err(format!(
                "a loss of {p}% is more than all: give a percentage from 1 to 99"
            ))
        }
        Change::Loss(0) => return Ok(None),
        Change::Blackhole | Change::Loss(100) => ("blackhole", DROP, DROP),
        Change::Loss(p) => {
            loss = format!("numgen random mod 100 < {p} counter drop");
            let r = &[loss.as_str()];
            return table(&format!("loss{p}"), iface, r, r).map(Some);
        }
        Change::Deaf => (
            "deaf",
            &[
                "arp operation request counter drop",
                "icmpv6 type nd-neighbor-solicit counter drop",
            ],
            &[
                "arp operation reply counter drop",
                "icmpv6 type nd-neighbor-advert counter drop",
            ],
        ),
    };
    table(kind, iface, ingress, egress).map(Some)
}

/// The fault table `kind` at `iface`, with these rules on its ingress and egress hooks.
fn table(kind: &str, iface: &str, ingress: &[&str], egress: &[&str]) -> Result<Table, String> {
    if iface.contains('"') {
        return Err(format!(
            "nft cannot name a device whose name holds a `\"` ({iface})"
        ));
    }
    let name = table_name(kind, iface);
    let rules = |rs: &[&str]| -> String { rs.iter().map(|r| format!("\t\t{r}\n")).collect() };
    let text = format!(
        "table netdev {name} {{\n\
         \tchain ingress {{\n\
         \t\ttype filter hook ingress device \"{iface}\" priority -2147483648; policy accept;\n\
         {}\t}}\n\
         \tchain egress {{\n\
         \t\ttype filter hook egress device \"{iface}\" priority 2147483647; policy accept;\n\
         {}\t}}\n\
         }}\n",
        rules(ingress),
        rules(egress),
    );
    Ok(Table { name, text })
}

/// The netdev tables of the calling thread's namespace, each with whether it is dormant,
/// read over nfnetlink (a dump of NFT_MSG_GETTABLE), as `nft list tables netdev` would but
/// without a process.
fn netdev_tables() -> io::Result<Vec<(String, bool)>> {
    const NFNL_SUBSYS_NFTABLES: u16 = 10;
    const NFT_MSG_NEWTABLE: u16 = 0;
    const NFT_MSG_GETTABLE: u16 = 1;
    const NFPROTO_NETDEV: u8 = 5;
    const NFTA_TABLE_NAME: u16 = 1;
    const NFTA_TABLE_FLAGS: u16 = 2;
    const NFT_TABLE_F_DORMANT: u32 = 1;
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_NETFILTER,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let timeout = libc::timeval {
        tv_sec: 5,
        tv_usec: 0,
    };
    // SAFETY: setsockopt with a live timeval of the size given.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&raw const timeout).cast(),
            size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let kind = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETTABLE;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16;
    let mut req = Vec::with_capacity(20);
    req.extend_from_slice(&20u32.to_ne_bytes());
    req.extend_from_slice(&kind.to_ne_bytes());
    req.extend_from_slice(&flags.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port: the kernel fills it in
    req.extend_from_slice(&[NFPROTO_NETDEV, 0, 0, 0]); // nfgenmsg: family, version, res_id
                                                       // SAFETY: send(2) of a live buffer of its length, to the kernel (port 0).
    if unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let u16_at = |b: &[u8], i: usize| u16::from_ne_bytes([b[i], b[i + 1]]);
    let u32_at = |b: &[u8], i: usize| u32::from_ne_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    let bad = |what: &str| io::Error::other(format!("a malformed netlink answer ({what})"));
    let mut tables = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: recv(2) into a live buffer of its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let b = &buf[..n as usize];
        let mut off = 0;
        while off + 16 <= b.len() {
            let len = u32_at(b, off) as usize;
            if len < 16 || off + len > b.len() {
                return Err(bad("message length"));
            }
            let (t, f) = (u16_at(b, off + 4), u16_at(b, off + 6));
            if f & libc::NLM_F_DUMP_INTR as u16 != 0 {
                // The tables changed during the dump: ask again.
                return netdev_tables();
            }
            match i32::from(t) {
                libc::NLMSG_DONE => return Ok(tables),
                libc::NLMSG_ERROR => {
                    if len < 20 {
                        return Err(bad("error"));
                    }
                    let code = u32_at(b, off + 16) as i32;
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                _ if t == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWTABLE => {
                    let (mut name, mut dormant) = (None, false);
                    // After the header (16 bytes) and the nfgenmsg (4).
                    let mut a = off + 20;
                    while a + 4 <= off + len {
                        let alen = u16_at(b, a) as usize;
                        if alen < 4 || a + alen > off + len {
                            return Err(bad("attribute length"));
                        }
                        let v = &b[a + 4..a + alen];
                        match u16_at(b, a + 2) & 0x3fff {
                            NFTA_TABLE_NAME => {
                                let s = v.split(|&c| c == 0).next().unwrap_or_default();
                                name = Some(String::from_utf8_lossy(s).into_owned());
                            }
                            NFTA_TABLE_FLAGS if v.len() >= 4 => {
                                let fl = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
                                dormant = fl & NFT_TABLE_F_DORMANT != 0;
                            }
                            _ => {}
                        }
                        a += (alen + 3) & !3;
                    }
                    tables.push((name.ok_or_else(|| bad("a table without a name"))?, dormant));
                }
                _ => {}
            }
            off += (len + 3) & !3;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_identifiers_and_never_shared() {
        assert_eq!(table_name("deaf", "cust"), "harness_fault_deaf_cust");
        assert_eq!(
            table_name("loss30", "eth-1"),
            "harness_fault_loss30_eth_2d1"
        );
        assert_ne!(table_name("deaf", "a_b"), table_name("deaf", "a-b"));
        assert_ne!(table_name("deaf", "a_2d"), table_name("deaf", "a-"));
        assert!(table_name("blackhole", "é.x")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_'));
        // An end's tables are its own: `x` is not `x_2d`'s, nor `cust` `cust2`'s.
        let all: Vec<(String, bool)> = [("deaf", "x"), ("deaf", "x-"), ("loss3", "cust2")]
            .iter()
            .map(|(k, i)| (table_name(k, i), false))
            .chain([("other".to_string(), false)])
            .collect();
        assert_eq!(of_end(&all, "x"), vec![(table_name("deaf", "x"), false)]);
        assert!(of_end(&all, "cust").is_empty());
    }

    #[test]
    fn each_change_has_its_rules() {
        let t = |c| wanted("cust", c).unwrap().unwrap();
        assert!(wanted("cust", Change::Heal).unwrap().is_none());
        let loss = t(Change::Loss(30));
        assert_eq!(loss.name, "harness_fault_loss30_cust");
        assert_eq!(
            loss.text
                .matches("numgen random mod 100 < 30 counter drop")
                .count(),
            2
        );
        assert!(loss.text.contains("hook egress device \"cust\""));
        let deaf = t(Change::Deaf);
        assert!(
            deaf.text.contains("arp operation request") && deaf.text.contains("nd-neighbor-advert")
        );
        assert!(!deaf.text.contains("numgen"));
        assert_eq!(t(Change::Blackhole).text.matches("counter drop").count(), 2);
        assert_eq!(t(Change::Loss(100)).name, t(Change::Blackhole).name);
        assert!(wanted("cust", Change::Loss(101)).is_err());
        assert!(wanted("cust", Change::Carrier(true)).is_err());
        assert!(wanted("a\"b", Change::Deaf).is_err());
    }

    #[test]
    fn a_change_adds_or_wakes_one_table_and_puts_the_others_to_sleep() {
        let deaf = wanted("cust", Change::Deaf).unwrap().unwrap();
        let bh = table_name("blackhole", "cust");
        // Nothing yet: the table is made.
        assert_eq!(batch(&[], Some(&deaf)), deaf.text);
        // A blackhole active, the deaf table dormant: one sleeps, the other wakes.
        let tables = [(bh.clone(), false), (deaf.name.clone(), true)];
        assert_eq!(
            batch(&tables, Some(&deaf)),
            format!(
                "add table netdev {bh} {{ flags dormant; }}\nadd table netdev {}\n",
                deaf.name
            )
        );
        // Already so: nothing to do. Healed already: nothing either.
        assert_eq!(batch(&[(deaf.name.clone(), false)], Some(&deaf)), "");
        assert_eq!(batch(&[(bh, true)], None), "");
    }
}
