//! Packets the harness builds with pnet and injects on a link from one of its ends: an AF_PACKET
//! socket on that end's interface, opened inside its node, sends a whole Ethernet frame.

use std::io;
use std::net::IpAddr;

use pnet_datalink::{Channel, Config};
use pnet_packet::icmp::{checksum as icmp_checksum, IcmpPacket, MutableIcmpPacket};
use pnet_packet::icmpv6::{checksum as icmp6_checksum, Icmpv6Packet, MutableIcmpv6Packet};
use pnet_packet::ipv4::{checksum as ip_checksum, MutableIpv4Packet};

use crate::lab::Lab;
use crate::model::{CraftKind, FlowSpec, Topology};
use crate::observe::packet::crafted_payload;
use crate::observe::ClientOutcome;

/// An Ethernet frame from `src` to `dst` (one family: `None` when they are not) carrying an
/// echo reply, ICMP for IPv4 or ICMPv6 for IPv6, with identifier `id`, sequence `seq` and the
/// flow's payload.
pub fn echo_reply_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: IpAddr,
    dst: IpAddr,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Option<Vec<u8>> {
    // The IP header's length, the ethertype and the echo reply's ICMP type, by family.
    let (ip_len, ethertype, echo_reply) = match (src, dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => (20, [0x08, 0x00], 0),
        (IpAddr::V6(_), IpAddr::V6(_)) => (40, [0x86, 0xdd], 129),
        _ => return None,
    };
    let icmp_len = 8 + payload.len();
    let mut f = vec![0u8; 14 + ip_len + icmp_len];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&ethertype);
    let (head, icmp) = f.split_at_mut(14 + ip_len);
    icmp[0] = echo_reply;
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[8..].copy_from_slice(payload);
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let sum = icmp_checksum(&IcmpPacket::new(icmp)?);
            MutableIcmpPacket::new(icmp)?.set_checksum(sum);
            let mut ip = MutableIpv4Packet::new(&mut head[14..])?;
            ip.set_version(4);
            ip.set_header_length(5);
            ip.set_total_length((20 + icmp_len) as u16);
            ip.set_identification(id ^ seq.rotate_left(8));
            ip.set_ttl(64);
            ip.set_next_level_protocol(pnet_packet::ip::IpNextHeaderProtocols::Icmp);
            ip.set_source(src);
            ip.set_destination(dst);
            let sum = ip_checksum(&ip.to_immutable());
            ip.set_checksum(sum);
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let sum = icmp6_checksum(&Icmpv6Packet::new(icmp)?, &src, &dst);
            MutableIcmpv6Packet::new(icmp)?.set_checksum(sum);
            let ip = &mut head[14..];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
            ip[6] = 58; // ICMPv6
            ip[7] = 64;
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
        }
        _ => return None,
    }
    Some(f)
}

/// Injects every crafted flow's packet; each one "completes" once sent.
pub fn inject(
    lab: &Lab,
    topo: &Topology,
    flows: &[FlowSpec],
) -> io::Result<Vec<(u32, ClientOutcome)>> {
    let mut out = Vec::new();
    for f in flows {
        let Some(c) = &f.craft else { continue };
        let link = topo.link(&c.link).expect("validated");
        let (me, peer) = if link.a.node == c.from {
            (&link.a, &link.b)
        } else {
            (&link.b, &link.a)
        };
        let payload = crafted_payload(f.id, 1);
        let frame = match c.kind {
            CraftKind::EchoReply => echo_reply_frame(
                peer.mac,
                me.mac,
                f.client.ip(),
                f.dial.ip(),
                f.client.port(),
                1,
                payload.as_bytes(),
            ),
        }
        .ok_or_else(|| io::Error::other("a crafted packet's addresses are of two families"))?;
        let iface = me.iface.clone();
        let sent = lab.ns(&c.from).run(move || -> io::Result<()> {
            let ni = pnet_datalink::interfaces()
                .into_iter()
                .find(|i| i.name == iface)
                .ok_or_else(|| io::Error::other(format!("no interface `{iface}`")))?;
            match pnet_datalink::channel(
                &ni,
                Config {
                    promiscuous: false,
                    ..Config::default()
                },
            )? {
                Channel::Ethernet(mut tx, _) => tx
                    .send_to(&frame, None)
                    .unwrap_or_else(|| Err(io::Error::other("nothing sent"))),
                _ => Err(io::Error::other("not an Ethernet channel")),
            }
        })?;
        let outcome = match sent {
            Ok(()) => ClientOutcome {
                round_trips_done: 1,
                completed: true,
                error: None,
                reset: false,
                recovered: false,
            },
            Err(e) => ClientOutcome {
                error: Some(format!("injecting on `{}`: {e}", c.link)),
                ..Default::default()
            },
        };
        out.push((f.id, outcome));
    }
    Ok(out)
}
