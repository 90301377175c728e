//! Dual-stack labs (#17, first step): `topologies/jupiter-dual.yaml` built for real. IPv6 is
//! forwarded hop by hop with neighbour discovery doing ARP's job, addresses are usable at once
//! (no duplicate address detection), the ISPs' IPv6 anti-spoofing rules (`ip -6 rule`) drop a
//! packet from the other ISP's prefix, and IPv6 stays off in a node without an IPv6 address.
//!
//! The packets are UDP datagrams sent and read by threads of this test inside the nodes: no
//! `ping` needed. Needs labs; where they cannot be built the trials are reported ignored, or
//! fail under CI (see `common::Needs`).

mod common;

use std::io;
use std::net::{Ipv6Addr, SocketAddr, UdpSocket};
use std::time::Duration;

use common::Folder;
use harness::lab::Lab;
use harness::model::Plan;
use libtest_mimic::{Arguments, Failed};

const SATURN: &str = "2001:db8:1:157::3";
const NEPTUNE: &str = "2001:db8:16::100";
const JUPITER_WAN1: &str = "2001:db8:1::253";
const JUPITER_WAN2: &str = "2001:db8:2::253";

fn main() {
    let args = Arguments::from_args();
    let lab = common::Needs::lab();
    let trials = vec![
        lab.trial(
            "dual stack: saturn reaches neptune over IPv6 via jupiter and isp1, and back",
            forwarded,
        ),
        lab.trial(
            "dual stack: isp1's ip -6 rule drops a packet from wan2's prefix",
            anti_spoofing,
        ),
        lab.trial(
            "dual stack: IPv6 stays off in a node without an IPv6 address",
            off_without_ipv6,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code();
}

/// A scenario on `topology` (only its lab is built here), in a fresh folder of trial `tag`.
fn plan_on(topology: &str, tag: &str) -> Result<(Plan, Folder), Failed> {
    common::lab_plan(topology, "dual-stack", tag)
}

fn built(plan: &Plan) -> Result<Lab, Failed> {
    let lab = Lab::create(plan)?;
    lab.wire(plan)?;
    Ok(lab)
}

/// Packets received on `iface`, as the node's /proc/net/dev says (read from a thread inside
/// it: /proc/thread-self follows the thread's namespace).
fn rx_packets(lab: &Lab, node: &str, iface: &str) -> Result<u64, Failed> {
    let iface = iface.to_string();
    let text = lab
        .ns(node)
        .run(|| std::fs::read_to_string("/proc/thread-self/net/dev"))??;
    text.lines()
        .find_map(|l| {
            let (name, rest) = l.split_once(':')?;
            (name.trim() == iface).then(|| rest.split_whitespace().nth(1)?.parse().ok())?
        })
        .ok_or_else(|| format!("no `{iface}` in {node}'s /proc/net/dev:\n{text}").into())
}

/// A UDP echo of one datagram in `node`, on `addr` port 7: the thread's result is the
/// sender's address, or None when nothing came within `wait`.
fn echo(
    lab: &Lab,
    node: &str,
    addr: &str,
    wait: Duration,
) -> Result<std::thread::JoinHandle<io::Result<io::Result<Option<SocketAddr>>>>, Failed> {
    let sock = {
        let a: SocketAddr = format!("[{addr}]:7").parse()?;
        lab.ns(node).run(move || UdpSocket::bind(a))??
    };
    sock.set_read_timeout(Some(wait))?;
    Ok(lab.ns(node).spawn("echo", move || {
        let mut buf = [0u8; 64];
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => sock.send_to(&buf[..n], from).map(|_| Some(from)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                Ok(None)
            }
            Err(e) => Err(e),
        }
    })?)
}

/// Sends one datagram from `src` in `node` to `dst` port 7; whether the echo came back
/// within `wait`.
fn send(lab: &Lab, node: &str, src: &str, dst: &str, wait: Duration) -> Result<bool, Failed> {
    let src: SocketAddr = format!("[{src}]:0").parse()?;
    let dst: SocketAddr = format!("[{dst}]:7").parse()?;
    let sock = lab.ns(node).run(move || UdpSocket::bind(src))??;
    sock.set_read_timeout(Some(wait))?;
    sock.send_to(b"dual stack", dst)?;
    let mut buf = [0u8; 64];
    match sock.recv_from(&mut buf) {
        Ok((n, from)) => Ok(from == dst && &buf[..n] == b"dual stack"),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(e.into()),
    }
}

/// Saturn's datagram goes out through jupiter (no rules: the main table's IPv6 default, via
/// isp1), isp1 (from its customer's /48: let through) and the internet to neptune, and the
/// echo comes back: forwarding in three nodes and neighbour discovery on six links, right
/// after wiring (no address is tentative). isp2 sees none of it.
fn forwarded() -> Result<(), Failed> {
    let (plan, _dir) = plan_on("jupiter-dual", "forwarded")?;
    let lab = built(&plan)?;
    let (isp1, isp2) = (
        rx_packets(&lab, "isp1", "cust")?,
        rx_packets(&lab, "isp2", "cust")?,
    );
    let server = echo(&lab, "neptune", NEPTUNE, Duration::from_secs(5))?;
    let back = send(&lab, "saturn", SATURN, NEPTUNE, Duration::from_secs(5))?;
    let seen = server.join().map_err(|_| "echo thread panicked")???;
    let from: SocketAddr = format!("[{SATURN}]:0").parse()?;
    if seen.map(|s| s.ip()) != Some(from.ip()) {
        return Err(format!("neptune got {seen:?}, not a datagram from saturn ({SATURN})").into());
    }
    if !back {
        return Err("neptune's echo did not come back to saturn".into());
    }
    let (isp1_now, isp2_now) = (
        rx_packets(&lab, "isp1", "cust")?,
        rx_packets(&lab, "isp2", "cust")?,
    );
    if isp1_now <= isp1 {
        return Err(format!("isp1's `cust` received nothing ({isp1} → {isp1_now} packets): the datagram did not go via isp1").into());
    }
    if isp2_now != isp2 {
        return Err(format!(
            "isp2's `cust` received {} packets: IPv6 should leave via isp1 only",
            isp2_now - isp2
        )
        .into());
    }
    Ok(())
}

/// From jupiter with wan2's address as the source, out by the IPv6 default (isp1): isp1
/// receives it on `cust` and its `-6 pref 101 iif cust blackhole` drops it; neptune sees
/// nothing. The same from wan1's address gets through (the rule, not the path, drops it).
fn anti_spoofing() -> Result<(), Failed> {
    let (plan, _dir) = plan_on("jupiter-dual", "spoof")?;
    let lab = built(&plan)?;
    let before = rx_packets(&lab, "isp1", "cust")?;
    let server = echo(&lab, "neptune", NEPTUNE, Duration::from_millis(700))?;
    let back = send(
        &lab,
        "jupiter",
        JUPITER_WAN2,
        NEPTUNE,
        Duration::from_millis(700),
    )?;
    let seen = server.join().map_err(|_| "echo thread panicked")???;
    if seen.is_some() || back {
        return Err(format!("a datagram from wan2's prefix ({JUPITER_WAN2}) reached neptune via isp1 ({seen:?}): isp1's IPv6 anti-spoofing rule let it through").into());
    }
    let after = rx_packets(&lab, "isp1", "cust")?;
    if after <= before {
        return Err("the spoofed datagram never reached isp1: it died before the filter".into());
    }
    let server = echo(&lab, "neptune", NEPTUNE, Duration::from_secs(5))?;
    let back = send(
        &lab,
        "jupiter",
        JUPITER_WAN1,
        NEPTUNE,
        Duration::from_secs(5),
    )?;
    let seen = server.join().map_err(|_| "echo thread panicked")???;
    if seen.is_none() || !back {
        return Err(format!("from wan1's own address ({JUPITER_WAN1}) nothing got through (neptune saw {seen:?}, echo back: {back})").into());
    }
    Ok(())
}

/// The IPv4 Jupiter lab: IPv6 is off in every node (no `::1` even), as before #17.
fn off_without_ipv6() -> Result<(), Failed> {
    let (plan, _dir) = plan_on("jupiter", "off")?;
    let lab = built(&plan)?;
    for n in &plan.topology.nodes {
        let v = lab
            .ns(&n.name)
            .run(|| std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6"))??;
        if v.trim() != "1" {
            return Err(format!(
                "node `{}`: net.ipv6.conf.all.disable_ipv6 is {v}, not 1",
                n.name
            )
            .into());
        }
        let bound = lab
            .ns(&n.name)
            .run(|| UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)).is_ok())?;
        if bound {
            return Err(format!("node `{}` has ::1: IPv6 is on", n.name).into());
        }
    }
    Ok(())
}
