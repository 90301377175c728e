//! Faults at a link end beyond a lost carrier (#18), made on a real dual-stack Jupiter lab
//! (`topologies/jupiter-dual.yaml`) through `Lab::fault`: a blackhole drops everything both
//! ways with the carrier up, a loss drops its share each way, a deaf end answers no ARP
//! request nor neighbour solicitation while the rest passes, healing undoes each, faults on
//! two ends are independent and a second fault on an end replaces the first, and the
//! namespace the tests started in keeps its ruleset. Also: how long each change takes.
//!
//! The packets are UDP datagrams sent and read by threads of this test inside the nodes (no
//! `ping` needed). Needs labs and `nft`; where they are missing the trials are reported
//! ignored, or fail under CI (see `common::Needs`).

mod common;

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Folder;
use harness::lab::{spawn, Lab};
use harness::model::{Change, Plan};
use libtest_mimic::{Arguments, Failed};

/// A place to send from or to: a node and one of its addresses.
type At = (&'static str, &'static str);

const JUPITER1_V4: At = ("jupiter", "10.37.1.253");
const JUPITER1_V6: At = ("jupiter", "2001:db8:1::253");
const ISP1_V4: At = ("isp1", "10.37.1.254");
const ISP1_V6: At = ("isp1", "2001:db8:1::254");
const JUPITER2_V4: At = ("jupiter", "10.37.2.253");
const ISP2_V4: At = ("isp2", "10.37.2.254");

/// How long a datagram that must not arrive is waited for.
const GONE: Duration = Duration::from_millis(300);
/// How long one that must arrive may take.
const SOON: Duration = Duration::from_secs(3);

fn main() {
    let args = Arguments::from_args();
    let lab = common::Needs::lab().and(&common::Needs::tool("nft", "nftables"));
    let trials = vec![
        lab.trial(
            "faults: a blackhole at isp1:cust drops both ways, both families, carrier up; heal restores",
            blackhole,
        ),
        lab.trial(
            "faults: a 30% loss at isp1:cust drops 15%-45% of 400 datagrams each way; heal restores",
            loss,
        ),
        lab.trial(
            "faults: a deaf isp1:cust leaves the router unable to resolve its gateway, IPv4 and IPv6, while isp1 still reaches the router; heal restores",
            deaf,
        ),
        lab.trial(
            "faults: faults on two ends are independent; a second fault on an end replaces the first",
            two_ends,
        ),
        lab.trial(
            "faults: a wrong node or interface is named in the error; the host's ruleset is untouched",
            errors_and_host,
        ),
        lab.trial(
            "faults: each change takes a few milliseconds (median of 20)",
            timings,
        ),
    ];
    libtest_mimic::run(&args, trials).exit_code();
}

/// The dual-stack Jupiter lab, built and wired (trial `tag` names its scenario's folder).
fn lab(tag: &str) -> Result<(Lab, Plan, Folder), Failed> {
    let (plan, dir) = common::lab_plan("jupiter-dual", "faults", tag)?;
    let lab = Lab::create(&plan)?;
    lab.wire(&plan)?;
    Ok((lab, plan, dir))
}

fn sock_addr(ip: &str, port: u16) -> Result<SocketAddr, Failed> {
    Ok(format!("[{ip}]:{port}")
        .parse::<SocketAddr>()
        .or_else(|_| format!("{ip}:{port}").parse())?)
}

fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One datagram from `from` to an echo in `to`, waiting `wait` at each step: whether it
/// arrived, and whether the echo came back.
fn exchange(lab: &Lab, from: At, to: At, wait: Duration) -> Result<(bool, bool), Failed> {
    let (dst, src) = (sock_addr(to.1, 0)?, sock_addr(from.1, 0)?);
    let server = lab.ns(to.0).run(move || UdpSocket::bind(dst))??;
    let dst = server.local_addr()?;
    server.set_read_timeout(Some(wait))?;
    let echo = lab.ns(to.0).spawn("echo", move || -> io::Result<bool> {
        let mut buf = [0u8; 64];
        match server.recv_from(&mut buf) {
            Ok((n, peer)) => server.send_to(&buf[..n], peer).map(|_| true),
            Err(e) if timed_out(&e) => Ok(false),
            Err(e) => Err(e),
        }
    })?;
    let client = lab.ns(from.0).run(move || UdpSocket::bind(src))??;
    client.set_read_timeout(Some(wait))?;
    client.send_to(b"fault", dst)?;
    let mut buf = [0u8; 64];
    let back = match client.recv_from(&mut buf) {
        Ok((n, peer)) => peer == dst && &buf[..n] == b"fault",
        Err(e) if timed_out(&e) => false,
        Err(e) => return Err(e.into()),
    };
    let arrived = echo.join().map_err(|_| "echo thread panicked")???;
    Ok((arrived, back))
}

/// The exchanges `(from, to)`, all at once (each that fails costs its wait).
fn exchanges(lab: &Lab, pairs: &[(At, At)], wait: Duration) -> Result<Vec<(bool, bool)>, Failed> {
    std::thread::scope(|s| {
        let hs: Vec<_> = pairs
            .iter()
            .map(|&(f, t)| s.spawn(move || exchange(lab, f, t, wait).map_err(|e| format!("{e:?}"))))
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| Failed::from("exchange panicked"))?
                    .map_err(Failed::from)
            })
            .collect()
    })
}

fn show(at: At) -> String {
    format!("{}:{}", at.0, at.1)
}

/// Each of `pairs` goes through, both ways (datagram and echo), within [`SOON`].
fn all_through(lab: &Lab, pairs: &[(At, At)], when: &str) -> Result<(), Failed> {
    for (&(f, t), r) in pairs.iter().zip(exchanges(lab, pairs, SOON)?) {
        if r != (true, true) {
            return Err(format!(
                "{when}: {} → {} should go through and come back, and (arrived, echoed) = {r:?}",
                show(f),
                show(t)
            )
            .into());
        }
    }
    Ok(())
}

/// None of `pairs`' datagrams arrives within [`GONE`].
fn none_arrives(lab: &Lab, pairs: &[(At, At)], when: &str) -> Result<(), Failed> {
    for (&(f, t), r) in pairs.iter().zip(exchanges(lab, pairs, GONE)?) {
        if r.0 {
            return Err(format!(
                "{when}: a datagram {} → {} arrived; the fault should have dropped it",
                show(f),
                show(t)
            )
            .into());
        }
    }
    Ok(())
}

