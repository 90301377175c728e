//! Frames → compact packet records. Pure.

use std::net::{IpAddr, Ipv6Addr};

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::{IpNextHeaderProtocol, IpNextHeaderProtocols};
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::ipv6::Ipv6Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::Packet as _;

use super::conntrack::Tuple;

/// What the judge needs of one TCP, UDP or ICMP packet (IPv4) or TCP, UDP or ICMPv6 packet
/// (IPv6) seen on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    /// The IPv4 identification field; 0 for IPv6 (which has none outside a fragment header).
    pub ip_id: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    pub payload_len: u16,
    /// The flow id and direction written in the payload, when there is one.
    pub tag: Option<Tag>,
    /// ICMP type and code (`proto` 1) or ICMPv6 type and code (`proto` 58); an echo's
    /// identifier is in `sport`.
    pub icmp: Option<(u8, u8)>,
    /// For an ICMP or ICMPv6 error, the tuple of the packet it is about (the header it quotes).
    pub inner: Option<Tuple>,
}

/// The harness's payload marker: `HXQ <flow> <k>` from the client, `HXR <flow> <k>` back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tag {
    pub flow: u32,
    pub request: bool,
}

pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const ACK: u8 = 0x10;

pub fn request_payload(flow: u32, k: u32) -> String {
    format!("HXQ {flow} {k}\n")
}

/// A request padded with `size` bytes after its tag (still one line).
pub fn padded_request(flow: u32, k: u32, size: u32) -> Vec<u8> {
    let mut b = format!("HXQ {flow} {k}").into_bytes();
    if size > 0 {
        b.push(b' ');
        b.resize(b.len() + size as usize, b'.');
    }
    b.push(b'\n');
    b
}

pub fn reply_payload(flow: u32, k: u32) -> String {
    format!("HXR {flow} {k}\n")
}

/// The payload of the k-th packet the harness crafts for flow `flow`.
pub fn crafted_payload(flow: u32, k: u32) -> String {
    format!("HXC {flow} {k}\n")
}

/// A late datagram the server sends a UDP flow's client after it closed (a RELATED probe).
pub fn late_payload(flow: u32) -> String {
    format!("HXL {flow} 0\n")
}

/// Reads `HXQ|HXC <flow> <k>` (client side) / `HXR|HXL <flow> <k>` (server side) at the start
/// of a payload.
pub fn parse_tag(payload: &[u8]) -> Option<(Tag, u32)> {
    let request = match payload.get(..4)? {
        b"HXQ " | b"HXC " => true,
        b"HXR " | b"HXL " => false,
        _ => return None,
    };
    let text = std::str::from_utf8(&payload[4..payload.len().min(32)]).ok()?;
    let mut w = text.split_ascii_whitespace();
    let flow = w.next()?.parse().ok()?;
    let k = w.next()?.parse().ok()?;
    Some((Tag { flow, request }, k))
}

/// The source MAC address of an Ethernet frame: which end of a link sent it.
pub fn source_mac(frame: &[u8]) -> Option<[u8; 6]> {
    frame.get(6..12)?.try_into().ok()
}

/// Parses an Ethernet frame; `None` for anything but TCP, UDP or ICMP over IPv4 and TCP, UDP
/// or ICMPv6 over IPv6.
///
/// IPv6 extension headers: hop-by-hop options, routing and destination options are skipped;
/// a fragment header is skipped on a first fragment (offset 0), and a later fragment (no
/// transport header in it) is refused, as is anything else (ESP, AH, no next header).
pub fn parse(frame: &[u8]) -> Option<Packet> {
    let eth = EthernetPacket::new(frame)?;
    match eth.get_ethertype() {
        EtherTypes::Ipv4 => parse_ipv4(eth.payload()),
        EtherTypes::Ipv6 => parse_ipv6(eth.payload()),
        _ => None,
    }
}

fn blank(src: IpAddr, dst: IpAddr, proto: u8, ip_id: u16) -> Packet {
    Packet {
        src,
        dst,
        proto,
        sport: 0,
        dport: 0,
        ip_id,
        seq: 0,
        ack: 0,
        flags: 0,
        payload_len: 0,
        tag: None,
        icmp: None,
        inner: None,
    }
}

