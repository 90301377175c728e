//! Whole frames as captured, kept for pcap files. Pure data.

/// A whole frame as captured on a link, kept for pcap files.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The link it was seen on, by index in the topology.
    pub link: usize,
    /// When, in nanoseconds since the captures started.
    pub t_ns: u64,
    /// The frame's bytes, from its Ethernet header on.
    pub data: Vec<u8>,
}
