//! Packets the lab itself lost, as the kernel counts them in each node: a veth or the CPU's
//! backlog that dropped a packet (an interface's `drop` counters in `/proc/net/dev`), a socket
//! of the harness's whose queue overflowed (`Udp: RcvbufErrors`, `TcpExt: ListenOverflows`…).
//! Rules never move these counters (netfilter and routing drops are counted elsewhere), so a
//! packet lost this way is the machine's doing, and a verdict on it would be a false alarm —
//! except on a link an event of the scenario takes down: a veth whose peer is down drops what
//! it is given, and counts it.
//!
//! The counters as data, and what grew; `watch::losses` reads them in the lab. Pure.

use std::collections::BTreeMap;

/// Every loss counter of every node: (node, counter) → value.
pub type LossCounters = BTreeMap<(String, String), u64>;

/// The counters that grew from `before` to `after`, one line each:
/// "jupiter: eth1 dropped 3 packets on receive".
pub fn grown(before: &LossCounters, after: &LossCounters) -> Vec<String> {
    after
        .iter()
        .filter_map(|(k, v)| {
            let was = before.get(k).copied().unwrap_or(0);
            (*v > was).then(|| format!("{}: {} ({})", k.0, k.1, v - was))
        })
        .collect()
}

/// The SNMP counters that tell of a socket's queue overflowing. (Not `ListenDrops`: it also
/// counts a SYN whose answer has no route, which rules can cause.)
const SOCKET_LOSSES: &[(&str, &str)] = &[
    ("Udp", "RcvbufErrors"),
    ("Udp", "SndbufErrors"),
    ("TcpExt", "ListenOverflows"),
    ("TcpExt", "TCPBacklogDrop"),
];

/// Loss counters from the texts of `/proc/net/dev`, `/proc/net/snmp` and `/proc/net/netstat`:
/// (the interface it counts for, if any; its name; its value).
pub fn parse(dev: &str, snmp: &str, netstat: &str) -> Vec<(Option<String>, String, u64)> {
    let mut out = Vec::new();
    // Interface lines: `  eth0: rx_bytes rx_packets rx_errs rx_drop … tx_bytes tx_packets
    // tx_errs tx_drop …`.
    for line in dev.lines().skip(2) {
        let Some((iface, nums)) = line.split_once(':') else {
            continue;
        };
        let n: Vec<u64> = nums
            .split_whitespace()
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        if n.len() >= 12 {
            let iface = iface.trim();
            let i = Some(iface.to_string());
            out.push((i.clone(), format!("{iface} dropped on receive"), n[3]));
            out.push((i, format!("{iface} dropped on send"), n[11]));
        }
    }
    // Pairs of lines: `Udp: Name Name …` then `Udp: value value …`.
    for text in [snmp, netstat] {
        let lines: Vec<&str> = text.lines().collect();
        for pair in lines.chunks(2) {
            let [names, values] = pair else { continue };
            let (Some((group, names)), Some((_, values))) =
                (names.split_once(':'), values.split_once(':'))
            else {
                continue;
            };
            for (name, value) in names.split_whitespace().zip(values.split_whitespace()) {
                if SOCKET_LOSSES.contains(&(group, name)) {
                    out.push((None, format!("{group} {name}"), value.parse().unwrap_or(0)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
  eth1:    1000      10    0    2    0     0          0         0     2000      20    0    5    0     0       0          0
";
    const SNMP: &str = "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors
Udp: 10 0 0 10 7 0
";
    const NETSTAT: &str = "TcpExt: SyncookiesSent ListenOverflows ListenDrops
TcpExt: 0 1 2
";

    #[test]
    fn reads_interface_drops_and_socket_overflows() {
        let got: BTreeMap<String, u64> = parse(DEV, SNMP, NETSTAT)
            .into_iter()
            .map(|(_, k, v)| (k, v))
            .collect();
        assert_eq!(got["eth1 dropped on receive"], 2);
        assert_eq!(got["eth1 dropped on send"], 5);
        assert_eq!(got["lo dropped on send"], 0);
        assert_eq!(got["Udp RcvbufErrors"], 7);
        assert_eq!(got["TcpExt ListenOverflows"], 1);
        assert!(!got.contains_key("TcpExt ListenDrops"));
        assert!(!got.contains_key("Udp InDatagrams"));
    }

    #[test]
    fn only_what_grew_is_a_loss() {
        let key = |n: &str| ("jupiter".to_string(), n.to_string());
        let before = LossCounters::from([(key("eth1 dropped on receive"), 2), (key("a"), 1)]);
        let after = LossCounters::from([(key("eth1 dropped on receive"), 5), (key("a"), 1)]);
        assert_eq!(
            grown(&before, &after),
            vec!["jupiter: eth1 dropped on receive (3)".to_string()]
        );
    }
}
