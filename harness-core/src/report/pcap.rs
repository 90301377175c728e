//! One pcap file per link, for tcpdump and Wireshark. A flow is found by its fixed client port
//! (`udp port 40007` is flow 7) or its payload tag (`HXQ 7 ` from the client, `HXR 7 ` back).

use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pcap_file::pcap::{PcapPacket, PcapWriter};
use pcap_file::PcapError;

use crate::observe::Frame;

/// Writes the frames of link `link` (Ethernet) as a pcap stream, and hands `out` back: what
/// it still buffers is the caller's to flush, and a failing flush is the caller's error.
///
/// # Errors
/// The writer's own (`No space left on device`), not pcap-file's "Error reading bytes".
pub fn write<W: Write>(
    out: W,
    frames: &[Frame],
    link: usize,
    started: SystemTime,
) -> io::Result<W> {
    let mut w = PcapWriter::new(out).map_err(io_error)?;
    let base = started.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut mine: Vec<&Frame> = frames.iter().filter(|f| f.link == link).collect();
    mine.sort_by_key(|f| f.t_ns);
    for f in mine {
        let ts = base + Duration::from_nanos(f.t_ns);
        w.write_packet(&PcapPacket::new(ts, f.data.len() as u32, &f.data))
            .map_err(io_error)?;
    }
    Ok(w.into_writer())
}

/// pcap-file wraps the writer's error and displays it as "Error reading bytes": unwrap it.
fn io_error(e: PcapError) -> io::Error {
    match e {
        PcapError::IoError(e) => e,
        other => io::Error::other(other),
    }
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

    /// A writer that takes `room` bytes, then fails as a full disk does.
    #[derive(Debug)]
    struct Full {
        room: usize,
    }

    impl Write for Full {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.room == 0 {
                return Err(io::Error::from_raw_os_error(libc::ENOSPC));
            }
            let n = buf.len().min(self.room);
            self.room -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_disk_is_the_writers_error_not_error_reading_bytes() {
        let frames = vec![Frame {
            link: 0,
            t_ns: 5,
            data: vec![1; 60],
        }];
        let e = write(Full { room: 30 }, &frames, 0, UNIX_EPOCH).expect_err("the disk is full");
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
        assert!(e.to_string().contains("No space left on device"), "{e}");
    }
}
