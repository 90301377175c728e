//! Every packet seen on every link, stored compactly. Pure.
//!
//! A run of 100,000 TCP flows is four million sightings, most of a run's memory. Each is
//! kept in 24 bytes: its time as an offset from its chunk's start, its protocol, addresses and
//! ports as a place in its chunk's table of them (a flow's packets on a link share two), the
//! other header fields the judge reads, and the rest packed into bits. Sightings are kept in
//! chunks of one link each, appended as they come (no copy when the captures are put
//! together, no growth beyond one chunk). [`Sightings::get`] gives back a whole [`Sighting`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::packet::{Packet, Tag};
use super::Tuple;

/// One packet seen on one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighting {
    /// Index of the link in the topology.
    pub link: usize,
    /// Capture order on that link.
    pub seq: u32,
    /// Nanoseconds since the capture started (ordering across links is approximate).
    pub t_ns: u64,
    /// Whether the link's `a` end sent it (its source MAC is `a`'s).
    pub from_a: bool,
    pub pkt: Packet,
}

/// Where a sighting is kept: its chunk (upper 15 bits) and its place there (lower 16). Bit 31
/// is free for whoever indexes sightings.
pub type SightingId = u32;

const CHUNK_BITS: u32 = 16;
const CHUNK: usize = 1 << CHUNK_BITS;
const MAX_CHUNKS: usize = 1 << 15;

// bits of `Packed::bits`
const FROM_A: u8 = 1;
const TAGGED: u8 = 1 << 1;
const REQUEST: u8 = 1 << 2;
const QUOTES: u8 = 1 << 3;

/// Source, destination, source port, destination port, protocol, family. For IPv4 (family 4)
/// the addresses are themselves; for IPv6 (family 6) they are places in the chunk's `v6`, so
/// that IPv4 sightings take no more room than before IPv6 came (16 bytes either way).
type Addrs = (u32, u32, u16, u16, u8, u8);

const V4: u8 = 4;
const V6: u8 = 6;

fn tuple(&(src, dst, sport, dport, proto, family): &Addrs, v6: &[Ipv6Addr]) -> Tuple {
    let addr = |a: u32| -> IpAddr {
        if family == V6 {
            v6[a as usize].into()
        } else {
            Ipv4Addr::from(a).into()
        }
    };
    Tuple {
        proto,
        src: addr(src),
        sport,
        dst: addr(dst),
        dport,
    }
}

/// One sighting in 24 bytes. For ICMP, `ack` holds the type and code.
#[derive(Debug, Clone, Copy)]
struct Packed {
    dt_ns: u32,
    seq: u32,
    ack: u32,
    tag_flow: u32,
    /// Place of its addresses and ports in its chunk's `addrs`.
    addrs: u16,
    ip_id: u16,
    payload_len: u16,
    flags: u8,
    bits: u8,
}

/// Consecutive sightings of one link, at most [`CHUNK`] of them, spanning at most 4.29 s.
#[derive(Debug, Clone)]
struct Chunk {
    link: u16,
    /// Capture order (on its link) of the first sighting.
    first_seq: u32,
    t0_ns: u64,
    items: Vec<Packed>,
    /// The distinct addresses and ports of `items`.
    addrs: Vec<Addrs>,
    /// The tuples ICMP errors quote, by place in `items` (few: kept aside).
    quoted: Vec<(u16, Tuple)>,
    /// The distinct IPv6 addresses of `addrs` (empty while a chunk sees only IPv4).
    v6: Vec<Ipv6Addr>,
}

/// Every sighting of a run, by link in capture order.
#[derive(Debug, Clone, Default)]
pub struct Sightings {
    chunks: Vec<Chunk>,
    /// Sightings pushed so far, by link (the next one's capture order).
    next_seq: Vec<u32>,
    len: usize,
    /// The places in the last chunk's `addrs`, while it fills.
    open: rustc_hash::FxHashMap<Addrs, u16>,
    /// The places in the last chunk's `v6`, while it fills.
    open_v6: rustc_hash::FxHashMap<Ipv6Addr, u32>,
}

