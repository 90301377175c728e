//! One pcap file per link, for tcpdump and Wireshark. A flow is found by its fixed client port
//! (`udp port 40007` is flow 7) or its payload tag (`HXQ 7 ` from the client, `HXR 7 ` back).

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapPacket, PcapWriter};

use crate::observe::capture::Frame;

/// Writes the frames of link `link` (Ethernet) as a pcap stream.
pub fn write(
    out: impl Write,
    frames: &[Frame],
    link: usize,
    started: SystemTime,
) -> Result<(), pcap_file::PcapError> {
    let mut w = PcapWriter::new(out)?;
    let base = started.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut mine: Vec<&Frame> = frames.iter().filter(|f| f.link == link).collect();
    mine.sort_by_key(|f| f.t_ns);
    for f in mine {
        let ts = base + Duration::from_nanos(f.t_ns);
        w.write_packet(&PcapPacket::new(ts, f.data.len() as u32, &f.data))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pcap_stream_starts_with_the_magic_and_holds_the_frames() {
        let frames = vec![
            Frame {
                link: 0,
                t_ns: 5,
                data: vec![1; 60],
            },
            Frame {
                link: 1,
                t_ns: 6,
                data: vec![2; 60],
            },
        ];
        let mut out = Vec::new();
        write(&mut out, &frames, 0, UNIX_EPOCH).expect("writes");
        assert_eq!(
            &out[..4],
            &[0xd4, 0xc3, 0xb2, 0xa1],
            "pcap magic, little endian"
        );
        assert_eq!(
            out.len(),
            24 + 16 + 60,
            "header, one record header, one frame"
        );
    }
}
