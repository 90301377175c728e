//! Packets the harness builds with pnet and injects on a link from one of its ends: an AF_PACKET
//! socket on that end's interface, opened inside its node, sends a whole Ethernet frame.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use pnet_datalink::{Channel, Config};
use pnet_packet::icmp::{checksum as icmp_checksum, IcmpPacket, MutableIcmpPacket};
use pnet_packet::icmpv6::{checksum as icmp6_checksum, Icmpv6Packet, MutableIcmpv6Packet};
use pnet_packet::ipv4::{checksum as ip_checksum, MutableIpv4Packet};

use crate::lab::Lab;
use crate::model::{CraftKind, FlowSpec, Topology};
use crate::observe::packet::crafted_payload;
use crate::observe::ClientOutcome;

/// An Ethernet frame: IPv4 from `src` to `dst` carrying an ICMP echo reply with identifier `id`,
/// sequence `seq` and the flow's payload.
pub fn echo_reply_frame(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let icmp_len = 8 + payload.len();
    let mut f = vec![0u8; 14 + 20 + icmp_len];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    {
        let icmp = &mut f[34..];
        icmp[0] = 0; // echo reply
        icmp[4..6].copy_from_slice(&id.to_be_bytes());
        icmp[6..8].copy_from_slice(&seq.to_be_bytes());
        icmp[8..].copy_from_slice(payload);
        let sum = icmp_checksum(&IcmpPacket::new(icmp).expect("room for a header"));
        MutableIcmpPacket::new(icmp)
            .expect("room for a header")
            .set_checksum(sum);
    }
    let mut ip = MutableIpv4Packet::new(&mut f[14..]).expect("room for a header");
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
    f
}

/// An Ethernet frame: IPv6 from `src` to `dst` carrying an ICMPv6 echo reply with identifier
/// `id`, sequence `seq` and the flow's payload.
pub fn echo_reply_frame6(
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    id: u16,
    seq: u16,
    payload: &[u8],
) -> Vec<u8> {
    let icmp_len = 8 + payload.len();
    let mut f = vec![0u8; 14 + 40 + icmp_len];
    f[..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&[0x86, 0xdd]);
    {
        let ip = &mut f[14..54];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&(icmp_len as u16).to_be_bytes());
        ip[6] = 58; // ICMPv6
        ip[7] = 64;
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&dst.octets());
    }
    let icmp = &mut f[54..];
    icmp[0] = 129; // echo reply
    icmp[4..6].copy_from_slice(&id.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    icmp[8..].copy_from_slice(payload);
    let sum = icmp6_checksum(
        &Icmpv6Packet::new(icmp).expect("room for a header"),
        &src,
        &dst,
    );
    MutableIcmpv6Packet::new(icmp)
        .expect("room for a header")
        .set_checksum(sum);
    f
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
        let frame = match (c.kind, f.client.ip(), f.dial.ip()) {
            (CraftKind::EchoReply, IpAddr::V4(src), IpAddr::V4(dst)) => echo_reply_frame(
                peer.mac,
                me.mac,
                src,
                dst,
                f.client.port(),
                1,
                payload.as_bytes(),
            ),
            (CraftKind::EchoReply, IpAddr::V6(src), IpAddr::V6(dst)) => echo_reply_frame6(
                peer.mac,
                me.mac,
                src,
                dst,
                f.client.port(),
                1,
                payload.as_bytes(),
            ),
            _ => unreachable!("the model gives a crafted packet one family"),
        };
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