impl PartialEq for Sightings {
    fn eq(&self, other: &Self) -> bool {
        self.len == other.len && self.iter().map(|(_, s)| s).eq(other.iter().map(|(_, s)| s))
    }
}

impl Sightings {
    pub fn new() -> Sightings {
        Sightings::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds the next packet seen on `link`.
    pub fn push(&mut self, link: usize, t_ns: u64, from_a: bool, p: &Packet) {
        if self.next_seq.len() <= link {
            self.next_seq.resize(link + 1, 0);
        }
        let seq = self.next_seq[link];
        self.next_seq[link] += 1;
        let fits = self.chunks.last().is_some_and(|c| {
            usize::from(c.link) == link
                && c.items.len() < CHUNK
                && t_ns >= c.t0_ns
                && t_ns - c.t0_ns <= u64::from(u32::MAX)
        });
        if !fits {
            assert!(
                self.chunks.len() < MAX_CHUNKS,
                "more than {} chunks of sightings",
                MAX_CHUNKS
            );
            self.chunks.push(Chunk {
                link: u16::try_from(link).expect("fewer than 65536 links"),
                first_seq: seq,
                t0_ns: t_ns,
                items: Vec::new(),
                addrs: Vec::new(),
                quoted: Vec::new(),
                v6: Vec::new(),
            });
            self.open.clear();
            self.open_v6.clear();
        }
        let c = self.chunks.last_mut().expect("a chunk");
        let at = c.items.len() as u16;
        let mut bits = 0;
        if from_a {
            bits |= FROM_A;
        }
        if let Some(t) = p.tag {
            bits |= TAGGED;
            if t.request {
                bits |= REQUEST;
            }
        }
        if let Some(q) = p.inner {
            bits |= QUOTES;
            c.quoted.push((at, q));
        }
        let ack = match p.icmp {
            Some((typ, code)) => u32::from(typ) << 8 | u32::from(code),
            None => p.ack,
        };
        let key = match (p.src, p.dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => (s.into(), d.into(), p.sport, p.dport, p.proto, V4),
            // (A packet's two addresses are of one family; were they not, the IPv4 one would
            // be kept as its IPv4-mapped IPv6 address.)
            (s, d) => {
                let mut place = |a: IpAddr| {
                    let a = match a {
                        IpAddr::V6(a) => a,
                        IpAddr::V4(a) => a.to_ipv6_mapped(),
                    };
                    *self.open_v6.entry(a).or_insert_with(|| {
                        c.v6.push(a);
                        (c.v6.len() - 1) as u32
                    })
                };
                (place(s), place(d), p.sport, p.dport, p.proto, V6)
            }
        };
        // At most CHUNK sightings, so at most CHUNK distinct addresses: a u16 holds the place.
        let addrs = *self.open.entry(key).or_insert_with_key(|a| {
            c.addrs.push(*a);
            (c.addrs.len() - 1) as u16
        });
        c.items.push(Packed {
            dt_ns: (t_ns - c.t0_ns) as u32,
            seq: p.seq,
            ack,
            tag_flow: p.tag.map_or(0, |t| t.flow),
            addrs,
            ip_id: p.ip_id,
            payload_len: p.payload_len,
            flags: p.flags,
            bits,
        });
        self.len += 1;
    }

    /// Moves `other`'s sightings in after these (their chunks, not copies).
    pub fn append(&mut self, mut other: Sightings) {
        assert!(
            self.chunks.len() + other.chunks.len() <= MAX_CHUNKS,
            "more than {MAX_CHUNKS} chunks of sightings"
        );
        self.chunks.append(&mut other.chunks);
        // The last chunk is now `other`'s, whose places these maps do not know.
        self.open.clear();
        self.open_v6.clear();
        if self.next_seq.len() < other.next_seq.len() {
            self.next_seq.resize(other.next_seq.len(), 0);
        }
        for (mine, theirs) in self.next_seq.iter_mut().zip(&other.next_seq) {
            *mine = (*mine).max(*theirs);
        }
        self.len += other.len;
    }

    /// The sighting kept at `id`.
    pub fn get(&self, id: SightingId) -> Sighting {
        let id = id & !(1 << 31);
        let c = &self.chunks[(id >> CHUNK_BITS) as usize];
        let at = (id & (CHUNK as u32 - 1)) as usize;
        unpack(c, at)
    }

    /// Every sighting with its id, by link and in capture order on each (not by time).
    pub fn iter(&self) -> impl Iterator<Item = (SightingId, Sighting)> + '_ {
        self.chunks.iter().enumerate().flat_map(|(n, c)| {
            (0..c.items.len())
                .map(move |at| (((n as u32) << CHUNK_BITS) | at as u32, unpack(c, at)))
        })
    }

