//! The router's conntrack table: NAT mappings and marks.

use std::net::IpAddr;

/// One direction of a connection: `src:sport → dst:dport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tuple {
    pub proto: u8,
    pub src: IpAddr,
    pub sport: u16,
    pub dst: IpAddr,
    pub dport: u16,
}

impl Tuple {
    pub fn reversed(self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            sport: self.dport,
            dst: self.src,
            dport: self.sport,
        }
    }
}

/// One conntrack entry: the original direction, the expected reply (NAT shows here), the mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CtEntry {
    pub orig: Tuple,
    pub reply: Tuple,
    pub mark: u32,
}

/// Parses /proc/net/nf_conntrack (or `conntrack -L`) lines, IPv4 and IPv6; skips what it does
/// not know. The kernel writes IPv6 addresses in full (`fd00:0001:0000:…:0001`), which parse
/// as any other spelling does.
///
/// `ipv4 2 tcp 6 117 TIME_WAIT src=192.168.157.3 dst=172.16.1.100 sport=40001 dport=80
///  src=172.16.1.100 dst=10.37.1.253 sport=80 dport=40001 [ASSURED] mark=1 zone=0 use=2`
pub fn parse(text: &str) -> Vec<CtEntry> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<CtEntry> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let proto: u8 = match words
        .iter()
        .position(|w| matches!(*w, "tcp" | "udp" | "icmp" | "icmpv6"))
    {
        Some(i) => words.get(i + 1)?.parse().ok()?,
        None => return None,
    };
    let mut addrs: Vec<IpAddr> = Vec::new();
    let mut ports: Vec<u16> = Vec::new();
    let mut mark = 0;
    for w in &words {
        let Some((k, v)) = w.split_once('=') else {
            continue;
        };
        match k {
            "src" | "dst" => addrs.push(v.parse().ok()?),
            "sport" | "dport" => ports.push(v.parse().ok()?),
            "mark" => mark = v.parse().ok()?,
            _ => {}
        }
    }
    if addrs.len() < 4 {
        return None;
    }
    let port = |i: usize| ports.get(i).copied().unwrap_or(0);
    Some(CtEntry {
        orig: Tuple {
            proto,
            src: addrs[0],
            dst: addrs[1],
            sport: port(0),
            dport: port(1),
        },
        reply: Tuple {
            proto,
            src: addrs[2],
            dst: addrs[3],
            sport: port(2),
            dport: port(3),
        },
        mark,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_procfs_lines() {
        let text = "ipv4     2 tcp      6 117 TIME_WAIT src=192.168.157.3 dst=172.16.1.100 sport=40001 dport=80 src=172.16.1.100 dst=10.37.1.253 sport=80 dport=40001 [ASSURED] mark=1 zone=0 use=2\n\
                    ipv4     2 udp      17 28 src=192.168.157.3 dst=172.16.1.100 sport=40009 dport=53 [UNREPLIED] src=172.16.1.100 dst=10.37.2.253 sport=53 dport=40009 mark=2 zone=0 use=2\n\
                    garbage\n";
        let e = parse(text);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].orig.sport, 40001);
        assert_eq!(e[0].reply.dst, "10.37.1.253".parse::<IpAddr>().unwrap());
        assert_eq!(e[0].mark, 1);
        assert_eq!(
            (e[1].orig.proto, e[1].reply.dst, e[1].mark),
            (17, "10.37.2.253".parse().unwrap(), 2)
        );
    }

    #[test]
    fn parses_ipv6_lines_as_the_kernel_writes_them() {
        // Read from /proc/net/nf_conntrack in a throwaway namespace (kernel 6.18): TCP and UDP
        // over IPv6, addresses written out in full.
        let text = "ipv6     10 tcp      6 119 TIME_WAIT src=fd00:0001:0000:0000:0000:0000:0000:0001 dst=fd00:0001:0000:0000:0000:0000:0000:0001 sport=42220 dport=8080 src=fd00:0001:0000:0000:0000:0000:0000:0001 dst=fd00:0001:0000:0000:0000:0000:0000:0001 sport=8080 dport=42220 [ASSURED] mark=0 zone=0 use=2\n\
                    ipv6     10 udp      17 29 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=60265 dport=40009 [UNREPLIED] src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=40009 dport=60265 mark=3 zone=0 use=2\n\
                    ipv4     2 tcp      6 117 TIME_WAIT src=192.168.157.3 dst=172.16.1.100 sport=40001 dport=80 src=172.16.1.100 dst=10.37.1.253 sport=80 dport=40001 [ASSURED] mark=1 zone=0 use=2\n";
        let e = parse(text);
        assert_eq!(e.len(), 3);
        let fd: IpAddr = "fd00:1::1".parse().unwrap();
        assert_eq!(
            e[0].orig,
            Tuple {
                proto: 6,
                src: fd,
                sport: 42220,
                dst: fd,
                dport: 8080
            }
        );
        assert_eq!(e[0].reply, e[0].orig.reversed());
        assert_eq!(
            (e[1].orig.proto, e[1].orig.src, e[1].reply.sport, e[1].mark),
            (17, "::1".parse().unwrap(), 40009, 3)
        );
        assert!(e[2].orig.src.is_ipv4());
    }

    #[test]
    fn parses_an_icmpv6_line() {
        // Read as the others were, after a raw echo request to the namespace's own address:
        // type, code and id, no ports.
        let line = "ipv6     10 icmpv6   58 29 src=fd00:0001:0000:0000:0000:0000:0000:0001 dst=fd00:0001:0000:0000:0000:0000:0000:0001 type=128 code=0 id=7 src=fd00:0001:0000:0000:0000:0000:0000:0001 dst=fd00:0001:0000:0000:0000:0000:0000:0001 type=129 code=0 id=7 mark=0 zone=0 use=2";
        let e = parse(line);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].orig.proto, 58);
        assert_eq!(e[0].orig.dst, "fd00:1::1".parse::<IpAddr>().unwrap());
    }
}