/// `n` datagrams from `from` to `to`, paced (the receiver's buffer never fills): how many
/// arrived.
fn stream(lab: &Lab, from: At, to: At, n: usize) -> Result<usize, Failed> {
    let (dst, src) = (sock_addr(to.1, 0)?, sock_addr(from.1, 0)?);
    let server = lab.ns(to.0).run(move || UdpSocket::bind(dst))??;
    let dst = server.local_addr()?;
    server.set_read_timeout(Some(GONE))?;
    let counter = lab.ns(to.0).spawn("count", move || -> io::Result<usize> {
        let (mut buf, mut got) = ([0u8; 64], 0);
        loop {
            match server.recv_from(&mut buf) {
                Ok(_) => got += 1,
                Err(e) if timed_out(&e) => return Ok(got),
                Err(e) => return Err(e),
            }
        }
    })?;
    let client = lab.ns(from.0).run(move || UdpSocket::bind(src))??;
    for i in 0..n {
        client.send_to(&(i as u32).to_be_bytes(), dst)?;
        if i % 20 == 19 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    Ok(counter.join().map_err(|_| "counter thread panicked")???)
}

/// Runs `args` of `program` inside `node`: its stdout, or an error with what it said.
fn run_in(lab: &Lab, node: &str, program: &str, args: &[&str]) -> Result<String, Failed> {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = spawn::run_with_input(lab.ns(node), cmd, None, None, b"")?;
    if !out.status.success() {
        return Err(format!(
            "{node}: `{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Both ends of `node:iface` operationally up right now.
fn carrier_up(lab: &Lab, node: &str, iface: &str) -> Result<(), Failed> {
    lab.wait_oper(node, iface, true, Instant::now())
        .map_err(|e| format!("the fault took the carrier: {e}").into())
}

fn blackhole() -> Result<(), Failed> {
    let (lab, _plan, _dir) = lab("blackhole")?;
    let both_ways = [
        (JUPITER1_V4, ISP1_V4),
        (JUPITER1_V6, ISP1_V6),
        (ISP1_V4, JUPITER1_V4),
        (ISP1_V6, JUPITER1_V6),
    ];
    all_through(&lab, &both_ways, "before the fault")?;
    lab.fault("isp1", "cust", Change::Blackhole)?;
    // Arriving at isp1:cust (jupiter → isp1) and leaving by it (isp1 → jupiter).
    none_arrives(&lab, &both_ways, "blackhole at isp1:cust")?;
    carrier_up(&lab, "jupiter", "eth1")?;
    carrier_up(&lab, "isp1", "cust")?;
    // The fault is the device's: the faulted end's carrier set down and up again leaves it
    // in force. (IPv4 only after that: a device set down loses its IPv6 addresses, as
    // `keep_addr_on_down` is 0, and up does not give them back.)
    lab.set_link("isp1", "cust", false)?;
    lab.set_link("isp1", "cust", true)?;
    let patience = Instant::now() + Duration::from_secs(10);
    lab.wait_oper("isp1", "cust", true, patience)?;
    lab.wait_oper("jupiter", "eth1", true, patience)?;
    none_arrives(
        &lab,
        &[both_ways[0], both_ways[2]],
        "blackhole at isp1:cust, after it went down and up",
    )?;
    lab.fault("isp1", "cust", Change::Heal)?;
    all_through(&lab, &[both_ways[0], both_ways[2]], "healed")?;
    Ok(())
}

fn loss() -> Result<(), Failed> {
    let (lab, _plan, _dir) = lab("loss")?;
    let streams = [
        (JUPITER1_V4, ISP1_V4),
        (ISP1_V4, JUPITER1_V4),
        (JUPITER1_V6, ISP1_V6),
        (ISP1_V6, JUPITER1_V6),
    ];
    // Neighbours resolved on both sides before the loss (it would take ARP and ND too).
    all_through(&lab, &streams, "before the fault")?;
    lab.fault("isp1", "cust", Change::Loss(30))?;
    const N: usize = 400;
    let lab_ref = &lab;
    let got: Vec<usize> = std::thread::scope(|s| {
        let hs: Vec<_> = streams
            .iter()
            .map(|&(f, t)| s.spawn(move || stream(lab_ref, f, t, N).map_err(|e| format!("{e:?}"))))
            .collect();
        hs.into_iter()
            .map(|h| h.join().map_err(|_| "stream panicked".to_string())?)
            .collect::<Result<_, String>>()
    })?;
    for (&(f, t), got) in streams.iter().zip(&got) {
        let lost = N - got;
        // Binomial(400, 0.3): 120 ± 9.2; 60..=180 is beyond six and a half sigmas.
        if !(N * 15 / 100..=N * 45 / 100).contains(&lost) {
            return Err(format!(
                "loss 30% at isp1:cust: {} → {}: {lost} of {N} datagrams lost, not 15%-45%",
                show(f),
                show(t)
            )
            .into());
        }
        eprintln!("loss 30%: {} → {}: {lost}/{N} lost", show(f), show(t));
    }
    lab.fault("isp1", "cust", Change::Heal)?;
    for &(f, t) in &streams[..2] {
        let got = stream(&lab, f, t, 100)?;
        if got != 100 {
            return Err(format!(
                "healed: {} → {}: {got} of 100 datagrams arrived",
                show(f),
                show(t)
            )
            .into());
        }
    }
    Ok(())
}

/// The router's neighbour entries on eth1 and isp1's on cust, both families, forgotten.
fn flush_neighbours(lab: &Lab, nodes: &[(&str, &str)]) -> Result<(), Failed> {
    for (node, iface) in nodes {
        for family in ["-4", "-6"] {
            run_in(lab, node, "ip", &[family, "neigh", "flush", "dev", iface])?;
        }
    }
    Ok(())
}

fn deaf() -> Result<(), Failed> {
    let (lab, _plan, _dir) = lab("deaf")?;
    let to_gateway = [(JUPITER1_V4, ISP1_V4), (JUPITER1_V6, ISP1_V6)];
    let to_router = [(ISP1_V4, JUPITER1_V4), (ISP1_V6, JUPITER1_V6)];
    all_through(&lab, &to_gateway, "before the fault")?;
    lab.fault("isp1", "cust", Change::Deaf)?;
    flush_neighbours(&lab, &[("jupiter", "eth1"), ("isp1", "cust")])?;
    // The router asks for its gateway's address: nobody answers, nothing is sent.
    none_arrives(
        &lab,
        &to_gateway,
        "deaf isp1:cust, jupiter's neighbours flushed",
    )?;
    let neigh = run_in(&lab, "jupiter", "ip", &["neigh", "show", "dev", "eth1"])?;
    for gw in [ISP1_V4.1, ISP1_V6.1] {
        let line = neigh.lines().find(|l| l.starts_with(&format!("{gw} ")));
        if line.is_some_and(|l| !l.contains("INCOMPLETE") && !l.contains("FAILED")) {
            return Err(format!(
                "deaf isp1:cust: jupiter resolved its gateway {gw} anyway:\n{neigh}"
            )
            .into());
        }
    }
    carrier_up(&lab, "jupiter", "eth1")?;
    // isp1 asks for the router's address (its question and the answer pass), and the router
    // answers from the entry isp1's question left it.
    all_through(&lab, &to_router, "deaf isp1:cust, from isp1 to the router")?;
    lab.fault("isp1", "cust", Change::Heal)?;
    flush_neighbours(&lab, &[("jupiter", "eth1")])?;
    all_through(&lab, &to_gateway, "healed, jupiter's neighbours flushed")?;
    Ok(())
}

/// The fault tables in `node`'s ruleset that are not dormant (healing leaves them dormant).
fn active_fault_tables(lab: &Lab, node: &str) -> Result<Vec<String>, Failed> {
    let mut active = Vec::new();
    for line in run_in(lab, node, "nft", &["list", "tables"])?.lines() {
        let Some(name) = line.strip_prefix("table netdev harness_fault_") else {
            continue;
        };
        let name = format!("harness_fault_{name}");
        let text = run_in(lab, node, "nft", &["list", "table", "netdev", &name])?;
        if !text.lines().any(|l| l.trim() == "flags dormant") {
            active.push(name);
        }
    }
    Ok(active)
}

fn two_ends() -> Result<(), Failed> {
    let (lab, _plan, _dir) = lab("two")?;
    let (wan1, wan2) = ((JUPITER1_V4, ISP1_V4), (JUPITER2_V4, ISP2_V4));
    all_through(&lab, &[wan1, wan2], "before the faults")?;
    lab.fault("isp1", "cust", Change::Blackhole)?;
    lab.fault("isp2", "cust", Change::Blackhole)?;
    none_arrives(&lab, &[wan1, wan2], "blackholes at isp1:cust and isp2:cust")?;
    lab.fault("isp1", "cust", Change::Heal)?;
    all_through(&lab, &[wan1], "isp1:cust healed")?;
    none_arrives(
        &lab,
        &[wan2],
        "isp1:cust healed, isp2:cust still a blackhole",
    )?;
    // Deaf replaces the blackhole: isp2 reaches the router again (a blackhole would drop it).
    lab.fault("isp2", "cust", Change::Deaf)?;
    all_through(&lab, &[(ISP2_V4, JUPITER2_V4)], "isp2:cust deaf instead")?;
    let active = active_fault_tables(&lab, "isp2")?;
    if active != ["harness_fault_deaf_cust"] {
        return Err(
            format!("isp2 should have the deaf table active, alone, and has {active:?}").into(),
        );
    }
    lab.fault("isp2", "cust", Change::Heal)?;
    lab.fault("isp2", "cust", Change::Heal)?; // healing a healed end is no error
    all_through(&lab, &[wan1, wan2], "both healed")?;
    // A blackhole again at isp2:cust: its table, dormant since the deaf one replaced it, wakes.
    lab.fault("isp2", "cust", Change::Blackhole)?;
    none_arrives(&lab, &[wan2], "isp2:cust a blackhole again")?;
    lab.fault("isp2", "cust", Change::Heal)?;
    all_through(&lab, &[wan2], "isp2:cust healed again")?;
    for node in ["isp1", "isp2", "jupiter"] {
        let left = active_fault_tables(&lab, node)?;
        if !left.is_empty() {
            return Err(format!("{node} still has {left:?} active after healing").into());
        }
    }
    Ok(())
}

/// `nft list ruleset` where the tests started, or why it cannot be read (in a user
/// namespace of our own, the host's netfilter is not ours to read).
fn host_ruleset() -> Result<String, String> {
    let out = Command::new("nft")
        .args(["list", "ruleset"])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn errors_and_host() -> Result<(), Failed> {
    let before = host_ruleset();
    let (lab, _plan, _dir) = lab("errors")?;
    for change in [
        Change::Blackhole,
        Change::Loss(30),
        Change::Deaf,
        Change::Heal,
    ] {
        lab.fault("isp1", "cust", change)?;
        lab.fault("jupiter", "eth1", change)?;
    }
    let cases: [(&str, &str, Change, &[&str]); 4] = [
        (
            "isp1",
            "cusp",
            Change::Blackhole,
            &["isp1", "cusp", "no interface", "blackhole"],
        ),
        (
            "isp9",
            "cust",
            Change::Deaf,
            &["isp9", "no node", "jupiter", "deaf"],
        ),
        (
            "isp1",
            "cust",
            Change::Loss(120),
            &["isp1", "cust", "120%", "1 to 99"],
        ),
        (
            "isp1",
            "cu\"st",
            Change::Heal,
            &["isp1", "cu\"st", "healing"],
        ),
    ];
    for (node, iface, change, says) in cases {
        match lab.fault(node, iface, change) {
            Ok(()) => return Err(format!("{change:?} at {node}:{iface} was accepted").into()),
            Err(e) => {
                let msg = e.to_string();
                if let Some(w) = says.iter().find(|w| !msg.contains(**w)) {
                    return Err(format!(
                        "{change:?} at {node}:{iface}: the error does not say `{w}`:\n{msg}"
                    )
                    .into());
                }
            }
        }
    }
    drop(lab);
    match (before, host_ruleset()) {
        (Ok(b), Ok(a)) if a != b => {
            Err(format!("the host's ruleset changed:\nbefore:\n{b}\nafter:\n{a}").into())
        }
        (Ok(_), Ok(_)) => Ok(()),
        (b, a) => {
            eprintln!("the host's ruleset cannot be read here, not compared: {b:?} {a:?}");
            Ok(())
        }
    }
}

fn timings() -> Result<(), Failed> {
    let (lab, _plan, _dir) = lab("timings")?;
    let changes = [
        Change::Blackhole,
        Change::Loss(30),
        Change::Deaf,
        Change::Heal,
    ];
    // Round after round, each change replaces the one before; the first round makes the
    // tables, the others wake them.
    let mut took: Vec<Vec<Duration>> = vec![Vec::new(); changes.len()];
    for _ in 0..21 {
        for (i, &change) in changes.iter().enumerate() {
            let t = Instant::now();
            lab.fault("isp1", "cust", change)?;
            took[i].push(t.elapsed());
        }
    }
    let mut report = Vec::new();
    for (change, mut took) in changes.iter().zip(took) {
        let first = took.remove(0);
        took.sort();
        let median = took[10];
        report.push(format!(
            "{change:?} {median:.1?} (max {:.1?}, first {first:.1?})",
            took[19]
        ));
        // Loose: a loaded CI machine must not fail it; a fault taking this long would.
        if median > Duration::from_millis(500) {
            return Err(format!("{change:?} took {median:?} (median of 20)").into());
        }
    }
    eprintln!("fault timings, median of 20: {}", report.join(", "));
    Ok(())
}