    /// Every sighting's id, in [`iter`](Sightings::iter) order.
    pub fn ids(&self) -> impl Iterator<Item = SightingId> + '_ {
        self.chunks.iter().enumerate().flat_map(|(n, c)| {
            (0..c.items.len() as u32).map(move |at| ((n as u32) << CHUNK_BITS) | at)
        })
    }

    /// A value for every sighting, in [`iter`](Sightings::iter) order, read from its tuple:
    /// `of` is called once per distinct tuple of a chunk (a flow's packets on a link share
    /// two), not once per sighting; an ICMP error gets `quoting` of the tuple it quotes.
    pub fn classify<T: Copy>(
        &self,
        mut of: impl FnMut(&Tuple) -> T,
        mut quoting: impl FnMut(&Tuple) -> T,
    ) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        for c in &self.chunks {
            let values: Vec<T> = c.addrs.iter().map(|a| of(&tuple(a, &c.v6))).collect();
            let mut quoted = c.quoted.iter();
            out.extend(c.items.iter().map(|p| {
                if p.bits & QUOTES != 0 {
                    // `quoted` is in item order, one entry per quoting item.
                    if let Some((_, q)) = quoted.next() {
                        return quoting(q);
                    }
                }
                values[usize::from(p.addrs)]
            }));
        }
        out
    }

    /// The tuple and tag of every sighting whose payload names its flow, in
    /// [`iter`](Sightings::iter) order.
    pub fn tagged(&self) -> impl Iterator<Item = (Tuple, Tag)> + '_ {
        self.chunks.iter().flat_map(|c| {
            c.items
                .iter()
                .filter(|p| p.bits & TAGGED != 0)
                .map(move |p| {
                    let tag = Tag {
                        flow: p.tag_flow,
                        request: p.bits & REQUEST != 0,
                    };
                    (tuple(&c.addrs[usize::from(p.addrs)], &c.v6), tag)
                })
        })
    }

    /// The ids of every sighting, by time (then link and capture order).
    pub fn by_time(&self) -> Vec<SightingId> {
        let mut ids: Vec<(u64, usize, u32, SightingId)> = self
            .iter()
            .map(|(id, s)| (s.t_ns, s.link, s.seq, id))
            .collect();
        ids.sort_unstable();
        ids.into_iter().map(|(.., id)| id).collect()
    }
}

fn unpack(c: &Chunk, at: usize) -> Sighting {
    let p = &c.items[at];
    let t = tuple(&c.addrs[usize::from(p.addrs)], &c.v6);
    let proto = t.proto;
    let is_icmp = proto == 1 || proto == 58;
    let icmp = is_icmp.then_some(((p.ack >> 8) as u8, p.ack as u8));
    let inner = if p.bits & QUOTES != 0 {
        c.quoted
            .binary_search_by_key(&(at as u16), |(i, _)| *i)
            .ok()
            .map(|i| c.quoted[i].1)
    } else {
        None
    };
    Sighting {
        link: usize::from(c.link),
        seq: c.first_seq + at as u32,
        t_ns: c.t0_ns + u64::from(p.dt_ns),
        from_a: p.bits & FROM_A != 0,
        pkt: Packet {
            src: t.src,
            dst: t.dst,
            proto,
            sport: t.sport,
            dport: t.dport,
            ip_id: p.ip_id,
            seq: p.seq,
            ack: if is_icmp { 0 } else { p.ack },
            flags: p.flags,
            payload_len: p.payload_len,
            tag: (p.bits & TAGGED != 0).then_some(Tag {
                flow: p.tag_flow,
                request: p.bits & REQUEST != 0,
            }),
            icmp,
            inner,
        },
    }
}