/// The ICMP of one family: its protocol number, its echo types (identifier in `sport`), the
/// errors that quote the packet they are about, the error that carries an MTU (kept in `seq`),
/// and how to read a quoted packet's tuple.
struct Icmp {
    proto: u8,
    echo: [u8; 2],
    quoting: &'static [u8],
    too_big: Option<u8>,
    quoted: fn(&[u8]) -> Option<Tuple>,
}

/// ICMP: echo reply and request; destination unreachable and time exceeded quote a packet.
const ICMP4: Icmp = Icmp {
    proto: 1,
    echo: [0, 8],
    quoting: &[3, 11],
    too_big: None,
    quoted: quoted_tuple,
};

/// ICMPv6: echo request and reply; destination unreachable, packet too big (with the next
/// hop's MTU) and time exceeded quote a packet.
const ICMP6: Icmp = Icmp {
    proto: 58,
    echo: [ICMPV6_ECHO_REQUEST, ICMPV6_ECHO_REPLY],
    quoting: &[
        ICMPV6_UNREACHABLE,
        ICMPV6_PACKET_TOO_BIG,
        ICMPV6_TIME_EXCEEDED,
    ],
    too_big: Some(ICMPV6_PACKET_TOO_BIG),
    quoted: quoted_tuple_v6,
};

/// The transport part of a packet of either family: ICMP as `icmp` reads it, or TCP and UDP;
/// then the payload's length and tag.
fn layer4(mut p: Packet, l4: &[u8], icmp: &Icmp) -> Option<Packet> {
    let payload = if p.proto == icmp.proto {
        if l4.len() < 8 {
            return None;
        }
        let (typ, code) = (l4[0], l4[1]);
        p.icmp = Some((typ, code));
        if icmp.echo.contains(&typ) {
            p.sport = u16::from_be_bytes([l4[4], l4[5]]);
            p.seq = u32::from(u16::from_be_bytes([l4[6], l4[7]]));
        }
        if icmp.too_big == Some(typ) {
            p.seq = u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]);
        }
        if icmp.quoting.contains(&typ) {
            p.inner = (icmp.quoted)(&l4[8..]);
        }
        &l4[8..]
    } else {
        transport(&mut p, l4)?
    };
    p.payload_len = payload.len() as u16;
    let tagged = parse_tag(payload);
    p.tag = tagged.map(|(t, _)| t);
    // A UDP datagram has no sequence number, and over IPv6 no IP id: its round number (in
    // its tag) tells it from the flow's other datagrams of the same length, on every link.
    if let (17, Some((_, k))) = (p.proto, tagged) {
        p.seq = k;
    }
    Some(p)
}

fn parse_ipv4(b: &[u8]) -> Option<Packet> {
    let ip = Ipv4Packet::new(b)?;
    let hl = ip.get_header_length() as usize * 4;
    let total = (ip.get_total_length() as usize).min(b.len());
    let l4 = b.get(hl..total)?;
    let p = blank(
        ip.get_source().into(),
        ip.get_destination().into(),
        ip.get_next_level_protocol().0,
        ip.get_identification(),
    );
    layer4(p, l4, &ICMP4)
}

/// TCP or UDP: fills in ports (and TCP's fields), gives back the payload.
fn transport<'a>(p: &mut Packet, l4: &'a [u8]) -> Option<&'a [u8]> {
    match IpNextHeaderProtocol(p.proto) {
        IpNextHeaderProtocols::Tcp => {
            let t = TcpPacket::new(l4)?;
            p.sport = t.get_source();
            p.dport = t.get_destination();
            p.seq = t.get_sequence();
            p.ack = t.get_acknowledgement();
            p.flags = t.get_flags();
            let off = (t.get_data_offset() as usize * 4).min(l4.len());
            Some(&l4[off..])
        }
        IpNextHeaderProtocols::Udp => {
            let u = UdpPacket::new(l4)?;
            p.sport = u.get_source();
            p.dport = u.get_destination();
            Some(&l4[8.min(l4.len())..])
        }
        _ => None,
    }
}

/// ICMPv6 types that quote the packet they are about.
pub const ICMPV6_UNREACHABLE: u8 = 1;
pub const ICMPV6_PACKET_TOO_BIG: u8 = 2;
pub const ICMPV6_TIME_EXCEEDED: u8 = 3;
pub const ICMPV6_ECHO_REQUEST: u8 = 128;
pub const ICMPV6_ECHO_REPLY: u8 = 129;

