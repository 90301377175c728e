//! Frames → compact packet records. Pure.

use std::net::Ipv4Addr;

use pnet_packet::ethernet::{EtherTypes, EthernetPacket};
use pnet_packet::ip::IpNextHeaderProtocols;
use pnet_packet::ipv4::Ipv4Packet;
use pnet_packet::tcp::TcpPacket;
use pnet_packet::udp::UdpPacket;
use pnet_packet::Packet as _;

use super::conntrack::Tuple;

/// What the judge needs of one IPv4 TCP or UDP packet seen on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub proto: u8,
    pub sport: u16,
    pub dport: u16,
    pub ip_id: u16,
    pub seq: u32,
    pub ack: u32,
    /// TCP flags (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10).
    pub flags: u8,
    pub payload_len: u16,
    /// The flow id and direction written in the payload, when there is one.
    pub tag: Option<Tag>,
    /// ICMP type and code (`proto` 1); an echo's identifier is in `sport`.
    pub icmp: Option<(u8, u8)>,
    /// For an ICMP error, the tuple of the packet it is about (the header it quotes).
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

/// Parses an Ethernet frame; `None` for anything but IPv4 TCP/UDP.
pub fn parse(frame: &[u8]) -> Option<Packet> {
    let eth = EthernetPacket::new(frame)?;
    if eth.get_ethertype() != EtherTypes::Ipv4 {
        return None;
    }
    let ip = Ipv4Packet::new(eth.payload())?;
    let hl = ip.get_header_length() as usize * 4;
    let total = (ip.get_total_length() as usize).min(eth.payload().len());
    let l4 = eth.payload().get(hl..total)?;
    let mut p = Packet {
        src: ip.get_source(),
        dst: ip.get_destination(),
        proto: ip.get_next_level_protocol().0,
        sport: 0,
        dport: 0,
        ip_id: ip.get_identification(),
        seq: 0,
        ack: 0,
        flags: 0,
        payload_len: 0,
        tag: None,
        icmp: None,
        inner: None,
    };
    let payload = match ip.get_next_level_protocol() {
        IpNextHeaderProtocols::Tcp => {
            let t = TcpPacket::new(l4)?;
            p.sport = t.get_source();
            p.dport = t.get_destination();
            p.seq = t.get_sequence();
            p.ack = t.get_acknowledgement();
            p.flags = t.get_flags();
            let off = (t.get_data_offset() as usize * 4).min(l4.len());
            &l4[off..]
        }
        IpNextHeaderProtocols::Udp => {
            let u = UdpPacket::new(l4)?;
            p.sport = u.get_source();
            p.dport = u.get_destination();
            &l4[8.min(l4.len())..]
        }
        IpNextHeaderProtocols::Icmp => {
            if l4.len() < 8 {
                return None;
            }
            let (typ, code) = (l4[0], l4[1]);
            p.icmp = Some((typ, code));
            match typ {
                // echo reply / request: identifier and sequence number
                0 | 8 => {
                    p.sport = u16::from_be_bytes([l4[4], l4[5]]);
                    p.seq = u32::from(u16::from_be_bytes([l4[6], l4[7]]));
                }
                // destination unreachable, time exceeded: the quoted header
                3 | 11 => p.inner = quoted_tuple(&l4[8..]),
                _ => {}
            }
            &l4[8..]
        }
        _ => return None,
    };
    p.payload_len = payload.len() as u16;
    p.tag = parse_tag(payload).map(|(t, _)| t);
    Some(p)
}

/// The tuple of the IPv4 header (and first 8 bytes) an ICMP error quotes.
fn quoted_tuple(b: &[u8]) -> Option<Tuple> {
    let ip = Ipv4Packet::new(b)?;
    let hl = ip.get_header_length() as usize * 4;
    let l4 = b.get(hl..hl + 4)?;
    Some(Tuple {
        proto: ip.get_next_level_protocol().0,
        src: ip.get_source(),
        dst: ip.get_destination(),
        sport: u16::from_be_bytes([l4[0], l4[1]]),
        dport: u16::from_be_bytes([l4[2], l4[3]]),
    })
}

/// A short name for a packet in messages: `SYN`, `SYN-ACK`, `ACK`, `data`, `FIN`, `RST`, `datagram`.
pub fn kind(p: &Packet) -> &'static str {
    match p.icmp {
        Some((0, _)) => return "echo reply",
        Some((8, _)) => return "echo request",
        Some((3, 3)) => return "ICMP port unreachable",
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
}