impl From<Vec<Sighting>> for Sightings {
    /// Sightings in the order given; their `seq` is taken from that order, link by link.
    fn from(v: Vec<Sighting>) -> Sightings {
        let mut out = Sightings::new();
        for s in v {
            out.push(s.link, s.t_ns, s.from_a, &s.pkt);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(flow: u32, ip_id: u16) -> Packet {
        Packet {
            src: Ipv4Addr::new(192, 168, 1, 2).into(),
            dst: Ipv4Addr::new(10, 0, 0, 1).into(),
            proto: 6,
            sport: 40001,
            dport: 80,
            ip_id,
            seq: 0xdead_beef,
            ack: 0x1234_5678,
            flags: 0x18,
            payload_len: 12,
            tag: Some(Tag {
                flow,
                request: true,
            }),
            icmp: None,
            inner: None,
        }
    }

    #[test]
    fn a_sighting_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Packed>(), 24);
    }

    #[test]
    fn what_goes_in_comes_out() {
        let icmp = Packet {
            proto: 1,
            sport: 0,
            dport: 0,
            seq: 0,
            ack: 0,
            flags: 0,
            tag: None,
            icmp: Some((3, 3)),
            inner: Some(Tuple {
                proto: 17,
                src: Ipv4Addr::new(10, 0, 0, 1).into(),
                sport: 53,
                dst: Ipv4Addr::new(192, 168, 1, 2).into(),
                dport: 40009,
            }),
            ..tcp(0, 9)
        };
        let udp = Packet {
            proto: 17,
            flags: 0,
            seq: 0,
            ack: 0,
            tag: Some(Tag {
                flow: 4_000_000,
                request: false,
            }),
            ..tcp(0, 3)
        };
        let given = vec![
            (0, 10, true, tcp(7, 1)),
            (2, 11, false, icmp),
            (0, 5_000_000_000, false, udp),
            (2, 5_000_000_001, true, tcp(8, 2)),
        ];
        let mut s = Sightings::new();
        for (link, t, a, p) in &given {
            s.push(*link, *t, *a, p);
        }
        assert_eq!(s.len(), 4);
        let back: Vec<Sighting> = s.iter().map(|(_, x)| x).collect();
        for (x, (link, t, a, p)) in back.iter().zip(&given) {
            assert_eq!((x.link, x.t_ns, x.from_a, &x.pkt), (*link, *t, *a, p));
        }
        // Capture order counts per link.
        assert_eq!(back.iter().map(|x| x.seq).collect::<Vec<_>>(), [0, 0, 1, 1]);
        let ids: Vec<SightingId> = s.iter().map(|(id, _)| id).collect();
        assert_eq!(s.get(ids[1] | 1 << 31), back[1]);
        assert_eq!(s.by_time(), ids);
    }

    #[test]
    fn chunks_are_moved_not_copied_and_split_when_full() {
        let mut a = Sightings::new();
        for i in 0..CHUNK + 3 {
            a.push(1, i as u64, true, &tcp(1, i as u16));
        }
        assert_eq!(a.chunks.len(), 2);
        let mut b = Sightings::new();
        b.push(0, 1, false, &tcp(2, 0));
        b.append(a);
        assert_eq!(b.len(), CHUNK + 4);
        let last = b.iter().last().expect("some").1;
        assert_eq!(
            (last.link, last.seq, last.t_ns),
            (1, CHUNK as u32 + 2, CHUNK as u64 + 2)
        );
    }