/// An IPv6 packet's source, destination, transport protocol and what follows its headers
/// (extension headers skipped as [`parse`] says). `b` is the packet from its fixed header on.
fn ipv6_headers(b: &[u8]) -> Option<(Ipv6Addr, Ipv6Addr, u8, &[u8])> {
    let ip = Ipv6Packet::new(b)?;
    let plen = ip.get_payload_length() as usize;
    let rest = b.get(40..)?;
    // A jumbogram (payload length 0) or a truncated quote: what is there.
    let mut rest = if plen == 0 {
        rest
    } else {
        &rest[..plen.min(rest.len())]
    };
    let mut next = ip.get_next_header().0;
    loop {
        match next {
            // hop-by-hop, routing, destination options: length in 8-octet units, less the first
            0 | 43 | 60 => {
                let len = (usize::from(*rest.get(1)?) + 1) * 8;
                next = rest[0];
                rest = rest.get(len..)?;
            }
            // fragment: only a first fragment carries the transport header
            44 => {
                let h = rest.get(..8)?;
                if u16::from_be_bytes([h[2], h[3]]) >> 3 != 0 {
                    return None;
                }
                next = h[0];
                rest = &rest[8..];
            }
            _ => break,
        }
    }
    Some((ip.get_source(), ip.get_destination(), next, rest))
}

fn parse_ipv6(b: &[u8]) -> Option<Packet> {
    let (src, dst, proto, l4) = ipv6_headers(b)?;
    layer4(blank(src.into(), dst.into(), proto, 0), l4, &ICMP6)
}

/// The tuple of the IPv6 packet an ICMPv6 error quotes (for ICMPv6, the echo identifier is
/// the source port, as conntrack keys it).
fn quoted_tuple_v6(b: &[u8]) -> Option<Tuple> {
    let (src, dst, proto, l4) = ipv6_headers(b)?;
    let (sport, dport) = if proto == 58 {
        (u16::from_be_bytes([*l4.get(4)?, *l4.get(5)?]), 0)
    } else {
        let h = l4.get(..4)?;
        (
            u16::from_be_bytes([h[0], h[1]]),
            u16::from_be_bytes([h[2], h[3]]),
        )
    };
    Some(Tuple {
        proto,
        src: src.into(),
        dst: dst.into(),
        sport,
        dport,
    })
}

/// The tuple of the IPv4 header (and first 8 bytes) an ICMP error quotes.
fn quoted_tuple(b: &[u8]) -> Option<Tuple> {
    let ip = Ipv4Packet::new(b)?;
    let hl = ip.get_header_length() as usize * 4;
    let l4 = b.get(hl..hl + 4)?;
    Some(Tuple {
        proto: ip.get_next_level_protocol().0,
        src: ip.get_source().into(),
        dst: ip.get_destination().into(),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
    })
}