    #[test]
    fn addresses_stay_with_their_sighting_across_chunks_and_appends() {
        let with_port = |sport: u16| Packet {
            sport,
            ..tcp(1, sport)
        };
        let mut a = Sightings::new();
        for port in [1, 2, 1, 3] {
            a.push(1, 0, true, &with_port(port));
        }
        let mut b = Sightings::new();
        for port in [4, 1] {
            b.push(1, 1, true, &with_port(port));
        }
        a.append(b);
        // Lands in `b`'s chunk, which `a`'s table of places knows nothing of.
        a.push(1, 2, true, &with_port(2));
        let ports: Vec<u16> = a.iter().map(|(_, s)| s.pkt.sport).collect();
        assert_eq!(ports, [1, 2, 1, 3, 4, 1, 2]);
    }

    #[test]
    fn a_tuple_is_read_once_per_chunk_and_an_icmp_error_by_what_it_quotes() {
        let with_port = |sport: u16| Packet {
            sport,
            ..tcp(1, sport)
        };
        let quoted = Tuple {
            proto: 6,
            src: Ipv4Addr::new(10, 0, 0, 1).into(),
            sport: 80,
            dst: Ipv4Addr::new(192, 168, 1, 2).into(),
            dport: 7,
        };
        let error = Packet {
            proto: 1,
            tag: None,
            icmp: Some((3, 1)),
            inner: Some(quoted),
            ..with_port(0)
        };
        let mut s = Sightings::new();
        for p in [
            with_port(1),
            with_port(2),
            with_port(1),
            error,
            with_port(1),
        ] {
            s.push(0, 0, true, &p);
        }
        let mut calls = 0;
        let values = s.classify(
            |t| {
                calls += 1;
                u32::from(t.sport)
            },
            |q| 1000 + u32::from(q.dport),
        );
        assert_eq!(values, [1, 2, 1, 1007, 1]);
        // Ports 1 and 2, and the ICMP error's own addresses (asked, not used).
        assert_eq!(calls, 3);
        let tags: Vec<u32> = s.tagged().map(|(_, t)| t.flow).collect();
        assert_eq!(tags, [1, 1, 1, 1]);
    }

    #[test]
    fn ipv6_sightings_come_back_whole_and_ipv4_ones_take_no_more_room() {
        assert_eq!(std::mem::size_of::<Packed>(), 24);
        assert_eq!(std::mem::size_of::<Addrs>(), 16);
        let a: IpAddr = "fd00:157::3".parse().unwrap();
        let b: IpAddr = "2001:db8:16:1::100".parse().unwrap();
        let four = Packet {
            src: Ipv4Addr::new(192, 168, 1, 2).into(),
            dst: Ipv4Addr::new(10, 0, 0, 1).into(),
            proto: 6,
            sport: 40000,
            dport: 80,
            ip_id: 9,
            seq: 1,
            ack: 2,
            flags: 0x18,
            payload_len: 8,
            tag: Some(Tag {
                flow: 1,
                request: true,
            }),
            icmp: None,
            inner: None,
        };
        let six = Packet {
            src: a,
            dst: b,
            ip_id: 0,
            ..four.clone()
        };
        let back = Packet {
            src: b,
            dst: a,
            sport: 80,
            dport: 40000,
            tag: None,
            ..six.clone()
        };
        let ptb = Packet {
            src: "2001:db8:37:1::1".parse().unwrap(),
            dst: a,
            proto: 58,
            sport: 0,
            dport: 0,
            seq: 1280,
            ack: 0,
            flags: 0,
            payload_len: 48,
            tag: None,
            icmp: Some((2, 0)),
            inner: Some(Tuple {
                proto: 6,
                src: a,
                sport: 40000,
                dst: b,
                dport: 80,
            }),
            ip_id: 0,
        };
        let mut s = Sightings::new();
        for (k, p) in [&four, &six, &back, &six, &ptb].into_iter().enumerate() {
            s.push(0, k as u64, true, p);
        }
        let got: Vec<Packet> = s.iter().map(|(_, s)| s.pkt).collect();
        assert_eq!(got, vec![four, six.clone(), back, six, ptb]);
        let c = &s.chunks[0];
        // Four distinct tuples; three IPv6 addresses kept once each.
        assert_eq!((c.addrs.len(), c.v6.len()), (4, 3));
        let tagged: Vec<_> = s.tagged().map(|(t, _)| t.src).collect();
        assert_eq!(tagged[1], a);
    }
}