/// A short name for a packet in messages: `SYN`, `SYN-ACK`, `ACK`, `data`, `FIN`, `RST`, `datagram`.
pub fn kind(p: &Packet) -> &'static str {
    if p.proto == 58 {
        match p.icmp {
            Some((ICMPV6_ECHO_REQUEST, _)) => return "ICMPv6 echo request",
            Some((ICMPV6_ECHO_REPLY, _)) => return "ICMPv6 echo reply",
            Some((ICMPV6_UNREACHABLE, 4)) => return "ICMPv6 port unreachable",
            Some((ICMPV6_UNREACHABLE, _)) => return "ICMPv6 unreachable",
            Some((ICMPV6_PACKET_TOO_BIG, _)) => return "ICMPv6 packet too big",
            Some((ICMPV6_TIME_EXCEEDED, _)) => return "ICMPv6 time exceeded",
            _ => return "ICMPv6",
        }
    }
    match p.icmp {
        Some((0, _)) => return "echo reply",
        Some((8, _)) => return "echo request",
        Some((3, 3)) => return "ICMP port unreachable",
        // Code 4, "fragmentation needed and DF set": IPv4's Packet Too Big.
        Some((3, 4)) => return "ICMP fragmentation needed",
        Some((3, _)) => return "ICMP unreachable",
        Some(_) => return "ICMP",
        None => {}
    }
    if p.proto != 6 {
        return "datagram";
    }
    match (p.flags & (SYN | ACK | FIN | RST), p.payload_len) {
        (f, _) if f & RST != 0 => "RST",
        (f, _) if f == SYN => "SYN",
        (f, _) if f == SYN | ACK => "SYN-ACK",
        (f, _) if f & FIN != 0 => "FIN",
        (_, 0) => "ACK",
        _ => "data",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip() {
        assert_eq!(
            parse_tag(request_payload(7, 3).as_bytes()),
            Some((
                Tag {
                    flow: 7,
                    request: true
                },
                3
            ))
        );
        assert_eq!(
            parse_tag(reply_payload(12, 1).as_bytes()),
            Some((
                Tag {
                    flow: 12,
                    request: false
                },
                1
            ))
        );
        assert_eq!(parse_tag(b"GET / HTTP/1.1"), None);
    }

    #[test]
    fn an_icmp_error_names_the_tuple_it_quotes() {
        // Port unreachable from Saturn about Neptune's late datagram to 40009.
        let mut f = vec![0u8; 14];
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let mut ip = vec![
            0x45, 0, 0, 0, 0, 9, 0, 0, 64, 1, 0, 0, 192, 168, 157, 3, 172, 16, 1, 100,
        ];
        let mut icmp = vec![3, 3, 0, 0, 0, 0, 0, 0];
        let quoted_ip = [
            0x45, 0, 0, 28, 0, 1, 0, 0, 63, 17, 0, 0, 172, 16, 1, 100, 192, 168, 157, 3,
        ];
        icmp.extend_from_slice(&quoted_ip);
        icmp.extend_from_slice(&[0, 53, 0x9c, 0x49, 0, 8, 0, 0]);
        let total = (20 + icmp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&icmp);
        let p = parse(&f).expect("parses");
        assert_eq!(p.icmp, Some((3, 3)));
        assert_eq!(kind(&p), "ICMP port unreachable");
        let t = p.inner.expect("quotes a header");
        assert_eq!(
            (t.proto, t.src, t.sport, t.dst, t.dport),
            (
                17,
                "172.16.1.100".parse().unwrap(),
                53,
                "192.168.157.3".parse().unwrap(),
                40009
            )
        );
    }

    #[test]
    fn an_icmp_fragmentation_needed_is_named_as_such() {
        // A router on a 1280-byte link about a TCP segment with DF set (type 3, code 4).
        let router = "10.37.2.254".parse().unwrap();
        let to = "10.37.2.253".parse().unwrap();
        let mut p = blank(router, to, 1, 0);
        p.icmp = Some((3, 4));
        assert_eq!(kind(&p), "ICMP fragmentation needed");
        p.icmp = Some((3, 1));
        assert_eq!(kind(&p), "ICMP unreachable");
    }

    #[test]
    fn parses_a_tcp_frame() {
        // Ethernet + IPv4 (20) + TCP (20) + payload "HXQ 3 1\n"
        let payload = request_payload(3, 1);
        let mut f = vec![0u8; 14 + 20 + 20];
        f[6..12].copy_from_slice(&[2, 0x48, 0, 1, 0, 0xa]);
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        let ip = &mut f[14..34];
        ip[0] = 0x45;
        let total = (40 + payload.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&77u16.to_be_bytes());
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[192, 168, 157, 3]);
        ip[16..20].copy_from_slice(&[172, 16, 1, 100]);
        let tcp = &mut f[34..54];
        tcp[0..2].copy_from_slice(&40003u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&80u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&1000u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18;
        f.extend_from_slice(payload.as_bytes());
        let p = parse(&f).expect("parses");
        assert_eq!(
            (p.src, p.dst, p.sport, p.dport, p.ip_id),
            (
                "192.168.157.3".parse().unwrap(),
                "172.16.1.100".parse().unwrap(),
                40003,
                80,
                77
            )
        );
        assert_eq!(
            p.tag,
            Some(Tag {
                flow: 3,
                request: true
            })
        );
        assert_eq!(kind(&p), "data");
        assert_eq!(source_mac(&f), Some([2, 0x48, 0, 1, 0, 0xa]));
    }

    const CLIENT6: &str = "fd00:157::3";
    const SERVER6: &str = "2001:db8:16:1::100";

    fn v6(s: &str) -> [u8; 16] {
        s.parse::<Ipv6Addr>().unwrap().octets()
    }

    /// Ethernet + IPv6 fixed header (+ `ext` as given, its first byte the transport's number
    /// when `ext` is not empty) + `l4`.
    fn frame6(src: &str, dst: &str, next: u8, ext: &[u8], l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 14];
        f[6..12].copy_from_slice(&[2, 0x48, 0, 1, 0, 0xa]);
        f[12..14].copy_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&ipv6_header(src, dst, next, (ext.len() + l4.len()) as u16));
        f.extend_from_slice(ext);
        f.extend_from_slice(l4);
        f
    }

    fn ipv6_header(src: &str, dst: &str, next: u8, plen: u16) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&plen.to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&v6(src));
        h.extend_from_slice(&v6(dst));
        h
    }

    fn tcp(sport: u16, dport: u16, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[0..2].copy_from_slice(&sport.to_be_bytes());
        t[2..4].copy_from_slice(&dport.to_be_bytes());
        t[4..8].copy_from_slice(&seq.to_be_bytes());
        t[12] = 5 << 4;
        t[13] = flags;
        t.extend_from_slice(payload);
        t
    }

    fn udp(sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
        let mut u = Vec::new();
        u.extend_from_slice(&sport.to_be_bytes());
        u.extend_from_slice(&dport.to_be_bytes());
        u.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        u.extend_from_slice(&[0, 0]);
        u.extend_from_slice(payload);
        u
    }

    /// IPv6 has no IP id: a flow's UDP datagrams of one length are told apart by the round
    /// number in their tag, kept in `seq`.
    #[test]
    fn a_udp_datagram_s_round_is_its_seq() {
        for k in [1, 2] {
            let payload = request_payload(5, k);
            let f = frame6(
                CLIENT6,
                SERVER6,
                17,
                &[],
                &udp(40005, 53, payload.as_bytes()),
            );
            let p = parse(&f).expect("parses");
            assert_eq!((p.seq, p.ip_id, p.tag.map(|t| t.flow)), (k, 0, Some(5)));
        }
    }

    #[test]
    fn parses_an_ipv6_tcp_frame() {
        let payload = request_payload(3, 1);
        let f = frame6(
            CLIENT6,
            SERVER6,
            6,
            &[],
            &tcp(40003, 80, 1000, 0x18, payload.as_bytes()),
        );
        let p = parse(&f).expect("parses");
        assert_eq!(
            (p.src, p.dst, p.proto, p.sport, p.dport, p.seq, p.ip_id),
            (
                CLIENT6.parse().unwrap(),
                SERVER6.parse().unwrap(),
                6,
                40003,
                80,
                1000,
                0
            )
        );
        assert_eq!(p.payload_len as usize, payload.len());
        assert_eq!(
            p.tag,
            Some(Tag {
                flow: 3,
                request: true
            })
        );
        assert_eq!(kind(&p), "data");
        assert_eq!(source_mac(&f), Some([2, 0x48, 0, 1, 0, 0xa]));
    }

    #[test]
    fn parses_an_ipv6_udp_frame_and_ignores_bytes_past_its_payload_length() {
        let payload = reply_payload(9, 0);
        let mut f = frame6(
            SERVER6,
            CLIENT6,
            17,
            &[],
            &udp(53, 40009, payload.as_bytes()),
        );
        // Ethernet padding after the IPv6 packet is not payload.
        f.extend_from_slice(&[0; 6]);
        let p = parse(&f).expect("parses");
        assert_eq!((p.proto, p.sport, p.dport), (17, 53, 40009));
        assert_eq!(p.payload_len as usize, payload.len());
        assert_eq!(
            p.tag,
            Some(Tag {
                flow: 9,
                request: false
            })
        );
        assert_eq!(kind(&p), "datagram");
    }

    #[test]
    fn skips_ipv6_extension_headers_and_refuses_a_later_fragment() {
        // Hop-by-hop options (8 bytes: next header TCP, length 0, padding), then TCP.
        let hbh = [6, 0, 1, 4, 0, 0, 0, 0];
        let f = frame6(CLIENT6, SERVER6, 0, &hbh, &tcp(40003, 80, 7, SYN, &[]));
        let p = parse(&f).expect("parses past hop-by-hop options");
        assert_eq!((p.proto, p.sport, p.dport, kind(&p)), (6, 40003, 80, "SYN"));
        // A first fragment (offset 0, more fragments) carries the UDP header: parsed.
        let first = [17, 0, 0, 1, 0, 0, 0, 42];
        let f = frame6(CLIENT6, SERVER6, 44, &first, &udp(40009, 53, b"HXQ 4 0\n"));
        let p = parse(&f).expect("parses a first fragment");
        assert_eq!(
            (p.proto, p.sport, p.tag.map(|t| t.flow)),
            (17, 40009, Some(4))
        );
        // A later fragment (offset 1448 bytes = 181 units) has no transport header: refused.
        let later = [17, 0, 0x05, 0xa8, 0, 0, 0, 42];
        let f = frame6(CLIENT6, SERVER6, 44, &later, &[0; 16]);
        assert_eq!(parse(&f), None);
        // ESP: refused.
        assert_eq!(parse(&frame6(CLIENT6, SERVER6, 50, &[], &[0; 16])), None);
    }

    /// An ICMPv6 message of `typ`/`code` with `word` in bytes 4..8, quoting `quoted`.
    fn icmp6(typ: u8, code: u8, word: u32, quoted: &[u8]) -> Vec<u8> {
        let mut m = vec![typ, code, 0, 0];
        m.extend_from_slice(&word.to_be_bytes());
        m.extend_from_slice(quoted);
        m
    }

    #[test]
    fn an_icmpv6_port_unreachable_names_the_tuple_it_quotes() {
        // The server's port unreachable about the client's late datagram to 40009.
        let mut quoted = ipv6_header(SERVER6, CLIENT6, 17, 16);
        quoted.extend_from_slice(&udp(53, 40009, b"HXL 5 0\n"));
        let f = frame6(CLIENT6, SERVER6, 58, &[], &icmp6(1, 4, 0, &quoted));
        let p = parse(&f).expect("parses");
        assert_eq!((p.proto, p.icmp), (58, Some((1, 4))));
        assert_eq!(kind(&p), "ICMPv6 port unreachable");
        assert_eq!(
            p.inner,
            Some(Tuple {
                proto: 17,
                src: SERVER6.parse().unwrap(),
                sport: 53,
                dst: CLIENT6.parse().unwrap(),
                dport: 40009
            })
        );
    }

    #[test]
    fn an_icmpv6_packet_too_big_gives_the_mtu_and_the_quoted_tuple() {
        // A router on a 1280-byte uplink sends Packet Too Big about the client's full-size
        // segment; quotes are cut short (as much as fits in 1280 bytes), here after 8 bytes
        // of TCP.
        let segment = tcp(40003, 80, 1, 0x18, &[0; 1400]);
        let mut quoted = ipv6_header(CLIENT6, SERVER6, 6, segment.len() as u16);
        quoted.extend_from_slice(&segment[..8]);
        let f = frame6(
            "2001:db8:37:1::1",
            CLIENT6,
            58,
            &[],
            &icmp6(2, 0, 1280, &quoted),
        );
        let p = parse(&f).expect("parses");
        assert_eq!((p.icmp, p.seq), (Some((2, 0)), 1280));
        assert_eq!(kind(&p), "ICMPv6 packet too big");
        let t = p.inner.expect("quotes a header");
        assert_eq!(
            (t.proto, t.src, t.sport, t.dst, t.dport),
            (
                6,
                CLIENT6.parse().unwrap(),
                40003,
                SERVER6.parse().unwrap(),
                80
            )
        );
    }

    #[test]
    fn an_icmpv6_time_exceeded_quotes_past_extension_headers() {
        // Time exceeded about a datagram that carried destination options before its UDP header.
        let dst_opts = [17, 0, 1, 4, 0, 0, 0, 0];
        let mut quoted = ipv6_header(CLIENT6, SERVER6, 60, 16);
        quoted.extend_from_slice(&dst_opts);
        quoted.extend_from_slice(&udp(40011, 53, &[]));
        let f = frame6(
            "2001:db8:37:1::1",
            CLIENT6,
            58,
            &[],
            &icmp6(3, 0, 0, &quoted),
        );
        let p = parse(&f).expect("parses");
        assert_eq!(kind(&p), "ICMPv6 time exceeded");
        let t = p.inner.expect("quotes a header");
        assert_eq!((t.proto, t.sport, t.dport), (17, 40011, 53));
        // Echo request and reply: identifier in `sport`, sequence in `seq`, no quote.
        let f = frame6(CLIENT6, SERVER6, 58, &[], &icmp6(128, 0, 0x0007_0002, &[]));
        let p = parse(&f).expect("parses");
        assert_eq!(
            (p.sport, p.seq, p.inner, kind(&p)),
            (7, 2, None, "ICMPv6 echo request")
        );
    }
}
